"""All reads of the subject-rights app."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from config.errors import NotFound
from config.uuids import as_uuid

from . import clock
from .models import (
    OPEN_STATUSES,
    Channel,
    ErasureLedgerEntry,
    Export,
    ExtensionCode,
    LegalHold,
    Outcome,
    RejectionCode,
    RequestType,
    ReviewTask,
    Status,
    StatusChange,
    SubjectRequest,
)

#: The vocabulary of subject requests, for other apps' forms and filters (the console): they read it here,
#: never from ``subject_rights.models``.
VOCABULARY = (Channel, ExtensionCode, Outcome, RejectionCode, RequestType, ReviewTask, Status)


def request_get(*, request_id: UUID | str) -> SubjectRequest:
    try:
        return SubjectRequest.objects.get(id=request_id)
    except (SubjectRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


def request_list(*, filters: dict[str, Any] | None = None) -> QuerySet[SubjectRequest]:
    """Filters: ``status`` (a status or "open"/"closed"), ``type``, ``channel``, ``alert`` ("due_soon",
    "overdue" or "flagged"), ``subject`` (pseudonym)."""
    filters = filters or {}
    qs = SubjectRequest.objects.all()
    status = filters.get("status")
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status == "closed":
        qs = qs.exclude(status__in=OPEN_STATUSES)
    elif status in Status.values:
        qs = qs.filter(status=status)
    if filters.get("type"):
        qs = qs.filter(type=filters["type"])
    if filters.get("channel"):
        qs = qs.filter(channel=filters["channel"])
    alert = filters.get("alert")
    if alert == "flagged":
        qs = qs.exclude(alert_level="")
    elif alert in ("due_soon", "overdue"):
        qs = qs.filter(alert_level=alert)
    if filters.get("subject"):
        try:
            qs = qs.filter(subject=as_uuid(filters["subject"]))
        except ValueError:
            qs = qs.none()
    return qs.order_by("due_at", "received_at")


def request_clock(*, request: SubjectRequest, now: datetime | None = None) -> clock.ClockState:
    return clock.clock_state(received_at=request.received_at, paused_total=request.paused_total,
                             paused_since=request.paused_since, extension_months=request.extension_months,
                             now=now or timezone.now())


def request_alert(*, request: SubjectRequest, now: datetime | None = None) -> str:
    """The clock's alert level right now ("overdue", "due_soon" or "") for an open request."""
    if not request.is_open:
        return ""
    state = request_clock(request=request, now=now)
    return "" if state.paused else clock.alert_level(due_at=state.due_at, now=now or timezone.now())


def request_history(*, request_id: UUID) -> list[StatusChange]:
    return list(StatusChange.objects.filter(request_id=request_id).order_by("at", "id"))


def request_counts() -> dict[str, int]:
    open_qs = SubjectRequest.objects.filter(status__in=OPEN_STATUSES)
    return {
        "open": open_qs.count(),
        "due_soon": open_qs.filter(alert_level="due_soon").count(),
        "overdue": open_qs.filter(alert_level="overdue").count(),
        "identity_pending": open_qs.filter(status=Status.IDENTITY_PENDING).count(),
    }


def export_live_for_request(*, request_id: UUID) -> Export | None:
    return (Export.objects.filter(request_id=request_id, deleted_at__isnull=True, expires_at__gt=timezone.now())
            .exclude(wrapped_key=None).order_by("-created_at").first())


def export_get(*, export_id: UUID | str) -> Export:
    try:
        return Export.objects.get(id=export_id)
    except (Export.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


def legal_hold_list(*, subject: UUID | None = None, active_only: bool = True) -> QuerySet[LegalHold]:
    qs = LegalHold.objects.all()
    if subject is not None:
        qs = qs.filter(subject=subject)
    if active_only:
        qs = qs.filter(released_at__isnull=True)
    return qs.order_by("-placed_at")


def erasure_ledger_list() -> QuerySet[ErasureLedgerEntry]:
    return ErasureLedgerEntry.objects.order_by("erased_at", "id")


def erasure_preview(*, customer_id: UUID) -> dict[str, Any]:
    """What executing an erasure for this customer would do, counted (the console shows it before the DPO
    confirms): profile fields, facts, blind indexes and aliases destroyed (profiles); stored scores deleted
    (scoring); decision records kept as tombstones with their details crypto-shredded (audit); open actions
    cancelled (engagement); webhook subscriptions told (webhooks); active legal holds that would stop it."""
    from audit import selectors as audit_selectors
    from engagement import selectors as engagement_selectors
    from profiles import selectors as profile_selectors
    from scoring import selectors as scoring_selectors
    from webhooks import selectors as webhook_selectors

    profile = profile_selectors.customer_erasure_preview(customer_id=customer_id)
    cid = profile["customer_id"]
    group = [cid, *profile_selectors.customer_aliases(customer_id=cid)]
    actions = [a for g in group for a in engagement_selectors.actions_for_customer(customer_id=g)]
    return {
        **profile,
        "scores": sum(len(scoring_selectors.scores_for_customer(customer_id=g)) for g in group),
        "decisions_kept": sum(len(audit_selectors.decisions_for_subject(customer=g)) for g in group),
        "actions_cancelled": sum(1 for a in actions if a["status"] in ("open", "claimed")),
        "actions_total": len(actions),
        "subscriptions_notified": len(webhook_selectors.erasure_notice_recipients(customer_ids=group)),
        "legal_holds": legal_hold_list(subject=cid).count(),
    }


def review_list(*, state: str | None = None) -> QuerySet[ReviewTask]:
    qs = ReviewTask.objects.select_related("request")
    if state in ReviewTask.State.values:
        qs = qs.filter(state=state)
    return qs.order_by("state", "created_at", "id")


def review_get(*, review_id: int) -> ReviewTask:
    review = ReviewTask.objects.select_related("request").filter(pk=review_id).first()
    if review is None:
        raise NotFound()
    return review


def review_for_request(*, request_id: UUID) -> ReviewTask | None:
    return ReviewTask.objects.filter(request_id=request_id).first()


@dataclass(frozen=True)
class ReviewStats:
    open: int
    decided: int
    overridden: int
    override_rate: float | None  # overridden / decided
    median_review_hours: float | None
    mean_review_hours: float | None


def review_stats() -> ReviewStats:
    """Review time (contest filed -> decided) and override rate, over all decided reviews."""
    decided = list(ReviewTask.objects.filter(state=ReviewTask.State.DECIDED).values_list(
        "created_at", "decided_at", "outcome"))
    hours = [(d - c).total_seconds() / 3600 for c, d, _ in decided if d is not None]
    overridden = sum(1 for *_, outcome in decided if outcome == ReviewTask.Result.OVERRIDDEN)
    return ReviewStats(
        open=ReviewTask.objects.filter(state=ReviewTask.State.OPEN).count(),
        decided=len(decided),
        overridden=overridden,
        override_rate=(overridden / len(decided)) if decided else None,
        median_review_hours=round(statistics.median(hours), 2) if hours else None,
        mean_review_hours=round(statistics.fmean(hours), 2) if hours else None,
    )


def decision_summaries(*, decision_ids: list[int]) -> list[dict[str, Any]]:
    """PII-free summaries (id, purpose, time, tier, service level) of decision records, in the given order."""
    from audit import selectors as audit_selectors

    rows = []
    for decision_id in decision_ids:
        try:
            decision = audit_selectors.decision_get(decision_id=decision_id)
        except NotFound:
            continue
        outputs: dict[str, Any] = decision.outputs if isinstance(decision.outputs, dict) else {}
        rows.append({"id": decision.pk, "purpose": decision.purpose, "at": decision.created_at,
                     "decision_type": decision.decision_type, "tier": outputs.get("tier"),
                     "service_level": outputs.get("service_level")})
    return rows
