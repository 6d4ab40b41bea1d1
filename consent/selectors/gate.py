"""The processing gate: one customer now or at an instant, held under lock, and set-based for many."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from config.chunking import chunked
from config.compiled_queries import CompiledQuery
from config.errors import ValidationFailed
from consent.models import (
    ConsentEvent,
    ConsentStateCurrent,
    FlagKind,
    ProcessingFlag,
    ProcessingFlagCurrent,
    Purpose,
)

from .purposes import known_purpose_codes, purpose_id_for
from .semantics import (
    GATE_NO_CONSENT,
    GATE_NOT_FOUND,
    GATE_OBJECTED,
    GATE_OK,
    GATE_RESTRICTED,
    GateDecision,
    absent_codes_bulk,
    bulk_chunk_size,
    customer_id_resolve,
    customer_uuid,
    flag_code_for,
    flags_replay,
    superseded_exists,
)
from .state import latest_event_row


# --- The processing gate ---------------------------------------------------------------------------------
def processing_gate(*, customer_id: uuid.UUID, purpose: str, at: datetime | None = None) -> GateDecision:
    """May this customer's data be processed for ``purpose`` now (or at ``at``)? Reads committed state.

    Now: ONE indexed query for a live customer (purpose by code, customer liveness, current consent, notice
    supersession, restriction and objection flags); nothing is cached, so a withdrawal, flag, notice or
    erasure committed before the query is honoured. A merge alias is gated as the customer it was merged
    into, and an absent customer is told apart as erased or unknown (a few more queries, refusal path)."""
    cid = customer_uuid(customer_id)
    if at is None:
        decision = _gate_now(customer_id=cid, purpose=purpose)
        if decision is not None:
            return decision
    resolved, absent = customer_id_resolve(cid)
    if resolved is None:
        purpose_id_for(purpose)  # unknown purposes are still a 400, whatever the customer
        return GateDecision(allowed=False, code=absent or GATE_NOT_FOUND)
    if at is None:
        return _gate_now(customer_id=resolved, purpose=purpose) or GateDecision(allowed=False, code=GATE_NOT_FOUND)
    pid = purpose_id_for(purpose)
    flags = ProcessingFlag.objects.filter(customer_id=resolved, at__lte=at).order_by("at", "id")
    flag_code = flag_code_for(flags_replay(flags.values_list("kind", "action", "purpose_id")), pid)
    if flag_code is not None:
        return GateDecision(allowed=False, code=flag_code)
    row = latest_event_row(customer_id=resolved, purpose_id=pid, at=at)
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

    cid = customer_uuid(customer_id)
    if connection.vendor == "postgresql":
        from config.compiled_queries import hot_cursor

        # A hot statement (every routed ticket runs it): prepared on the connection after a few runs.
        with hot_cursor(connection) as cursor:
            cursor.execute(_HELD_SQL, [cid, purpose])
    return processing_gate(customer_id=cid, purpose=purpose)


#: The consent-state row of (customer, purpose code), locked FOR SHARE until the transaction ends.
_HELD_SQL = (f"SELECT c.event_id, c.granted FROM {ConsentStateCurrent._meta.db_table} c "  # noqa: S608 - table names
             f"JOIN {Purpose._meta.db_table} p ON p.id = c.purpose_id "
             "WHERE c.customer_id = %s AND p.code = %s FOR SHARE OF c")


def processing_gate_held_then(
    *, customer_id: uuid.UUID, purpose: str, then: CompiledQuery, then_arguments: dict[str, Any],
) -> tuple[GateDecision, dict[str, Any] | None]:
    """``processing_gate_held``, then, only if the gate allows, the caller's read ``then.first(**then_arguments)``
    (None: not allowed, or no row). Must run inside ``transaction.atomic()``, like ``processing_gate_held``.

    On PostgreSQL the three are ONE statement (one round trip): a ``FOR SHARE`` lock of the consent-state row,
    the gate's query, and the caller's read, which only runs when the gate's row allows. The lock is taken by
    the statement and held until the transaction ends, exactly as the separate lock statement did; but the
    gate's columns come from the statement's snapshot, taken when it started, while the lock may have waited
    for a withdrawal and returns the row as that withdrawal committed it. So the locked row is compared with
    the one the gate read: when they differ (a change committed between the snapshot and the lock), the gate
    and the read run again as statements of their own, which see it (the lock being held by then). Anywhere
    else (SQLite, or a query that could not be compiled), ``processing_gate_held`` and the read, one by one."""
    from django.db import connection

    cid = customer_uuid(customer_id)
    combined = _held_then_statement(cid, purpose, then, then_arguments) if connection.vendor == "postgresql" else None
    if combined is None:
        gate = processing_gate_held(customer_id=cid, purpose=purpose)
        return gate, (then.first(**then_arguments) if gate.allowed else None)
    from config.compiled_queries import hot_cursor

    with hot_cursor(connection) as cursor:
        cursor.execute(*combined)
        rows = cursor.fetchmany(1)
    if not rows:
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    width = _GATE_NOW.width()
    row = _GATE_NOW.row_dict(rows[0][:width])
    held_event, held_granted, ran = rows[0][width:width + 3]
    if (held_event, held_granted) != (row["c_event"], row["c_granted"]):
        # Changed between the snapshot and the lock: read again (the lock is held now).
        gate = processing_gate(customer_id=cid, purpose=purpose)
        return gate, (then.first(**then_arguments) if gate.allowed else None)
    known_purpose_codes.add(purpose)
    if not row["live"]:  # not a live customer: erased, unknown or a merge alias (processing_gate resolves it)
        gate = processing_gate(customer_id=cid, purpose=purpose)
        return gate, (then.first(**then_arguments) if gate.allowed else None)
    gate = _gate_now_from(row)
    if not gate.allowed:
        return gate, None
    return gate, (then.row_dict(rows[0][width + 3:]) if ran else None)


def _held_then_statement(customer_id: uuid.UUID, purpose: str, then: CompiledQuery,
                         then_arguments: dict[str, Any]) -> tuple[str, list[Any]] | None:
    gate = _GATE_NOW.statement(customer_id=customer_id, purpose=purpose, now=timezone.now())
    read = then.statement(**then_arguments)
    if gate is None or read is None:
        return None
    (gate_sql, gate_params), (read_sql, read_params) = gate, read
    # The read runs only where the gate's row allows (the same conditions as _gate_now_from).
    allowed = ("g.live IS TRUE AND g.restricted IS NOT TRUE AND g.objected IS NOT TRUE AND g.c_event IS NOT NULL "
               "AND g.c_granted IS TRUE AND g.c_superseded IS NOT TRUE")
    sql = (f"WITH held AS MATERIALIZED ({_HELD_SQL}) "  # noqa: S608 - table names; values are bound parameters
           f"SELECT g.*, h.event_id, h.granted, t.* FROM ({gate_sql}) g LEFT JOIN held h ON TRUE "
           f"LEFT JOIN LATERAL (SELECT TRUE AS ran, t0.* FROM ({read_sql}) t0 WHERE {allowed}) t ON TRUE")
    return sql, [customer_id, purpose, *gate_params, *read_params]


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
            c_superseded=superseded_exists(purpose_ref=OuterRef("pk"), published_ref=OuterRef("c_published"), at=now),
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
    known_purpose_codes.add(purpose)
    if not row["live"]:
        return None
    return _gate_now_from(row)


def _gate_now_from(row: dict[str, Any]) -> GateDecision:
    """The gate of a live customer from a ``_GATE_NOW`` row."""
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
    ids = list(dict.fromkeys(customer_uuid(c) for c in customer_ids))
    result: dict[uuid.UUID, GateDecision] = {}
    for chunk in chunked(ids, bulk_chunk_size()):
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
    ids = list(dict.fromkeys(customer_uuid(c) for c in customer_ids))
    result: dict[str, dict[uuid.UUID, GateDecision]] = {purpose: {} for purpose in pids}
    for chunk in chunked(ids, bulk_chunk_size()):
        by_pid = _gate_chunk_now(customer_ids=list(chunk), purpose_ids=list(pids.values()))
        for purpose, pid in pids.items():
            result[purpose].update(by_pid[pid])
    return result


def processing_gates_bulk_held(
    *, customer_ids: Sequence[uuid.UUID], purposes: Sequence[str]
) -> dict[str, dict[uuid.UUID, GateDecision]]:
    """``processing_gates_bulk`` for a caller that acts on the answers in the SAME transaction (a batch
    rescoring chunk and its decision records). Must run inside ``transaction.atomic()``.

    On PostgreSQL the consent-state rows of these customers for these purposes are first locked ``FOR
    SHARE`` until that transaction ends, one statement per id chunk (set-based, as ``processing_gate_held``
    does for one customer): a withdrawal either committed before this read (and the gate sees it) or waits
    until the chunk has committed."""
    processing_gates_lock(customer_ids=customer_ids, purposes=purposes)
    return processing_gates_bulk(customer_ids=customer_ids, purposes=purposes)


def processing_gates_lock(*, customer_ids: Sequence[uuid.UUID], purposes: Sequence[str]) -> None:
    """PostgreSQL: lock the consent-state rows of these customers for these purposes ``FOR SHARE`` until the
    caller's transaction ends, one statement per id chunk (the held gates read after it). Elsewhere nothing
    (SQLite serializes writing transactions)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        ids = list(dict.fromkeys(customer_uuid(c) for c in customer_ids))
        pids = [purpose_id_for(purpose) for purpose in dict.fromkeys(purposes)]
        table = ConsentStateCurrent._meta.db_table
        with connection.cursor() as cursor:
            for chunk in chunked(ids, bulk_chunk_size()):
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE customer_id = ANY(%s::uuid[]) "  # noqa: S608
                    "AND purpose_id = ANY(%s) FOR SHARE) AS held",
                    ["{" + ",".join(str(c) for c in chunk) + "}", pids],  # one text parameter, as ids_in
                )


def _gate_chunk_now(*, customer_ids: list[uuid.UUID], purpose_ids: list[int]) -> dict[int, dict[uuid.UUID, GateDecision]]:
    from config.lookups import ids_in

    now = timezone.now()
    rows = (
        ConsentStateCurrent.objects.filter(ids_in("customer_id", customer_ids), purpose_id__in=purpose_ids)
        .annotate(
            superseded=superseded_exists(
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
    absent = absent_codes_bulk(customer_ids)
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
        flag_code = flag_code_for(flag_active[cid], purpose_id) if cid in flag_active else None
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
            superseded=superseded_exists(
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
    return _decisions(customer_ids, purpose_id, absent_codes_bulk(customer_ids), flag_active, consent_rows)


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
            superseded=superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
            ),
            flagged=Exists(flags),
        )
        .filter(superseded=False, flagged=False)
        .order_by("customer_id")
        .values_list("customer_id", flat=True)[: max(0, int(limit))]
    )
