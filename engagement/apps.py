"""Next-best actions and the holdout group: scores become work items, inside consent.

Depends on scoring and below (through their services and selectors). Connects, in ``ready()``, to
``events.signals.event_recorded`` (score events create actions in the decision's transaction),
``consent.signals.consent_changed`` (withdrawal, restriction, objection cancel open actions in the consent
change's transaction) and ``scoring.signals.rescore_run_completed`` (the sweep, queued on commit).
"""

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    verbose_name = "Engagement (next-best actions)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consent import signals as consent_signals
        from engagement import receivers
        from events import signals as event_signals
        from profiles import signals as profiles_signals
        from scoring import signals as scoring_signals

        event_signals.event_recorded.connect(receivers.on_event_recorded, dispatch_uid="engagement.event_recorded")
        consent_signals.consent_changed.connect(receivers.on_consent_changed, dispatch_uid="engagement.consent")
        profiles_signals.customers_merged.connect(receivers.on_customers_merged, dispatch_uid="engagement.merged")
        scoring_signals.rescore_run_completed.connect(receivers.on_rescore_run_completed,
                                                      dispatch_uid="engagement.rescore_completed")
