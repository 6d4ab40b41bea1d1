"""Consent reads: purposes, consent state now and at any past instant, history, receipts, the processing gate.

Semantics (one definition, used everywhere and proven by tests/consent/test_state_history.py):

* The events of a (customer, purpose) are ordered by ``(occurred_at, id)``. The state at instant ``at`` is
  given by the last event with ``occurred_at <= at``; none means "never asked".
* A withdrawal means "withdrawn". A grant on notice ``N`` is valid at ``at`` unless a *later* notice of the
  same purpose (``published_at > N.published_at``) that ``requires_reconsent`` was published at or before
  ``at``; then the state is "reconsent_required" (not granted).
* Processing flags replay the same way per kind (restriction, objection): ``set`` on a purpose (or on all
  purposes, ``purpose`` null) holds until a ``lift`` on that purpose; a ``lift`` on all purposes lifts every
  flag of that kind. A flag on all purposes blocks every purpose.
* ``at=None`` ("now") reads the denormalized current tables (written in the same transaction as each event):
  ``processing_gate`` is one query here plus the profiles existence check. Past instants read the events.

The gate's order of precedence: ``not_found`` / ``erased`` > ``restricted`` > ``objected`` > ``no_consent`` >
``ok``. It reads committed state when it runs: a withdrawal committed before a queued job executes stops it.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from config.blind_index import blind_index
from config.compiled_queries import CompiledQuery
from config.errors import NotFound, ValidationFailed
from consent.models import (
    ConsentEvent,
    ConsentNotice,
    ConsentStateCurrent,
    FlagKind,
    ProcessingFlag,
    ProcessingFlagCurrent,
    Purpose,
)

RECEIPT_FORMAT = "consent-receipt/1"

STATUS_GRANTED = "granted"
STATUS_WITHDRAWN = "withdrawn"
STATUS_NEVER_ASKED = "never_asked"
STATUS_RECONSENT_REQUIRED = "reconsent_required"

GATE_OK = "ok"
GATE_NO_CONSENT = "no_consent"
GATE_RESTRICTED = "restricted"
GATE_OBJECTED = "objected"
GATE_ERASED = "erased"
GATE_NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ConsentState:
    customer_id: uuid.UUID
    purpose: str
    granted: bool
    status: str  # "granted" | "withdrawn" | "never_asked" | "reconsent_required"
    event_id: int | None = None
    notice_version: str | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    code: str  # "ok" | "no_consent" | "restricted" | "objected" | "erased" | "not_found"
    consent_event_id: int | None = None
    notice_version: str | None = None


# --- Purposes ------------------------------------------------------------------------------------------
def purpose_list() -> list[Purpose]:
    return list(Purpose.objects.order_by("code"))


def purpose_codes() -> list[str]:
    """Every purpose code of this deployment (the API schema's enum of purposes)."""
    return list(Purpose.objects.order_by("code").values_list("code", flat=True))


def notice_versions() -> list[str]:
    """Every published notice version (the API schema's enum of ``notice_version``)."""
    from django.utils import timezone

    return sorted(set(ConsentNotice.objects.filter(published_at__lte=timezone.now())
                      .values_list("version", flat=True)))


def purpose_get(*, code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=code).first() if isinstance(code, str) else None
    if purpose is None:
        raise NotFound("Unknown purpose.")
    return purpose


# Purposes are reference data (seeded by data migration, never renamed): the codes known to exist are
# remembered per process, so validating a request's purpose costs no query. A miss re-reads the table. The
# gate's own query still joins the purpose row by code, so an entry gone stale can never open the gate.
_known_purpose_codes: set[str] = set()


def purpose_exists(*, code: Any) -> bool:
    """True for a known purpose code (a per-process cache of codes seen to exist; misses read the table)."""
    if not isinstance(code, str) or not code:
        return False
    if code in _known_purpose_codes:
        return True
    if Purpose.objects.filter(code=code).exists():
        _known_purpose_codes.add(code)
        return True
    return False


def purpose_id_for(code: str) -> int:
    """The id of a purpose code. Unknown codes raise ``ValidationFailed`` (400, code ``invalid``)."""
    pid = Purpose.objects.filter(code=code).values_list("id", flat=True).first() if isinstance(code, str) else None
    if pid is None:
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    return pid


def notice_current(*, purpose: str, at: datetime | None = None) -> ConsentNotice:
    """The notice version in force for ``purpose`` at ``at`` (now by default): the latest published."""
    at = at or timezone.now()
    notice = (
        ConsentNotice.objects.filter(purpose_id=purpose_id_for(purpose), published_at__lte=at)
        .order_by("-published_at", "-id")
        .first()
    )
    if notice is None:
        raise NotFound("No consent notice is published for this purpose.")
    return notice


def notice_list(*, purpose: str) -> list[ConsentNotice]:
    return list(ConsentNotice.objects.filter(purpose_id=purpose_id_for(purpose)).order_by("published_at", "id"))


# --- Customer existence (profiles) -----------------------------------------------------------------------
def _resolve(customer_id: uuid.UUID) -> tuple[uuid.UUID | None, str | None]:
    """(surviving pseudonym, None) for a live customer or a merge alias; (None, "erased" | "not_found")."""
    from profiles import selectors as profiles_selectors

    resolved = profiles_selectors.customer_resolve(customer_id=customer_id)
    if resolved is not None:
        return resolved, None
    erased = profiles_selectors.customer_is_erased(customer_id=customer_id)
    return None, GATE_ERASED if erased else GATE_NOT_FOUND


def _absent_codes_bulk(customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Absent customers among ``customer_ids`` -> "erased" | "not_found" (one query, two if any is absent)."""
    from profiles import selectors as profiles_selectors

    existing = profiles_selectors.customers_existing(customer_ids=list(customer_ids))
    missing = [cid for cid in customer_ids if cid not in existing]
    if not missing:
        return {}
    erased = profiles_selectors.customers_erased(customer_ids=missing)
    return {cid: (GATE_ERASED if cid in erased else GATE_NOT_FOUND) for cid in missing}


def _as_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValidationFailed("Invalid customer id.") from exc


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def bulk_chunk_size() -> int:
    """How many ids one set-based gate query takes (the database's parameter limit, at most 10,000)."""
    limit = connection.features.max_query_params or 10_000
    return max(100, min(limit - 20, 10_000))


# --- Pure state replay (the single definition of the semantics) -------------------------------------------
def _superseded_exists(*, purpose_ref: Any, published_ref: Any, at: datetime) -> Exists:
    return Exists(
        ConsentNotice.objects.filter(
            purpose_id=purpose_ref, requires_reconsent=True, published_at__gt=published_ref, published_at__lte=at
        )
    )


def flags_replay(flags: Iterable[tuple[str, str, int | None]]) -> dict[str, set[int | None]]:
    """Replay (kind, action, purpose_id) flag events in order -> active purpose ids per kind (None = all)."""
    active: dict[str, set[int | None]] = {FlagKind.RESTRICTION: set(), FlagKind.OBJECTION: set()}
    for kind, action, purpose_id in flags:
        if action == ProcessingFlag.Action.SET:
            active[kind].add(purpose_id)
        elif purpose_id is None:
            active[kind].clear()
        else:
            active[kind].discard(purpose_id)
    return active


def _flag_code(active: dict[str, set[int | None]], purpose_id: int) -> str | None:
    if None in active[FlagKind.RESTRICTION] or purpose_id in active[FlagKind.RESTRICTION]:
        return GATE_RESTRICTED
    if None in active[FlagKind.OBJECTION] or purpose_id in active[FlagKind.OBJECTION]:
        return GATE_OBJECTED
    return None


def _state_from_row(
    *, customer_id: uuid.UUID, purpose: str, row: dict[str, Any] | None
) -> ConsentState:
    if row is None:
        return ConsentState(customer_id=customer_id, purpose=purpose, granted=False, status=STATUS_NEVER_ASKED)
    if row["action"] != ConsentEvent.Action.GRANT:
        status = STATUS_WITHDRAWN
    elif row["superseded"]:
        status = STATUS_RECONSENT_REQUIRED
    else:
        status = STATUS_GRANTED
    return ConsentState(
        customer_id=customer_id,
        purpose=purpose,
        granted=status == STATUS_GRANTED,
        status=status,
        event_id=row["event_id"],
        notice_version=row["notice_version"],
        occurred_at=row["occurred_at"],
        source=row["source"],
        channel=row["channel"],
    )


# --- Consent state ---------------------------------------------------------------------------------------

_EVENT_FIELDS = {
    "event_id": F("id"),
    "notice_version": F("notice__version"),
}


def _latest_event_row(*, customer_id: uuid.UUID, purpose_id: int, at: datetime) -> dict[str, Any] | None:
    row = (
        ConsentEvent.objects.filter(customer_id=customer_id, purpose_id=purpose_id, occurred_at__lte=at)
        .annotate(
            superseded=_superseded_exists(
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
            superseded=_superseded_exists(
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
    cid = _as_uuid(customer_id)
    pid = purpose_id_for(purpose)
    resolved, _ = _resolve(cid)
    if resolved is None:
        return _state_from_row(customer_id=cid, purpose=purpose, row=None)
    if at is None:
        row = _current_row(customer_id=resolved, purpose_id=pid, now=timezone.now())
    else:
        row = _latest_event_row(customer_id=resolved, purpose_id=pid, at=at)
    return _state_from_row(customer_id=resolved, purpose=purpose, row=row)


def consent_states(*, customer_id: uuid.UUID, at: datetime | None = None) -> list[ConsentState]:
    """The state for every purpose (for the API, the console and the subject's export)."""
    return [consent_state(customer_id=customer_id, purpose=p.code, at=at) for p in purpose_list()]


def consent_history(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every consent event of the customer, oldest first (PII-free)."""
    cid = _as_uuid(customer_id)
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
    resolved, _ = _resolve(_as_uuid(customer_id))
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


# --- Receipts --------------------------------------------------------------------------------------------
def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def consent_receipt(*, event_id: int) -> dict[str, Any]:
    """A JSON proof of one consent event: who (pseudonym), what purpose, which notice text (hash), when,
    from which source and channel. ``signature`` is a keyed HMAC-SHA256 over the canonical JSON of the other
    fields, so the service can later verify that a receipt it issued is unaltered
    (:func:`consent_receipt_verify`)."""
    event = consent_event_get(event_id=event_id)
    body: dict[str, Any] = {
        "format": RECEIPT_FORMAT,
        "event_id": event.id,
        "customer": str(event.customer_id),
        "action": event.action,
        "purpose": {
            "code": event.purpose.code,
            "name": event.purpose.name,
            "lawful_basis": event.purpose.lawful_basis,
        },
        "notice": {
            "version": event.notice.version,
            "text_hash": event.notice.text_hash,
            "hash_algorithm": "sha256",
            "published_at": event.notice.published_at.isoformat(),
        },
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "source": event.source,
        "channel": event.channel,
        "evidence": dict(event.evidence or {}),
    }
    body["signature"] = blind_index("consent_receipt", _canonical(body).decode())
    return body


def consent_receipt_verify(*, receipt: dict[str, Any]) -> bool:
    """True when ``receipt`` was issued by this service (same key) and is unaltered, and its event exists
    unchanged."""
    if not isinstance(receipt, dict) or not isinstance(receipt.get("signature"), str):
        return False
    body = {k: v for k, v in receipt.items() if k != "signature"}
    try:
        expected = blind_index("consent_receipt", _canonical(body).decode())
    except (TypeError, ValueError):
        return False
    if not hmac.compare_digest(expected, receipt["signature"]):
        return False
    try:
        current = consent_receipt(event_id=int(body["event_id"]))
    except (NotFound, KeyError, TypeError, ValueError):
        return False
    return hmac.compare_digest(current["signature"], receipt["signature"])


# --- Processing flags ------------------------------------------------------------------------------------
def processing_flags_active(*, customer_id: uuid.UUID, at: datetime | None = None) -> list[dict[str, Any]]:
    """Restrictions and objections holding now (or at ``at``): [{"kind", "purpose" (None = all)}]."""
    cid = _as_uuid(customer_id)
    codes = dict(Purpose.objects.values_list("id", "code"))
    pairs: list[tuple[str, int | None]]
    if at is None:
        rows = ProcessingFlagCurrent.objects.filter(customer_id=cid).values_list("kind", "purpose_id")
        pairs = sorted({(kind, pid) for kind, pid in rows}, key=lambda kp: (kp[0], kp[1] or 0))
    else:
        flags = ProcessingFlag.objects.filter(customer_id=cid, at__lte=at).order_by("at", "id")
        active = flags_replay(flags.values_list("kind", "action", "purpose_id"))
        pairs = sorted(((k, p) for k, ps in active.items() for p in ps), key=lambda kp: (kp[0], kp[1] or 0))
    return [{"kind": kind, "purpose": codes.get(pid) if pid else None} for kind, pid in pairs]


def processing_flag_history(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    cid = _as_uuid(customer_id)
    flags = ProcessingFlag.objects.filter(customer_id=cid).select_related("purpose").order_by("at", "id")
    return [
        {
            "flag_id": f.id,
            "kind": f.kind,
            "action": f.action,
            "purpose": f.purpose.code if f.purpose else None,
            "reason": f.reason,
            "at": f.at,
            "actor": f.actor,
        }
        for f in flags
    ]


# --- The processing gate ---------------------------------------------------------------------------------
def processing_gate(*, customer_id: uuid.UUID, purpose: str, at: datetime | None = None) -> GateDecision:
    """May this customer's data be processed for ``purpose`` now (or at ``at``)? Reads committed state.

    Now: ONE indexed query for a live customer (purpose by code, customer liveness, current consent, notice
    supersession, restriction and objection flags); nothing is cached, so a withdrawal, flag, notice or
    erasure committed before the query is honoured. A merge alias is gated as the customer it was merged
    into, and an absent customer is told apart as erased or unknown (a few more queries, refusal path)."""
    cid = _as_uuid(customer_id)
    if at is None:
        decision = _gate_now(customer_id=cid, purpose=purpose)
        if decision is not None:
            return decision
    resolved, absent = _resolve(cid)
    if resolved is None:
        purpose_id_for(purpose)  # unknown purposes are still a 400, whatever the customer
        return GateDecision(allowed=False, code=absent or GATE_NOT_FOUND)
    if at is None:
        return _gate_now(customer_id=resolved, purpose=purpose) or GateDecision(allowed=False, code=GATE_NOT_FOUND)
    pid = purpose_id_for(purpose)
    flags = ProcessingFlag.objects.filter(customer_id=resolved, at__lte=at).order_by("at", "id")
    flag_code = _flag_code(flags_replay(flags.values_list("kind", "action", "purpose_id")), pid)
    if flag_code is not None:
        return GateDecision(allowed=False, code=flag_code)
    row = _latest_event_row(customer_id=resolved, purpose_id=pid, at=at)
    return _gate_from_row(row)


def processing_gate_held(*, customer_id: uuid.UUID, purpose: str) -> GateDecision:
    """``processing_gate`` now, for a caller that acts on the answer in the SAME transaction (a served score
    and its decision record). Must run inside ``transaction.atomic()``.

    On PostgreSQL the customer's consent-state row for the purpose is first locked ``FOR SHARE`` until that
    transaction ends. A withdrawal updates the row under ``FOR UPDATE`` (``services._update_current``), so it
    either committed before this read (and the gate sees it) or waits until the caller has committed: no
    decision can be committed after a withdrawal's commit. (SQLite serializes writing transactions anyway:
    ``transaction_mode=IMMEDIATE``.)"""
    from django.db import connection

    cid = _as_uuid(customer_id)
    if connection.vendor == "postgresql":
        table = ConsentStateCurrent._meta.db_table
        purposes = Purpose._meta.db_table
        from config.compiled_queries import hot_cursor

        # A hot statement (every served score runs it): prepared on the connection after a few runs.
        with hot_cursor(connection) as cursor:
            cursor.execute(
                f"SELECT 1 FROM {table} c JOIN {purposes} p ON p.id = c.purpose_id "  # noqa: S608 - table names
                "WHERE c.customer_id = %s AND p.code = %s FOR SHARE OF c",
                [cid, purpose],
            )
    return processing_gate(customer_id=cid, purpose=purpose)


def _gate_from_row(row: dict[str, Any] | None) -> GateDecision:
    if row is None:
        return GateDecision(allowed=False, code=GATE_NO_CONSENT)
    if row["action"] != ConsentEvent.Action.GRANT or row["superseded"]:
        return GateDecision(
            allowed=False, code=GATE_NO_CONSENT, consent_event_id=row["event_id"], notice_version=row["notice_version"]
        )
    return GateDecision(
        allowed=True, code=GATE_OK, consent_event_id=row["event_id"], notice_version=row["notice_version"]
    )


def _gate_now_query(*, customer_id: uuid.UUID, purpose: str, now: datetime) -> Any:
    from profiles import selectors as profiles_selectors

    current = ConsentStateCurrent.objects.filter(customer_id=customer_id, purpose_id=OuterRef("pk"))
    flags = ProcessingFlagCurrent.objects.filter(
        Q(purpose_id=OuterRef("pk")) | Q(purpose__isnull=True), customer_id=customer_id
    )
    return (
        Purpose.objects.filter(code=purpose)
        .annotate(
            c_event=Subquery(current.values("event_id")[:1]),
            c_granted=Subquery(current.values("granted")[:1]),
            c_version=Subquery(current.values("notice__version")[:1]),
            c_published=Subquery(current.values("notice__published_at")[:1]),
        )
        .annotate(
            c_superseded=_superseded_exists(purpose_ref=OuterRef("pk"), published_ref=OuterRef("c_published"), at=now),
            restricted=Exists(flags.filter(kind=FlagKind.RESTRICTION)),
            objected=Exists(flags.filter(kind=FlagKind.OBJECTION)),
            live=profiles_selectors.customer_live_expression(customer_id=customer_id),
        )
        .values("c_event", "c_granted", "c_version", "c_superseded", "restricted", "objected", "live")
        .order_by()
    )


# Compiled once per thread; every call runs the query with this call's customer, purpose and time.
_GATE_NOW = CompiledQuery(_gate_now_query, customer_id="uuid", purpose="text", now="datetime")


def _gate_now(*, customer_id: uuid.UUID, purpose: str) -> GateDecision | None:
    """One query: the purpose row (by code) with correlated index lookups of the customer's liveness
    (profiles), current consent, notice supersession and flags. ``None`` when ``customer_id`` is not a
    live customer (unknown, erased or a merge alias): the caller resolves it."""
    row = _GATE_NOW.first(customer_id=customer_id, purpose=purpose, now=timezone.now())
    if row is None:
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    _known_purpose_codes.add(purpose)
    if not row["live"]:
        return None
    if row["restricted"]:
        return GateDecision(allowed=False, code=GATE_RESTRICTED)
    if row["objected"]:
        return GateDecision(allowed=False, code=GATE_OBJECTED)
    if row["c_event"] is None:
        return GateDecision(allowed=False, code=GATE_NO_CONSENT)
    return _gate_from_row(
        {
            "event_id": row["c_event"],
            "action": ConsentEvent.Action.GRANT if row["c_granted"] else ConsentEvent.Action.WITHDRAW,
            "superseded": bool(row["c_superseded"]),
            "notice_version": row["c_version"],
        }
    )


def processing_gate_bulk(
    *, customer_ids: Sequence[uuid.UUID], purpose: str, at: datetime | None = None
) -> dict[uuid.UUID, GateDecision]:
    """The gate for many customers, set-based: per chunk of ``bulk_chunk_size()`` ids, one query for consent,
    one for flags and profiles' set-based existence check (one more query if any id is absent). Batch
    rescoring calls this at execution time, per chunk. Pass live pseudonyms (``customer_id_chunks``): a merge
    alias is answered "no_consent" here (its consent moved to the customer it was merged into)."""
    pid = purpose_id_for(purpose)
    ids = list(dict.fromkeys(_as_uuid(c) for c in customer_ids))
    result: dict[uuid.UUID, GateDecision] = {}
    for chunk in _chunks(ids, bulk_chunk_size()):
        result.update(_gate_chunk(customer_ids=list(chunk), purpose_id=pid, at=at))
    return result


def processing_gates_bulk(
    *, customer_ids: Sequence[uuid.UUID], purposes: Sequence[str]
) -> dict[str, dict[uuid.UUID, GateDecision]]:
    """The gate *now* for many customers and several purposes at once (batch rescoring of all batch
    purposes): per chunk of ids one query for the current consent of every purpose, one for the flags and
    one existence check, whatever the number of purposes. Same answers as ``processing_gate_bulk`` per
    purpose."""
    pids = {purpose: purpose_id_for(purpose) for purpose in dict.fromkeys(purposes)}
    ids = list(dict.fromkeys(_as_uuid(c) for c in customer_ids))
    result: dict[str, dict[uuid.UUID, GateDecision]] = {purpose: {} for purpose in pids}
    for chunk in _chunks(ids, bulk_chunk_size()):
        by_pid = _gate_chunk_now(customer_ids=list(chunk), purpose_ids=list(pids.values()))
        for purpose, pid in pids.items():
            result[purpose].update(by_pid[pid])
    return result


def _gate_chunk_now(*, customer_ids: list[uuid.UUID], purpose_ids: list[int]) -> dict[int, dict[uuid.UUID, GateDecision]]:
    from profiles.aggregates import ids_in

    now = timezone.now()
    rows = (
        ConsentStateCurrent.objects.filter(ids_in("customer_id", customer_ids), purpose_id__in=purpose_ids)
        .annotate(
            superseded=_superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
            ),
            action=F("event__action"),
            notice_version=F("notice__version"),
        )
        .values_list("customer_id", "purpose_id", "event_id", "action", "notice_version", "superseded")
    )
    consent_rows: dict[tuple[uuid.UUID, int], dict[str, Any]] = {
        (cid, pid): {"event_id": event_id, "action": action, "notice_version": version, "superseded": superseded}
        for cid, pid, event_id, action, version, superseded in rows
    }
    flag_active: dict[uuid.UUID, dict[str, set[int | None]]] = {}
    for cid, kind, fpid in ProcessingFlagCurrent.objects.filter(
        Q(purpose_id__in=purpose_ids) | Q(purpose__isnull=True), ids_in("customer_id", customer_ids)
    ).values_list("customer_id", "kind", "purpose_id"):
        flag_active.setdefault(cid, {FlagKind.RESTRICTION: set(), FlagKind.OBJECTION: set()})[kind].add(fpid)
    absent = _absent_codes_bulk(customer_ids)
    return {pid: _decisions(customer_ids, pid, absent, flag_active, consent_rows) for pid in purpose_ids}


def _decisions(
    customer_ids: Sequence[uuid.UUID], purpose_id: int, absent: dict[uuid.UUID, str],
    flag_active: dict[uuid.UUID, dict[str, set[int | None]]], consent_rows: dict[tuple[uuid.UUID, int], Any],
) -> dict[uuid.UUID, GateDecision]:
    """Each customer's gate for one purpose: absent (erased/unknown), then a restriction or objection, then
    the consent row keyed by (customer, purpose)."""
    decisions: dict[uuid.UUID, GateDecision] = {}
    for cid in customer_ids:
        if cid in absent:
            decisions[cid] = GateDecision(allowed=False, code=absent[cid])
            continue
        flag_code = _flag_code(flag_active[cid], purpose_id) if cid in flag_active else None
        if flag_code is not None:
            decisions[cid] = GateDecision(allowed=False, code=flag_code)
            continue
        decisions[cid] = _gate_from_row(consent_rows.get((cid, purpose_id)))
    return decisions


def _gate_chunk(*, customer_ids: list[uuid.UUID], purpose_id: int, at: datetime | None) -> dict[uuid.UUID, GateDecision]:
    if at is None:
        return _gate_chunk_now(customer_ids=customer_ids, purpose_ids=[purpose_id])[purpose_id]
    flag_active: dict[uuid.UUID, dict[str, set[int | None]]] = {}
    rows: Any
    # as of a past time ``at`` (the current-state path is ``_gate_chunk_now``)
    rows = (
        ConsentEvent.objects.filter(customer_id__in=customer_ids, purpose_id=purpose_id, occurred_at__lte=at)
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("customer_id")], order_by=[F("occurred_at").desc(), F("id").desc()]
            ),
            superseded=_superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=at
            ),
            notice_version=F("notice__version"),
        )
        .filter(rank=1)
        .values_list("customer_id", "id", "action", "notice_version", "superseded")
    )
    past_flags: dict[uuid.UUID, list[tuple[str, str, int | None]]] = defaultdict(list)
    for cid, kind, action, fpid in (
        ProcessingFlag.objects.filter(customer_id__in=customer_ids, at__lte=at)
        .order_by("at", "id")
        .values_list("customer_id", "kind", "action", "purpose_id")
    ):
        past_flags[cid].append((kind, action, fpid))
    flag_active = {cid: flags_replay(events) for cid, events in past_flags.items()}

    consent_rows = {
        (cid, purpose_id): {"event_id": event_id, "action": action, "notice_version": version,
                            "superseded": superseded}
        for cid, event_id, action, version, superseded in rows
    }
    return _decisions(customer_ids, purpose_id, _absent_codes_bulk(customer_ids), flag_active, consent_rows)


def consented_customer_ids(*, purpose: str, limit: int = 10) -> list[uuid.UUID]:
    """Customers whose gate is open now for ``purpose`` (valid grant, no restriction or objection), in
    pseudonym order -- for demos and smoke checks."""
    now = timezone.now()
    pid = purpose_id_for(purpose)
    flags = ProcessingFlagCurrent.objects.filter(
        Q(purpose_id=pid) | Q(purpose__isnull=True), customer_id=OuterRef("customer_id")
    )
    return list(
        ConsentStateCurrent.objects.filter(purpose_id=pid, granted=True)
        .annotate(
            superseded=_superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
            ),
            flagged=Exists(flags),
        )
        .filter(superseded=False, flagged=False)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)[: max(0, int(limit))]
    )


# --- Overview for the DPO console -------------------------------------------------------------------------
def _live_customer_count() -> int:
    from profiles import selectors as profiles_selectors

    return int(profiles_selectors.customer_count())


def consent_overview(*, days: int = 90) -> dict[str, Any]:
    """Per purpose: customers granted / withdrawn / re-consent required / never asked, and a daily series of
    grants and withdrawals over the last ``days`` days (UTC dates, oldest first, zero-filled)."""
    days = max(1, min(int(days), 3660))
    now = timezone.now()
    live = _live_customer_count()
    purposes = purpose_list()
    superseded = _superseded_exists(
        purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
    )
    counts: dict[int, dict[str, int]] = {p.id: {"granted": 0, "withdrawn": 0, "reconsent_required": 0} for p in purposes}
    for pid, granted, is_superseded, n in (
        ConsentStateCurrent.objects.annotate(superseded=superseded)
        .values("purpose_id", "granted", "superseded")
        .annotate(n=Count("id"))
        .values_list("purpose_id", "granted", "superseded", "n")
    ):
        bucket = counts.setdefault(pid, {"granted": 0, "withdrawn": 0, "reconsent_required": 0})
        if not granted:
            bucket["withdrawn"] += n
        elif is_superseded:
            bucket["reconsent_required"] += n
        else:
            bucket["granted"] += n

    first_day: date = (now - timedelta(days=days - 1)).date()
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    dates = [first_day + timedelta(days=i) for i in range(days)]
    series: dict[int, dict[date, dict[str, int]]] = {p.id: {} for p in purposes}
    for pid, day, action, n in (
        ConsentEvent.objects.filter(occurred_at__gte=start, occurred_at__lte=now)
        .annotate(day=TruncDate("occurred_at"))
        .values("purpose_id", "day", "action")
        .annotate(n=Count("id"))
        .values_list("purpose_id", "day", "action", "n")
    ):
        key = "grants" if action == ConsentEvent.Action.GRANT else "withdrawals"
        series.setdefault(pid, {}).setdefault(day, {"grants": 0, "withdrawals": 0})[key] += n

    result_purposes = []
    trend: dict[str, list[dict[str, Any]]] = {}
    for p in purposes:
        c = counts[p.id]
        asked = c["granted"] + c["withdrawn"] + c["reconsent_required"]
        result_purposes.append(
            {
                "code": p.code,
                "name": p.name,
                "lawful_basis": p.lawful_basis,
                "granted": c["granted"],
                "withdrawn": c["withdrawn"],
                "reconsent_required": c["reconsent_required"],
                "never_asked": max(0, live - asked),
                "granted_share": round(c["granted"] / live, 4) if live else 0.0,
            }
        )
        per_day = series.get(p.id, {})
        trend[p.code] = [
            {"date": d.isoformat(), **per_day.get(d, {"grants": 0, "withdrawals": 0})} for d in dates
        ]
    return {
        "generated_at": now.isoformat(),
        "days": days,
        "live_customers": live,
        "purposes": result_purposes,
        "trend": trend,
    }
