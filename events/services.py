"""Writes to the outbox. Call ``event_record`` inside the transaction of the change it reports."""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from django.db import transaction

from config.errors import ValidationFailed
from events.models import OutboxEvent
from events.signals import event_recorded

#: Event types a subscriber may receive (see docs/WEBHOOKS.md for their payloads).
PUBLIC_EVENT_TYPES: tuple[str, ...] = (
    "score.tier_changed",
    "score.risk_raised",
    "action.created",
    "action.closed",
    "consent.withdrawn",
    "customer.rectified",
    "customer.erased",
)

#: Keys a payload may never carry: the outbox holds no personal data.
_FORBIDDEN_KEYS = frozenset({"email", "phone", "name", "first_name", "last_name", "full_name", "address",
                             "street", "city", "postcode", "postal_code", "iban", "date_of_birth", "text"})


def _check_payload(value: Any, path: str = "payload") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationFailed("Event payload keys must be strings.", code="invalid_event")
            if key.lower() in _FORBIDDEN_KEYS:
                raise ValidationFailed(f"Event payloads hold no personal data ({path}.{key}).", code="invalid_event")
            _check_payload(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_payload(item, path)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValidationFailed(f"Event payloads hold finite numbers only ({path}).", code="invalid_event")


@transaction.atomic
def event_record(*, type: str, customer_id: UUID | None, purpose: str | None,
                 payload: dict[str, Any] | None = None) -> OutboxEvent:
    """Write one event in the caller's transaction and tell in-process receivers (same transaction)."""
    body = dict(payload or {})
    _check_payload(body)
    event = OutboxEvent.objects.create(type=type, customer_id=customer_id, purpose=purpose, payload=body)
    event_recorded.send(sender=OutboxEvent, event=event)
    return event
