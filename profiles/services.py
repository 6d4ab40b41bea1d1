"""All writes of the profiles app (see docs/ARCHITECTURE.md, "profiles").

Personal values are encrypted under the customer's data key before they reach the database, lookups use
blind-index digests, and free text is pseudonymized with Presidio before it is stored. Errors never carry
values: only field names and codes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from config import blind_index, envelope
from config.blind_index import InvalidIdentifier
from config.envelope import DecryptionError
from config.errors import ApplicationError, NotFound

from . import data_keys
from .data_keys import DataKey
from .errors import IdentifierInUse, MergeConflict, RecordInvalid
from .identifiers import identifier_kind, is_direct_identifier_name
from .models import (
    SOURCES,
    BlindIndexEntry,
    Customer,
    CustomerKey,
    Interaction,
    MergeRecord,
    Note,
    NpsAnswer,
    Order,
    PersonalField,
    PlaceholderState,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
    Tombstone,
)
from .protected import audit_field, feature_refusal
from .signals import customer_facts_changed, customers_merged

__all__ = [
    "FactResult",
    "IdentifierInUse",
    "IngestResult",
    "MergeConflict",
    "RecordInvalid",
    "customer_erase",
    "CustomerBatchResult",
    "customer_ingest",
    "customer_ingest_batch",
    "customer_mark_fresh",
    "customer_rectify",
    "customer_seal",
    "facts_ingest_batch",
    "interaction_ingest",
    "note_ingest",
    "nps_ingest",
    "order_ingest",
    "referral_ingest",
    "review_ingest",
    "ticket_ingest",
]

MAX_VALUE_LENGTH = 500
MAX_EXTERNAL_ID_LENGTH = 200
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
STRONG_KINDS = ("email", "phone")


@dataclass(frozen=True)
class IngestResult:
    customer_id: UUID
    outcome: str  # "created" | "updated" | "merged" | "unchanged"


@dataclass(frozen=True)
class FactResult:
    index: int
    outcome: str  # "created" | "updated" | "unchanged" | "rejected"
    customer_id: UUID | None = None
    fact_id: int | None = None
    field: str | None = None
    code: str | None = None


def _governance(*, kind: str, actor: str, subject: UUID | None = None, details: dict | None = None) -> None:
    from audit.services import governance_record

    governance_record(kind=kind, actor=actor, subject=subject, details=details or {})


# --------------------------------------------------------------------------------------------------------
# Validation helpers (messages never contain values)
# --------------------------------------------------------------------------------------------------------


def _check_source(source: str, field: str = "source") -> str:
    if source not in SOURCES:
        raise RecordInvalid(field, "invalid_choice")
    return source


def _check_external_id(value: Any, field: str = "external_id") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordInvalid(field, "required")
    if not isinstance(value, str | int):
        raise RecordInvalid(field, "invalid")
    text = str(value).strip()
    if len(text) > MAX_EXTERNAL_ID_LENGTH:
        raise RecordInvalid(field, "max_length")
    return text


def _region(country: str | None) -> str:
    return (country or settings.DEFAULT_PHONE_REGION).upper()


def _clean_personal(personal: dict[str, Any], country: str | None) -> dict[str, str]:
    """Validated, normalized personal values; empty values are dropped (they do not clear a field)."""
    if not isinstance(personal, dict):
        raise RecordInvalid("personal", "invalid")
    cleaned: dict[str, str] = {}
    for field, raw in personal.items():
        if not isinstance(field, str) or not _FIELD_NAME.match(field):
            raise RecordInvalid("personal", "invalid_field_name")
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise RecordInvalid(field, "invalid")
        value = raw.strip()
        if not value:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise RecordInvalid(field, "max_length")
        cleaned[field] = _normalize_personal(field, value, country)
    return cleaned


def _normalize_personal(field: str, value: str, country: str | None) -> str:
    try:
        if field == "email":
            return blind_index.normalize_email(value)
        if field == "phone":
            return blind_index.normalize_phone(value, _region(country))
    except InvalidIdentifier as exc:
        raise RecordInvalid(field, "invalid") from exc
    if field == "date_of_birth":
        try:
            parsed = date.fromisoformat(value)
        except ValueError as exc:
            raise RecordInvalid(field, "date") from exc
        if parsed > timezone.now().date() or parsed.year < 1900:
            raise RecordInvalid(field, "date")
        return parsed.isoformat()
    return value


def _strong_digest(field: str, value: str, country: str | None) -> str:
    if field == "email":
        return blind_index.email_index(value)
    return blind_index.phone_index(value, _region(country))


def _clean_attributes(attributes: dict | None, feature_attributes: list[str] | None) -> tuple[dict, list[str] | None]:
    attributes = attributes or {}
    if not isinstance(attributes, dict) or len(attributes) > 100:
        raise RecordInvalid("attributes", "invalid")
    for key, value in attributes.items():
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            raise RecordInvalid("attributes", "invalid_field_name")
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise RecordInvalid("attributes", "invalid")
        if isinstance(value, float) and not math.isfinite(value):  # 1e400, NaN: no JSON column stores them
            raise RecordInvalid(f"attributes.{key}", "invalid")
        if isinstance(value, str) and len(value) > 200:
            raise RecordInvalid("attributes", "max_length")
        # Plain attributes are stored unencrypted: a direct identifier belongs in the personal fields.
        # (The error names the attribute: a schema name of the sender's, never a value.)
        if is_direct_identifier_name(key):
            raise RecordInvalid(f"attributes.{key}", "personal_field")
        if isinstance(value, str) and identifier_kind(value) is not None:
            raise RecordInvalid(f"attributes.{key}", "personal_data")
    if feature_attributes is not None and (
        not isinstance(feature_attributes, list) or not all(isinstance(f, str) for f in feature_attributes)
    ):
        raise RecordInvalid("feature_attributes", "invalid")
    for name in feature_attributes or ():
        # Art. 22(4) and non-discrimination: a protected characteristic is refused as a feature at the door,
        # loudly, naming the attribute (a schema name, never a value); aggregation and training also drop
        # such names (defence in depth). It may be declared audit-only instead (``audit_attributes``).
        code = feature_refusal(name)
        if code is not None:
            raise RecordInvalid(f"feature_attributes.{name}" if _FIELD_NAME.match(name) else "feature_attributes",
                                code)
    return attributes, feature_attributes


def _clean_audit_attributes(audit_attributes: dict | None, attributes: dict) -> dict[str, str]:
    """Audit-only characteristics (e.g. gender for the fairness report) -> encrypted personal-field values
    (``audit_<name>``). Never a feature; a name may not also be sent as a plain (unencrypted) attribute."""
    if not audit_attributes:
        return {}
    if not isinstance(audit_attributes, dict) or len(audit_attributes) > 20:
        raise RecordInvalid("audit_attributes", "invalid")
    out: dict[str, str] = {}
    for name, raw in audit_attributes.items():
        if not isinstance(name, str) or not _FIELD_NAME.match(name) or len(name) > 56:
            raise RecordInvalid("audit_attributes", "invalid_field_name")
        if name in attributes:
            raise RecordInvalid(f"attributes.{name}", "audit_only")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if not isinstance(raw, str | int | float | bool):
            raise RecordInvalid(f"audit_attributes.{name}", "invalid")
        value = str(raw).strip()
        if len(value) > 200:
            raise RecordInvalid(f"audit_attributes.{name}", "max_length")
        out[audit_field(name)] = value
    return out


def _check_country(country: str | None) -> str | None:
    if country is None or country == "":
        return None
    if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise RecordInvalid("country", "invalid")
    return country.strip().upper()


# --------------------------------------------------------------------------------------------------------
# Personal fields
# --------------------------------------------------------------------------------------------------------


def _load_fields(customer_id: UUID, key: DataKey) -> dict[str, str]:
    return {
        row.field: key.decrypt_field(row.field, row.ciphertext, row.key_version)
        for row in PersonalField.objects.filter(customer_id=customer_id)
    }


def _write_field(customer_id: UUID, key: DataKey, field: str, value: str) -> None:
    PersonalField.objects.update_or_create(
        customer_id=customer_id,
        field=field,
        defaults={"ciphertext": key.encrypt_field(field, value), "key_version": key.key_version,
                  "updated_at": timezone.now()},
    )


def _set_strong_index(customer_id: UUID, kind: str, digest: str) -> None:
    """Bind ``digest`` as the customer's one current identifier of ``kind``."""
    owner = BlindIndexEntry.objects.filter(kind=kind, digest=digest).values_list("customer_id", flat=True).first()
    if owner is not None and owner != customer_id:
        raise IdentifierInUse(kind)
    if owner == customer_id:
        return
    BlindIndexEntry.objects.filter(customer_id=customer_id, kind=kind).delete()
    BlindIndexEntry.objects.create(customer_id=customer_id, kind=kind, digest=digest)


def _mark_stale(customer_ids: Iterable[UUID]) -> None:
    ids = sorted(set(customer_ids), key=str)
    if not ids:
        return
    Customer.objects.filter(id__in=ids, stale_since__isnull=True).update(stale_since=timezone.now())
    customer_facts_changed.send(sender=Customer, customer_ids=ids)


def _resolve_alias(customer_id: UUID) -> UUID:
    current = customer_id
    for _ in range(16):
        target = Customer.objects.filter(id=current).values_list("merged_into_id", flat=True).first()
        if target is None:
            return current
        current = target
    return current


# --------------------------------------------------------------------------------------------------------
# customer_ingest and identity resolution
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _IngestRecord:
    """One validated ``customer_ingest`` record (normalized values, blind-index digests)."""

    source: str
    external_id: str
    country: str | None
    values: dict[str, str]
    attributes: dict
    feature_attributes: list[str] | None
    record_digests: dict[str, str]
    source_digest: str


def _ingest_prepare(
    *, source: str, external_id: str, personal: dict[str, str | None], attributes: dict | None = None,
    feature_attributes: list[str] | None = None, country: str | None = None,
    audit_attributes: dict[str, Any] | None = None,
) -> _IngestRecord:
    """Validate and normalize one record (no database access); ``RecordInvalid`` names the first bad field."""
    _check_source(source)
    external_id = _check_external_id(external_id)
    country = _check_country(country)
    values = _clean_personal(personal, country)
    attributes, feature_attributes = _clean_attributes(attributes, feature_attributes)
    values.update(_clean_audit_attributes(audit_attributes, attributes))

    record_digests: dict[str, str] = {}
    for kind in STRONG_KINDS:
        if kind in values:
            try:
                record_digests[kind] = _strong_digest(kind, values[kind], country)
            except InvalidIdentifier as exc:
                raise RecordInvalid(kind, "invalid") from exc
    source_digest = blind_index.source_index(source, external_id)
    return _IngestRecord(source=source, external_id=external_id, country=country, values=values,
                         attributes=attributes, feature_attributes=feature_attributes,
                         record_digests=record_digests, source_digest=source_digest)


@transaction.atomic
def customer_ingest(
    *,
    source: str,
    external_id: str,
    personal: dict[str, str | None],
    attributes: dict | None = None,
    feature_attributes: list[str] | None = None,
    actor: str,
    country: str | None = None,
    audit_attributes: dict[str, Any] | None = None,
) -> IngestResult:
    """Upsert one customer record from a source system, resolving identity by blind indexes.

    Matching: the record's own source id, its e-mail and its phone (blind-indexed). Customers matched by
    several identifiers are merged into the oldest one, unless their strong identifiers (e-mail, phone)
    disagree: then ``MergeConflict`` is raised and nothing is written. A record matched only by e-mail or
    phone whose other strong identifier differs from the customer's is also refused (not guessed).
    Empty personal values are ignored (use ``customer_rectify`` to clear a field). ``audit_attributes``
    (protected characteristics kept only for the fairness report) are stored encrypted as ``audit_<name>``
    personal fields; a protected characteristic declared as a feature is refused (``profiles.protected``).
    """
    p = _ingest_prepare(source=source, external_id=external_id, personal=personal, attributes=attributes,
                        feature_attributes=feature_attributes, country=country, audit_attributes=audit_attributes)
    external_id, country, values = p.external_id, p.country, p.values
    attributes, feature_attributes = p.attributes, p.feature_attributes
    record_digests, source_digest = p.record_digests, p.source_digest

    owner_id = SourceIdentity.objects.filter(source=source, digest=source_digest).values_list(
        "customer_id", flat=True
    ).first()
    matched_on: dict[UUID, list[str]] = {}
    if owner_id is not None:
        owner_id = _resolve_alias(owner_id)
        matched_on.setdefault(owner_id, []).append("source")
    for kind, digest in record_digests.items():
        cid = BlindIndexEntry.objects.filter(kind=kind, digest=digest).values_list("customer_id", flat=True).first()
        if cid is not None:
            matched_on.setdefault(cid, []).append(kind)

    if not matched_on:
        return _customer_create(
            source=source, external_id=external_id, source_digest=source_digest, values=values,
            record_digests=record_digests, attributes=attributes, feature_attributes=feature_attributes,
            country=country,
        )

    candidates = list(
        Customer.objects.select_for_update().filter(id__in=list(matched_on)).order_by("created_at", "id")
    )
    _check_compatible(candidates, owner_id=owner_id, record_digests=record_digests)
    survivor = candidates[0]
    losers = candidates[1:]
    key = data_keys.key_get(survivor.id)
    for loser in losers:
        _merge_into(loser=loser, survivor=survivor, survivor_key=key, record_digests=record_digests,
                    matched_on=matched_on.get(loser.id, []), source=source, actor=actor)

    changed = _apply_record(
        customer=survivor, key=key, source=source, external_id=external_id, source_digest=source_digest,
        values=values, record_digests=record_digests, attributes=attributes,
        feature_attributes=feature_attributes, country=country,
    )
    outcome = "merged" if (losers or owner_id is None) else ("updated" if changed else "unchanged")
    if outcome != "unchanged":
        survivor.updated_at = timezone.now()
        survivor.save(update_fields=["updated_at"])
        _mark_stale([survivor.id])
    return IngestResult(customer_id=survivor.id, outcome=outcome)


def _customer_create(
    *, source: str, external_id: str, source_digest: str, values: dict[str, str], record_digests: dict[str, str],
    attributes: dict, feature_attributes: list[str] | None, country: str | None,
) -> IngestResult:
    customer = Customer.objects.create(
        country=country or "", attributes=attributes, feature_attributes=feature_attributes or [],
        stale_since=timezone.now(),
    )
    key = data_keys.key_create(customer)
    for field, value in values.items():
        _write_field(customer.id, key, field, value)
    for kind, digest in record_digests.items():
        BlindIndexEntry.objects.create(customer=customer, kind=kind, digest=digest)
    SourceIdentity.objects.create(
        customer=customer, source=source, digest=source_digest, key_version=key.key_version,
        external_id_encrypted=key.encrypt_field(f"source:{source}", external_id),
    )
    customer_facts_changed.send(sender=Customer, customer_ids=[customer.id])
    return IngestResult(customer_id=customer.id, outcome="created")


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
    prepared: list[tuple[int, dict[str, Any], _IngestRecord]] = []
    for i, record in enumerate(records):
        index = offset + i
        args = {"source": source, **record} if source is not None else dict(record)
        try:
            prepared.append((index, args, _ingest_prepare(**args)))
        except ApplicationError as exc:
            results[index] = CustomerBatchResult(index=index, outcome="rejected", error=exc)
    known = _known_identifier_keys([p for _, _, p in prepared])  # identifier -> customer id, in the database
    owners = _lock_owners(known)
    taken: set[tuple[str, ...]] = set(known)  # known, or written by an earlier record of this chunk
    touched: set[tuple[str, ...]] = set()  # written (or to be written) by an earlier record of this chunk
    touched_customers: set[UUID] = set()
    creates: list[tuple[int, dict[str, Any], _IngestRecord]] = []
    updates: list[tuple[int, dict[str, Any], _IngestRecord, UUID]] = []
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


def _identifier_keys(p: _IngestRecord) -> list[tuple[str, ...]]:
    """The record's identifiers; the source identity first."""
    return [("source", p.source, p.source_digest), *((kind, digest) for kind, digest in p.record_digests.items())]


def _known_identifier_keys(items: list[_IngestRecord]) -> dict[tuple[str, ...], UUID]:
    """The identifiers of ``items`` already in the database and their customers: one query per identifier
    kind (and source)."""
    known: dict[tuple[str, ...], UUID] = {}
    by_source: dict[str, set[str]] = {}
    for p in items:
        by_source.setdefault(p.source, set()).add(p.source_digest)
    for src, source_digests in by_source.items():
        for part in _chunked(sorted(source_digests)):
            rows = SourceIdentity.objects.filter(source=src, digest__in=part).values_list("digest", "customer_id")
            known.update((("source", src, digest), cid) for digest, cid in rows)
    for kind in STRONG_KINDS:
        digests = sorted({p.record_digests[kind] for p in items if kind in p.record_digests})
        for part in _chunked(digests):
            entries = BlindIndexEntry.objects.filter(kind=kind, digest__in=part).values_list("digest", "customer_id")
            known.update(((kind, digest), cid) for digest, cid in entries)
    return known


def _lock_owners(known: dict[tuple[str, ...], UUID]) -> dict[UUID, tuple[Customer, DataKey]]:
    """The live customers owning a known source identity (locked, as ``customer_ingest`` locks them), with
    their data keys. Aliases and customers without a key are left out (their records take the per-record path)."""
    ids = sorted({cid for key, cid in known.items() if key[0] == "source"}, key=str)
    owners: dict[UUID, tuple[Customer, DataKey]] = {}
    for part in _chunked(ids):
        customers = list(Customer.objects.select_for_update().filter(id__in=part, merged_into__isnull=True)
                         .order_by("created_at", "id"))
        keys = data_keys.key_get_many([c.id for c in customers])
        owners.update((c.id, (c, keys[c.id])) for c in customers if c.id in keys)
    return owners


def _flush_updates(pending: list[tuple[int, dict[str, Any], _IngestRecord, UUID]],
                   owners: dict[UUID, tuple[Customer, DataKey]], actor: str,
                   results: list[CustomerBatchResult | None]) -> None:
    """``_apply_record`` for records matching exactly their own customer on every identifier they carry
    (no identifier to move, nothing to merge): changed fields re-encrypted, attributes merged, in bulk."""
    if not pending:
        return
    ids = [owner for _, _, _, owner in pending]
    current: dict[UUID, dict[str, PersonalField]] = {cid: {} for cid in ids}
    for part in _chunked(ids):
        for row in PersonalField.objects.filter(customer_id__in=part):
            current[row.customer_id][row.field] = row
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
            if existing is not None and key.decrypt_field(field, existing.ciphertext, existing.key_version) == value:
                continue
            changed = True
            ciphertext = key.encrypt_field(field, value)
            if existing is None:
                new_rows.append(PersonalField(customer_id=owner, field=field, ciphertext=ciphertext,
                                              key_version=key.key_version, updated_at=now))
            else:
                existing.ciphertext, existing.key_version, existing.updated_at = ciphertext, key.key_version, now
                changed_rows.append(existing)
        new_attributes = {**customer.attributes, **p.attributes}
        if new_attributes != customer.attributes:
            customer.attributes = new_attributes
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
            Customer.objects.bulk_update(changed_customers, ["attributes", "feature_attributes", "country",
                                                             "updated_at"])
            _mark_stale([c.id for c in changed_customers])
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


def _flush_creates(pending: list[tuple[int, dict[str, Any], _IngestRecord]], actor: str,
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


def _customers_create_bulk(items: list[_IngestRecord]) -> list[UUID]:
    """``_customer_create`` for many records: the same rows, one INSERT per table."""
    customers: list[Customer] = []
    previous: datetime | None = None
    for p in items:
        now = timezone.now()
        if previous is not None and now <= previous:  # keep creation order (merges keep the oldest)
            now = previous + timedelta(microseconds=1)
        previous = now
        customers.append(Customer(
            country=p.country or "", attributes=p.attributes, feature_attributes=p.feature_attributes or [],
            created_at=now, updated_at=now, stale_since=now,
        ))
    Customer.objects.bulk_create(customers)
    keys = data_keys.key_create_many(customers)
    fields: list[PersonalField] = []
    entries: list[BlindIndexEntry] = []
    identities: list[SourceIdentity] = []
    for customer, p in zip(customers, items, strict=True):
        key = keys[customer.id]
        fields.extend(
            PersonalField(customer_id=customer.id, field=field, ciphertext=key.encrypt_field(field, value),
                          key_version=key.key_version, updated_at=customer.created_at)
            for field, value in p.values.items()
        )
        entries.extend(BlindIndexEntry(customer_id=customer.id, kind=kind, digest=digest)
                       for kind, digest in p.record_digests.items())
        identities.append(SourceIdentity(
            customer_id=customer.id, source=p.source, digest=p.source_digest, key_version=key.key_version,
            external_id_encrypted=key.encrypt_field(f"source:{p.source}", p.external_id),
        ))
    PersonalField.objects.bulk_create(fields)
    BlindIndexEntry.objects.bulk_create(entries)
    SourceIdentity.objects.bulk_create(identities)
    ids = [c.id for c in customers]
    customer_facts_changed.send(sender=Customer, customer_ids=ids)
    return ids


def _current_digests(customer_id: UUID) -> dict[str, str]:
    return dict(BlindIndexEntry.objects.filter(customer_id=customer_id).values_list("kind", "digest"))


def _check_compatible(candidates: list[Customer], *, owner_id: UUID | None, record_digests: dict[str, str]) -> None:
    """Refuse when the strong identifiers of the matched customers and the record disagree.

    When the record matches only its own source record (``owner_id``), it may change that customer's
    e-mail or phone (a source system corrects its own contact). Otherwise every matched customer's
    identifiers must agree with the record and with each other: joining two customers is never a guess.
    """
    if len(candidates) == 1 and candidates[0].id == owner_id:
        return
    for kind in STRONG_KINDS:
        seen: set[str] = set()
        if kind in record_digests:
            seen.add(record_digests[kind])
        for candidate in candidates:
            current = _current_digests(candidate.id).get(kind)
            if current is None:
                continue
            seen.add(current)
        if len(seen) > 1:
            raise MergeConflict(f"conflicting_{kind}")


def _merge_into(
    *, loser: Customer, survivor: Customer, survivor_key: DataKey, record_digests: dict[str, str],
    matched_on: list[str], source: str, actor: str,
) -> None:
    """Join ``loser`` into ``survivor``: re-encrypt what the survivor lacks, re-point identities and facts."""
    loser_key = data_keys.key_get(loser.id)
    survivor_fields = set(PersonalField.objects.filter(customer=survivor).values_list("field", flat=True))
    for field, value in _load_fields(loser.id, loser_key).items():
        if field in survivor_fields or field in record_digests:
            continue
        _write_field(survivor.id, survivor_key, field, value)
    PersonalField.objects.filter(customer=loser).delete()

    survivor_kinds = set(BlindIndexEntry.objects.filter(customer=survivor).values_list("kind", flat=True))
    for entry in BlindIndexEntry.objects.filter(customer=loser):
        if entry.kind in survivor_kinds or (entry.kind in record_digests and entry.digest != record_digests[entry.kind]):
            entry.delete()
        else:
            entry.customer = survivor
            entry.save(update_fields=["customer"])

    for identity in SourceIdentity.objects.filter(customer=loser):
        field = f"source:{identity.source}"
        external_id = loser_key.decrypt_field(field, identity.external_id_encrypted, identity.key_version)
        identity.customer = survivor
        identity.external_id_encrypted = survivor_key.encrypt_field(field, external_id)
        identity.key_version = survivor_key.key_version
        identity.save(update_fields=["customer", "external_id_encrypted", "key_version"])

    plain_models: tuple[Any, ...] = (Order, Interaction, Referral)
    for model in plain_models:
        model.objects.filter(customer=loser).update(customer=survivor)
    text_models: tuple[Any, ...] = (Ticket, Note, Review, NpsAnswer)
    for model in text_models:
        for fact in model.objects.filter(customer=loser):
            fact.customer = survivor
            if fact.text_original_encrypted is not None:
                field = _original_text_field(model, fact.external_digest)
                original = loser_key.decrypt_field(field, fact.text_original_encrypted, fact.key_version)
                fact.text_original_encrypted = survivor_key.encrypt_field(field, original)
                fact.key_version = survivor_key.key_version
            fact.save(update_fields=["customer", "text_original_encrypted", "key_version"])

    if not survivor.attributes and loser.attributes:
        survivor.attributes = loser.attributes
        survivor.feature_attributes = loser.feature_attributes
    else:
        survivor.attributes = {**loser.attributes, **survivor.attributes}
    if not survivor.country and loser.country:
        survivor.country = loser.country
    survivor.save(update_fields=["attributes", "feature_attributes", "country"])

    # The loser keeps its own data key (earlier sealed decision details stay readable until erasure) and
    # becomes an alias. Its placeholder state stays with it: its old texts keep their own numbering.
    Customer.objects.filter(merged_into=loser).update(merged_into=survivor)
    loser.merged_into = survivor
    loser.stale_since = None
    loser.save(update_fields=["merged_into", "stale_since"])
    MergeRecord.objects.create(
        survivor_id=survivor.id, loser_id=loser.id, matched_on=sorted(matched_on), source=source, actor=actor
    )
    _governance(
        kind="customer.merged", actor=actor, subject=survivor.id,
        details={"survivor": str(survivor.id), "alias": str(loser.id), "matched_on": sorted(matched_on),
                 "source": source},
    )
    customers_merged.send(sender=Customer, survivor_id=survivor.id, loser_ids=[loser.id])


def _apply_record(
    *, customer: Customer, key: DataKey, source: str, external_id: str, source_digest: str, values: dict[str, str],
    record_digests: dict[str, str], attributes: dict, feature_attributes: list[str] | None, country: str | None,
) -> bool:
    changed = False
    current = _load_fields(customer.id, key)
    for field, value in values.items():
        if current.get(field) != value:
            _write_field(customer.id, key, field, value)
            changed = True
    digests = _current_digests(customer.id)
    for kind, digest in record_digests.items():
        if digests.get(kind) != digest:
            _set_strong_index(customer.id, kind, digest)
            changed = True
    if not SourceIdentity.objects.filter(source=source, digest=source_digest).exists():
        SourceIdentity.objects.create(
            customer=customer, source=source, digest=source_digest, key_version=key.key_version,
            external_id_encrypted=key.encrypt_field(f"source:{source}", external_id),
        )
        changed = True
    new_attributes = {**customer.attributes, **attributes}
    update = []
    if new_attributes != customer.attributes:
        customer.attributes = new_attributes
        update.append("attributes")
    if feature_attributes is not None and sorted(feature_attributes) != sorted(customer.feature_attributes):
        customer.feature_attributes = sorted(set(feature_attributes))
        update.append("feature_attributes")
    if country and country != customer.country:
        customer.country = country
        update.append("country")
    if update:
        customer.save(update_fields=update)
        changed = True
    return changed


# --------------------------------------------------------------------------------------------------------
# Rectification, erasure, sealing, staleness
# --------------------------------------------------------------------------------------------------------


@transaction.atomic
def customer_rectify(*, customer_id: UUID, fields: dict[str, str | None], actor: str) -> list[str]:
    """Correct personal fields (``None`` or "" deletes a field). Returns the names of changed fields."""
    customer_id = _resolve_alias(customer_id)
    customer = Customer.objects.select_for_update().filter(id=customer_id).first()
    if customer is None:
        raise NotFound()
    if not isinstance(fields, dict):
        raise RecordInvalid("fields", "invalid")
    key = data_keys.key_get(customer.id)
    current = _load_fields(customer.id, key)
    changed: list[str] = []
    for field, raw in fields.items():
        if not isinstance(field, str) or not _FIELD_NAME.match(field):
            raise RecordInvalid("fields", "invalid_field_name")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field in current:
                PersonalField.objects.filter(customer=customer, field=field).delete()
                if field in STRONG_KINDS:
                    BlindIndexEntry.objects.filter(customer=customer, kind=field).delete()
                changed.append(field)
            continue
        value = _clean_personal({field: raw}, customer.country)[field]
        if current.get(field) == value:
            continue
        if field in STRONG_KINDS:
            _set_strong_index(customer.id, field, _strong_digest(field, value, customer.country))
        _write_field(customer.id, key, field, value)
        changed.append(field)
    if changed:
        changed.sort()
        customer.updated_at = timezone.now()
        customer.save(update_fields=["updated_at"])
        _governance(kind="customer.rectified", actor=actor, subject=customer.id, details={"fields": changed})
        _mark_stale([customer.id])
    return changed


@transaction.atomic
def customer_erase(*, customer_id: UUID, actor: str, reason: str = "erasure_request") -> None:
    """Erase a customer and its aliases: crypto-shred the data key, delete personal fields, blind indexes,
    source identities, facts and placeholder state; keep a PII-free tombstone per pseudonym."""
    if Tombstone.objects.filter(customer_id=customer_id).exists() and not Customer.objects.filter(
        id=customer_id
    ).exists():
        return
    root_id = _resolve_alias(customer_id)
    root = Customer.objects.select_for_update().filter(id=root_id).first()
    if root is None:
        raise NotFound()
    group = [root.id]
    frontier = [root.id]
    while frontier:
        frontier = list(Customer.objects.filter(merged_into_id__in=frontier).values_list("id", flat=True))
        group.extend(frontier)
    now = timezone.now()
    # Facts first, then the customer rows (their keys, fields, indexes and identities cascade).
    fact_models: tuple[Any, ...] = (Order, Interaction, Ticket, Note, Review, NpsAnswer, Referral)
    for model in fact_models:
        model.objects.filter(customer_id__in=group).delete()
    CustomerKey.objects.filter(customer_id__in=group).delete()
    PersonalField.objects.filter(customer_id__in=group).delete()
    BlindIndexEntry.objects.filter(customer_id__in=group).delete()
    SourceIdentity.objects.filter(customer_id__in=group).delete()
    PlaceholderState.objects.filter(customer_id__in=group).delete()
    Customer.objects.filter(id__in=group).exclude(id=root.id).update(merged_into=None)
    Customer.objects.filter(id__in=group).delete()
    for cid in group:
        Tombstone.objects.update_or_create(customer_id=cid, defaults={"erased_at": now, "reason": reason[:32]})
        data_keys.cache_clear(cid)
    _governance(
        kind="customer.erased", actor=actor, subject=root.id,
        details={"reason": reason[:32], "aliases": [str(c) for c in group[1:]]},
    )
    transaction.on_commit(lambda: _cache_clear_all(group))


def _cache_clear_all(customer_ids: list[UUID]) -> None:
    for cid in customer_ids:
        data_keys.cache_clear(cid)


def _seal_aad(customer_id: UUID, label: str, key_version: int) -> bytes:
    return f"seal|{customer_id}|{label}|{key_version}".encode()


def customer_seal(*, customer_id: UUID, label: str, payload: dict,
                  wrapped_key: dict[str, Any] | None = None) -> bytes:
    """Encrypt a JSON payload under the customer's own data key (crypto-shredded by erasure).

    Uses the key of ``customer_id`` itself (an alias keeps its key until erasure). No database write.
    ``wrapped_key``: the values of ``selectors.customer_key_expressions`` as read by the caller's own query
    in this transaction (saves the key read); without it the key row is read here. No key row (erased):
    ``DecryptionError``.
    """
    if wrapped_key is None:
        key = data_keys.key_get(customer_id)
    else:
        key = _key_from_values(customer_id, wrapped_key)
    plaintext = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return envelope.encrypt(key.dek, plaintext, _seal_aad(customer_id, label, key.key_version))


def _key_from_values(customer_id: UUID, values: dict[str, Any]) -> DataKey:
    from .selectors import KEY_EXPRESSION_NAMES

    kek_id, wrapped, key_version = (values.get(name) for name in KEY_EXPRESSION_NAMES)
    if kek_id is None or wrapped is None or key_version is None:
        raise DecryptionError()
    row = CustomerKey(customer_id=customer_id, kek_id=kek_id, wrapped=bytes(wrapped), key_version=int(key_version))
    return DataKey(customer_id, data_keys.unwrap(row), row.key_version)


def customer_seal_many(*, items: list[tuple[UUID, str, dict | bytes]]) -> dict[UUID, bytes]:
    """``customer_seal`` for many customers with one key query (batch rescoring).

    A payload given as ``bytes`` is taken as its JSON encoding already made the way ``customer_seal``
    makes it (sorted keys, compact). Customers without a data key (erased meanwhile) are left out of the
    result. No database write.
    """
    keys = data_keys.key_get_many(list({UUID(str(customer_id)) for customer_id, _, _ in items}))
    sealed: dict[UUID, bytes] = {}
    for customer_id, label, payload in items:
        key = keys.get(UUID(str(customer_id)))
        if key is None:
            continue
        plaintext = payload if isinstance(payload, bytes) else json.dumps(
            payload, sort_keys=True, separators=(",", ":"), default=str).encode()
        sealed[customer_id] = envelope.encrypt(key.dek, plaintext, _seal_aad(customer_id, label, key.key_version))
    return sealed


@transaction.atomic
def customer_mark_fresh(*, customer_ids: list[UUID], as_of: datetime | None = None) -> None:
    """Clear the stale flag (after rescoring). With ``as_of``, only flags set at or before it are cleared."""
    from profiles.aggregates import ids_in

    qs = Customer.objects.filter(ids_in("id", list(customer_ids)), stale_since__isnull=False)
    if as_of is not None:
        qs = qs.filter(stale_since__lte=as_of)
    qs.update(stale_since=None)


# --------------------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------------------


def _parse_datetime(value: Any, field: str, *, required: bool = True) -> datetime | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordInvalid(field, "datetime") from exc
    else:
        raise RecordInvalid(field, "datetime")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > timezone.now() + timedelta(days=1):
        raise RecordInvalid(field, "in_future")
    if parsed.date() < _earliest_fact_date():  # plausibility bound (FACT_EARLIEST_DATE)
        raise RecordInvalid(field, "too_early")
    return parsed


def _earliest_fact_date() -> date:
    return date.fromisoformat(str(getattr(settings, "FACT_EARLIEST_DATE", "1970-01-01")))


def _bounded_amount(value: Decimal | None, field: str) -> Decimal | None:
    """Plausibility bounds of money amounts on facts (FACT_AMOUNT_MIN / FACT_AMOUNT_MAX)."""
    if value is None:
        return None
    if value < Decimal(str(getattr(settings, "FACT_AMOUNT_MIN", -100_000))):
        raise RecordInvalid(field, "min_value")
    if value > Decimal(str(getattr(settings, "FACT_AMOUNT_MAX", 10_000_000))):
        raise RecordInvalid(field, "max_value")
    return value


def _parse_decimal(value: Any, field: str, *, required: bool = True, minimum: Decimal | None = None
                   ) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, float | bool):
        value = str(value) if not isinstance(value, bool) else "x"
    try:
        parsed = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise RecordInvalid(field, "invalid") from exc
    if not parsed.is_finite() or abs(parsed) >= Decimal("1e12"):
        raise RecordInvalid(field, "invalid")
    if minimum is not None and parsed < minimum:
        raise RecordInvalid(field, "min_value")
    return parsed.quantize(Decimal("0.01"))


def _parse_int(value: Any, field: str, *, required: bool = True, minimum: int | None = None,
               maximum: int | None = None) -> int | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, bool):
        raise RecordInvalid(field, "invalid")
    try:
        parsed = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError as exc:
        raise RecordInvalid(field, "invalid") from exc
    if minimum is not None and parsed < minimum:
        raise RecordInvalid(field, "min_value")
    if maximum is not None and parsed > maximum:
        raise RecordInvalid(field, "max_value")
    return parsed


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _parse_bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RecordInvalid(field, "invalid")


def _parse_choice(value: Any, field: str, choices: Iterable[str], *, default: str | None = None) -> str:
    if value is None or value == "":
        if default is None:
            raise RecordInvalid(field, "required")
        return default
    text = str(value).strip().lower()
    if text not in set(choices):
        raise RecordInvalid(field, "invalid_choice")
    return text


def _parse_label(value: Any, field: str, *, max_length: int = 64) -> str:
    """A short non-personal label (a product or ticket category), stored unencrypted: a direct identifier
    in it is refused (``personal_data``), never stored."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(field, "invalid")
    text = value.strip()
    if len(text) > max_length:
        raise RecordInvalid(field, "max_length")
    if identifier_kind(text) is not None:
        raise RecordInvalid(field, "personal_data")
    return text


MAX_FREE_TEXT = 20_000


def _parse_free_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(field, "invalid")
    if len(value) > MAX_FREE_TEXT:
        raise RecordInvalid(field, "max_length")
    return value.strip()


@dataclass(frozen=True)
class _FactKind:
    model: Any
    text_field: str | None  # model column for the pseudonymized text
    text_input: str | None  # input key holding the free text
    parse: Callable[[dict[str, Any]], dict[str, Any]]
    external_id_required: bool = True


def _parse_order(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": _parse_choice(r.get("kind"), "kind", Order.Kind.values, default="order"),
        "ordered_at": _parse_datetime(r.get("ordered_at"), "ordered_at"),
        "amount": _bounded_amount(_parse_decimal(r.get("amount"), "amount"), "amount"),
        "margin": _bounded_amount(_parse_decimal(r.get("margin"), "margin", required=False), "margin"),
        "currency": _parse_currency(r.get("currency")),
        "returned": _parse_bool(r.get("returned"), "returned"),
        "days_late": _parse_int(r.get("days_late"), "days_late", required=False, minimum=0, maximum=3650),
        "category": _parse_label(r.get("category"), "category"),
    }


def _parse_currency(value: Any) -> str:
    if value is None or value == "":
        return "EUR"
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        raise RecordInvalid("currency", "invalid")
    return value.strip().upper()


def _parse_interaction(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": _parse_choice(r.get("kind"), "kind", Interaction.Kind.values),
        "at": _parse_datetime(r.get("at"), "at"),
        "count": _parse_int(r.get("count"), "count", required=False, minimum=1, maximum=1_000_000) or 1,
    }


def _parse_ticket(r: dict[str, Any]) -> dict[str, Any]:
    opened = _parse_datetime(r.get("opened_at"), "opened_at")
    closed = _parse_datetime(r.get("closed_at"), "closed_at", required=False)
    if closed is not None and opened is not None and closed < opened:
        raise RecordInvalid("closed_at", "before_opened")
    first_response = _parse_datetime(r.get("first_response_at"), "first_response_at", required=False)
    if first_response is not None and opened is not None and first_response < opened:
        raise RecordInvalid("first_response_at", "before_opened")
    return {
        "opened_at": opened,
        "closed_at": closed,
        "first_response_at": first_response,
        "channel": _parse_choice(r.get("channel"), "channel", Ticket.Channel.values, default="other"),
        "escalated": _parse_bool(r.get("escalated"), "escalated"),
        "satisfaction": _parse_int(r.get("satisfaction"), "satisfaction", required=False, minimum=1, maximum=5),
        "category": _parse_label(r.get("category"), "category"),
    }


def _parse_note(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": _parse_choice(r.get("kind"), "kind", Note.Kind.values, default="note"),
        "at": _parse_datetime(r.get("at"), "at"),
    }


def _parse_review(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": _parse_datetime(r.get("at"), "at"),
        "rating": _parse_int(r.get("rating"), "rating", minimum=1, maximum=5),
    }


def _parse_nps(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": _parse_datetime(r.get("at"), "at"),
        "score": _parse_int(r.get("score"), "score", minimum=0, maximum=10),
    }


def _parse_referral(r: dict[str, Any]) -> dict[str, Any]:
    return {"at": _parse_datetime(r.get("at"), "at"), "converted": _parse_bool(r.get("converted"), "converted")}


FACT_KINDS: dict[str, _FactKind] = {
    "orders": _FactKind(Order, None, None, _parse_order),
    "interactions": _FactKind(Interaction, None, None, _parse_interaction, external_id_required=False),
    "tickets": _FactKind(Ticket, "text_pseudonymized", "text", _parse_ticket),
    "notes": _FactKind(Note, "text_pseudonymized", "text", _parse_note),
    "reviews": _FactKind(Review, "text_pseudonymized", "text", _parse_review),
    "nps": _FactKind(NpsAnswer, "comment_pseudonymized", "comment", _parse_nps),
    "referrals": _FactKind(Referral, None, None, _parse_referral),
}


def _original_text_field(model: Any, external_digest: str) -> str:
    return f"text:{model.__name__.lower()}:{external_digest}"


# Customer references and alias resolution, set-based: a batch resolves all its references with one query per
# kind of reference (plus one per level of merge aliases, normally none or one).

_IN_CHUNK = 500  # ids per ``__in`` query (SQLite's bound-parameter limit, PostgreSQL plan size)


def _chunked(items: Iterable[Any], size: int = _IN_CHUNK) -> Iterable[list[Any]]:
    seq = list(items)
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _by_source(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """``(source, digest)`` pairs grouped by source (queries filter on both columns of the unique index)."""
    grouped: dict[str, set[str]] = {}
    for source, digest in pairs:
        grouped.setdefault(source, set()).add(digest)
    return {source: sorted(digests) for source, digests in sorted(grouped.items())}


@dataclass(frozen=True)
class _Ref:
    """A syntactically valid customer reference of a fact record (no database access yet)."""

    kind: str  # "id" | "source" | "email"
    value: Any  # UUID | (source, digest) | digest
    field: str  # the record field reported when the customer is unknown


def _parse_customer_ref(record: dict[str, Any], source: str) -> _Ref:
    if record.get("customer_id"):
        try:
            cid = UUID(str(record["customer_id"]))
        except ValueError as exc:
            raise RecordInvalid("customer_id", "invalid") from exc
        return _Ref("id", cid, "customer_id")
    if record.get("customer_external_id"):
        customer_source = _check_source(record.get("customer_source") or source, "customer_source")
        ext = _check_external_id(record["customer_external_id"], "customer_external_id")
        return _Ref("source", (customer_source, blind_index.source_index(customer_source, ext)),
                    "customer_external_id")
    if record.get("customer_email"):
        try:
            digest = blind_index.email_index(str(record["customer_email"]))
        except InvalidIdentifier as exc:
            raise RecordInvalid("customer_email", "invalid") from exc
        return _Ref("email", digest, "customer_email")
    raise RecordInvalid("customer_external_id", "required")


def _resolve_aliases(customer_ids: Iterable[UUID], parents: dict[UUID, UUID | None] | None = None
                     ) -> dict[UUID, UUID]:
    """``{id: surviving customer id}`` (``_resolve_alias`` for many ids). ``parents`` may hold already
    fetched ``id -> merged_into_id`` pairs."""
    ids = set(customer_ids)
    parents = dict(parents or {})
    todo = ids - parents.keys()
    for _ in range(16):
        for chunk in _chunked(todo):
            parents.update(Customer.objects.filter(id__in=chunk).values_list("id", "merged_into_id"))
            parents.update(dict.fromkeys(set(chunk) - parents.keys()))  # unknown ids end the chain
        todo = {t for t in parents.values() if t is not None and t not in parents}
        if not todo:
            break

    def root(cid: UUID) -> UUID:
        current = cid
        for _ in range(16):
            target = parents.get(current)
            if target is None:
                return current
            current = target
        return current

    return {cid: root(cid) for cid in ids}


def _resolve_refs(refs: Iterable[_Ref]) -> dict[_Ref, UUID]:
    """The customer of every known reference (unknown ones are absent). Customer ids and source ids are
    resolved through merge aliases to the surviving customer; e-mail entries always point to a survivor."""
    refs = set(refs)
    ids = {r.value for r in refs if r.kind == "id"}
    pairs = {r.value for r in refs if r.kind == "source"}
    emails = {r.value for r in refs if r.kind == "email"}
    parents: dict[UUID, UUID | None] = {}
    for chunk in _chunked(ids):
        parents.update(Customer.objects.filter(id__in=chunk).values_list("id", "merged_into_id"))
    owners: dict[tuple[str, str], UUID] = {}
    for src, digests in _by_source(pairs).items():
        for chunk in _chunked(digests):
            owners.update(((src, digest), cid) for digest, cid in SourceIdentity.objects.filter(
                source=src, digest__in=chunk).values_list("digest", "customer_id"))
    by_email: dict[str, UUID] = {}
    for chunk in _chunked(emails):
        by_email.update(BlindIndexEntry.objects.filter(kind="email", digest__in=chunk).values_list(
            "digest", "customer_id"))
    existing_ids = ids & parents.keys()
    roots = _resolve_aliases(existing_ids | set(owners.values()), parents)
    resolved: dict[_Ref, UUID] = {}
    for ref in refs:
        if ref.kind == "id" and ref.value in existing_ids:
            resolved[ref] = roots[ref.value]
        elif ref.kind == "source" and ref.value in owners:
            resolved[ref] = roots[owners[ref.value]]
        elif ref.kind == "email" and ref.value in by_email:
            resolved[ref] = by_email[ref.value]
    return resolved


@dataclass
class _Prepared:
    index: int
    customer_id: UUID
    source: str
    digest: str
    values: dict[str, Any]
    text: str | None


def _fact_digest(kind: str, source: str, external_id: str | None, customer_id: UUID, values: dict[str, Any]) -> str:
    if external_id is not None:
        return blind_index.source_index(source, external_id)
    natural = f"{customer_id}|{values['kind']}|{values['at'].isoformat()}"
    return blind_index.blind_index(f"fact:{kind}", f"{source}|{natural}")


def _prepare_facts(kind: str, spec: _FactKind, records: Sequence[Any]
                   ) -> tuple[list[_Prepared], dict[int, FactResult]]:
    """Validate every record in Python, then resolve all customer references with a few queries.

    The field and code reported for a bad record are those the checks give in this order: record shape,
    ``source``, customer reference (syntax, then existence), the kind's fields, free text, ``external_id``.
    """
    rejected: dict[int, FactResult] = {}
    parsed: list[tuple[int, str, _Ref, RecordInvalid | None, dict[str, Any], str | None, str | None]] = []
    for index, record in enumerate(records):
        try:
            if not isinstance(record, dict):
                raise RecordInvalid("record", "invalid")
            source = _check_source(record.get("source") or "", "source")
            ref = _parse_customer_ref(record, source)
        except RecordInvalid as exc:
            rejected[index] = FactResult(index=index, outcome="rejected", field=exc.field, code=exc.field_code)
            continue
        deferred: RecordInvalid | None = None
        values: dict[str, Any] = {}
        text: str | None = None
        external_id: str | None = None
        try:
            values = spec.parse(record)
            text = _parse_free_text(record.get(spec.text_input), spec.text_input) if spec.text_input else None
            if record.get("external_id") not in (None, ""):
                external_id = _check_external_id(record.get("external_id"))
            elif spec.external_id_required:
                raise RecordInvalid("external_id", "required")
        except RecordInvalid as exc:
            deferred = exc
        parsed.append((index, source, ref, deferred, values, text, external_id))

    customers = _resolve_refs(ref for _, _, ref, _, _, _, _ in parsed)
    prepared: list[_Prepared] = []
    for index, source, ref, deferred, values, text, external_id in parsed:
        customer_id = customers.get(ref)
        if customer_id is None:
            rejected[index] = FactResult(index=index, outcome="rejected", field=ref.field, code="unknown_customer")
        elif deferred is not None:
            rejected[index] = FactResult(index=index, outcome="rejected", field=deferred.field,
                                         code=deferred.field_code)
        else:
            prepared.append(_Prepared(index=index, customer_id=customer_id, source=source,
                                      digest=_fact_digest(kind, source, external_id, customer_id, values),
                                      values=values, text=text))
    return prepared, rejected


# Placeholder states, known identifiers and Presidio: loaded for all customers of a batch at once.


@dataclass
class _TextContext:
    """What pseudonymizing a batch produced: texts by record index, placeholder states (as updated and as
    loaded, JSON) and which customers already had a stored state."""

    texts: dict[int, str]
    states: dict[UUID, dict[str, str]]
    before: dict[UUID, str]
    stored: set[UUID]


def _known_identifiers(ids: Sequence[UUID], keys: dict[UUID, DataKey]) -> dict[UUID, Any]:
    """The customers' own identifiers (decrypted fields and source ids, one query each per chunk), which
    the pseudonymizer must always redact in their texts. Kept in memory for the call only."""
    from .selectors import known_identifiers_from_fields

    fields: dict[UUID, dict[str, str]] = {cid: {} for cid in ids}
    external_ids: dict[UUID, list[str]] = {cid: [] for cid in ids}
    for chunk in _chunked(list(ids)):
        for field_row in PersonalField.objects.filter(customer_id__in=chunk).order_by("customer_id", "id"):
            fields[field_row.customer_id][field_row.field] = keys[field_row.customer_id].decrypt_field(
                field_row.field, field_row.ciphertext, field_row.key_version)
        for identity in SourceIdentity.objects.filter(customer_id__in=chunk).order_by("customer_id", "id"):
            external_ids[identity.customer_id].append(keys[identity.customer_id].decrypt_field(
                f"source:{identity.source}", identity.external_id_encrypted, identity.key_version))
    return {cid: known_identifiers_from_fields(fields[cid], external_ids[cid]) for cid in ids}


def free_text_scrub(*, text: str, customer_id: UUID | None = None) -> str:
    """Pseudonymize free text typed by an operator (a DPO's reason, rationale, justification or breach
    description) before it is stored: the same Presidio pipeline as customer texts, with the customer's
    own identifiers always redacted when the text concerns one customer. Placeholders are numbered per
    text (no state is kept). An unknown or erased customer is scrubbed without known identifiers."""
    from .pseudonymizer import get_pseudonymizer

    if not isinstance(text, str) or not text.strip():
        return text if isinstance(text, str) else ""
    known = None
    if customer_id is not None:
        keys = data_keys.key_get_many([customer_id])
        if customer_id in keys:
            known = _known_identifiers([customer_id], keys)[customer_id]
    return get_pseudonymizer().pseudonymize(text, known=known).text


def _pseudonymize(items: list[_Prepared], keys: dict[UUID, DataKey], *, store_language: bool = False
                 ) -> _TextContext:
    """One Presidio batch call for all texts; states, fields and source ids read with one query each."""
    from .language import SUPPORTED_LANGUAGES
    from .pseudonymizer import get_pseudonymizer

    with_text = [p for p in items if p.text]
    if not with_text:
        return _TextContext({}, {}, {}, set())
    ids = sorted({p.customer_id for p in with_text}, key=str)
    states: dict[UUID, dict[str, str]] = {cid: {} for cid in ids}
    stored: set[UUID] = set()
    for chunk in _chunked(ids):
        for row in PlaceholderState.objects.filter(customer_id__in=chunk):
            states[row.customer_id] = json.loads(
                keys[row.customer_id].decrypt_field("placeholder_state", row.ciphertext, row.key_version))
            stored.add(row.customer_id)
    before = {cid: json.dumps(state, sort_keys=True) for cid, state in states.items()}
    known = _known_identifiers(ids, keys)
    # Language first (issue 18): each text's language, the customer's country as the prior and as the
    # default phone region; stored with the text where the model has a ``language`` field (tickets).
    pseudonymizer = get_pseudonymizer()
    countries = dict(Customer.objects.filter(id__in=ids).values_list("id", "country"))
    locales = [countries.get(p.customer_id) or None for p in with_text]
    # A language the ticket's mood hook already detected (same detector, customer's language as prior) is
    # reused: one detection per text, and the stored language, mood and recognizers agree.
    languages = [p.values.get("language") if p.values.get("language") in SUPPORTED_LANGUAGES
                 else pseudonymizer.detect_language(p.text or "", locale=loc)
                 for p, loc in zip(with_text, locales, strict=True)]
    results = pseudonymizer.pseudonymize_batch(
        [p.text or "" for p in with_text],
        known=[known[p.customer_id] for p in with_text],
        placeholder_states=[states[p.customer_id] for p in with_text],
        language=languages,
        locale=locales,
    )
    if store_language:
        for p, lang in zip(with_text, languages, strict=True):
            p.values["language"] = lang
    texts = {p.index: r.text for p, r in zip(with_text, results, strict=True)}
    return _TextContext(texts, states, before, stored)


def _save_placeholder_states(ctx: _TextContext, keys: dict[UUID, DataKey]) -> None:
    """Store the states that changed: one bulk UPDATE for existing rows, one bulk INSERT for new ones."""
    now = timezone.now()
    changed = [
        PlaceholderState(customer_id=cid, ciphertext=keys[cid].encrypt_field(
            "placeholder_state", json.dumps(state, sort_keys=True)), key_version=keys[cid].key_version,
            updated_at=now)
        for cid, state in ctx.states.items() if json.dumps(state, sort_keys=True) != ctx.before.get(cid)
    ]
    update = [row for row in changed if row.customer_id in ctx.stored]
    create = [row for row in changed if row.customer_id not in ctx.stored]
    if update:
        PlaceholderState.objects.bulk_update(update, ["ciphertext", "key_version", "updated_at"], batch_size=200)
    if create:
        PlaceholderState.objects.bulk_create(create, batch_size=500)


# Writing facts: set-based (one SELECT of the existing facts, one bulk INSERT, one bulk UPDATE) with the
# per-record path (one savepoint per record) as the fallback when the bulk write fails.


def _values_equal(fact: Any, values: dict[str, Any]) -> bool:
    return all(getattr(fact, name) == value for name, value in values.items())


def _fact_values(spec: _FactKind, p: _Prepared, pseudonymized: str | None) -> tuple[dict[str, Any], bool]:
    """The model values of a record and whether its original text is to be kept (encrypted)."""
    values = dict(p.values)
    values["customer_id"] = p.customer_id
    keep_original = False
    if spec.text_field is not None:
        values[spec.text_field] = pseudonymized or ""
        keep_original = bool(settings.KEEP_ORIGINAL_TEXT.get(p.source, False)) and bool(p.text)
    return values, keep_original


def _upsert_in_memory(spec: _FactKind, fact: Any, p: _Prepared, values: dict[str, Any], keep_original: bool,
                      key: DataKey | None) -> tuple[bool, UUID]:
    """Apply a record to a fact instance (stored or planned). Returns (changed, customer before)."""
    field = _original_text_field(spec.model, p.digest)
    same_original = True
    if spec.text_field is not None:
        old = fact.text_original_encrypted
        if keep_original:
            try:
                same_original = (
                    old is not None and fact.customer_id == p.customer_id
                    and key is not None and key.decrypt_field(field, old, fact.key_version) == p.text
                )
            except DecryptionError:
                same_original = False
        else:
            same_original = old is None
    previous_customer = fact.customer_id
    if same_original and _values_equal(fact, values):
        return False, previous_customer
    for name, value in values.items():
        setattr(fact, name, value)
    if spec.text_field is not None:
        if keep_original and key is not None:
            fact.text_original_encrypted = key.encrypt_field(field, p.text or "")
            fact.key_version = key.key_version
        else:
            fact.text_original_encrypted = None
            fact.key_version = None
    return True, previous_customer


def _new_fact(spec: _FactKind, p: _Prepared, values: dict[str, Any], keep_original: bool, key: DataKey | None
              ) -> Any:
    values = dict(values)
    if spec.text_field is not None and keep_original and key is not None:
        values["text_original_encrypted"] = key.encrypt_field(_original_text_field(spec.model, p.digest), p.text or "")
        values["key_version"] = key.key_version
    return spec.model(source=p.source, external_digest=p.digest, **values)


def _write_fact(kind: str, spec: _FactKind, p: _Prepared, pseudonymized: str | None, key: DataKey | None
                ) -> tuple[str, int, set[UUID]]:
    """Per-record path: upsert one fact. Returns (outcome, fact id, customers whose facts changed)."""
    model = spec.model
    values, keep_original = _fact_values(spec, p, pseudonymized)
    existing = model.objects.select_for_update().filter(source=p.source, external_digest=p.digest).first()
    if existing is not None:
        changed, previous_customer = _upsert_in_memory(spec, existing, p, values, keep_original, key)
        if not changed:
            return "unchanged", existing.pk, set()
        existing.save()
        return "updated", existing.pk, {previous_customer, p.customer_id}
    fact = _new_fact(spec, p, values, keep_original, key)
    fact.save(force_insert=True)
    return "created", fact.pk, {p.customer_id}


def _write_facts_per_record(kind: str, spec: _FactKind, prepared: list[_Prepared], texts: dict[int, str],
                            keys: dict[UUID, DataKey]) -> tuple[dict[int, FactResult], set[UUID]]:
    results: dict[int, FactResult] = {}
    touched: set[UUID] = set()
    for p in prepared:
        try:
            with transaction.atomic():
                outcome, fact_id, changed = _write_fact(kind, spec, p, texts.get(p.index), keys.get(p.customer_id))
            results[p.index] = FactResult(index=p.index, outcome=outcome, customer_id=p.customer_id, fact_id=fact_id)
            touched |= changed
        except RecordInvalid as exc:
            results[p.index] = FactResult(index=p.index, outcome="rejected", field=exc.field, code=exc.field_code)
        except IntegrityError:
            results[p.index] = FactResult(index=p.index, outcome="rejected", field="external_id", code="conflict")
    return results, touched


def _write_facts_bulk(kind: str, spec: _FactKind, prepared: list[_Prepared], texts: dict[int, str],
                      keys: dict[UUID, DataKey]) -> tuple[dict[int, FactResult], set[UUID]]:
    """Set-based upsert with the same outcomes as the per-record path applied in record order (a key seen
    twice in one batch: the later record updates, or leaves unchanged, what the earlier one planned)."""
    model = spec.model
    existing: dict[tuple[str, str], Any] = {}
    for source, digests in _by_source((p.source, p.digest) for p in prepared).items():
        for chunk in _chunked(digests):  # (source, external_digest) is the unique index
            for fact in model.objects.select_for_update().filter(source=source, external_digest__in=chunk):
                existing[(source, fact.external_digest)] = fact
    planned: dict[tuple[str, str], Any] = {}
    to_create: list[Any] = []
    to_update: dict[tuple[str, str], Any] = {}
    outcomes: list[tuple[_Prepared, str, Any]] = []
    touched: set[UUID] = set()
    for p in prepared:
        values, keep_original = _fact_values(spec, p, texts.get(p.index))
        key = keys.get(p.customer_id)
        fact_key = (p.source, p.digest)
        fact = planned.get(fact_key) or existing.get(fact_key)
        if fact is None:
            fact = _new_fact(spec, p, values, keep_original, key)
            planned[fact_key] = fact
            to_create.append(fact)
            touched.add(p.customer_id)
            outcomes.append((p, "created", fact))
            continue
        planned[fact_key] = fact
        changed, previous_customer = _upsert_in_memory(spec, fact, p, values, keep_original, key)
        if not changed:
            outcomes.append((p, "unchanged", fact))
            continue
        if fact_key in existing:
            to_update[fact_key] = fact
        touched |= {previous_customer, p.customer_id}
        outcomes.append((p, "updated", fact))
    if to_create:
        model.objects.bulk_create(to_create, batch_size=500)
        missing = [f for f in to_create if f.pk is None]  # backends that cannot return ids from bulk inserts
        if missing:
            ids: dict[tuple[str, str], int] = {}
            for source, digests in _by_source((f.source, f.external_digest) for f in missing).items():
                for chunk in _chunked(digests):
                    ids.update(((source, digest), pk) for digest, pk in model.objects.filter(
                        source=source, external_digest__in=chunk).values_list("external_digest", "pk"))
            for f in missing:
                f.pk = ids[(f.source, f.external_digest)]
    if to_update:
        columns = {"customer" if name == "customer_id" else name
                   for p, outcome, _ in outcomes if outcome == "updated" for name in p.values}
        columns |= {"customer"}
        if spec.text_field is not None:
            columns |= {spec.text_field, "text_original_encrypted", "key_version"}
        model.objects.bulk_update(list(to_update.values()), sorted(columns), batch_size=200)
    results = {
        p.index: FactResult(index=p.index, outcome=outcome, customer_id=p.customer_id, fact_id=fact.pk)
        for p, outcome, fact in outcomes
    }
    return results, touched


@transaction.atomic
def facts_ingest_batch(*, kind: str, records: Sequence[dict[str, Any]], actor: str) -> list[FactResult]:
    """Upsert many facts of one kind in one transaction; bad records are rejected with a field and a code and
    nothing is written for them. Free text of the whole batch is pseudonymized with one Presidio batch call.

    Set-based: records are validated in Python, customer references resolved with one query per kind of
    reference, existing facts read with one query, new ones inserted and changed ones updated in bulk, the
    customers marked stale with one UPDATE and one ``customer_facts_changed`` signal sent for the batch. If
    the bulk write fails (e.g. a concurrent writer inserted the same fact), it is rolled back and the batch
    is written record by record, each in its own savepoint.

    Each record: ``source``, ``external_id`` (optional for interactions), one customer reference
    (``customer_id`` | ``customer_external_id`` [+ ``customer_source``] | ``customer_email``) and the
    kind's fields (see ``FACT_KINDS`` and the README's CSV formats).
    """
    spec = FACT_KINDS.get(kind)
    if spec is None:
        raise ApplicationError("Unknown fact kind.", code="unknown_kind")
    prepared, results = _prepare_facts(kind, spec, records)
    customer_ids = sorted({p.customer_id for p in prepared}, key=str)
    # Lock the customers (placeholder state, staleness) in a stable order.
    for chunk in _chunked(customer_ids):
        list(Customer.objects.select_for_update().filter(id__in=chunk).order_by("id").values_list("id"))
    keys = data_keys.key_get_many(customer_ids) if spec.text_field and customer_ids else {}
    if kind == "tickets":  # language and mood of the original text, in memory, before pseudonymization
        from .mood import tickets_mood_apply

        tickets_mood_apply(prepared, keys)
    store_language = any(f.name == "language" for f in spec.model._meta.concrete_fields)
    ctx = (_pseudonymize(prepared, keys, store_language=store_language) if spec.text_field
           else _TextContext({}, {}, {}, set()))
    try:
        with transaction.atomic():
            written, touched = _write_facts_bulk(kind, spec, prepared, ctx.texts, keys)
    except DatabaseError:
        written, touched = _write_facts_per_record(kind, spec, prepared, ctx.texts, keys)
    results.update(written)
    _save_placeholder_states(ctx, keys)
    _mark_stale(touched)
    return [results[i] for i in range(len(records))]


def _ingest_one(kind: str, record: dict[str, Any], actor: str) -> FactResult:
    result = facts_ingest_batch(kind=kind, records=[record], actor=actor)[0]
    if result.outcome == "rejected":
        raise RecordInvalid(result.field or "record", result.code or "invalid")
    return result


def _customer_ref(customer_id: UUID | None, customer_external_id: str | None, customer_source: str | None,
                  customer_email: str | None) -> dict[str, Any]:
    return {"customer_id": customer_id, "customer_external_id": customer_external_id,
            "customer_source": customer_source, "customer_email": customer_email}


@transaction.atomic
def order_ingest(
    *, source: str, external_id: str, ordered_at: datetime, amount: Decimal | str | int, actor: str,
    currency: str = "EUR", margin: Decimal | str | None = None, returned: bool = False, days_late: int | None = None,
    category: str = "", kind: str = "order", customer_id: UUID | None = None,
    customer_external_id: str | None = None, customer_source: str | None = None, customer_email: str | None = None,
) -> FactResult:
    """Upsert one order or invoice (by ``(source, external_id)``)."""
    return _ingest_one("orders", {
        "source": source, "external_id": external_id, "ordered_at": ordered_at, "amount": amount,
        "currency": currency, "margin": margin, "returned": returned, "days_late": days_late,
        "category": category, "kind": kind,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def interaction_ingest(
    *, source: str, kind: str, at: datetime, actor: str, count: int = 1, external_id: str | None = None,
    customer_id: UUID | None = None, customer_external_id: str | None = None, customer_source: str | None = None,
    customer_email: str | None = None,
) -> FactResult:
    """Upsert one interaction; without ``external_id`` the key is (customer, kind, at)."""
    return _ingest_one("interactions", {
        "source": source, "kind": kind, "at": at, "count": count, "external_id": external_id,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def ticket_ingest(
    *, source: str, external_id: str, opened_at: datetime, actor: str, text: str = "",
    closed_at: datetime | None = None, channel: str = "other", escalated: bool = False,
    satisfaction: int | None = None, category: str = "", customer_id: UUID | None = None,
    customer_external_id: str | None = None, customer_source: str | None = None, customer_email: str | None = None,
    first_response_at: datetime | None = None,
) -> FactResult:
    """Upsert one support ticket; its text is pseudonymized before storage."""
    return _ingest_one("tickets", {
        "source": source, "external_id": external_id, "opened_at": opened_at, "closed_at": closed_at,
        "first_response_at": first_response_at,
        "channel": channel, "escalated": escalated, "satisfaction": satisfaction, "category": category,
        "text": text, **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def note_ingest(
    *, source: str, external_id: str, at: datetime, text: str, actor: str, kind: str = "note",
    customer_id: UUID | None = None, customer_external_id: str | None = None, customer_source: str | None = None,
    customer_email: str | None = None,
) -> FactResult:
    """Upsert one note or call transcript; its text is pseudonymized before storage."""
    return _ingest_one("notes", {
        "source": source, "external_id": external_id, "at": at, "text": text, "kind": kind,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def review_ingest(
    *, source: str, external_id: str, at: datetime, rating: int, actor: str, text: str = "",
    customer_id: UUID | None = None, customer_external_id: str | None = None, customer_source: str | None = None,
    customer_email: str | None = None,
) -> FactResult:
    """Upsert one review (rating 1-5); its text is pseudonymized before storage."""
    return _ingest_one("reviews", {
        "source": source, "external_id": external_id, "at": at, "rating": rating, "text": text,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def nps_ingest(
    *, source: str, external_id: str, at: datetime, score: int, actor: str, comment: str = "",
    customer_id: UUID | None = None, customer_external_id: str | None = None, customer_source: str | None = None,
    customer_email: str | None = None,
) -> FactResult:
    """Upsert one NPS answer (score 0-10); its comment is pseudonymized before storage."""
    return _ingest_one("nps", {
        "source": source, "external_id": external_id, "at": at, "score": score, "comment": comment,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)


@transaction.atomic
def referral_ingest(
    *, source: str, external_id: str, at: datetime, actor: str, converted: bool = False,
    customer_id: UUID | None = None, customer_external_id: str | None = None, customer_source: str | None = None,
    customer_email: str | None = None,
) -> FactResult:
    """Upsert one referral made by the customer."""
    return _ingest_one("referrals", {
        "source": source, "external_id": external_id, "at": at, "converted": converted,
        **_customer_ref(customer_id, customer_external_id, customer_source, customer_email),
    }, actor)



# --------------------------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------------------------

DEFAULT_RETENTION_DAYS = {"orders": 3650, "interactions": 730, "tickets": 1095, "reviews": 1825}
# (retention category, model, date column). Notes and call transcripts follow the tickets category unless
# RETENTION_DAYS has "notes"; NPS answers and referrals follow "reviews" unless it has "nps"/"referrals".
RETENTION_TARGETS: tuple[tuple[str, str, Any, str], ...] = (
    ("orders", "orders", Order, "ordered_at"),
    ("interactions", "interactions", Interaction, "at"),
    ("tickets", "tickets", Ticket, "opened_at"),
    ("notes", "tickets", Note, "at"),
    ("reviews", "reviews", Review, "at"),
    ("nps", "reviews", NpsAnswer, "at"),
    ("referrals", "reviews", Referral, "at"),
)


def retention_days() -> dict[str, int]:
    """``settings.RETENTION_DAYS`` (JSON object, days per data category) over the defaults."""
    configured = getattr(settings, "RETENTION_DAYS", None) or {}
    return {**DEFAULT_RETENTION_DAYS, **{k: int(v) for k, v in configured.items()}}


@transaction.atomic
def _purge_batch(model: Any, column: str, cutoff: datetime, batch_size: int) -> int:
    ids = list(
        model.objects.filter(**{f"{column}__lt": cutoff}).order_by(column, "pk").values_list("pk", flat=True)[:batch_size]
    )
    if not ids:
        return 0
    customers = set(model.objects.filter(pk__in=ids).values_list("customer_id", flat=True))
    deleted, _ = model.objects.filter(pk__in=ids).delete()
    _mark_stale(customers)
    return deleted


def retention_purge(*, now: datetime | None = None, batch_size: int = 1000, max_batches: int | None = None,
                    dry_run: bool = False) -> dict[str, int]:
    """Delete facts older than the retention of their data category, in bounded batches (each its own short
    transaction). Returns the number of rows deleted (or, with ``dry_run``, due) per target."""
    now = now or timezone.now()
    days = retention_days()
    counts: dict[str, int] = {}
    for target, category, model, column in RETENTION_TARGETS:
        cutoff = now - timedelta(days=days.get(target, days[category]))
        if dry_run:
            counts[target] = model.objects.filter(**{f"{column}__lt": cutoff}).count()
            continue
        total = batches = 0
        while max_batches is None or batches < max_batches:
            deleted = _purge_batch(model, column, cutoff, batch_size)
            total += deleted
            batches += 1
            if deleted < batch_size:
                break
        counts[target] = total
    return counts


# --------------------------------------------------------------------------------------------------------
# Key rotation
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    remaining: int
    kek_id: str
    dry_run: bool


@transaction.atomic
def _rotate_batch(active: str, batch_size: int) -> int:
    rows = list(
        CustomerKey.objects.select_for_update(skip_locked=True).exclude(kek_id=active).order_by("customer_id")[:batch_size]
    )
    now = timezone.now()
    for row in rows:
        dek = data_keys.unwrap(row)
        wrapped = envelope.wrap_data_key(dek, customer_id=row.customer_id, kek_id=active)
        row.kek_id, row.wrapped, row.rotated_at = wrapped.kek_id, wrapped.wrapped, now
    CustomerKey.objects.bulk_update(rows, ["kek_id", "wrapped", "rotated_at"])
    return len(rows)


@transaction.atomic
def _rotate_import_keys(active: str) -> int:
    from .models import ImportJob

    jobs = list(ImportJob.objects.select_for_update(skip_locked=True).exclude(kek_id=active)
                .filter(status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]))
    for job in jobs:
        context = f"import:{job.id}"
        dek = envelope.unwrap_data_key(envelope.WrappedKey(job.kek_id, bytes(job.wrapped_key)), customer_id=context)
        wrapped = envelope.wrap_data_key(dek, customer_id=context, kek_id=active)
        job.kek_id, job.wrapped_key = wrapped.kek_id, wrapped.wrapped
        job.save(update_fields=["kek_id", "wrapped_key"])
    return len(jobs)


def keys_rotate(*, actor: str, batch_size: int = 500, dry_run: bool = False,
                progress: Callable[[int], None] | None = None) -> RotationResult:
    """Re-wrap every data key under the active KEK (``settings.KEK_ACTIVE_ID``), online: short transactions
    of ``batch_size`` rows locked with SKIP LOCKED. Field ciphertexts are untouched (the DEKs stay the same).
    Writes a ``keys.rotated`` governance record with the counts."""
    active = envelope.active_kek_id()
    if active not in settings.KEK_KEYS:
        raise ApplicationError("The active key-encryption key is not configured.", code="kek_missing")
    if dry_run:
        remaining = CustomerKey.objects.exclude(kek_id=active).count()
        return RotationResult(rotated=0, remaining=remaining, kek_id=active, dry_run=True)
    rotated = 0
    idle_rounds = 0
    while True:
        n = _rotate_batch(active, batch_size)
        rotated += n
        if progress is not None and n:
            progress(n)
        if n:
            idle_rounds = 0
            continue
        if not CustomerKey.objects.exclude(kek_id=active).exists() or idle_rounds >= 5:
            break
        idle_rounds += 1  # rows locked by concurrent writers: try again shortly
        import time

        time.sleep(0.2)
    imports = _rotate_import_keys(active)
    remaining = CustomerKey.objects.exclude(kek_id=active).count()
    with transaction.atomic():
        _governance(kind="keys.rotated", actor=actor,
                    details={"kek_id": active, "rotated": rotated, "remaining": remaining, "imports": imports})
    return RotationResult(rotated=rotated, remaining=remaining, kek_id=active, dry_run=False)


# --------------------------------------------------------------------------------------------------------
# Bulk ingestion (REST)
# --------------------------------------------------------------------------------------------------------

INGEST_KINDS = ("customers", *FACT_KINDS)


@dataclass(frozen=True)
class BatchRecordResult:
    index: int
    outcome: str
    customer_id: UUID | None = None
    errors: tuple[tuple[str, str], ...] = ()  # (field, code)


@transaction.atomic
def ingest_batch(*, kind: str, records: Sequence[tuple[int, dict[str, Any]]], actor: str, channel: str = "api",
                 prior_rejections: int = 0) -> list[BatchRecordResult]:
    """Ingest already shape-validated records ``(index, record)`` of one kind; each record in its own
    savepoint. Writes one ``import.completed`` governance record with the counts (PII-free)."""
    if kind not in INGEST_KINDS:
        raise ApplicationError("Unknown record kind.", code="unknown_kind")
    results: list[BatchRecordResult] = []
    if kind == "customers":
        batch = customer_ingest_batch(records=[r for _, r in records], actor=actor)
        for (index, _), res in zip(records, batch, strict=True):
            exc = res.error
            if exc is None:
                results.append(BatchRecordResult(index=index, outcome=res.outcome, customer_id=res.customer_id))
            elif isinstance(exc, RecordInvalid):
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((exc.field, exc.field_code),)))
            elif isinstance(exc, MergeConflict):
                field = exc.reason.removeprefix("conflicting_")
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((field, exc.code),)))
            elif isinstance(exc, IdentifierInUse):
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((exc.field, exc.code),)))
            elif isinstance(exc, IntegrityError):  # a concurrent writer took the identifier; can be retried
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=(("record", "conflict"),)))
            else:
                raise exc
    else:
        fact_results = facts_ingest_batch(kind=kind, records=[r for _, r in records], actor=actor)
        for (index, _), fr in zip(records, fact_results, strict=True):
            errors = ((fr.field or "record", fr.code or "invalid"),) if fr.outcome == "rejected" else ()
            results.append(BatchRecordResult(index=index, outcome=fr.outcome, customer_id=fr.customer_id,
                                             errors=errors))
    counts = dict.fromkeys(("created", "updated", "merged", "unchanged", "rejected"), 0)
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    counts["rejected"] += prior_rejections
    _governance(kind="import.completed", actor=actor,
                details={"channel": channel, "kind": kind, "total": len(records) + prior_rejections, **counts})
    return results
