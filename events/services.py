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


@transaction.atomic
def events_record_many(*, events: list[dict[str, Any]]) -> list[OutboxEvent]:
    """Write many events (``{"type", "customer_id", "purpose", "payload"}`` each) with ONE bulk insert in
    the caller's transaction (batch paths), then send ``event_recorded`` for each, in order, in that same
    transaction: receivers see them exactly as if ``event_record`` had been called once per event."""
    rows: list[OutboxEvent] = []
    for item in events:
        body = dict(item.get("payload") or {})
        _check_payload(body)
        rows.append(OutboxEvent(type=item["type"], customer_id=item.get("customer_id"), purpose=item.get("purpose"),
                                payload=body))
    if not rows:
        return []
    created = OutboxEvent.objects.bulk_create(rows)
    if any(row.pk is None for row in created):  # a backend that cannot return ids: read them back in order
        found = {e.event_id: e for e in OutboxEvent.objects.filter(event_id__in=[row.event_id for row in created])}
        created = [found[row.event_id] for row in created]
    for row in created:
        event_recorded.send(sender=OutboxEvent, event=row)
    return created


def events_claim_undispatched(*, limit: int = 500) -> list[OutboxEvent]:
    """The oldest events not yet dispatched, locked for the caller's transaction (PostgreSQL skips rows
    another relay holds, so relays can run side by side). Call inside ``transaction.atomic``."""
    from django.db import connection

    qs = OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True)
    return list(qs[: max(1, int(limit))])


@transaction.atomic
def events_mark_dispatched(*, ids: list[int], at: Any = None) -> int:
    """Mark events dispatched (the relay has written their deliveries in this same transaction)."""
    from django.utils import timezone

    if not ids:
        return 0
    return OutboxEvent.objects.filter(pk__in=ids, dispatched_at__isnull=True).update(
        dispatched_at=at or timezone.now())
