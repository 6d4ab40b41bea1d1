"""Audit reads: decisions, reviews, access and governance logs, chain status.

Lists use keyset (cursor) pagination on ``(created_at, id)`` with composite indexes, never OFFSET or
COUNT(*), so they stay fast over millions of records.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Model, Prefetch, Q, QuerySet
from django.utils import timezone

from audit.checkpoints import checkpoint_store, head_read
from audit.models import (
    AccessRecord,
    ApiClient,
    ChainLink,
    Checkpoint,
    DecisionRecord,
    GovernanceEvent,
    HumanReview,
    PendingSeal,
    VerificationRun,
)
from audit.verify import VerifyResult
from config.chunking import chunked
from config.errors import NotFound, ValidationFailed

T = TypeVar("T", bound=Model)
DEFAULT_PAGE = 50
MAX_PAGE = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # older records
    prev_cursor: str | None  # newer records


# ------------------------------------------------------------------------------------- paging

def _encode_cursor(direction: str, item: Any) -> str:
    raw = f"{direction}|{item.created_at.astimezone(UTC).isoformat()}|{item.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, at, pk = raw.split("|")
        if direction not in ("older", "newer"):
            raise ValueError(direction)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError(at)
        return direction, moment, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise ValidationFailed("The page cursor is invalid.") from exc


def _page(qs: QuerySet[T], *, cursor: str | None, limit: int, branches: Sequence[Q] = ()) -> Page[T]:
    """One keyset page of ``qs``. With ``branches`` (disjoint conditions whose union is wanted), each
    branch is fetched as its own index-ordered query and the results are merged: an OR of indexed
    columns would make the database either sort every match or walk the date index filtering."""
    limit = max(1, min(int(limit), MAX_PAGE))
    direction, at, pk = _decode_cursor(cursor) if cursor else ("older", None, None)
    if at is not None and direction == "older":
        qs = qs.filter(Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(pk__lt=pk)))
    elif at is not None:
        qs = qs.filter(Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(pk__gt=pk)))
    ordering = ("-created_at", "-pk") if direction == "older" else ("created_at", "pk")
    if branches:
        merged = [item for branch in branches for item in qs.filter(branch).order_by(*ordering)[: limit + 1]]
        merged.sort(key=lambda item: (getattr(item, "created_at"), item.pk), reverse=direction == "older")  # noqa: B009
        items = merged[: limit + 1]
    else:
        items = list(qs.order_by(*ordering)[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    if direction == "newer":
        items.reverse()
    has_older = more if direction == "older" else bool(items)
    has_newer = (at is not None and bool(items)) if direction == "older" else more
    return Page(
        items=items,
        next_cursor=_encode_cursor("older", items[-1]) if items and has_older else None,
        prev_cursor=_encode_cursor("newer", items[0]) if items and has_newer else None,
    )


def _day_start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _date_range(qs: QuerySet[T], filters: Mapping[str, Any]) -> QuerySet[T]:
    if filters.get("date_from"):
        qs = qs.filter(created_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        end = filters["date_to"]
        if isinstance(end, datetime):
            qs = qs.filter(created_at__lte=_day_start(end))
        elif end < date.max:  # the last representable day (9999-12-31) has no next day: no upper bound then
            qs = qs.filter(created_at__lt=_day_start(end) + timedelta(days=1))
    return qs


# ---------------------------------------------------------------------------------- decisions

def decision_get(*, decision_id: int) -> DecisionRecord:
    record = DecisionRecord.objects.filter(pk=decision_id).first()
    if record is None:
        raise NotFound("Decision not found.")
    return record


def _model_version_branches(version: str) -> tuple[Q, Q]:
    """Decisions whose ``model_versions`` contain ``version``, as two disjoint equality conditions on the
    indexed search columns (``audit_dec_model_1``, partial ``audit_dec_model_2``)."""
    return Q(model_version_1=version), Q(model_version_2=version) & ~Q(model_version_1=version)


def _decision_filtered(filters: Mapping[str, Any]) -> QuerySet[DecisionRecord]:
    qs = DecisionRecord.objects.all()
    if filters.get("customer"):
        qs = qs.filter(customer=filters["customer"])
    if filters.get("customers") is not None:
        qs = qs.filter(customer__in=list(filters["customers"]))
    for key in ("decision_type", "requester", "tier", "purpose"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return _date_range(qs, filters)


def decision_queryset(*, filters: Mapping[str, Any]) -> QuerySet[DecisionRecord]:
    """Decisions matching ``filters`` (any of: customer, customers (list, e.g. from a blind-index
    e-mail lookup), date_from, date_to, decision_type, model_version, requester, tier, purpose), newest
    first. ``model_version`` matches every record whose ``model_versions`` contain that version."""
    qs = _decision_filtered(filters)
    if filters.get("model_version"):
        first, second = _model_version_branches(str(filters["model_version"]))
        qs = qs.filter(first | second)
    return qs.order_by("-created_at", "-id")


def decision_list(*, filters: Mapping[str, Any], cursor: str | None = None, limit: int = DEFAULT_PAGE) -> Page[DecisionRecord]:
    qs = _decision_filtered(filters).defer("sealed_details")
    branches = _model_version_branches(str(filters["model_version"])) if filters.get("model_version") else ()
    return _page(qs, cursor=cursor, limit=limit, branches=branches)


def decisions_for_subject(*, customer: UUID) -> list[DecisionRecord]:
    """Every decision about one customer, oldest first, with its reviews prefetched oldest first (one query
    for all of them: ``decision.reviews.all()`` reads the prefetch; for exports)."""
    reviews = Prefetch("reviews", queryset=HumanReview.objects.order_by("created_at", "id"))
    return list(DecisionRecord.objects.filter(customer=customer).order_by("created_at", "id").prefetch_related(reviews))


def decision_type_choices() -> list[tuple[str, str]]:
    return [(str(c.value), str(c.label)) for c in DecisionRecord.DecisionType]


def sequence_numbers(*, record_type: str, row_ids: Sequence[int]) -> dict[int, int]:
    """Chain sequence number of each sealed record (records not sealed yet are absent)."""
    rows = ChainLink.objects.filter(record_type=record_type, row_id__in=list(row_ids))
    return dict(rows.values_list("row_id", "seq"))


def decision_sequence_numbers(*, decision_ids: Sequence[int]) -> dict[int, int]:
    return sequence_numbers(record_type=DecisionRecord.RECORD_TYPE, row_ids=decision_ids)


def decision_reviews(*, decision_id: int) -> list[HumanReview]:
    return list(HumanReview.objects.filter(decision_id=decision_id).order_by("created_at", "id"))


def review_latest(*, decision_id: int) -> HumanReview | None:
    return HumanReview.objects.filter(decision_id=decision_id).order_by("-created_at", "-id").first()


def decision_counts(*, since: datetime) -> dict[str, int]:
    """Number of decisions per decision type since ``since`` (uses the created_at index)."""
    rows = DecisionRecord.objects.filter(created_at__gte=since).values("decision_type").annotate(n=Count("id"))
    return {row["decision_type"]: row["n"] for row in rows}


# ----------------------------------------------------------------------------- access, governance

def access_queryset(*, filters: Mapping[str, Any]) -> QuerySet[AccessRecord]:
    qs = AccessRecord.objects.all()
    for key in ("subject", "actor", "purpose", "what"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return _date_range(qs, filters).order_by("-created_at", "-id")


def access_list(*, filters: Mapping[str, Any] | None = None, cursor: str | None = None,
                limit: int = DEFAULT_PAGE) -> Page[AccessRecord]:
    return _page(access_queryset(filters=filters or {}), cursor=cursor, limit=limit)


def governance_queryset(*, filters: Mapping[str, Any]) -> QuerySet[GovernanceEvent]:
    qs = GovernanceEvent.objects.all()
    for key in ("kind", "actor", "subject"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    return _date_range(qs, filters).order_by("-created_at", "-id")


def governance_list(*, filters: Mapping[str, Any] | None = None, cursor: str | None = None,
                    limit: int = DEFAULT_PAGE) -> Page[GovernanceEvent]:
    return _page(governance_queryset(filters=filters or {}), cursor=cursor, limit=limit)


# ---------------------------------------------------------------------------------------- chain

def chain_status() -> dict[str, Any]:
    """Head of the chain, records waiting to be sealed, the last verification, the last checkpoint and the
    signed head."""
    head = ChainLink.objects.order_by("-seq").values("seq", "link_hash", "sealed_at").first()
    store = checkpoint_store()
    signed_head = head_read(store)
    oldest_pending = PendingSeal.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return {
        "head_seq": head["seq"] if head else 0,
        "head_hash": head["link_hash"] if head else None,
        "head_sealed_at": head["sealed_at"] if head else None,
        "unsealed": PendingSeal.objects.count(),
        "oldest_unsealed_at": oldest_pending,
        "last_verification": VerificationRun.objects.order_by("-finished_at", "-id").first(),
        "last_checkpoint": Checkpoint.objects.order_by("-seq").first(),
        "checkpoint_store": store.describe(),
        # The newest head signature (seq, signed_at ISO text); records sealed after it are in the tamper window.
        "signed_head": {"seq": signed_head.seq, "signed_at": signed_head.signed_at} if signed_head else None,
        "head_sign_seconds": float(getattr(settings, "AUDIT_HEAD_SIGN_SECONDS", 5.0)),
    }


def chain_verify(*, from_seq: int | None = None, seal: bool = True, actor: str = "cli") -> VerifyResult:
    """Seal, verify and record the run (see ``audit.services.chain_verify_run``)."""
    from audit.services import chain_verify_run

    result: VerifyResult = chain_verify_run(from_seq=from_seq, seal=seal, actor=actor)
    return result


def verification_runs(*, limit: int = 20) -> list[VerificationRun]:
    return list(VerificationRun.objects.order_by("-finished_at", "-id")[:limit])


# -------------------------------------------------------------------------------------- clients

def api_client_list() -> list[dict[str, Any]]:
    """Recipients of decisions (for the records of processing): name, scopes, purposes, state."""
    now = timezone.now()
    return [
        {"name": c.name, "scopes": list(c.scopes), "purposes": list(c.purposes), "created_at": c.created_at,
         "expires_at": c.expires_at, "revoked_at": c.revoked_at,
         "active": c.revoked_at is None and c.expires_at > now}
        for c in ApiClient.objects.order_by("name")
    ]


def decision_ids_by_key(*, keys: Sequence[str]) -> dict[str, int]:
    """Decision ids by ``decision_key`` (batch paths that wrote records in bulk), one query per 500 keys."""
    found: dict[str, int] = {}
    keys = list(dict.fromkeys(keys))
    for batch in chunked(keys, 500):
        found.update(DecisionRecord.objects.filter(decision_key__in=batch)
                     .values_list("decision_key", "id"))
    return found
def tier_history(*, customers: Sequence[UUID], before: datetime) -> dict[UUID, list[tuple[datetime, str]]]:
    """Per customer, the tiers of their decisions (``created_at``, tier) before ``before``, oldest first: the
    tier in force at a time is the last one at or before it (KPIs: the service level when a ticket opened)."""
    out: dict[UUID, list[tuple[datetime, str]]] = {}
    ids = list(dict.fromkeys(customers))
    for batch in chunked(ids, 5000):
        rows = (DecisionRecord.objects.filter(customer__in=batch, created_at__lt=before)
                .exclude(tier="").order_by("created_at", "id").values_list("customer", "created_at", "tier"))
        for cid, at, tier in rows:
            out.setdefault(cid, []).append((at, tier))
    return out


def tier_in_force_expression(*, customer: Any, at: Any) -> Any:
    """A subquery expression: the tier of the customer's latest decision (with a tier) created at or before
    ``at`` (``customer`` and ``at`` are expressions, e.g. ``OuterRef``): the same rule as ``tier_history`` plus
    a bisect, for set-based readers (the KPI rollup). NULL when no decision is that old."""
    from django.db.models import Subquery

    return Subquery(DecisionRecord.objects.filter(customer=customer, created_at__lte=at).exclude(tier="")
                    .order_by("-created_at", "-id").values("tier")[:1])


def latest_decision_ids(*, customers: Sequence[UUID], purpose: str, types: Sequence[str]) -> dict[UUID, int]:
    """Per customer, the id of their latest decision of ``types`` for ``purpose`` (the decision an action
    built on the stored score refers to)."""
    from django.db.models import Max

    out: dict[UUID, int] = {}
    ids = list(dict.fromkeys(customers))
    for batch in chunked(ids, 5000):
        rows = (DecisionRecord.objects.filter(customer__in=batch, purpose=purpose,
                                              decision_type__in=list(types))
                .values("customer").annotate(last=Max("id")).values_list("customer", "last"))
        out.update(dict(rows))
    return out


# ------------------------------------------------------------------------ breaches (the console's reads)

def breach_list(*, status: str | None = None, include_drills: bool = True) -> QuerySet[Any]:
    """Incidents, newest detection first (``audit.breach.breach_list``)."""
    from audit import breach

    return breach.breach_list(status=status, include_drills=include_drills)


def breach_get(*, incident_id: int) -> Any:
    from audit import breach

    return breach.breach_get(incident_id=incident_id)


def breach_state(*, incident: Any, now: datetime | None = None) -> dict[str, Any]:
    """The 72-hour deadline of an incident, whether it is overdue and whether it needs notifying."""
    from audit import breach

    return {"deadline": breach.breach_deadline(incident), "overdue": breach.breach_is_overdue(incident, now),
            "needs_notification": breach.breach_needs_notification(incident)}


def breach_overdue_count(*, now: datetime | None = None) -> int:
    from audit import breach

    return breach.breaches_overdue(now).count()


def breach_open_count() -> int:
    from audit import breach

    return breach.breach_list(status="open").count()


def breach_choices() -> dict[str, Any]:
    """Form choices of the breach register: nature and risk, and the closed status."""
    from audit.models import BreachIncident

    return {"nature": list(BreachIncident.Nature.choices), "risk": list(BreachIncident.Risk.choices),
            "closed": BreachIncident.Status.CLOSED}
