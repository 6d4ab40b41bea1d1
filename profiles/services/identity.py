"""Identity resolution: blind-index matching, merging customers, applying a record to its customer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from config import blind_index
from config.blind_index import InvalidIdentifier

from .. import data_keys
from ..attribute_sealing import ATTRIBUTE_FIELDS, attributes_get, attributes_merge, attributes_put
from ..data_keys import DataKey
from ..errors import IdentifierInUse, MergeConflict, RecordInvalid
from ..models import (
    BlindIndexEntry,
    Customer,
    Interaction,
    MergeRecord,
    Note,
    NpsAnswer,
    Order,
    PersonalField,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
)
from ..signals import customers_merged
from .chunking import in_chunks
from .crypto import load_fields, write_field
from .free_text import original_text_field
from .governance import record_governance
from .validation import (
    STRONG_KINDS,
    check_country,
    check_external_id,
    check_source,
    clean_attributes,
    clean_audit_attributes,
    clean_personal,
    normalized_strong_digest,
)


def set_strong_index(customer_id: UUID, kind: str, digest: str) -> None:
    """Bind ``digest`` as the customer's one current identifier of ``kind``."""
    owner = BlindIndexEntry.objects.filter(kind=kind, digest=digest).values_list("customer_id", flat=True).first()
    if owner is not None and owner != customer_id:
        raise IdentifierInUse(kind)
    if owner == customer_id:
        return
    BlindIndexEntry.objects.filter(customer_id=customer_id, kind=kind).delete()
    BlindIndexEntry.objects.create(customer_id=customer_id, kind=kind, digest=digest)


def resolve_alias(customer_id: UUID) -> UUID:
    current = customer_id
    for _ in range(16):
        target = Customer.objects.filter(id=current).values_list("merged_into_id", flat=True).first()
        if target is None:
            return current
        current = target
    return current


@dataclass(frozen=True)
class IngestRecord:
    """One validated ``customer_ingest`` record (normalized values, blind-index digests)."""

    source: str
    external_id: str
    country: str | None
    values: dict[str, str]
    attributes: dict
    feature_attributes: list[str] | None
    record_digests: dict[str, str]
    source_digest: str


def ingest_prepare(
    *, source: str, external_id: str, personal: dict[str, str | None], attributes: dict | None = None,
    feature_attributes: list[str] | None = None, country: str | None = None,
    audit_attributes: dict[str, Any] | None = None,
) -> IngestRecord:
    """Validate and normalize one record (no database access); ``RecordInvalid`` names the first bad field."""
    check_source(source)
    external_id = check_external_id(external_id)
    country = check_country(country)
    values = clean_personal(personal, country)
    attributes, feature_attributes = clean_attributes(attributes, feature_attributes)
    values.update(clean_audit_attributes(audit_attributes, attributes))

    record_digests: dict[str, str] = {}
    for kind in STRONG_KINDS:
        if kind in values:
            try:
                record_digests[kind] = normalized_strong_digest(kind, values[kind], country)
            except InvalidIdentifier as exc:
                raise RecordInvalid(kind, "invalid") from exc
    source_digest = blind_index.source_index(source, external_id)
    return IngestRecord(source=source, external_id=external_id, country=country, values=values,
                         attributes=attributes, feature_attributes=feature_attributes,
                         record_digests=record_digests, source_digest=source_digest)


def _current_digests(customer_id: UUID) -> dict[str, str]:
    return dict(BlindIndexEntry.objects.filter(customer_id=customer_id).values_list("kind", "digest"))


def check_compatible(candidates: list[Customer], *, owner_id: UUID | None, record_digests: dict[str, str]) -> None:
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


def merge_into(
    *, loser: Customer, survivor: Customer, survivor_key: DataKey, record_digests: dict[str, str],
    matched_on: list[str], source: str, actor: str,
) -> None:
    """Join ``loser`` into ``survivor``: re-encrypt what the survivor lacks, re-point identities and facts."""
    loser_key = data_keys.key_get(loser.id)
    survivor_fields = set(PersonalField.objects.filter(customer=survivor).values_list("field", flat=True))
    for field, value in load_fields(loser.id, loser_key).items():
        if field in survivor_fields or field in record_digests:
            continue
        write_field(survivor.id, survivor_key, field, value)
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
                field = original_text_field(model, fact.external_digest)
                original = loser_key.decrypt_field(field, fact.text_original_encrypted, fact.key_version)
                fact.text_original_encrypted = survivor_key.encrypt_field(field, original)
                fact.key_version = survivor_key.key_version
            fact.save(update_fields=["customer", "text_original_encrypted", "key_version"])

    survivor_attributes = attributes_get(survivor, survivor_key)
    loser_attributes = attributes_get(loser, loser_key)
    if not survivor_attributes and loser_attributes:
        attributes_put(survivor, survivor_key, loser_attributes)
        survivor.feature_attributes = loser.feature_attributes
    elif loser_attributes:
        attributes_put(survivor, survivor_key, {**loser_attributes, **survivor_attributes})
    if not survivor.country and loser.country:
        survivor.country = loser.country
    survivor.save(update_fields=[*ATTRIBUTE_FIELDS, "feature_attributes", "country"])

    # The loser keeps its own data key (earlier sealed decision details stay readable until erasure) and
    # becomes an alias. Its placeholder state stays with it: its old texts keep their own numbering.
    Customer.objects.filter(merged_into=loser).update(merged_into=survivor)
    loser.merged_into = survivor
    loser.stale_since = None
    loser.save(update_fields=["merged_into", "stale_since"])
    MergeRecord.objects.create(
        survivor_id=survivor.id, loser_id=loser.id, matched_on=sorted(matched_on), source=source, actor=actor
    )
    record_governance(
        kind="customer.merged", actor=actor, subject=survivor.id,
        details={"survivor": str(survivor.id), "alias": str(loser.id), "matched_on": sorted(matched_on),
                 "source": source},
    )
    customers_merged.send(sender=Customer, survivor_id=survivor.id, loser_ids=[loser.id])


def apply_record(
    *, customer: Customer, key: DataKey, source: str, external_id: str, source_digest: str, values: dict[str, str],
    record_digests: dict[str, str], attributes: dict, feature_attributes: list[str] | None, country: str | None,
) -> bool:
    changed = False
    current = load_fields(customer.id, key)
    for field, value in values.items():
        if current.get(field) != value:
            write_field(customer.id, key, field, value)
            changed = True
    digests = _current_digests(customer.id)
    for kind, digest in record_digests.items():
        if digests.get(kind) != digest:
            set_strong_index(customer.id, kind, digest)
            changed = True
    if not SourceIdentity.objects.filter(source=source, digest=source_digest).exists():
        SourceIdentity.objects.create(
            customer=customer, source=source, digest=source_digest, key_version=key.key_version,
            external_id_encrypted=key.encrypt_field(f"source:{source}", external_id),
        )
        changed = True
    update: list[str] = []
    if attributes_merge(customer, key, attributes):
        update.extend(ATTRIBUTE_FIELDS)
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


def resolve_aliases(customer_ids: Iterable[UUID], parents: dict[UUID, UUID | None] | None = None
                     ) -> dict[UUID, UUID]:
    """``{id: surviving customer id}`` (``resolve_alias`` for many ids). ``parents`` may hold already
    fetched ``id -> merged_into_id`` pairs."""
    ids = set(customer_ids)
    parents = dict(parents or {})
    todo = ids - parents.keys()
    for _ in range(16):
        for chunk in in_chunks(todo):
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
