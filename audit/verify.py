"""Verification of the audit chain and its signed checkpoints.

``verify_chain`` runs two streaming passes over the database, with server-side cursors and raw values
(no ORM objects), so a million records take seconds:

1. **Link pass** (chain links in ``seq`` order): sequence numbers are contiguous from 1, every link's
   ``prev_link_hash`` is the previous link's hash and its ``link_hash`` recomputes; at every signed
   checkpoint the link hash equals the signed one (this catches a writer who rewrote records and
   recomputed the whole chain), and the chain is not shorter than the newest checkpoint (truncation).
2. **Record pass** (per record type, records left-joined with their links in id order, plus an
   anti-join for links whose record is gone): every record's
   content recomputes to its stored hash and to its link's entry hash, every link points at an existing
   record, no record is linked twice, and every record without a link is waiting in the sealing queue
   with the same hash (and not for longer than ``AUDIT_SEAL_MAX_LAG_SECONDS``).

Checkpoints come from the external checkpoint store only; signatures are checked with the public keys
(``audit.checkpoints.verify_keys``). The result names the first bad sequence number (and record).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit import canonical
from audit.checkpoints import (
    CheckpointStore,
    SignedCheckpoint,
    checkpoint_store,
    signature_valid,
    verify_keys,
)
from audit.models import RECORD_TYPES, ChainedRecord, ChainLink, PendingSeal

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


def _stream(sql: str, params: Sequence[Any]) -> Iterator[Sequence[Any]]:
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(FETCH)
            if not rows:
                return
            yield from rows


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _load_checkpoints(store: CheckpointStore, findings: _Findings, start: int) -> tuple[dict[int, str], int]:
    keys = verify_keys()
    valid: dict[int, str] = {}
    checked = 0
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
    return valid, checked


def _link_pass(start: int, checkpoints: dict[int, str], findings: _Findings) -> tuple[int, int]:
    """Returns (links checked, last seq seen)."""
    table = _qn(ChainLink._meta.db_table)
    if start > 1:
        prev_row = ChainLink.objects.filter(seq=start - 1).values_list("link_hash", flat=True).first()
        prev = prev_row if prev_row is not None else canonical.GENESIS_HASH
        if prev_row is None:
            findings.add(start - 1, None, f"link {start - 1} is missing")
    else:
        prev = canonical.GENESIS_HASH
    expected = start
    checked = 0
    last_good_checkpoint = start - 1
    link_hash = canonical.link_hash
    sql = (
        f"SELECT {_qn('seq')}, {_qn('record_type')}, {_qn('row_id')}, {_qn('entry_hash')}, "  # noqa: S608
        f"{_qn('prev_link_hash')}, {_qn('link_hash')} FROM {table} WHERE {_qn('seq')} >= %s ORDER BY {_qn('seq')}"
    )
    broken_since_checkpoint = False  # a break explains a later checkpoint mismatch
    for seq, record_type, row_id, entry_hash, prev_link_hash, stored_link_hash in _stream(sql, [start]):
        record = f"{record_type}:{row_id}"
        before = findings.count
        if seq != expected:
            if seq < expected:
                findings.add(seq, record, f"sequence number {seq} appears twice")
            else:
                findings.add(expected, None, f"links {expected}..{seq - 1} are missing")
        if record_type not in RECORD_TYPES:
            findings.add(seq, record, f"link {seq} names an unknown record type")
        if prev_link_hash != prev:
            findings.add(seq, record, f"link {seq} does not continue the previous link")
        if link_hash(seq, record_type, row_id, entry_hash, prev_link_hash) != stored_link_hash:
            findings.add(seq, record, f"link {seq} hash does not recompute")
        broken_since_checkpoint = broken_since_checkpoint or findings.count > before
        signed = checkpoints.get(seq)
        if signed is not None:
            if signed != stored_link_hash and not broken_since_checkpoint:
                # Internally consistent links that contradict a signed head: the chain was recomputed
                # after the last checkpoint that still matches.
                findings.add(
                    last_good_checkpoint + 1, None,
                    f"chain differs from the signed checkpoint at seq {seq} (rewritten after seq {last_good_checkpoint})",
                )
            elif signed == stored_link_hash:
                last_good_checkpoint = seq
                broken_since_checkpoint = False
        prev = stored_link_hash
        expected = seq + 1
        checked += 1
    last_seq = expected - 1
    beyond = [seq for seq in checkpoints if seq > last_seq]
    if beyond:
        findings.add(last_seq + 1, None, f"chain ends at seq {last_seq} but a signed checkpoint exists at seq {max(beyond)}")
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
        f"SELECT t.{id_col}, t.{_qn('content_hash')}, {', '.join(_column_sql(model, 't'))}, "  # noqa: S608
        f"l.{seq_col}, l.{entry_col}, p.{entry_col}, p.{_qn('created_at')} "
        f"FROM {table} t "
        f"LEFT JOIN {links} l ON l.{rt_col} = %s AND l.{row_col} = t.{id_col} "
        f"LEFT JOIN {pending} p ON p.{rt_col} = %s AND p.{row_col} = t.{id_col} "
        f"WHERE (l.{seq_col} IS NULL OR l.{seq_col} >= %s) "
        f"ORDER BY t.{id_col}, l.{seq_col}"
    )
    orphan_sql = (
        f"SELECT l.{seq_col}, l.{row_col} FROM {links} l WHERE l.{rt_col} = %s AND l.{seq_col} >= %s "  # noqa: S608
        f"AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{id_col} = l.{row_col}) ORDER BY l.{seq_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(orphan_sql, [record_type, start])
        orphan = cursor.fetchone()
    if orphan is not None:
        findings.add(orphan[0], f"{record_type}:{orphan[1]}",
                     f"record {record_type}:{orphan[1]} linked at seq {orphan[0]} is missing")
    max_lag = int(getattr(settings, "AUDIT_SEAL_MAX_LAG_SECONDS", 3600))
    stale_before = timezone.now() - timedelta(seconds=max_lag)
    unsealed = 0
    previous_id = None
    for row in _stream(sql, [record_type, record_type, start]):
        row_id, stored_hash = row[0], row[1]
        seq, entry_hash, pending_hash, pending_at = row[2 + n :]
        record = f"{record_type}:{row_id}"
        if row_id == previous_id and seq is not None:
            findings.add(seq, record, f"record {record} is linked more than once (again at seq {seq})")
        previous_id = row_id
        digest = encode(row[2 : 2 + n])
        if digest != stored_hash:
            findings.add(seq, record, f"record {record} was altered (content hash does not recompute)")
        elif seq is not None and entry_hash != digest:
            findings.add(seq, record, f"record {record} does not match its link at seq {seq}")
        if seq is None:
            unsealed += 1
            if pending_hash is None:
                findings.add(None, record, f"record {record} is neither linked nor queued for sealing")
            elif pending_hash != digest:
                findings.add(None, record, f"record {record} is queued with a different hash")
            else:
                if isinstance(pending_at, str):
                    pending_at = datetime.fromisoformat(pending_at)
                if pending_at is not None and timezone.is_naive(pending_at):
                    pending_at = pending_at.replace(tzinfo=UTC)
                if pending_at is not None and pending_at < stale_before:
                    findings.add(None, record, f"record {record} has waited more than {max_lag} s for sealing")
    return unsealed


def verify_chain(*, from_seq: int | None = None, store: CheckpointStore | None = None) -> VerifyResult:
    """Check records, links and signed checkpoints (from ``from_seq`` on, default everything)."""
    began = time.monotonic()
    start = max(1, int(from_seq or 1))
    findings = _Findings()
    checkpoints, checkpoints_checked = _load_checkpoints(store or checkpoint_store(), findings, start)
    checked, last_seq = _link_pass(start, checkpoints, findings)
    unsealed = sum(_record_pass(model, start, findings) for model in RECORD_TYPES.values())
    elapsed = round(time.monotonic() - began, 3)
    common: dict[str, Any] = {"checked": checked, "checkpoints_checked": checkpoints_checked, "head_seq": last_seq,
              "unsealed": unsealed, "elapsed_s": elapsed, "problems": findings.count}
    if findings.best_seq is not None:
        seq, record, reason = findings.best_seq
        return VerifyResult(ok=False, first_bad_seq=seq, first_bad_record=record, reason=reason, **common)
    if findings.first_unsequenced is not None:
        record, reason = findings.first_unsequenced
        return VerifyResult(ok=False, first_bad_seq=None, first_bad_record=record, reason=reason, **common)
    return VerifyResult(ok=True, first_bad_seq=None, reason="ok", **common)


__all__ = ["SignedCheckpoint", "VerifyResult", "verify_chain"]
