"""The processing gate *now* for a chunk of customers and several purposes, by column.

``processing_gates_bulk`` answers with one ``GateDecision`` per customer and purpose in a dict keyed by
customer; batch rescoring only needs, per purpose, an allowed flag, the refusal code, the consent event id
and the notice version of each customer *by position* in its chunk. :func:`processing_gates_columns` gives
exactly those answers (the same queries and the same precedence: absent > restricted > objected >
no_consent > ok) as arrays: no object and no dict entry per customer. On PostgreSQL the consent rows come
back with each customer's position in the chunk (``unnest(ids) WITH ORDINALITY``), so no UUID is built or
hashed per row. tests/consent/test_gate_columns.py compares it with ``processing_gates_bulk`` on a random
population, on every backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import F, OuterRef, Q

from config.chunking import chunked
from config.lookups import ids_in
from consent.models import ConsentEvent, ConsentStateCurrent, FlagKind, ProcessingFlagCurrent

from .purposes import purpose_id_for
from .semantics import (
    GATE_NO_CONSENT,
    GATE_OK,
    GateDecision,
    absent_codes_bulk,
    bulk_chunk_size,
    customer_uuid,
    flag_code_for,
    superseded_exists,
)


@dataclass
class GateColumns:
    """The gate of the customers of a chunk for one purpose; position ``i`` is the chunk's ``i``-th id."""

    allowed: np.ndarray  # bool
    codes: np.ndarray  # object: "ok" | "no_consent" | "restricted" | "objected" | "erased" | "not_found"
    consent_event_id: list[int | None]
    notice_version: list[str | None]

    def decision(self, i: int) -> GateDecision:
        """The ``GateDecision`` of position ``i`` (what ``processing_gates_bulk`` answers for it)."""
        return GateDecision(allowed=bool(self.allowed[i]), code=str(self.codes[i]),
                            consent_event_id=self.consent_event_id[i], notice_version=self.notice_version[i])

    def take(self, rows: np.ndarray | Sequence[int]) -> GateColumns:
        """The columns of the positions ``rows``, in that order."""
        idx = np.asarray(rows, dtype=np.int64)
        idx_l = idx.tolist()
        return GateColumns(allowed=self.allowed[idx], codes=self.codes[idx],
                           consent_event_id=[self.consent_event_id[i] for i in idx_l],
                           notice_version=[self.notice_version[i] for i in idx_l])


def _empty(n: int) -> GateColumns:
    codes = np.empty(n, dtype=object)
    codes[:] = GATE_NO_CONSENT
    return GateColumns(allowed=np.zeros(n, dtype=bool), codes=codes, consent_event_id=[None] * n,
                       notice_version=[None] * n)


def _consent_query(customer_ids: Sequence[uuid.UUID], purpose_ids: list[int]) -> Any:
    """The current consent rows of these customers for these purposes (as ``gate._gate_chunk_now``)."""
    from django.utils import timezone

    now = timezone.now()
    return (
        ConsentStateCurrent.objects.filter(ids_in("customer_id", customer_ids), purpose_id__in=purpose_ids)
        .annotate(
            superseded=superseded_exists(
                purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
            ),
            action=F("event__action"),
            notice_version=F("notice__version"),
        )
        .values_list("customer_id", "purpose_id", "event_id", "action", "notice_version", "superseded")
        .order_by()
    )


def _consent_rows(customer_ids: list[uuid.UUID], purpose_ids: list[int],
                  position: dict[uuid.UUID, int] | None) -> list[tuple[int, int, int, str, str | None, bool]]:
    """(position in ``customer_ids``, purpose id, event id, action, notice version, superseded) per row."""
    query = _consent_query(customer_ids, purpose_ids)
    if connection.vendor == "postgresql":
        sql, params = query.query.sql_with_params()
        wrapped = (f"SELECT o.ord - 1, q.purpose_id, q.event_id, q.action, q.notice_version, q.superseded "  # noqa: S608
                   f"FROM ({sql}) AS q "
                   "JOIN unnest(%s::uuid[]) WITH ORDINALITY AS o(id, ord) ON o.id = q.customer_id")
        with connection.cursor() as cursor:
            # one text parameter, as ids_in (the query's own filter holds the same ids)
            cursor.execute(wrapped, [*params, "{" + ",".join(str(c) for c in customer_ids) + "}"])
            return cursor.fetchall()
    assert position is not None
    return [(position[cid], pid, event_id, action, version, superseded)
            for cid, pid, event_id, action, version, superseded in query]


def _chunk_columns(customer_ids: list[uuid.UUID], purpose_ids: list[int]) -> dict[int, GateColumns]:
    n = len(customer_ids)
    out = {pid: _empty(n) for pid in purpose_ids}
    position = None if connection.vendor == "postgresql" else {c: i for i, c in enumerate(customer_ids)}
    grant = ConsentEvent.Action.GRANT
    for i, pid, event_id, action, version, superseded in _consent_rows(customer_ids, purpose_ids, position):
        col = out[pid]
        col.consent_event_id[i] = event_id
        col.notice_version[i] = version
        if action == grant and not superseded:
            col.allowed[i] = True
    for col in out.values():
        col.codes[col.allowed] = GATE_OK
    # Flags and absent customers are few: by customer, applied in the gate's order of precedence.
    flag_active: dict[uuid.UUID, dict[str, set[int | None]]] = {}
    for cid, kind, fpid in ProcessingFlagCurrent.objects.filter(
        Q(purpose_id__in=purpose_ids) | Q(purpose__isnull=True), ids_in("customer_id", customer_ids)
    ).values_list("customer_id", "kind", "purpose_id"):
        flag_active.setdefault(cid, {FlagKind.RESTRICTION: set(), FlagKind.OBJECTION: set()})[kind].add(fpid)
    absent = absent_codes_bulk(customer_ids)
    if flag_active or absent:
        if position is None:
            position = {c: i for i, c in enumerate(customer_ids)}
        refusals: list[tuple[int, int, str]] = []
        for cid, active in flag_active.items():
            if cid in position and cid not in absent:
                refusals.extend((position[cid], pid, code) for pid in purpose_ids
                                if (code := flag_code_for(active, pid)) is not None)
        refusals.extend((position[cid], pid, code) for cid, code in absent.items() for pid in purpose_ids)
        for i, pid, code in refusals:
            col = out[pid]
            col.allowed[i] = False
            col.codes[i] = code
            col.consent_event_id[i] = None
            col.notice_version[i] = None
    return out


def processing_gates_columns(
    *, customer_ids: Sequence[uuid.UUID], purposes: Sequence[str]
) -> dict[str, GateColumns]:
    """``processing_gates_bulk`` by column: per purpose, position ``i`` answers for ``customer_ids[i]``
    (which must be distinct). Same queries per id chunk of ``bulk_chunk_size()``, same answers."""
    pids = {purpose: purpose_id_for(purpose) for purpose in dict.fromkeys(purposes)}
    ids = [customer_uuid(c) for c in customer_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("customer_ids must be distinct")
    parts: dict[str, list[GateColumns]] = {purpose: [] for purpose in pids}
    for chunk in chunked(ids, bulk_chunk_size()):
        by_pid = _chunk_columns(list(chunk), list(dict.fromkeys(pids.values())))
        for purpose, pid in pids.items():
            parts[purpose].append(by_pid[pid])
    result: dict[str, GateColumns] = {}
    for purpose, cols in parts.items():
        if len(cols) == 1:
            result[purpose] = cols[0]
            continue
        result[purpose] = GateColumns(
            allowed=np.concatenate([c.allowed for c in cols]) if cols else np.zeros(0, dtype=bool),
            codes=np.concatenate([c.codes for c in cols]) if cols else np.empty(0, dtype=object),
            consent_event_id=[v for c in cols for v in c.consent_event_id],
            notice_version=[v for c in cols for v in c.notice_version],
        )
    return result


def processing_gates_columns_held(
    *, customer_ids: Sequence[uuid.UUID], purposes: Sequence[str]
) -> dict[str, GateColumns]:
    """``processing_gates_columns`` for a caller that acts on the answers in the SAME transaction (a batch
    rescoring chunk): on PostgreSQL the consent-state rows are first locked ``FOR SHARE`` until it ends,
    exactly as ``processing_gates_bulk_held``. Must run inside ``transaction.atomic()``."""
    from .gate import processing_gates_lock

    processing_gates_lock(customer_ids=customer_ids, purposes=purposes)
    return processing_gates_columns(customer_ids=customer_ids, purposes=purposes)
