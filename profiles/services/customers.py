"""Customer upserts one at a time, rectification and staleness."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from config.errors import NotFound

from .. import data_keys
from ..attribute_sealing import attributes_put
from ..errors import RecordInvalid
from ..models import (
    BlindIndexEntry,
    Customer,
    PersonalField,
    SourceIdentity,
)
from ..signals import customer_facts_changed
from .crypto import load_fields, write_field
from .governance import record_governance
from .identity import (
    apply_record,
    check_compatible,
    ingest_prepare,
    merge_into,
    resolve_alias,
    set_strong_index,
)
from .validation import FIELD_NAME, STRONG_KINDS, clean_personal, strong_digest


@dataclass(frozen=True)
class IngestResult:
    customer_id: UUID
    outcome: str  # "created" | "updated" | "merged" | "unchanged"


def mark_stale(customer_ids: Iterable[UUID]) -> None:
    ids = sorted(set(customer_ids), key=str)
    if not ids:
        return
    Customer.objects.filter(id__in=ids, stale_since__isnull=True).update(stale_since=timezone.now())
    customer_facts_changed.send(sender=Customer, customer_ids=ids)


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
    p = ingest_prepare(source=source, external_id=external_id, personal=personal, attributes=attributes,
                        feature_attributes=feature_attributes, country=country, audit_attributes=audit_attributes)
    external_id, country, values = p.external_id, p.country, p.values
    attributes, feature_attributes = p.attributes, p.feature_attributes
    record_digests, source_digest = p.record_digests, p.source_digest

    owner_id = SourceIdentity.objects.filter(source=source, digest=source_digest).values_list(
        "customer_id", flat=True
    ).first()
    matched_on: dict[UUID, list[str]] = {}
    if owner_id is not None:
        owner_id = resolve_alias(owner_id)
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
    check_compatible(candidates, owner_id=owner_id, record_digests=record_digests)
    survivor = candidates[0]
    losers = candidates[1:]
    key = data_keys.key_get(survivor.id)
    for loser in losers:
        merge_into(loser=loser, survivor=survivor, survivor_key=key, record_digests=record_digests,
                    matched_on=matched_on.get(loser.id, []), source=source, actor=actor)

    changed = apply_record(
        customer=survivor, key=key, source=source, external_id=external_id, source_digest=source_digest,
        values=values, record_digests=record_digests, attributes=attributes,
        feature_attributes=feature_attributes, country=country,
    )
    outcome = "merged" if (losers or owner_id is None) else ("updated" if changed else "unchanged")
    if outcome != "unchanged":
        survivor.updated_at = timezone.now()
        survivor.save(update_fields=["updated_at"])
        mark_stale([survivor.id])
    return IngestResult(customer_id=survivor.id, outcome=outcome)


def _customer_create(
    *, source: str, external_id: str, source_digest: str, values: dict[str, str], record_digests: dict[str, str],
    attributes: dict, feature_attributes: list[str] | None, country: str | None,
) -> IngestResult:
    customer = Customer(country=country or "", feature_attributes=feature_attributes or [], stale_since=timezone.now())
    key, key_row = data_keys.key_new(customer)
    attributes_put(customer, key, attributes)  # encrypted under the customer's own key (erasure shreds it)
    customer.save(force_insert=True)
    key_row.save(force_insert=True)
    for field, value in values.items():
        write_field(customer.id, key, field, value)
    for kind, digest in record_digests.items():
        BlindIndexEntry.objects.create(customer=customer, kind=kind, digest=digest)
    SourceIdentity.objects.create(
        customer=customer, source=source, digest=source_digest, key_version=key.key_version,
        external_id_encrypted=key.encrypt_field(f"source:{source}", external_id),
    )
    customer_facts_changed.send(sender=Customer, customer_ids=[customer.id])
    return IngestResult(customer_id=customer.id, outcome="created")


@transaction.atomic
def customer_rectify(*, customer_id: UUID, fields: dict[str, str | None], actor: str) -> list[str]:
    """Correct personal fields (``None`` or "" deletes a field). Returns the names of changed fields."""
    customer_id = resolve_alias(customer_id)
    customer = Customer.objects.select_for_update().filter(id=customer_id).first()
    if customer is None:
        raise NotFound()
    if not isinstance(fields, dict):
        raise RecordInvalid("fields", "invalid")
    key = data_keys.key_get(customer.id)
    current = load_fields(customer.id, key)
    changed: list[str] = []
    for field, raw in fields.items():
        if not isinstance(field, str) or not FIELD_NAME.match(field):
            raise RecordInvalid("fields", "invalid_field_name")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if field in current:
                PersonalField.objects.filter(customer=customer, field=field).delete()
                if field in STRONG_KINDS:
                    BlindIndexEntry.objects.filter(customer=customer, kind=field).delete()
                changed.append(field)
            continue
        value = clean_personal({field: raw}, customer.country)[field]
        if current.get(field) == value:
            continue
        if field in STRONG_KINDS:
            set_strong_index(customer.id, field, strong_digest(field, value, customer.country))
        write_field(customer.id, key, field, value)
        changed.append(field)
    if changed:
        changed.sort()
        customer.updated_at = timezone.now()
        customer.save(update_fields=["updated_at"])
        record_governance(kind="customer.rectified", actor=actor, subject=customer.id, details={"fields": changed})
        mark_stale([customer.id])
    return changed


@transaction.atomic
def customer_mark_fresh(*, customer_ids: list[UUID], as_of: datetime | None = None) -> None:
    """Clear the stale flag (after rescoring). With ``as_of``, only flags set at or before it are cleared."""
    from config.lookups import ids_in

    qs = Customer.objects.filter(ids_in("id", list(customer_ids)), stale_since__isnull=False)
    if as_of is not None:
        qs = qs.filter(stale_since__lte=as_of)
    qs.update(stale_since=None)
