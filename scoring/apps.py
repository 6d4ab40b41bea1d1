from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    verbose_name = "Scoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consent import signals as consent_signals
        from profiles import signals
        from scoring.receivers import on_consent_changed, on_customer_facts_changed, on_customers_merged

        signals.customer_facts_changed.connect(on_customer_facts_changed, dispatch_uid="scoring.facts_changed")
        signals.customers_merged.connect(on_customers_merged, dispatch_uid="scoring.customers_merged")
        consent_signals.consent_changed.connect(on_consent_changed, dispatch_uid="scoring.consent_changed")

        from scoring.schedule import start_in_process  # embedded mode, runserver only (guarded by a setting)

        start_in_process()
