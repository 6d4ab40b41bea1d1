"""All reads of the profiles app (see docs/ARCHITECTURE.md, "profiles").

``customer_personal_data`` and the other decrypting selectors do not write access records themselves:
the caller (console, export) records the access with ``audit.services.access_record``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.conf import settings
from django.db.models import Exists, Subquery

from config import blind_index, envelope
from config.blind_index import InvalidIdentifier
from config.chunking import chunked
from config.compiled_queries import CompiledQuery
from config.envelope import DecryptionError
from config.errors import NotFound

from . import data_keys
from .attribute_sealing import attributes_of
from .data_keys import DataKey
from .models import (
    PERSONAL_FIELDS,
    SOURCES,
    BlindIndexEntry,
    Customer,
    CustomerKey,
    ImportJob,
    Interaction,
    Note,
    NpsAnswer,
    Order,
    PersonalField,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
    Tombstone,
)

if TYPE_CHECKING:
    from .pseudonymizer import KnownIdentifiers

__all__ = [
    "customer_count",
    "customer_erasure_preview",
    "customer_tickets_pseudonymized",
    "customers_erased",
    "customers_existing",
    "customer_aliases",
    "customer_exists",
    "customer_facts",
    "customer_find",
    "customer_id_chunks",
    "customer_is_erased",
    "customer_key_expressions",
    "customer_known_identifiers",
    "customer_live_expression",
    "customer_personal_data",
    "customer_resolve",
    "customer_source_identities",
    "customer_unseal",
    "customer_unseal_many",
    "import_job_get",
    "stale_customer_ids",
]


def customer_exists(*, customer_id: UUID) -> bool:
    """True for a live customer or an alias left by a merge; False once erased (or never known)."""
    return Customer.objects.filter(id=customer_id).exists()


def customer_is_erased(*, customer_id: UUID) -> bool:
    return Tombstone.objects.filter(customer_id=customer_id).exists()


def customers_existing(*, customer_ids: list[UUID]) -> set[UUID]:
    """Set-based ``customer_exists``: the ids among ``customer_ids`` that exist (live or alias)."""
    from config.lookups import ids_in

    return set(Customer.objects.filter(ids_in("id", list(customer_ids))).values_list("id", flat=True))


def customers_erased(*, customer_ids: list[UUID]) -> set[UUID]:
    """Set-based ``customer_is_erased``."""
    from config.lookups import ids_in

    return set(Tombstone.objects.filter(ids_in("customer_id", list(customer_ids))).values_list("customer_id",
                                                                                               flat=True))


def customer_count() -> int:
    """Number of live customers (aliases left by merges are not counted)."""
    return Customer.objects.filter(merged_into__isnull=True).count()


def customer_live_expression(*, customer_id: UUID) -> Exists:
    """A query expression, true when ``customer_id`` is a live customer (not erased, unknown or a merge alias):
    lets another app's hot-path read check existence in its own single query (``consent.selectors``)."""
    return Exists(Customer.objects.filter(id=customer_id, merged_into__isnull=True))


# Annotation names of ``customer_key_expressions`` (what ``services.customer_seal(wrapped_key=...)`` takes).
KEY_EXPRESSION_NAMES = ("data_key_kek_id", "data_key_wrapped", "data_key_version")


def customer_key_expressions(*, customer_id: UUID) -> dict[str, Subquery]:
    """Correlated index lookups of the customer's *wrapped* data key, for another app to annotate onto its
    own single read (names ``KEY_EXPRESSION_NAMES``); hand the values, as read, to
    ``profiles.services.customer_seal(wrapped_key=...)``. All None once the key is shredded (erasure)."""
    key = CustomerKey.objects.filter(customer_id=customer_id).order_by()
    return {name: Subquery(key.values(column)[:1])
            for name, column in zip(KEY_EXPRESSION_NAMES, ("kek_id", "wrapped", "key_version"), strict=True)}


def customer_resolve(*, customer_id: UUID) -> UUID | None:
    """The surviving customer for an id (itself, or the customer an alias was merged into); None if unknown."""
    current = customer_id
    for _ in range(16):
        row = Customer.objects.filter(id=current).values_list("merged_into_id", flat=True)
        if not row:
            return None
        if row[0] is None:
            return current
        current = row[0]
    return current


def customer_aliases(*, customer_id: UUID) -> list[UUID]:
    """Pseudonyms merged (directly or transitively) into this customer."""
    found: list[UUID] = []
    frontier = [customer_id]
    while frontier:
        frontier = list(Customer.objects.filter(merged_into_id__in=frontier).values_list("id", flat=True))
        found.extend(frontier)
    return sorted(found, key=str)


def customer_find(
    *, email: str | None = None, phone: str | None = None, source: str | None = None,
    external_id: str | None = None, country: str | None = None,
) -> UUID | None:
    """Find the pseudonym through a blind index (the value is hashed, never stored or logged).

    Give exactly one of ``email``, ``phone`` or ``source`` + ``external_id``. Invalid values find nothing.
    """
    try:
        if email:
            digest = blind_index.email_index(email)
            cid = BlindIndexEntry.objects.filter(kind="email", digest=digest).values_list("customer_id", flat=True).first()
        elif phone:
            digest = blind_index.phone_index(phone, (country or settings.DEFAULT_PHONE_REGION).upper())
            cid = BlindIndexEntry.objects.filter(kind="phone", digest=digest).values_list("customer_id", flat=True).first()
        elif source and external_id:
            if source not in SOURCES:
                return None
            digest = blind_index.source_index(source, external_id)
            cid = SourceIdentity.objects.filter(source=source, digest=digest).values_list("customer_id", flat=True).first()
        else:
            return None
    except InvalidIdentifier:
        return None
    return customer_resolve(customer_id=cid) if cid is not None else None


def _key_for(customer_id: UUID) -> tuple[UUID, DataKey]:
    resolved = customer_resolve(customer_id=customer_id)
    if resolved is None:
        raise NotFound()
    return resolved, data_keys.key_get(resolved)


def _fields(customer_id: UUID, key: DataKey) -> dict[str, str]:
    return {
        row.field: key.decrypt_field(row.field, row.ciphertext, row.key_version)
        for row in PersonalField.objects.filter(customer_id=customer_id).order_by("field")
    }


def customer_personal_data(*, customer_id: UUID) -> dict[str, str | None]:
    """Decrypted personal fields (standard fields always present, ``None`` when unknown; extra personal
    CRM attributes under their own names). Raises ``NotFound``; ``DecryptionError`` if the key is gone.
    Callers showing this to a person must write an access record."""
    resolved, key = _key_for(customer_id)
    data: dict[str, str | None] = dict.fromkeys(PERSONAL_FIELDS)
    data.update(_fields(resolved, key))
    return data


def _attributes_or_empty(customer_id: UUID) -> dict[str, Any]:
    try:
        return attributes_of(customer_id)
    except DecryptionError:  # no key any more (erased meanwhile): nothing to show
        return {}


def customer_profile(*, customer_id: UUID) -> dict[str, Any]:
    """Profile facts: pseudonym, created, country, CRM attributes (decrypted: personal data, so callers
    showing them to a person write an access record, as for ``customer_personal_data``), declared features,
    staleness, aliases."""
    resolved = customer_resolve(customer_id=customer_id)
    customer = Customer.objects.filter(id=resolved).first() if resolved else None
    if customer is None:
        raise NotFound()
    return {
        "customer_id": customer.id,
        "created_at": customer.created_at,
        "country": customer.country or None,
        "attributes": _attributes_or_empty(customer.id),
        "feature_attributes": list(customer.feature_attributes),
        "stale_since": customer.stale_since,
        "aliases": customer_aliases(customer_id=customer.id),
    }


def customer_unseal(*, customer_id: UUID, label: str, blob: bytes) -> dict:
    """Decrypt a ``customer_seal`` blob. ``DecryptionError`` after erasure, or for a tampered/moved blob."""
    key = data_keys.key_get(customer_id)
    aad = f"seal|{customer_id}|{label}|{key.key_version}".encode()
    return json.loads(envelope.decrypt(key.dek, bytes(blob), aad))


def customer_unseal_many(*, customer_id: UUID, label: str, blobs: list[bytes]) -> list[dict | None]:
    """``customer_unseal`` of many blobs of one customer, with one key read (exports). Each result is the
    payload, or ``None`` for a blob that does not decrypt (tampered, moved, sealed under an older key
    version); all ``None`` when the customer has no key (erased). The key stays in this call."""
    try:
        key = data_keys.key_get(customer_id)
    except DecryptionError:
        return [None] * len(blobs)
    aad = f"seal|{customer_id}|{label}|{key.key_version}".encode()
    out: list[dict | None] = []
    for blob in blobs:
        try:
            out.append(json.loads(envelope.decrypt(key.dek, bytes(blob), aad)))
        except DecryptionError:
            out.append(None)
    return out


def customer_source_identities(*, customer_id: UUID) -> list[dict]:
    """The customer's records in source systems, with decrypted external ids (for export)."""
    resolved, key = _key_for(customer_id)
    return [
        {
            "source": identity.source,
            "external_id": key.decrypt_field(f"source:{identity.source}", identity.external_id_encrypted,
                                             identity.key_version),
            "created_at": identity.created_at,
            "last_seen_at": identity.last_seen_at,
        }
        for identity in SourceIdentity.objects.filter(customer_id=resolved).order_by("source", "created_at")
    ]


_ORIGINAL_COLUMNS = ("text_original_encrypted", "external_digest", "key_version")


def _original(key: DataKey, model: type, row: dict[str, Any]) -> str | None:
    """The decrypted original free text of a fact row (``.values()`` with ``_ORIGINAL_COLUMNS``), if kept."""
    blob = row["text_original_encrypted"]
    if blob is None:
        return None
    field = f"text:{model.__name__.lower()}:{row['external_digest']}"
    try:
        return key.decrypt_field(field, blob, row["key_version"])
    except DecryptionError:
        return None


def _fact_rows(model: Any, customer_id: UUID, order: str, columns: tuple[str, ...]) -> Iterable[dict[str, Any]]:
    """Plain rows (``.values()``, no model instances) of one fact table, in (``order``, id) order."""
    rows: Iterable[dict[str, Any]] = model.objects.filter(customer_id=customer_id).order_by(order, "id").values(*columns)
    return rows


def customer_facts(*, customer_id: UUID) -> dict:
    """Everything known about the customer besides personal fields (for access/portability exports).

    Free text is the stored pseudonymized text, plus the decrypted original where it was kept.
    """
    resolved, key = _key_for(customer_id)
    orders = [
        {"source": o["source"], "kind": o["kind"], "ordered_at": o["ordered_at"], "amount": str(o["amount"]),
         "margin": None if o["margin"] is None else str(o["margin"]), "currency": o["currency"],
         "returned": o["returned"], "days_late": o["days_late"], "category": o["category"]}
        for o in _fact_rows(Order, resolved, "ordered_at", ("source", "kind", "ordered_at", "amount", "margin",
                                                            "currency", "returned", "days_late", "category"))
    ]
    interactions = [
        {"source": i["source"], "kind": i["kind"], "at": i["at"], "count": i["count"]}
        for i in _fact_rows(Interaction, resolved, "at", ("source", "kind", "at", "count"))
    ]
    tickets = [
        {"source": t["source"], "opened_at": t["opened_at"], "closed_at": t["closed_at"], "channel": t["channel"],
         "escalated": t["escalated"], "satisfaction": t["satisfaction"], "category": t["category"],
         "text": t["text_pseudonymized"], "text_original": _original(key, Ticket, t),
         "language": t["language"], "sentiment_label": t["sentiment_label"], "sentiment_score": t["sentiment_score"]}
        for t in _fact_rows(Ticket, resolved, "opened_at", ("source", "opened_at", "closed_at", "channel", "escalated",
                                                            "satisfaction", "category", "text_pseudonymized",
                                                            "language", "sentiment_label", "sentiment_score",
                                                            *_ORIGINAL_COLUMNS))
    ]
    notes = [
        {"source": n["source"], "kind": n["kind"], "at": n["at"], "text": n["text_pseudonymized"],
         "text_original": _original(key, Note, n)}
        for n in _fact_rows(Note, resolved, "at", ("source", "kind", "at", "text_pseudonymized", *_ORIGINAL_COLUMNS))
    ]
    reviews = [
        {"source": r["source"], "at": r["at"], "rating": r["rating"], "text": r["text_pseudonymized"],
         "text_original": _original(key, Review, r)}
        for r in _fact_rows(Review, resolved, "at", ("source", "at", "rating", "text_pseudonymized",
                                                     *_ORIGINAL_COLUMNS))
    ]
    nps = [
        {"source": a["source"], "at": a["at"], "score": a["score"], "comment": a["comment_pseudonymized"],
         "comment_original": _original(key, NpsAnswer, a)}
        for a in _fact_rows(NpsAnswer, resolved, "at", ("source", "at", "score", "comment_pseudonymized",
                                                        *_ORIGINAL_COLUMNS))
    ]
    referrals = [
        {"source": r["source"], "at": r["at"], "converted": r["converted"]}
        for r in _fact_rows(Referral, resolved, "at", ("source", "at", "converted"))
    ]
    return {"orders": orders, "interactions": interactions, "tickets": tickets, "notes": notes,
            "reviews": reviews, "nps": nps, "referrals": referrals}


def customer_id_chunks(*, chunk_size: int, after: UUID | None = None) -> Iterator[list[UUID]]:
    """Live (non-alias) customer ids in id order, ``chunk_size`` at a time (keyset pagination)."""
    last = after
    while True:
        qs = Customer.objects.filter(merged_into__isnull=True).order_by("id")
        if last is not None:
            qs = qs.filter(id__gt=last)
        chunk = list(qs.values_list("id", flat=True)[:chunk_size])
        if not chunk:
            return
        yield chunk
        if len(chunk) < chunk_size:
            return
        last = chunk[-1]


def stale_customer_ids(*, limit: int) -> list[UUID]:
    """Customers with new data since they were last scored, oldest first."""
    return list(
        Customer.objects.filter(stale_since__isnull=False, merged_into__isnull=True)
        .order_by("stale_since", "id")
        .values_list("id", flat=True)[:limit]
    )


def stale_since_for(*, customer_ids: list[UUID]) -> dict[UUID, datetime | None]:
    return dict(Customer.objects.filter(id__in=customer_ids).values_list("id", "stale_since"))


def known_identifiers_from_fields(fields: dict[str, str], external_ids: list[str] | None = None) -> KnownIdentifiers:
    """KnownIdentifiers for the pseudonymizer, from decrypted fields and source-system ids."""
    from .pseudonymizer import KnownIdentifiers  # heavy (Presidio, spaCy): imported on first use

    standard = set(PERSONAL_FIELDS)
    other = [fields["date_of_birth"]] if fields.get("date_of_birth") else []
    other += [v for f, v in fields.items() if f not in standard and v and len(v) >= 4]
    other += [e for e in external_ids or [] if len(e) >= 5]
    return KnownIdentifiers(
        names=tuple(v for v in [fields.get("name")] if v),
        emails=tuple(v for v in [fields.get("email")] if v),
        # Every phone the profile holds, whatever its validity: the matcher needs only its digits.
        phones=tuple(dict.fromkeys(v for f, v in fields.items()
                                   if v and (f == "phone" or any(t in f for t in ("phone", "mobile", "tel"))))),
        addresses=tuple(v for v in [fields.get("address")] if v),
        other=tuple(dict.fromkeys(other)),
    )


def customer_known_identifiers(*, customer_id: UUID) -> KnownIdentifiers:
    """The customer's own identifiers (decrypted profile) for the Presidio known-identifier recognizer."""
    resolved, key = _key_for(customer_id)
    external_ids = [
        key.decrypt_field(f"source:{i.source}", i.external_id_encrypted, i.key_version)
        for i in SourceIdentity.objects.filter(customer_id=resolved)
    ]
    return known_identifiers_from_fields(_fields(resolved, key), external_ids)


def import_job_get(*, job_id: UUID) -> ImportJob:
    job = ImportJob.objects.filter(id=job_id).first()
    if job is None:
        raise NotFound()
    return job


#: Current mood: the mean sentiment of the customer's last ``MOOD_TICKETS`` scored tickets opened within
#: ``MOOD_WINDOW_DAYS`` (issue 18); "unknown" when there is none.
MOOD_TICKETS = 3
MOOD_WINDOW_DAYS = 90


MOOD_EXPRESSION_NAMES = tuple(f"mood_score_{i}" for i in range(MOOD_TICKETS))


def mood_window(now: datetime) -> tuple[datetime, datetime]:
    from datetime import timedelta

    return now - timedelta(days=MOOD_WINDOW_DAYS), now


def customer_mood_expressions(*, customer_id: UUID, since: datetime, now: datetime) -> dict[str, Subquery]:
    """Correlated index lookups of the sentiment scores of the customer's latest ``MOOD_TICKETS`` scored tickets
    opened in ``(since, now]``, newest first (names ``MOOD_EXPRESSION_NAMES``, None past the last one), for
    another app to annotate onto its own single read; ``customer_mood_from_values`` turns them into the mood.
    ``since, now = mood_window(now)``."""
    scored = (Ticket.objects.filter(customer_id=customer_id, opened_at__gt=since, opened_at__lte=now,
                                    sentiment_score__isnull=False)
              .order_by("-opened_at", "-id").values("sentiment_score"))
    return {name: Subquery(scored[i:i + 1]) for i, name in enumerate(MOOD_EXPRESSION_NAMES)}


def customer_mood_from_values(values: dict[str, Any]) -> dict[str, Any]:
    """The mood from the values of ``customer_mood_expressions`` (the same answer as ``customer_current_mood``)."""
    scores = []
    for name in MOOD_EXPRESSION_NAMES:
        value = values[name]
        if value is None:
            break
        scores.append(value)
    return _mood_of(scores)


def _mood_of(scores: list[float]) -> dict[str, Any]:
    from .sentiment import LABEL_UNKNOWN, label_for

    if not scores:
        return {"label": LABEL_UNKNOWN, "score": None, "tickets": 0, "window_days": MOOD_WINDOW_DAYS}
    mean = round(sum(scores) / len(scores), 4)
    return {"label": label_for(mean), "score": mean, "tickets": len(scores), "window_days": MOOD_WINDOW_DAYS}
def customer_tickets_pseudonymized(*, customer_id: UUID, limit: int = 200) -> list[dict[str, Any]]:
    """The customer's tickets, newest first, with the pseudonymized text and the mood (sentiment) only:
    nothing is decrypted (the console's Customer 360)."""
    resolved = customer_resolve(customer_id=customer_id)
    if resolved is None:
        raise NotFound()
    rows = (Ticket.objects.filter(customer_id=resolved).order_by("-opened_at", "-id")
            .values("source", "opened_at", "closed_at", "channel", "escalated", "satisfaction", "category",
                    "text_pseudonymized", "language", "sentiment_label", "sentiment_score")[:limit])
    return [dict(row) for row in rows]


def customer_erasure_preview(*, customer_id: UUID) -> dict[str, Any]:
    """What erasing the customer would destroy in this app, counted (no values): personal fields, facts by
    kind, blind-index entries, source identities and the pseudonyms merged into it."""
    resolved = customer_resolve(customer_id=customer_id)
    if resolved is None:
        raise NotFound()
    group = [resolved, *customer_aliases(customer_id=resolved)]
    fact_models: tuple[Any, ...] = (Order, Interaction, Ticket, Note, Review, NpsAnswer, Referral)
    facts = {model._meta.verbose_name_plural.replace("_", " "): model.objects.filter(customer_id__in=group).count()
             for model in fact_models}
    return {
        "customer_id": resolved,
        "aliases": len(group) - 1,
        "profile_fields": PersonalField.objects.filter(customer_id__in=group).count(),
        "facts": facts,
        "facts_total": sum(facts.values()),
        "blind_indexes": BlindIndexEntry.objects.filter(customer_id__in=group).count(),
        "source_identities": SourceIdentity.objects.filter(customer_id__in=group).count(),
    }


def retention_by_category() -> list[dict[str, Any]]:
    """How long each category of customer facts is kept (``RETENTION_DAYS`` over the defaults, as the nightly
    purge applies it): ``[{"category", "days", "follows"}]``; ``follows`` names the category whose setting
    applies when the category has none of its own."""
    from .services import RETENTION_TARGETS, retention_days

    days = retention_days()
    return [{"category": target, "days": days.get(target, days[category]),
             "follows": None if target in days else category} for target, category, _, _ in RETENTION_TARGETS]


# The real-time score reads the mood on every request: compiled once per thread (see config.compiled_queries),
# one statement with the customer's row as its anchor (no row: the plain query below).
_MOOD = CompiledQuery(
    lambda *, customer_id, since, now: Customer.objects.filter(pk=customer_id).order_by().annotate(
        **customer_mood_expressions(customer_id=customer_id, since=since, now=now)).values(*MOOD_EXPRESSION_NAMES),
    customer_id="uuid", since="datetime", now="datetime",
)


def customer_current_mood(*, customer_id: UUID, now: datetime | None = None) -> dict[str, Any]:
    """``{"label", "score", "tickets", "window_days"}`` from the latest scored tickets (one indexed query).
    Labels and thresholds are those of ``profiles.sentiment``. Reads scores only, never text."""
    from django.utils import timezone

    since, now = mood_window(now or timezone.now())
    values = _MOOD.first(customer_id=customer_id, since=since, now=now)
    if values is not None:
        return customer_mood_from_values(values)
    scores = [score for score in
              Ticket.objects.filter(customer_id=customer_id, opened_at__gt=since, opened_at__lte=now,
                                    sentiment_score__isnull=False)
              .order_by("-opened_at", "-id").values_list("sentiment_score", flat=True)[:MOOD_TICKETS]
              if score is not None]
    return _mood_of(scores)


def audit_characteristics(*, customer_ids: list[UUID], chunk_size: int = 2000) -> dict[str, list[str | None]]:
    """The audit-only protected characteristics (``profiles.protected``) of ``customer_ids``, decrypted in
    memory only, aligned with the input order: ``{characteristic: [value or None per customer]}``.

    For the fairness report of training (``scoring.fairness``); nothing is written, logged or cached, and the
    values never leave the calling process. A customer without a data key (erased) gives ``None``.
    """
    from .protected import AUDIT_FIELD_PREFIX

    position = {cid: i for i, cid in enumerate(customer_ids)}
    out: dict[str, list[str | None]] = {}
    for part in chunked(customer_ids, chunk_size):
        rows = list(PersonalField.objects.filter(customer_id__in=part, field__startswith=AUDIT_FIELD_PREFIX)
                    .values_list("customer_id", "field", "ciphertext", "key_version"))
        if not rows:
            continue
        keys = data_keys.key_get_many(list({r[0] for r in rows}))
        for cid, field, ciphertext, key_version in rows:
            key = keys.get(cid)
            if key is None:
                continue
            try:
                value = key.decrypt_field(field, bytes(ciphertext), key_version)
            except DecryptionError:
                continue
            column = out.setdefault(field[len(AUDIT_FIELD_PREFIX):], [None] * len(customer_ids))
            column[position[cid]] = value
    return out
# --------------------------------------------------------------------------- engagement and KPIs (issue 17)
# Set-based reads of facts about pseudonyms (no personal data): open tickets for the SLA-breach actions,
# order summaries for win-back, and monthly aggregates for the KPI endpoint.


def tickets_unanswered(*, opened_before: datetime) -> list[tuple[int, UUID, datetime]]:
    """Open tickets with no first response yet, opened before ``opened_before``: ``(ticket id, customer, opened_at)``."""
    return list(Ticket.objects.filter(first_response_at__isnull=True, closed_at__isnull=True,
                                      opened_at__lt=opened_before)
                .values_list("id", "customer_id", "opened_at").order_by("opened_at", "id"))


def order_summaries(*, customer_ids: Iterable[UUID]) -> dict[UUID, tuple[datetime, float]]:
    """Customer -> (last order time, total revenue) over their orders and invoices (returned ones excluded)."""
    from django.db.models import Max, Sum

    from config.lookups import ids_in

    ids = list(customer_ids)
    if not ids:
        return {}
    rows = (Order.objects.filter(ids_in("customer_id", ids), returned=False)
            .values("customer_id").annotate(last=Max("ordered_at"), total=Sum("amount")))
    return {r["customer_id"]: (r["last"], float(r["total"] or 0)) for r in rows}


def orders_by_customer_month(*, start: datetime, end: datetime) -> list[tuple[UUID, datetime, float, int]]:
    """``(customer, month start, revenue, orders)`` for orders with ``start <= ordered_at < end`` (orders and invoices,
    returned ones excluded), grouped by customer and calendar month (UTC)."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncMonth

    rows = (Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end, returned=False)
            .annotate(month=TruncMonth("ordered_at")).values("customer_id", "month")
            .annotate(revenue=Sum("amount"), n=Count("id")).values_list("customer_id", "month", "revenue", "n"))
    return [(cid, month, float(revenue or 0), int(n)) for cid, month, revenue, n in rows]


def tickets_between(*, start: datetime, end: datetime
                    ) -> list[tuple[UUID, datetime, datetime | None, int | None, datetime | None]]:
    """``(customer, opened_at, first_response_at, satisfaction, closed_at)`` of tickets opened in ``[start, end)``."""
    return list(tickets_between_queryset(start=start, end=end)
                .values_list("customer_id", "opened_at", "first_response_at", "satisfaction", "closed_at"))


def tickets_between_queryset(*, start: datetime, end: datetime) -> Any:
    """Tickets opened in ``[start, end)`` as a queryset, for set-based readers that annotate it (the KPI rollup
    adds the tier in force when each opened). No personal data is selected unless the caller asks for it."""
    return Ticket.objects.filter(opened_at__gte=start, opened_at__lt=end)


def nps_between(*, start: datetime, end: datetime) -> list[tuple[UUID, datetime, int]]:
    return list(NpsAnswer.objects.filter(at__gte=start, at__lt=end).values_list("customer_id", "at", "score"))


def referrals_between(*, start: datetime, end: datetime) -> list[tuple[UUID, datetime, bool]]:
    return list(Referral.objects.filter(at__gte=start, at__lt=end).values_list("customer_id", "at", "converted"))
