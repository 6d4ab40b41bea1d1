"""Facts (orders, interactions, tickets, notes, reviews, NPS answers, referrals): parsing, customer references and writes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from config import blind_index
from config.blind_index import InvalidIdentifier
from config.bulk_insert import instances_insert
from config.envelope import DecryptionError
from config.errors import ApplicationError

from .. import data_keys
from ..data_keys import DataKey
from ..errors import RecordInvalid
from ..models import (
    BlindIndexEntry,
    Customer,
    Interaction,
    Note,
    NpsAnswer,
    Order,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
)
from .chunking import in_chunks
from .customers import mark_stale
from .free_text import TextContext, original_text_field, pseudonymize, save_placeholder_states
from .identity import resolve_aliases
from .validation import (
    bounded_amount,
    check_external_id,
    check_source,
    parse_bool,
    parse_choice,
    parse_datetime,
    parse_decimal,
    parse_free_text,
    parse_int,
    parse_label,
)


@dataclass(frozen=True)
class FactResult:
    index: int
    outcome: str  # "created" | "updated" | "unchanged" | "rejected"
    customer_id: UUID | None = None
    fact_id: int | None = None
    field: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class _FactKind:
    model: Any
    text_field: str | None  # model column for the pseudonymized text
    text_input: str | None  # input key holding the free text
    parse: Callable[[dict[str, Any]], dict[str, Any]]
    external_id_required: bool = True


# the allowed codes, once (an enum's ``.values`` builds a new list on every access: ~20-30 µs a row)
_ORDER_KINDS = frozenset(Order.Kind.values)
_INTERACTION_KINDS = frozenset(Interaction.Kind.values)
_TICKET_CHANNELS = frozenset(Ticket.Channel.values)
_NOTE_KINDS = frozenset(Note.Kind.values)


def _parse_order(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": parse_choice(r.get("kind"), "kind", _ORDER_KINDS, default="order"),
        "ordered_at": parse_datetime(r.get("ordered_at"), "ordered_at"),
        "amount": bounded_amount(parse_decimal(r.get("amount"), "amount"), "amount"),
        "margin": bounded_amount(parse_decimal(r.get("margin"), "margin", required=False), "margin"),
        "currency": _parse_currency(r.get("currency")),
        "returned": parse_bool(r.get("returned"), "returned"),
        "days_late": parse_int(r.get("days_late"), "days_late", required=False, minimum=0, maximum=3650),
        "category": parse_label(r.get("category"), "category"),
    }


def _parse_currency(value: Any) -> str:
    if value is None or value == "":
        return "EUR"
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        raise RecordInvalid("currency", "invalid")
    return value.strip().upper()


def _parse_interaction(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": parse_choice(r.get("kind"), "kind", _INTERACTION_KINDS),
        "at": parse_datetime(r.get("at"), "at"),
        "count": parse_int(r.get("count"), "count", required=False, minimum=1, maximum=1_000_000) or 1,
    }


def _parse_ticket(r: dict[str, Any]) -> dict[str, Any]:
    opened = parse_datetime(r.get("opened_at"), "opened_at")
    closed = parse_datetime(r.get("closed_at"), "closed_at", required=False)
    if closed is not None and opened is not None and closed < opened:
        raise RecordInvalid("closed_at", "before_opened")
    first_response = parse_datetime(r.get("first_response_at"), "first_response_at", required=False)
    if first_response is not None and opened is not None and first_response < opened:
        raise RecordInvalid("first_response_at", "before_opened")
    return {
        "opened_at": opened,
        "closed_at": closed,
        "first_response_at": first_response,
        "channel": parse_choice(r.get("channel"), "channel", _TICKET_CHANNELS, default="other"),
        "escalated": parse_bool(r.get("escalated"), "escalated"),
        "satisfaction": parse_int(r.get("satisfaction"), "satisfaction", required=False, minimum=1, maximum=5),
        "category": parse_label(r.get("category"), "category"),
    }


def _parse_note(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": parse_choice(r.get("kind"), "kind", _NOTE_KINDS, default="note"),
        "at": parse_datetime(r.get("at"), "at"),
    }


def _parse_review(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": parse_datetime(r.get("at"), "at"),
        "rating": parse_int(r.get("rating"), "rating", minimum=1, maximum=5),
    }


def _parse_nps(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": parse_datetime(r.get("at"), "at"),
        "score": parse_int(r.get("score"), "score", minimum=0, maximum=10),
    }


def _parse_referral(r: dict[str, Any]) -> dict[str, Any]:
    return {"at": parse_datetime(r.get("at"), "at"), "converted": parse_bool(r.get("converted"), "converted")}


FACT_KINDS: dict[str, _FactKind] = {
    "orders": _FactKind(Order, None, None, _parse_order),
    "interactions": _FactKind(Interaction, None, None, _parse_interaction, external_id_required=False),
    "tickets": _FactKind(Ticket, "text_pseudonymized", "text", _parse_ticket),
    "notes": _FactKind(Note, "text_pseudonymized", "text", _parse_note),
    "reviews": _FactKind(Review, "text_pseudonymized", "text", _parse_review),
    "nps": _FactKind(NpsAnswer, "comment_pseudonymized", "comment", _parse_nps),
    "referrals": _FactKind(Referral, None, None, _parse_referral),
}


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
        customer_source = check_source(record.get("customer_source") or source, "customer_source")
        ext = check_external_id(record["customer_external_id"], "customer_external_id")
        return _Ref("source", (customer_source, blind_index.source_index(customer_source, ext)),
                    "customer_external_id")
    if record.get("customer_email"):
        try:
            digest = blind_index.email_index(str(record["customer_email"]))
        except InvalidIdentifier as exc:
            raise RecordInvalid("customer_email", "invalid") from exc
        return _Ref("email", digest, "customer_email")
    raise RecordInvalid("customer_external_id", "required")


def _resolve_refs(refs: Iterable[_Ref]) -> dict[_Ref, UUID]:
    """The customer of every known reference (unknown ones are absent). Customer ids and source ids are
    resolved through merge aliases to the surviving customer; e-mail entries always point to a survivor."""
    refs = set(refs)
    ids = {r.value for r in refs if r.kind == "id"}
    pairs = {r.value for r in refs if r.kind == "source"}
    emails = {r.value for r in refs if r.kind == "email"}
    parents: dict[UUID, UUID | None] = {}
    for chunk in in_chunks(ids):
        parents.update(Customer.objects.filter(id__in=chunk).values_list("id", "merged_into_id"))
    owners: dict[tuple[str, str], UUID] = {}
    for src, digests in _by_source(pairs).items():
        for chunk in in_chunks(digests):
            owners.update(((src, digest), cid) for digest, cid in SourceIdentity.objects.filter(
                source=src, digest__in=chunk).values_list("digest", "customer_id"))
    by_email: dict[str, UUID] = {}
    for chunk in in_chunks(emails):
        by_email.update(BlindIndexEntry.objects.filter(kind="email", digest__in=chunk).values_list(
            "digest", "customer_id"))
    existing_ids = ids & parents.keys()
    roots = resolve_aliases(existing_ids | set(owners.values()), parents)
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
class Prepared:
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
                   ) -> tuple[list[Prepared], dict[int, FactResult]]:
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
            source = check_source(record.get("source") or "", "source")
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
            text = parse_free_text(record.get(spec.text_input), spec.text_input) if spec.text_input else None
            if record.get("external_id") not in (None, ""):
                external_id = check_external_id(record.get("external_id"))
            elif spec.external_id_required:
                raise RecordInvalid("external_id", "required")
        except RecordInvalid as exc:
            deferred = exc
        parsed.append((index, source, ref, deferred, values, text, external_id))

    customers = _resolve_refs(ref for _, _, ref, _, _, _, _ in parsed)
    prepared: list[Prepared] = []
    for index, source, ref, deferred, values, text, external_id in parsed:
        customer_id = customers.get(ref)
        if customer_id is None:
            rejected[index] = FactResult(index=index, outcome="rejected", field=ref.field, code="unknown_customer")
        elif deferred is not None:
            rejected[index] = FactResult(index=index, outcome="rejected", field=deferred.field,
                                         code=deferred.field_code)
        else:
            prepared.append(Prepared(index=index, customer_id=customer_id, source=source,
                                      digest=_fact_digest(kind, source, external_id, customer_id, values),
                                      values=values, text=text))
    return prepared, rejected


def _values_equal(fact: Any, values: dict[str, Any]) -> bool:
    return all(getattr(fact, name) == value for name, value in values.items())


def _fact_values(spec: _FactKind, p: Prepared, pseudonymized: str | None) -> tuple[dict[str, Any], bool]:
    """The model values of a record and whether its original text is to be kept (encrypted)."""
    values = dict(p.values)
    values["customer_id"] = p.customer_id
    keep_original = False
    if spec.text_field is not None:
        values[spec.text_field] = pseudonymized or ""
        keep_original = bool(settings.KEEP_ORIGINAL_TEXT.get(p.source, False)) and bool(p.text)
    return values, keep_original


def _upsert_in_memory(spec: _FactKind, fact: Any, p: Prepared, values: dict[str, Any], keep_original: bool,
                      key: DataKey | None) -> tuple[bool, UUID]:
    """Apply a record to a fact instance (stored or planned). Returns (changed, customer before)."""
    field = original_text_field(spec.model, p.digest)
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


def _new_fact(spec: _FactKind, p: Prepared, values: dict[str, Any], keep_original: bool, key: DataKey | None
              ) -> Any:
    values = dict(values)
    if spec.text_field is not None and keep_original and key is not None:
        values["text_original_encrypted"] = key.encrypt_field(original_text_field(spec.model, p.digest), p.text or "")
        values["key_version"] = key.key_version
    return spec.model(source=p.source, external_digest=p.digest, **values)


def _write_fact(kind: str, spec: _FactKind, p: Prepared, pseudonymized: str | None, key: DataKey | None
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


def _write_facts_per_record(kind: str, spec: _FactKind, prepared: list[Prepared], texts: dict[int, str],
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


def _write_facts_bulk(kind: str, spec: _FactKind, prepared: list[Prepared], texts: dict[int, str],
                      keys: dict[UUID, DataKey]) -> tuple[dict[int, FactResult], set[UUID]]:
    """Set-based upsert with the same outcomes as the per-record path applied in record order (a key seen
    twice in one batch: the later record updates, or leaves unchanged, what the earlier one planned)."""
    model = spec.model
    existing: dict[tuple[str, str], Any] = {}
    for source, digests in _by_source((p.source, p.digest) for p in prepared).items():
        for chunk in in_chunks(digests):  # (source, external_digest) is the unique index
            for fact in model.objects.select_for_update().filter(source=source, external_digest__in=chunk):
                existing[(source, fact.external_digest)] = fact
    planned: dict[tuple[str, str], Any] = {}
    to_create: list[Any] = []
    to_update: dict[tuple[str, str], Any] = {}
    outcomes: list[tuple[Prepared, str, Any]] = []
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
        instances_insert(model, to_create)  # COPY on PostgreSQL; ids set
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
    for chunk in in_chunks(customer_ids):
        list(Customer.objects.select_for_update().filter(id__in=chunk).order_by("id").values_list("id"))
    keys = data_keys.key_get_many(customer_ids) if spec.text_field and customer_ids else {}
    if kind == "tickets":  # language and mood of the original text, in memory, before pseudonymization
        from ..mood import tickets_mood_apply

        tickets_mood_apply(prepared, keys)
    store_language = any(f.name == "language" for f in spec.model._meta.concrete_fields)
    ctx = (pseudonymize(prepared, keys, store_language=store_language) if spec.text_field
           else TextContext({}, {}, {}, set()))
    try:
        with transaction.atomic():
            written, touched = _write_facts_bulk(kind, spec, prepared, ctx.texts, keys)
    except DatabaseError:
        written, touched = _write_facts_per_record(kind, spec, prepared, ctx.texts, keys)
    results.update(written)
    save_placeholder_states(ctx, keys)
    mark_stale(touched)
    return [results[i] for i in range(len(records))]


def _ingest_one(kind: str, record: dict[str, Any], actor: str) -> FactResult:
    result = facts_ingest_batch(kind=kind, records=[record], actor=actor)[0]
    if result.outcome == "rejected":
        raise RecordInvalid(result.field or "record", result.code or "invalid")
    return result


# One-record ingestion: the arguments each kind takes (required ones, then the optional ones with their
# defaults). Every kind also takes one customer reference: ``customer_id``, ``customer_external_id`` with
# ``customer_source``, or ``customer_email``.
_CUSTOMER_REF: dict[str, Any] = {"customer_id": None, "customer_external_id": None, "customer_source": None,
                                 "customer_email": None}
ONE_RECORD_ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "orders": (("source", "external_id", "ordered_at", "amount"),
               {"currency": "EUR", "margin": None, "returned": False, "days_late": None, "category": "",
                "kind": "order"}),
    "interactions": (("source", "kind", "at"), {"count": 1, "external_id": None}),
    "tickets": (("source", "external_id", "opened_at"),
                {"closed_at": None, "first_response_at": None, "channel": "other", "escalated": False,
                 "satisfaction": None, "category": "", "text": ""}),
    "notes": (("source", "external_id", "at", "text"), {"kind": "note"}),
    "reviews": (("source", "external_id", "at", "rating"), {"text": ""}),
    "nps": (("source", "external_id", "at", "score"), {"comment": ""}),
    "referrals": (("source", "external_id", "at"), {"converted": False}),
}


@transaction.atomic
def fact_ingest(*, fact: str, actor: str, **arguments: Any) -> FactResult:
    """Upsert one fact of kind ``fact`` (a key of ``ONE_RECORD_ARGUMENTS``) by ``(source, external_id)``
    (interactions without ``external_id``: by customer, kind and time). Free text is pseudonymized before
    storage. A rejected record raises ``RecordInvalid`` naming the field; nothing is written."""
    required, optional = ONE_RECORD_ARGUMENTS[fact]
    missing = [name for name in required if name not in arguments]
    unknown = sorted(set(arguments) - set(required) - optional.keys() - _CUSTOMER_REF.keys())
    if missing or unknown:
        raise TypeError(f"{fact}: missing arguments {missing}, unexpected arguments {unknown}")
    return _ingest_one(fact, {**optional, **_CUSTOMER_REF, **arguments}, actor)


def _one_record(name: str, fact: str, doc: str) -> Callable[..., FactResult]:
    def ingest(**arguments: Any) -> FactResult:
        return fact_ingest(fact=fact, **arguments)

    ingest.__name__ = ingest.__qualname__ = name
    ingest.__doc__ = f"{doc} Same as ``fact_ingest(fact={fact!r}, ...)``."
    return ingest


# The per-kind names callers use (keyword arguments only, as listed in ONE_RECORD_ARGUMENTS).
order_ingest = _one_record("order_ingest", "orders", "Upsert one order or invoice (by ``(source, external_id)``).")
interaction_ingest = _one_record(
    "interaction_ingest", "interactions", "Upsert one interaction; without ``external_id`` the key is (customer, "
    "kind, at).")
ticket_ingest = _one_record(
    "ticket_ingest", "tickets", "Upsert one support ticket; its text is pseudonymized before storage.")
note_ingest = _one_record(
    "note_ingest", "notes", "Upsert one note or call transcript; its text is pseudonymized before storage.")
review_ingest = _one_record(
    "review_ingest", "reviews", "Upsert one review (rating 1-5); its text is pseudonymized before storage.")
nps_ingest = _one_record(
    "nps_ingest", "nps", "Upsert one NPS answer (score 0-10); its comment is pseudonymized before storage.")
referral_ingest = _one_record("referral_ingest", "referrals", "Upsert one referral made by the customer.")
