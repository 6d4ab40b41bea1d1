"""Signal receivers of the webhooks app (connected in ``WebhooksConfig.ready``). Both run inside the writing
transaction: an exception rolls the change back with its event."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def on_consent_changed(sender: Any, customer_id: UUID, purpose: str | None, kind: str, **kwargs: Any) -> None:
    """A withdrawal, restriction or objection (processing must stop) is told to recipients as
    ``consent.withdrawn`` with ``kind`` saying which; ``purpose`` null means every purpose. Restriction and
    objection share the type because, for a recipient, they mean the same thing now: stop processing this
    customer's data for the purpose (``kind`` tells a temporary restriction apart from a withdrawal)."""
    from consent.signals import STOPPING_KINDS
    from events import services as events_services

    if kind not in STOPPING_KINDS:
        return
    events_services.event_record(type="consent.withdrawn", customer_id=customer_id, purpose=purpose,
                                 payload={"kind": kind})


def on_event_recorded(sender: Any, event: Any, **kwargs: Any) -> None:
    """Relay (and deliver) once the transaction that wrote the event commits."""
    from webhooks.services import kick_on_commit

    kick_on_commit()
