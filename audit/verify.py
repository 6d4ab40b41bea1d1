"""Verification of the audit chain and its signed checkpoints.

``verify_chain`` runs two streaming passes over the database, with server-side cursors and raw values
(no ORM objects), so a million records take seconds:

1. **Link pass** (chain links in ``seq`` order): sequence numbers are contiguous from 1, every link's
   ``prev_link_hash`` is the previous link's hash and its ``link_hash`` recomputes; at every signed
   checkpoint the link hash equals the signed one (this catches a writer who rewrote records and
   recomputed the whole chain), and the chain is not shorter than the newest checkpoint (truncation).
   The signed head (re-signed within ``AUDIT_HEAD_SIGN_SECONDS`` of every write) and the chain-head row
   are checked the same way, and the row must not be behind the signed head (docs/AUDIT.md, "The
   remaining window").
2. **Record pass** (per record type, records left-joined with their links in id order, plus an
   anti-join for links whose record is gone): every record's
   content recomputes to its stored hash and to its link's entry hash, every link points at an existing
   record, no record is linked twice, and every record without a link is waiting in the sealing queue
   with the same hash (and not for longer than ``AUDIT_SEAL_MAX_LAG_SECONDS``).
3. **Search columns**: a decision's ``model_version_1``/``model_version_2`` (indexed, not hashed) still
   derive from its hashed ``model_versions``.

On PostgreSQL both passes run as set-based SQL (``audit.canonical.sql_content_hash`` / ``sql_link_hash``,
parallel scans, only mismatching rows come back); elsewhere, or with ``engine="python"``, rows are
streamed with a server-side cursor and hashed in Python. Both engines feed the same per-link and per-record
steps (``_LinkChecks``, ``_RecordChecks``), so they give the same result (tested).

Checkpoints come from the external checkpoint store only; signatures are checked with the public keys
(``audit.checkpoints.verify_keys``). The result names the first bad sequence number (and record).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import canonical
from audit.checkpoints import (
    CheckpointStore,
    SignedCheckpoint,
    checkpoint_store,
    head_read,
    signature_valid,
    verify_keys,
)
from audit.models import (
    RECORD_TYPES,
    ChainedRecord,
    ChainHead,
    ChainLink,
    DecisionRecord,
    PendingSeal,
    model_version_columns,
)

FETCH = 5000


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    first_bad_seq: int | None
    checked: int
    reason: str
    first_bad_record: str | None = None
    checkpoints_checked: int = 0
    head_seq: int = 0
    unsealed: int = 0
    elapsed_s: float = 0.0
    problems: int = 0
    signed_head_seq: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Findings:
    best_seq: tuple[int, str | None, str] | None = None
    first_unsequenced: tuple[str | None, str] | None = None
    count: int = 0

    def add(self, seq: int | None, record: str | None, reason: str) -> None:
        self.count += 1
        if seq is not None:
            if self.best_seq is None or seq < self.best_seq[0]:
                self.best_seq = (seq, record, reason)
        elif self.first_unsequenced is None:
            self.first_unsequenced = (record, reason)


def _stream(sql: str, params: Sequence[Any], *, server_side: bool = True) -> Iterator[Sequence[Any]]:
    """Rows of a query in batches. Server-side cursors keep memory flat for the Python engine; the SQL
    engine's queries return few rows and must not use one (PostgreSQL runs cursors without parallel
    workers)."""
    with (connection.chunked_cursor() if server_side else connection.cursor()) as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(FETCH)
            if not rows:
                return
            yield from rows


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


SIGNED_CHECKPOINT = "signed checkpoint"
SIGNED_HEAD = "signed head"
HEAD_ROW = "chain-head row"


@dataclass
class _Witnesses:
    """What the links are compared with: the signed checkpoints and the signed head (from the store
    outside the database), and the chain-head row (in the database: not signed, but a truncation or a
    recomputation that forgets it shows). ``at[seq]`` lists (label, link hash) in the order checked."""

    at: dict[int, list[tuple[str, str]]]
    signed_head_seq: int = 0
    head_row: tuple[int, str] | None = None

    def seqs(self) -> list[int]:
        return sorted(self.at)

    def add(self, seq: int, label: str, link_hash: str) -> None:
        self.at.setdefault(seq, []).append((label, link_hash))


def _load_witnesses(store: CheckpointStore, findings: _Findings, start: int) -> tuple[_Witnesses, int]:
    """Signed checkpoints and the signed head from the store, then the chain-head row. Read in this order and
    before the links: a seal or head signature that commits meanwhile only adds links after them, so a
    verification running beside the sealer sees no false break."""
    keys = verify_keys()
    valid: dict[int, str] = {}
    checked = 0
    witnesses = _Witnesses(at={})
    for checkpoint in store.read_all():
        if checkpoint.seq < start and checkpoint.seq >= 0:
            continue
        checked += 1
        if not signature_valid(checkpoint, keys):
            findings.add(max(checkpoint.seq, 1), None, f"checkpoint {checkpoint.name or checkpoint.seq}: signature invalid")
            continue
        if checkpoint.seq in valid and valid[checkpoint.seq] != checkpoint.link_hash:
            findings.add(checkpoint.seq, None, f"conflicting signed checkpoints at seq {checkpoint.seq}")
        valid[checkpoint.seq] = checkpoint.link_hash
    for seq, link_hash in valid.items():
        witnesses.add(seq, SIGNED_CHECKPOINT, link_hash)
    head = head_read(store)
    if head is not None:
        if not signature_valid(head, keys):
            findings.add(max(head.seq, 1), None, f"signed head {head.name or head.seq}: signature invalid")
        else:
            witnesses.signed_head_seq = head.seq
            if head.seq >= start:
                if head.seq in valid and valid[head.seq] != head.link_hash:
                    findings.add(head.seq, None, f"the signed head contradicts the signed checkpoint at seq {head.seq}")
                witnesses.add(head.seq, SIGNED_HEAD, head.link_hash)
    row = ChainHead.objects.filter(pk=1).values_list("seq", "link_hash").first()
    row_seq = int(row[0]) if row is not None else 0
    if row_seq < witnesses.signed_head_seq:
        findings.add(row_seq + 1, None, f"the chain-head row (seq {row_seq}) is behind the signed head "
                                        f"(seq {witnesses.signed_head_seq}): links were removed from the end")
    if row is not None and row_seq > 0:
        witnesses.head_row = (row_seq, str(row[1]))
        if row_seq >= start:
            witnesses.add(row_seq, HEAD_ROW, str(row[1]))
    return witnesses, checked


# ------------------------------------------------------------------------------------ the checks
# Both engines feed the same per-link and per-record steps below; they differ only in where the hashes
# are computed (Python over streamed rows, or PostgreSQL returning only the rows that need a look).


class _LinkChecks:
    """The per-link step of the link pass: sequence gaps and repeats, unknown record types, the link to the
    previous link, the link's own hash, and the comparison with the witnesses (signed checkpoints, the
    signed head, the chain-head row)."""

    def __init__(self, start: int, witnesses: _Witnesses, findings: _Findings) -> None:
        self.witnesses = witnesses
        self.findings = findings
        self.last_good_checkpoint = start - 1
        self.broken_since_checkpoint = False  # a break explains a later witness mismatch

    def link(self, *, seq: int, record_type: str, row_id: int, expected: int, prev_ok: bool, hash_ok: bool,
             link_hash: str) -> None:
        findings = self.findings
        record = f"{record_type}:{row_id}"
        before = findings.count
        if seq != expected:
            if seq < expected:
                findings.add(seq, record, f"sequence number {seq} appears twice")
            else:
                findings.add(expected, None, f"links {expected}..{seq - 1} are missing")
        if record_type not in RECORD_TYPES:
            findings.add(seq, record, f"link {seq} names an unknown record type")
        if not prev_ok:
            findings.add(seq, record, f"link {seq} does not continue the previous link")
        if not hash_ok:
            findings.add(seq, record, f"link {seq} hash does not recompute")
        self.broken_since_checkpoint = self.broken_since_checkpoint or findings.count > before
        for label, witnessed in self.witnesses.at.get(seq, ()):
            if witnessed != link_hash and not self.broken_since_checkpoint:
                # Internally consistent links that contradict a witness: the chain was recomputed after the
                # last signed checkpoint that still matches.
                findings.add(
                    self.last_good_checkpoint + 1, None,
                    f"chain differs from the {label} at seq {seq} (rewritten after seq {self.last_good_checkpoint})",
                )
                self.broken_since_checkpoint = True
            elif witnessed == link_hash and label != HEAD_ROW:  # the row is not signed: it proves nothing
                self.last_good_checkpoint = seq
                self.broken_since_checkpoint = False

    def end(self, last_seq: int) -> None:
        """The chain must not end before a signed checkpoint, the signed head or the chain-head row
        (truncation). Links after them are normal: a seal may commit while verification runs."""
        for seq in sorted(self.witnesses.at, reverse=True):
            if seq <= last_seq:
                break
            names = " and the ".join(label for label, _ in self.witnesses.at[seq])
            self.findings.add(last_seq + 1, None, f"chain ends at seq {last_seq}, before seq {seq} named by the "
                                                  f"{names}: records were removed from the end")
            return


class _RecordChecks:
    """The per-record step of the record pass: the content recomputes, matches its link, and a record
    without a link is waiting in the sealing queue with the same hash, not for too long."""

    def __init__(self, record_type: str, findings: _Findings) -> None:
        self.record_type = record_type
        self.findings = findings
        self.max_lag = int(getattr(settings, "AUDIT_SEAL_MAX_LAG_SECONDS", 3600))
        self.stale_before = timezone.now() - timedelta(seconds=self.max_lag)
        self.unsealed = 0

    def record(self, *, row_id: int, seq: int | None, content_ok: bool, link_ok: bool, queued: bool,
               queued_ok: bool, queued_at: Any) -> None:
        findings = self.findings
        record = f"{self.record_type}:{row_id}"
        if not content_ok:
            findings.add(seq, record, f"record {record} was altered (content hash does not recompute)")
        elif seq is not None and not link_ok:
            findings.add(seq, record, f"record {record} does not match its link at seq {seq}")
        if seq is not None:
            return
        self.unsealed += 1
        if not queued:
            findings.add(None, record, f"record {record} is neither linked nor queued for sealing")
            return
        if not queued_ok:
            findings.add(None, record, f"record {record} is queued with a different hash")
            return
        if isinstance(queued_at, str):
            queued_at = datetime.fromisoformat(queued_at)
        if queued_at is not None and timezone.is_naive(queued_at):
            queued_at = queued_at.replace(tzinfo=UTC)
        if queued_at is not None and queued_at < self.stale_before:
            findings.add(None, record, f"record {record} has waited more than {self.max_lag} s for sealing")


def _start_hash(start: int, findings: _Findings) -> str:
    """The link hash the link at ``start`` must continue."""
    if start <= 1:
        return canonical.GENESIS_HASH
    prev_row = ChainLink.objects.filter(seq=start - 1).values_list("link_hash", flat=True).first()
    if prev_row is None:
        findings.add(start - 1, None, f"link {start - 1} is missing")
        return canonical.GENESIS_HASH
    return str(prev_row)


# ------------------------------------------------------------------------------ Python engine

def _link_pass(start: int, witnesses: _Witnesses, findings: _Findings) -> tuple[int, int]:
    """Returns (links checked, last seq seen)."""
    table = _qn(ChainLink._meta.db_table)
    prev = _start_hash(start, findings)
    checks = _LinkChecks(start, witnesses, findings)
    expected = start
    checked = 0
    link_hash = canonical.link_hash
    sql = (
        f"SELECT {_qn('seq')}, {_qn('record_type')}, {_qn('row_id')}, {_qn('entry_hash')}, "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"{_qn('prev_link_hash')}, {_qn('link_hash')} FROM {table} WHERE {_qn('seq')} >= %s ORDER BY {_qn('seq')}"
    )
    for seq, record_type, row_id, entry_hash, prev_link_hash, stored_link_hash in _stream(sql, [start]):
        checks.link(seq=seq, record_type=record_type, row_id=row_id, expected=expected,
                    prev_ok=prev_link_hash == prev,
                    hash_ok=link_hash(seq, record_type, row_id, entry_hash, prev_link_hash) == stored_link_hash,
                    link_hash=stored_link_hash)
        prev = stored_link_hash
        expected = seq + 1
        checked += 1
    last_seq = expected - 1
    checks.end(last_seq)
    return checked, last_seq


def _column_sql(model: type[ChainedRecord], alias: str) -> list[str]:
    out = []
    for _, fld in canonical.row_columns(model):
        column = f"{alias}.{_qn(str(fld.column))}"
        if fld.get_internal_type() == "BinaryField" and connection.vendor == "postgresql":
            column = f"encode(sha256({column}), 'hex')"
        out.append(column)
    return out


def _record_pass(model: type[ChainedRecord], start: int, findings: _Findings) -> int:
    """Returns the number of unsealed (queued) records seen."""
    record_type = model.RECORD_TYPE
    encode = canonical.row_encoder(model)
    n = len(canonical.row_columns(model))
    links = _qn(ChainLink._meta.db_table)
    pending = _qn(PendingSeal._meta.db_table)
    table = _qn(model._meta.db_table)
    id_col, rt_col, row_col = _qn("id"), _qn("record_type"), _qn("row_id")
    seq_col, entry_col = _qn("seq"), _qn("entry_hash")
    sql = (
        f"SELECT t.{id_col}, t.{_qn('content_hash')}, {', '.join(_column_sql(model, 't'))}, "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"l.{seq_col}, l.{entry_col}, p.{entry_col}, p.{_qn('created_at')} "
        f"FROM {table} t "
        f"LEFT JOIN {links} l ON l.{rt_col} = %s AND l.{row_col} = t.{id_col} "
        f"LEFT JOIN {pending} p ON p.{rt_col} = %s AND p.{row_col} = t.{id_col} "
        f"WHERE (l.{seq_col} IS NULL OR l.{seq_col} >= %s) "
        f"ORDER BY t.{id_col}, l.{seq_col}"
    )
    _orphans_and_duplicates(model, start, findings)
    checks = _RecordChecks(record_type, findings)
    for row in _stream(sql, [record_type, record_type, start]):
        seq, entry_hash, pending_hash, pending_at = row[2 + n :]
        digest = encode(row[2 : 2 + n])
        checks.record(row_id=row[0], seq=seq, content_ok=digest == row[1], link_ok=entry_hash == digest,
                      queued=pending_hash is not None, queued_ok=pending_hash == digest, queued_at=pending_at)
    return checks.unsealed


# ------------------------------------------------------------------------------ SQL engine

def _sql_link_pass(start: int, witnesses: _Witnesses, findings: _Findings) -> tuple[int, int]:
    """The link pass computed in PostgreSQL: only broken links and checkpointed links come back."""
    links = _qn(ChainLink._meta.db_table)
    seq_col = _qn("seq")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), MAX({seq_col}) FROM {links} WHERE {seq_col} >= %s", [start])  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        checked, last = cursor.fetchone()
    prev = _start_hash(start, findings)
    computed = canonical.sql_link_hash("l", _qn)
    sql = (
        "SELECT seq, record_type, row_id, hash_ok, prev_ok, prev_seq, link_hash FROM ("  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"SELECT l.{seq_col} AS seq, l.{_qn('record_type')} AS record_type, l.{_qn('row_id')} AS row_id, "
        f"l.{_qn('link_hash')} AS link_hash, ({computed} = l.{_qn('link_hash')}) AS hash_ok, "
        f"(l.{_qn('prev_link_hash')} = COALESCE(lag(l.{_qn('link_hash')}) OVER w, %s)) AS prev_ok, "
        f"lag(l.{seq_col}) OVER w AS prev_seq FROM {links} l WHERE l.{seq_col} >= %s "
        f"WINDOW w AS (ORDER BY l.{seq_col})) x "
        "WHERE NOT hash_ok OR NOT prev_ok OR seq <> COALESCE(prev_seq + 1, %s) "
        "OR NOT (record_type = ANY(%s)) OR seq = ANY(%s) ORDER BY seq"
    )
    params = [prev, start, start, list(RECORD_TYPES), witnesses.seqs()]
    checks = _LinkChecks(start, witnesses, findings)
    for seq, record_type, row_id, hash_ok, prev_ok, prev_seq, stored_link_hash in _stream(sql, params,
                                                                                            server_side=False):
        checks.link(seq=seq, record_type=record_type, row_id=row_id,
                    expected=start if prev_seq is None else prev_seq + 1, prev_ok=prev_ok, hash_ok=hash_ok,
                    link_hash=stored_link_hash)
    last_seq = int(last) if last is not None else start - 1
    checks.end(last_seq)
    return int(checked), last_seq


def _sql_record_pass(model: type[ChainedRecord], start: int, findings: _Findings) -> int:
    """The record pass computed in PostgreSQL: only altered, mislinked and unsealed records come back."""
    record_type = model.RECORD_TYPE
    links = _qn(ChainLink._meta.db_table)
    pending = _qn(PendingSeal._meta.db_table)
    table = _qn(model._meta.db_table)
    id_col, rt_col, row_col, seq_col, entry_col = _qn("id"), _qn("record_type"), _qn("row_id"), _qn("seq"), \
        _qn("entry_hash")
    expression, expression_params = canonical.sql_content_hash(model, "t", _qn)
    sql = (
        f"SELECT r.id, r.h = r.content_hash, l.{seq_col}, l.{entry_col} = r.h, p.{entry_col} = r.h, "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"p.{_qn('created_at')}, p.{row_col} IS NOT NULL "
        f"FROM (SELECT t.{id_col} AS id, t.{_qn('content_hash')} AS content_hash, {expression} AS h FROM {table} t) r "
        f"LEFT JOIN {links} l ON l.{rt_col} = %s AND l.{row_col} = r.id "
        f"LEFT JOIN {pending} p ON p.{rt_col} = %s AND p.{row_col} = r.id "
        f"WHERE (l.{seq_col} IS NULL OR l.{seq_col} >= %s) "
        # h appears once in the filter (the planner inlines the subquery; each mention is evaluated):
        # when h = content_hash, "entry_hash <> h" is "entry_hash <> content_hash".
        f"AND (r.h <> r.content_hash OR l.{seq_col} IS NULL OR l.{entry_col} <> r.content_hash) "
        f"ORDER BY r.id, l.{seq_col}"
    )
    _orphans_and_duplicates(model, start, findings)
    checks = _RecordChecks(record_type, findings)
    for row_id, row_ok, seq, link_ok, pending_ok, pending_at, queued in _stream(
            sql, [*expression_params, record_type, record_type, start], server_side=False):
        checks.record(row_id=row_id, seq=seq, content_ok=bool(row_ok), link_ok=bool(link_ok), queued=bool(queued),
                      queued_ok=bool(pending_ok), queued_at=pending_at)
    return checks.unsealed


# ------------------------------------------------------------------------------ both engines

def _orphans_and_duplicates(model: type[ChainedRecord], start: int, findings: _Findings) -> None:
    """Links whose record is gone, and records linked more than once (set-based, both engines)."""
    record_type = model.RECORD_TYPE
    links = _qn(ChainLink._meta.db_table)
    table = _qn(model._meta.db_table)
    id_col, rt_col, row_col, seq_col = _qn("id"), _qn("record_type"), _qn("row_id"), _qn("seq")
    orphan_sql = (
        f"SELECT l.{seq_col}, l.{row_col} FROM {links} l WHERE l.{rt_col} = %s AND l.{seq_col} >= %s "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{id_col} = l.{row_col}) ORDER BY l.{seq_col}"
    )
    duplicate_sql = (
        f"SELECT {row_col}, MAX({seq_col}) FROM {links} WHERE {rt_col} = %s GROUP BY {row_col} "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        f"HAVING COUNT(*) > 1 AND MAX({seq_col}) >= %s ORDER BY MAX({seq_col})"
    )
    with connection.cursor() as cursor:
        cursor.execute(orphan_sql, [record_type, start])
        orphan = cursor.fetchone()
        cursor.execute(duplicate_sql, [record_type, start])
        duplicate = cursor.fetchone()
    if orphan is not None:
        findings.add(orphan[0], f"{record_type}:{orphan[1]}",
                     f"record {record_type}:{orphan[1]} linked at seq {orphan[0]} is missing")
    if duplicate is not None:
        record = f"{record_type}:{duplicate[0]}"
        findings.add(duplicate[1], record, f"record {record} is linked more than once (again at seq {duplicate[1]})")


def _decision_search_columns(start: int, findings: _Findings) -> None:
    """The decision search columns (``model_version_1``/``_2``, not hashed) still derive from the hashed
    ``model_versions``. One GROUP BY over the distinct combinations (a handful), checked in Python with
    ``model_version_columns``; only a combination that does not derive is looked up record by record."""
    table = _qn(DecisionRecord._meta.db_table)
    links = _qn(ChainLink._meta.db_table)
    mv, mv1, mv2 = _qn("model_versions"), _qn("model_version_1"), _qn("model_version_2")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {mv}, {mv1}, {mv2} FROM {table} GROUP BY {mv}, {mv1}, {mv2}")  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
        combinations = cursor.fetchall()
    for text, first, second in combinations:
        try:
            derived = model_version_columns(json.loads(text))
        except (TypeError, ValueError, AttributeError):
            continue  # not a JSON object: the content hash check reports the record
        if derived == (first, second):
            continue
        second_sql, params = (f"t.{mv2} IS NULL", [text, first]) if second is None else \
            (f"t.{mv2} = %s", [text, first, second])
        sql = (
            f"SELECT MIN(l.{_qn('seq')}), MIN(t.{_qn('id')}) FROM {table} t "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
            f"LEFT JOIN {links} l ON l.{_qn('record_type')} = %s AND l.{_qn('row_id')} = t.{_qn('id')} "
            f"WHERE t.{mv} = %s AND t.{mv1} = %s AND {second_sql} AND (l.{_qn('seq')} IS NULL OR l.{_qn('seq')} >= %s)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [DecisionRecord.RECORD_TYPE, *params, start])
            seq, row_id = cursor.fetchone()
            if seq is not None:
                row_id = ChainLink.objects.filter(seq=seq).values_list("row_id", flat=True).first()
        if row_id is None:
            continue  # only records before from_seq
        record = f"{DecisionRecord.RECORD_TYPE}:{row_id}"
        findings.add(seq, record, f"record {record}: model version search columns do not match its model_versions")


def verify_chain(
    *, from_seq: int | None = None, store: CheckpointStore | None = None, engine: str | None = None
) -> VerifyResult:
    """Check records, links and signed checkpoints (from ``from_seq`` on, default everything).
    ``engine``: ``"sql"`` (PostgreSQL only; the default there) or ``"python"``."""
    engine = engine or ("sql" if connection.vendor == "postgresql" else "python")
    if engine == "sql" and connection.vendor != "postgresql":
        raise ValueError("the SQL verification engine needs PostgreSQL")
    link_pass, record_pass = (_sql_link_pass, _sql_record_pass) if engine == "sql" else (_link_pass, _record_pass)
    began = time.monotonic()
    start = max(1, int(from_seq or 1))
    findings = _Findings()
    witnesses, checkpoints_checked = _load_witnesses(store or checkpoint_store(), findings, start)
    # The SQL engine runs in a transaction to switch JIT off locally (compiling the long hash expressions
    # costs more than it saves). The Python engine takes no transaction: on SQLite that would be a write
    # lock (IMMEDIATE mode) held for the whole verification.
    with transaction.atomic() if engine == "sql" else contextlib.nullcontext():
        if engine == "sql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        checked, last_seq = link_pass(start, witnesses, findings)
        unsealed = sum(record_pass(model, start, findings) for model in RECORD_TYPES.values())
        _decision_search_columns(start, findings)
    elapsed = round(time.monotonic() - began, 3)
    common: dict[str, Any] = {"checked": checked, "checkpoints_checked": checkpoints_checked, "head_seq": last_seq,
              "unsealed": unsealed, "elapsed_s": elapsed, "problems": findings.count,
              "signed_head_seq": witnesses.signed_head_seq}
    if findings.best_seq is not None:
        seq, record, reason = findings.best_seq
        return VerifyResult(ok=False, first_bad_seq=seq, first_bad_record=record, reason=reason, **common)
    if findings.first_unsequenced is not None:
        record, reason = findings.first_unsequenced
        return VerifyResult(ok=False, first_bad_seq=None, first_bad_record=record, reason=reason, **common)
    return VerifyResult(ok=True, first_bad_seq=None, reason="ok", **common)


__all__ = ["SignedCheckpoint", "VerifyResult", "verify_chain"]
