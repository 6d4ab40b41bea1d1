"""Sealing the audit chain: committed records' queue entries linked into the hash chain in bulk, the chain
head signed after every seal, and permanent checkpoints written when due (docs/AUDIT.md).

Split from ``audit.services`` (which re-exports these names and keeps the record writers): sealing has its
own reasons to change (batch size, the COPY path, the signing cadence) and its own tests (tests/audit/test_chain.py,
test_head_signing.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import canonical
from audit.checkpoints import SignedCheckpoint, checkpoint_store, head_read, head_write, sign
from audit.models import ChainHead, ChainLink, Checkpoint, PendingSeal
from config.chunking import chunked

logger = logging.getLogger("audit")


def _lock_head() -> ChainHead:
    """Lock the chain-head row, creating it on the first seal without a unique violation: two sealers racing on
    the first seal both ``INSERT ... ON CONFLICT DO NOTHING`` (the second waits for the first's commit and inserts
    nothing), so PostgreSQL never logs a ``duplicate key ... audit_chainhead_pkey`` error (``get_or_create``
    would let the second INSERT fail and retry)."""
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


def _seal_batch(batch_size: int) -> int:
    with transaction.atomic():
        head = _lock_head()
        pending = list(
            PendingSeal.objects.order_by("created_at", "id").values_list("id", "record_type", "row_id", "entry_hash")[
                :batch_size
            ]
        )
        if not pending:
            return 0
        last = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
        seq, prev = last if last is not None else (0, canonical.GENESIS_HASH)
        now = timezone.now()
        rows = []
        for _, record_type, row_id, entry_hash in pending:
            seq += 1
            digest = canonical.link_hash(seq, record_type, row_id, entry_hash, prev)
            rows.append((seq, record_type, row_id, entry_hash, prev, digest, now))
            prev = digest
        ids = [row[0] for row in pending]
        if connection.vendor == "postgresql":
            _seal_rows_copy(rows, ids)
        else:
            ChainLink.objects.bulk_create([ChainLink(seq=q, record_type=t, row_id=r, entry_hash=e, prev_link_hash=p,
                                                     link_hash=h, sealed_at=at) for q, t, r, e, p, h, at in rows],
                                          batch_size=1000)
            for batch in chunked(ids, 1000):
                PendingSeal.objects.filter(id__in=batch).delete()
        head.seq, head.link_hash, head.updated_at = seq, prev, now
        head.save(update_fields=["seq", "link_hash", "updated_at"])
        return len(pending)


def _seal_rows_copy(rows: list[tuple[Any, ...]], pending_ids: list[int]) -> None:
    """PostgreSQL: the links of one sealing batch by one ``COPY`` (no model instance per link; the same
    rows ``bulk_create`` writes) and their queue entries deleted by one statement with the ids as one
    array parameter."""
    names = ("seq", "record_type", "row_id", "entry_hash", "prev_link_hash", "link_hash", "sealed_at")
    qn = connection.ops.quote_name
    columns = ", ".join(qn(ChainLink._meta.get_field(name).column) for name in names)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {qn(ChainLink._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"DELETE FROM {qn(PendingSeal._meta.db_table)} WHERE id = ANY(%s::bigint[])",  # noqa: S608
                       ["{" + ",".join(str(i) for i in pending_ids) + "}"])


def chain_seal(*, batch_size: int = 5000) -> int:
    """Link every committed, not yet chained record into the hash chain, in (created_at, id) order of
    its queue entry. Each batch holds the chain-head lock only for its own short transaction.
    Returns the number of links appended."""
    total = 0
    while True:
        count = _seal_batch(batch_size)
        total += count
        if count < batch_size:
            break
    if total:
        logger.info("audit chain sealed", extra={"event": "audit.sealed", "count": total})
    return total


def _checkpoint_due(*, head_seq: int, last_seq: int, now: datetime) -> bool:
    if head_seq - last_seq >= max(1, int(settings.AUDIT_CHECKPOINT_EVERY_N)):
        return True
    oldest_unsigned = ChainLink.objects.filter(seq=last_seq + 1).values_list("sealed_at", flat=True).first()
    minutes = int(settings.AUDIT_CHECKPOINT_EVERY_MINUTES)
    return oldest_unsigned is not None and oldest_unsigned <= now - timedelta(minutes=minutes)


@transaction.atomic
def checkpoint_write(*, force: bool = False) -> Checkpoint | None:
    """Sign the chain head and write it to the checkpoint store when due (every
    ``AUDIT_CHECKPOINT_EVERY_N`` links, or when the oldest unsigned link is
    ``AUDIT_CHECKPOINT_EVERY_MINUTES`` old), or now with ``force``. Returns the checkpoint, or None."""
    _lock_head()
    head = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    if head is None:
        return None
    head_seq, head_hash = head
    last_seq = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if head_seq <= last_seq:
        return None
    now = timezone.now()
    if not force and not _checkpoint_due(head_seq=head_seq, last_seq=last_seq, now=now):
        return None
    signed = sign(seq=head_seq, link_hash=head_hash, signed_at=canonical.iso_utc(now))
    location = checkpoint_store().write(signed)
    checkpoint = Checkpoint(seq=signed.seq, link_hash=signed.link_hash, signed_at=now, key_id=signed.key_id,
                            signature=signed.signature, location=location[:300])
    checkpoint.save()
    logger.info("audit checkpoint written", extra={"event": "audit.checkpoint", "seq": head_seq})
    return checkpoint


@transaction.atomic
def chain_head_sign() -> SignedCheckpoint | None:
    """Sign the newest link and put it in the checkpoint store's head slot, unless the signed head is
    already that link. Runs after every seal (``audit.tasks.seal_chain``: on commit, and by beat every
    ``AUDIT_HEAD_SIGN_SECONDS``; embedded mode: ``audit.embedded``), under the chain-head lock so that
    concurrent signers never replace a newer head with an older one.

    The signature covers the links only: a record is protected by it from the first head signature after
    its seal on (docs/AUDIT.md, "The remaining window"). Returns the new signed head, or None."""
    row = _lock_head()
    last = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    if last is None:
        return None
    seq, link_hash = last
    if (row.seq, row.link_hash) != (seq, link_hash):
        # The sealer updates the row with its links in one transaction: a difference is tampering (or a
        # database restored without the row). Never sign it; verification reports it.
        logger.error("audit chain head row disagrees with the newest link; head not signed",
                     extra={"event": "audit.head_mismatch", "seq": seq})
        return None
    store = checkpoint_store()
    current = head_read(store)
    if current is not None and current.seq >= seq:
        if current.seq > seq:
            logger.error("audit signed head is ahead of the chain; head not signed",
                         extra={"event": "audit.head_behind_signature", "seq": seq})
        return None
    signed = sign(seq=seq, link_hash=link_hash, signed_at=canonical.iso_utc(timezone.now()))
    head_write(store, signed)
    return signed


def chain_seal_and_sign() -> int:
    """Seal waiting records, sign the new head, and write a permanent checkpoint when one is due."""
    sealed = chain_seal()
    chain_head_sign()
    checkpoint_write()
    return sealed
