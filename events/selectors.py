"""Reads of the outbox."""

from __future__ import annotations

from uuid import UUID

from events.models import OutboxEvent


def events_after(*, after_id: int = 0, limit: int = 500, types: list[str] | None = None) -> list[OutboxEvent]:
    """Events with ``id > after_id`` in order (the outbox relay's cursor)."""
    qs = OutboxEvent.objects.filter(id__gt=after_id)
    if types:
        qs = qs.filter(type__in=types)
    return list(qs.order_by("id")[:limit])


def event_get(*, event_id: UUID) -> OutboxEvent | None:
    return OutboxEvent.objects.filter(event_id=event_id).first()


def events_for_customer(*, customer_id: UUID, limit: int = 200) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(customer_id=customer_id).order_by("-id")[:limit])


def outbox_backlog() -> dict[str, object]:
    """How many events wait for the relay, and since when (delivery health)."""
    from django.db.models import Count, Min

    row = OutboxEvent.objects.filter(dispatched_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    return {"pending": int(row["n"] or 0), "oldest": row["oldest"]}


def events_undispatched_exist() -> bool:
    """Whether any event waits for the relay (a read on the partial index; no lock)."""
    return OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()
