"""Webhooks: subscriptions, the outbox relay and signed, consent-checked delivery (GDPR Art. 19).

Depends on events, consent, profiles and audit. Connects, in ``ready``:
- ``consent.signals.consent_changed`` -> records ``consent.withdrawn`` in the consent transaction;
- ``events.signals.event_recorded`` -> kicks the relay once the writing transaction commits.
"""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from consent.signals import consent_changed
        from events.signals import event_recorded
        from webhooks import embedded, receivers

        consent_changed.connect(receivers.on_consent_changed, dispatch_uid="webhooks.consent_changed")
        event_recorded.connect(receivers.on_event_recorded, dispatch_uid="webhooks.event_recorded")
        embedded.start_if_configured()
