"""Consent state now and at any past instant, and the history of events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import F, OuterRef
from django.utils import timezone

from config.errors import NotFound
from consent.models import (
    ConsentEvent,
    ConsentNotice,
    ConsentStateCurrent,
)

from .flags import processing_flag_history, processing_flags_active
from .purposes import purpose_id_for, purpose_list
from .semantics import customer_id_resolve, customer_uuid, state_from_row, superseded_exists

if TYPE_CHECKING:
    from .semantics import ConsentState


_EVENT_FIELDS = {
    "event_id": F("id"),
    "notice_version": F("notice__version"),
}


def latest_event_row(*, customer_id: uuid.UUID, purpose_id: int, at: datetime) -> dict[str, Any] | None:
    row = (
        ConsentEvent.objects.filter(customer_id=customer_id, purpose_id=purpose_id, occurred_at__lte=at)
        .annotate(
            superseded=superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=at
            ),
            **_EVENT_FIELDS,
        )
        .order_by("-occurred_at", "-id")
        .values("event_id", "action", "notice_version", "occurred_at", "source", "channel", "superseded")
        .first()
    )
    return dict(row) if row is not None else None


def _current_row(*, customer_id: uuid.UUID, purpose_id: int, now: datetime) -> dict[str, Any] | None:
    row = (
        ConsentStateCurrent.objects.filter(customer_id=customer_id, purpose_id=purpose_id)
        .annotate(
            superseded=superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
            ),
            action=F("event__action"),
            source=F("event__source"),
            channel=F("event__channel"),
            notice_version=F("notice__version"),
        )
        .values("event_id", "action", "notice_version", "occurred_at", "source", "channel", "superseded")
        .first()
    )
    return dict(row) if row is not None else None


def consent_state(*, customer_id: uuid.UUID, purpose: str, at: datetime | None = None) -> ConsentState:
    """The consent state of one customer for one purpose, now (``at=None``) or at a past instant.
    A merge alias answers for the customer it was merged into; unknown/erased customers are "never asked"."""
    cid = customer_uuid(customer_id)
    pid = purpose_id_for(purpose)
    resolved, _ = customer_id_resolve(cid)
    if resolved is None:
        return state_from_row(customer_id=cid, purpose=purpose, row=None)
    if at is None:
        row = _current_row(customer_id=resolved, purpose_id=pid, now=timezone.now())
    else:
        row = latest_event_row(customer_id=resolved, purpose_id=pid, at=at)
    return state_from_row(customer_id=resolved, purpose=purpose, row=row)


def consent_states(*, customer_id: uuid.UUID, at: datetime | None = None) -> list[ConsentState]:
    """The state for every purpose (for the API, the console and the subject's export)."""
    return [consent_state(customer_id=customer_id, purpose=p.code, at=at) for p in purpose_list()]


def consent_history(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every consent event of the customer, oldest first (PII-free)."""
    cid = customer_uuid(customer_id)
    events = (
        ConsentEvent.objects.filter(customer_id=cid)
        .select_related("purpose", "notice")
        .order_by("occurred_at", "id")
    )
    return [_event_dict(event) for event in events]


def _event_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "customer": str(event.customer_id),
        "purpose": event.purpose.code,
        "action": event.action,
        "notice_version": event.notice.version,
        "notice_hash": event.notice.text_hash,
        "source": event.source,
        "channel": event.channel,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": event.actor,
        "evidence": dict(event.evidence or {}),
    }


def consent_event_get(*, event_id: int) -> ConsentEvent:
    event = ConsentEvent.objects.select_related("purpose", "notice").filter(pk=event_id).first()
    if event is None:
        raise NotFound("Consent event not found.")
    return event


def _require_customer(customer_id: Any) -> uuid.UUID:
    resolved, _ = customer_id_resolve(customer_uuid(customer_id))
    if resolved is None:
        raise NotFound("Customer not found.")
    return resolved


def customer_consents(*, customer_id: uuid.UUID, at: datetime | None = None) -> dict[str, Any]:
    """State per purpose and the processing flags holding, now or at ``at`` (``NotFound`` for unknown or
    erased customers)."""
    cid = _require_customer(customer_id)
    return {
        "customer": cid,
        "at": at or timezone.now(),
        "consents": consent_states(customer_id=cid, at=at),
        "processing_flags": processing_flags_active(customer_id=cid, at=at),
    }


def customer_consent_history(*, customer_id: uuid.UUID) -> dict[str, Any]:
    """Every consent event and processing-flag event of the customer (``NotFound`` if unknown/erased)."""
    cid = _require_customer(customer_id)
    return {
        "customer": cid,
        "events": consent_history(customer_id=cid),
        "processing_flags": processing_flag_history(customer_id=cid),
    }


def purpose_catalogue() -> list[dict[str, Any]]:
    """Purposes with their lawful basis, retention, categories, recipients and the notice in force."""
    now = timezone.now()
    notices: dict[int, ConsentNotice] = {}
    for notice in ConsentNotice.objects.filter(published_at__lte=now).order_by("published_at", "id"):
        notices[notice.purpose_id] = notice
    return [
        {
            "code": p.code,
            "name": p.name,
            "description": p.description,
            "lawful_basis": p.lawful_basis,
            "explicit_consent_required": p.explicit_consent_required,
            "retention_days": p.retention_days,
            "data_categories": list(p.data_categories or []),
            "recipients": p.recipients,
            "current_notice": notices.get(p.id),
        }
        for p in purpose_list()
    ]
