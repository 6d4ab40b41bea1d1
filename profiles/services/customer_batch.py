"""The customer batch path: many records resolved and written with a bounded number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.bulk_insert import json_text, rows_insert
from config.errors import ApplicationError

from .. import data_keys
from ..attribute_sealing import ATTRIBUTE_FIELDS, attributes_merge, attributes_seal
from ..data_keys import DataKey
from ..models import (
    BlindIndexEntry,
    Customer,
    CustomerKey,
    PersonalField,
    SourceIdentity,
)
from ..signals import customer_facts_changed
from .chunking import in_chunks
from .customers import customer_ingest, mark_stale
from .identity import ingest_prepare
from .validation import STRONG_KINDS

if TYPE_CHECKING:
    from .identity import IngestRecord


@dataclass(frozen=True)
class CustomerBatchResult:
    index: int
    outcome: str  # "created" | "updated" | "merged" | "unchanged" | "rejected"
    customer_id: UUID | None = None
    error: Exception | None = None  # for "rejected": the error ``customer_ingest`` raised for this record


_BATCH_CHUNK = 500


@transaction.atomic
def customer_ingest_batch(
    *, source: str | None = None, records: Sequence[dict[str, Any]], actor: str
) -> list[CustomerBatchResult]:
    """``customer_ingest`` for many records, set-based; one result per record, in order.

    Each record holds ``customer_ingest``'s keyword arguments except ``actor`` (``source`` defaults to the
    argument). Per chunk: every record is validated first (a bad record is rejected with the error
    ``customer_ingest`` raises, nothing written for it); identities are resolved with one query per
    identifier kind over the chunk's digests. A record none of whose identifiers (source id, e-mail, phone)
    is known -- in the database or from an earlier record of the batch -- is a new customer: those are
    written in bulk (customers, data keys, encrypted fields, blind-index entries, source identities). A
    record whose every identifier already belongs to the live customer owning its source id (a re-import)
    is applied in bulk too (changed fields re-encrypted, attributes merged: "updated" or "unchanged"). Every
    other record (merges, conflicts, moved identifiers, intra-batch repeats) goes through ``customer_ingest``
    itself, in its own savepoint, after the records before it were written, so the results are those of
    ingesting the records one by one, in order. Customers changed in bulk get one ``customer_facts_changed``
    per write (as ``facts_ingest_batch`` does).
    """
    results: list[CustomerBatchResult | None] = [None] * len(records)
    for start in range(0, len(records), _BATCH_CHUNK):
        _ingest_chunk(source, records[start : start + _BATCH_CHUNK], start, actor, results)
    return [r for r in results if r is not None]


def _ingest_chunk(source: str | None, records: Sequence[dict[str, Any]], offset: int, actor: str,
                  results: list[CustomerBatchResult | None]) -> None:
    prepared: list[tuple[int, dict[str, Any], IngestRecord]] = []
    for i, record in enumerate(records):
        index = offset + i
        args = {"source": source, **record} if source is not None else dict(record)
        try:
            prepared.append((index, args, ingest_prepare(**args)))
        except ApplicationError as exc:
            results[index] = CustomerBatchResult(index=index, outcome="rejected", error=exc)
    known = _known_identifier_keys([p for _, _, p in prepared])  # identifier -> customer id, in the database
    owners = _lock_owners(known)
    taken: set[tuple[str, ...]] = set(known)  # known, or written by an earlier record of this chunk
    touched: set[tuple[str, ...]] = set()  # written (or to be written) by an earlier record of this chunk
    touched_customers: set[UUID] = set()
    creates: list[tuple[int, dict[str, Any], IngestRecord]] = []
    updates: list[tuple[int, dict[str, Any], IngestRecord, UUID]] = []
    stale = False  # a record went through customer_ingest since the lookup (a merge moves identifiers)
    for position, (index, args, p) in enumerate(prepared):
        keys = _identifier_keys(p)
        if not any(k in taken for k in keys):
            creates.append((index, args, p))
            taken.update(keys)
            touched.update(keys)
            continue
        if stale and keys[0] in known and not any(k in touched for k in keys):
            _flush_updates(updates, owners, actor, results)  # (none pending: they wait for a fresh lookup)
            updates = []
            known = _known_identifier_keys([q for _, _, q in prepared[position:]])
            owners = _lock_owners(known)
            taken.update(known)
            stale = False
        owner = known.get(keys[0])
        if (not stale and owner is not None and owner in owners and owner not in touched_customers
                and not any(k in touched for k in keys) and all(known.get(k) == owner for k in keys)):
            updates.append((index, args, p, owner))
            touched.update(keys)
            touched_customers.add(owner)
            continue
        _flush_creates(creates, actor, results)
        _flush_updates(updates, owners, actor, results)
        creates, updates = [], []
        results[index] = _ingest_fallback(index, args, actor)
        stale = True
        if results[index].outcome != "rejected":  # type: ignore[union-attr]
            taken.update(keys)
            touched.update(keys)
    _flush_creates(creates, actor, results)
    _flush_updates(updates, owners, actor, results)


def _identifier_keys(p: IngestRecord) -> list[tuple[str, ...]]:
    """The record's identifiers; the source identity first."""
    return [("source", p.source, p.source_digest), *((kind, digest) for kind, digest in p.record_digests.items())]


def _known_identifier_keys(items: list[IngestRecord]) -> dict[tuple[str, ...], UUID]:
    """The identifiers of ``items`` already in the database and their customers: one query per identifier
    kind (and source)."""
    known: dict[tuple[str, ...], UUID] = {}
    by_source: dict[str, set[str]] = {}
    for p in items:
        by_source.setdefault(p.source, set()).add(p.source_digest)
    for src, source_digests in by_source.items():
        for part in in_chunks(sorted(source_digests)):
            rows = SourceIdentity.objects.filter(source=src, digest__in=part).values_list("digest", "customer_id")
            known.update((("source", src, digest), cid) for digest, cid in rows)
    for kind in STRONG_KINDS:
        digests = sorted({p.record_digests[kind] for p in items if kind in p.record_digests})
        for part in in_chunks(digests):
            entries = BlindIndexEntry.objects.filter(kind=kind, digest__in=part).values_list("digest", "customer_id")
            known.update(((kind, digest), cid) for digest, cid in entries)
    return known


def _lock_owners(known: dict[tuple[str, ...], UUID]) -> dict[UUID, tuple[Customer, DataKey]]:
    """The live customers owning a known source identity (locked, as ``customer_ingest`` locks them), with
    their data keys. Aliases and customers without a key are left out (their records take the per-record path)."""
    ids = sorted({cid for key, cid in known.items() if key[0] == "source"}, key=str)
    owners: dict[UUID, tuple[Customer, DataKey]] = {}
    for part in in_chunks(ids):
        customers = list(Customer.objects.select_for_update().filter(id__in=part, merged_into__isnull=True)
                         .order_by("created_at", "id"))
        keys = data_keys.key_get_many([c.id for c in customers])
        owners.update((c.id, (c, keys[c.id])) for c in customers if c.id in keys)
    return owners


def _flush_updates(pending: list[tuple[int, dict[str, Any], IngestRecord, UUID]],
                   owners: dict[UUID, tuple[Customer, DataKey]], actor: str,
                   results: list[CustomerBatchResult | None]) -> None:
    """``apply_record`` for records matching exactly their own customer on every identifier they carry
    (no identifier to move, nothing to merge): changed fields re-encrypted, attributes merged, in bulk."""
    if not pending:
        return
    ids = [owner for _, _, _, owner in pending]
    current: dict[UUID, dict[str, tuple[int, bytes | memoryview, int]]] = {cid: {} for cid in ids}
    for part in in_chunks(ids):  # (id, ciphertext, key version): no model instance per stored field
        for pk, cid, field, ciphertext, version in PersonalField.objects.filter(customer_id__in=part).values_list(
                "id", "customer_id", "field", "ciphertext", "key_version"):
            current[cid][field] = (pk, ciphertext, version)
    now = timezone.now()
    changed_rows: list[PersonalField] = []
    new_rows: list[PersonalField] = []
    changed_customers: list[Customer] = []
    outcomes: list[str] = []
    for _, _, p, owner in pending:
        customer, key = owners[owner]
        changed = False
        rows = current[owner]
        for field, value in p.values.items():
            existing = rows.get(field)
            if existing is not None and key.decrypt_field(field, existing[1], existing[2]) == value:
                continue
            changed = True
            ciphertext = key.encrypt_field(field, value)
            row = PersonalField(customer_id=owner, field=field, ciphertext=ciphertext, key_version=key.key_version,
                                updated_at=now)
            if existing is None:
                new_rows.append(row)
            else:
                row.pk = existing[0]
                changed_rows.append(row)
        if attributes_merge(customer, key, p.attributes):
            changed = True
        if p.feature_attributes is not None and sorted(p.feature_attributes) != sorted(customer.feature_attributes):
            customer.feature_attributes = sorted(set(p.feature_attributes))
            changed = True
        if p.country and p.country != customer.country:
            customer.country = p.country
            changed = True
        if changed:
            customer.updated_at = now
            changed_customers.append(customer)
        outcomes.append("updated" if changed else "unchanged")
    try:
        with transaction.atomic():
            PersonalField.objects.bulk_update(changed_rows, ["ciphertext", "key_version", "updated_at"])
            PersonalField.objects.bulk_create(new_rows)
            Customer.objects.bulk_update(changed_customers, [*ATTRIBUTE_FIELDS, "feature_attributes", "country",
                                                             "updated_at"])
            mark_stale([c.id for c in changed_customers])
    except IntegrityError:  # a concurrent writer: decide these records one by one
        for _, _, _, owner in pending:
            owners[owner][0].refresh_from_db()
        for index, args, _, _ in pending:
            results[index] = _ingest_fallback(index, args, actor)
        return
    for (index, _, _, owner), outcome in zip(pending, outcomes, strict=True):
        results[index] = CustomerBatchResult(index=index, outcome=outcome, customer_id=owner)


def _ingest_fallback(index: int, args: dict[str, Any], actor: str) -> CustomerBatchResult:
    try:
        with transaction.atomic():
            res = customer_ingest(actor=actor, **args)
    except (ApplicationError, IntegrityError) as exc:
        return CustomerBatchResult(index=index, outcome="rejected", error=exc)
    return CustomerBatchResult(index=index, outcome=res.outcome, customer_id=res.customer_id)


def _flush_creates(pending: list[tuple[int, dict[str, Any], IngestRecord]], actor: str,
                   results: list[CustomerBatchResult | None]) -> None:
    if not pending:
        return
    try:
        with transaction.atomic():
            ids = _customers_create_bulk([p for _, _, p in pending])
    except IntegrityError:  # a concurrent writer took an identifier: decide these records one by one
        for index, args, _ in pending:
            results[index] = _ingest_fallback(index, args, actor)
        return
    for (index, _, _), customer_id in zip(pending, ids, strict=True):
        results[index] = CustomerBatchResult(index=index, outcome="created", customer_id=customer_id)


def _customers_create_bulk(items: list[IngestRecord]) -> list[UUID]:
    """``_customer_create`` for many records: the same rows, one ``COPY`` (or bulk INSERT) per table.

    Each customer gets its own data key (one KEK wrap per customer); its attributes are sealed under it in
    the customer row itself, every personal field and its source id encrypted under it. Creation times
    strictly increase in record order (merges keep the oldest)."""
    previous: datetime | None = None
    customer_rows: list[tuple[Any, ...]] = []
    key_rows: list[tuple[Any, ...]] = []
    field_rows: list[tuple[Any, ...]] = []
    entry_rows: list[tuple[Any, ...]] = []
    identity_rows: list[tuple[Any, ...]] = []
    ids: list[UUID] = []
    for p in items:
        now = timezone.now()
        if previous is not None and now <= previous:
            now = previous + timedelta(microseconds=1)
        previous = now
        customer_id = uuid4()
        ids.append(customer_id)
        key, kek_id, wrapped = data_keys.key_new_values(customer_id)
        sealed, sealed_version = attributes_seal(key, p.attributes)
        customer_rows.append((customer_id, now, now, p.country or "", sealed, sealed_version,
                              json_text(p.feature_attributes or []), now, None))
        key_rows.append((customer_id, kek_id, wrapped, key.key_version, now, None))
        version = key.key_version
        encrypt = key.encrypt_field
        field_rows.extend((customer_id, field, encrypt(field, value), version, now)
                          for field, value in p.values.items())
        entry_rows.extend((kind, digest, customer_id, now) for kind, digest in p.record_digests.items())
        identity_rows.append((customer_id, p.source, p.source_digest,
                              encrypt(f"source:{p.source}", p.external_id), version, now, now))
    rows_insert(Customer, _CUSTOMER_COLUMNS, customer_rows)
    rows_insert(CustomerKey, _KEY_COLUMNS, key_rows)
    rows_insert(PersonalField, _FIELD_COLUMNS, field_rows)
    rows_insert(BlindIndexEntry, _ENTRY_COLUMNS, entry_rows)
    rows_insert(SourceIdentity, _IDENTITY_COLUMNS, identity_rows)
    customer_facts_changed.send(sender=Customer, customer_ids=ids)
    return ids


_CUSTOMER_COLUMNS = ("id", "created_at", "updated_at", "country", *ATTRIBUTE_FIELDS, "feature_attributes",
                     "stale_since", "merged_into_id")
_KEY_COLUMNS = ("customer_id", "kek_id", "wrapped", "key_version", "created_at", "rotated_at")
_FIELD_COLUMNS = ("customer_id", "field", "ciphertext", "key_version", "updated_at")
_ENTRY_COLUMNS = ("kind", "digest", "customer_id", "created_at")
_IDENTITY_COLUMNS = ("customer_id", "source", "digest", "external_id_encrypted", "key_version", "created_at",
                     "last_seen_at")
