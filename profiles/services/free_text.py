"""Free text: Presidio pseudonymization before storage, placeholder state per customer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.utils import timezone

from .. import data_keys, text_pool
from ..data_keys import DataKey
from ..models import (
    Customer,
    PersonalField,
    PlaceholderState,
    SourceIdentity,
)
from .chunking import in_chunks

if TYPE_CHECKING:
    from .facts import Prepared


def original_text_field(model: Any, external_digest: str) -> str:
    return f"text:{model.__name__.lower()}:{external_digest}"


@dataclass
class TextContext:
    """What pseudonymizing a batch produced: texts by record index, placeholder states (as updated and as
    loaded, JSON) and which customers already had a stored state."""

    texts: dict[int, str]
    states: dict[UUID, dict[str, str]]
    before: dict[UUID, str]
    stored: set[UUID]


def _known_identifiers(ids: Sequence[UUID], keys: dict[UUID, DataKey]) -> dict[UUID, Any]:
    """The customers' own identifiers (decrypted fields and source ids, one query each per chunk), which
    the pseudonymizer must always redact in their texts. Kept in memory for the call only."""
    from ..selectors import known_identifiers_from_fields

    fields: dict[UUID, dict[str, str]] = {cid: {} for cid in ids}
    external_ids: dict[UUID, list[str]] = {cid: [] for cid in ids}
    for chunk in in_chunks(list(ids)):
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
    from ..pseudonymizer import get_pseudonymizer

    if not isinstance(text, str) or not text.strip():
        return text if isinstance(text, str) else ""
    known = None
    if customer_id is not None:
        keys = data_keys.key_get_many([customer_id])
        if customer_id in keys:
            known = _known_identifiers([customer_id], keys)[customer_id]
    return get_pseudonymizer().pseudonymize(text, known=known).text


def pseudonymize(items: list[Prepared], keys: dict[UUID, DataKey], *, store_language: bool = False
                 ) -> TextContext:
    """One Presidio batch call for all texts; states, fields and source ids read with one query each."""
    from ..language import SUPPORTED_LANGUAGES
    from ..pseudonymizer import get_pseudonymizer

    with_text = [p for p in items if p.text]
    if not with_text:
        return TextContext({}, {}, {}, set())
    ids = sorted({p.customer_id for p in with_text}, key=str)
    states: dict[UUID, dict[str, str]] = {cid: {} for cid in ids}
    stored: set[UUID] = set()
    for chunk in in_chunks(ids):
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
    customers = [p.customer_id for p in with_text]
    positions = text_pool.split_by_key(customers, [len(p.text or "") for p in with_text], text_pool.text_workers())
    # One part per worker of the text pool (TEXT_WORKERS), every text of a customer in the same part and in
    # record order (placeholders are numbered per customer): the same texts and states as one serial call.
    parts = [([with_text[i].text or "" for i in part], [customers[i] for i in part],
              {customers[i]: known[customers[i]] for i in part}, {customers[i]: states[customers[i]] for i in part},
              [languages[i] for i in part], [locales[i] for i in part]) for part in positions]
    pseudonymized: dict[int, str] = {}
    for part, (out, part_states) in zip(positions, text_pool.parts_run(pseudonymize_part, parts), strict=True):
        pseudonymized.update(zip(part, out, strict=True))
        for cid, state in part_states.items():  # a worker's copy: carried back into this call's states
            if state is not states[cid]:
                states[cid].clear()
                states[cid].update(state)
    if store_language:
        for p, lang in zip(with_text, languages, strict=True):
            p.values["language"] = lang
    texts = {p.index: pseudonymized[i] for i, p in enumerate(with_text)}
    return TextContext(texts, states, before, stored)


PseudonymizePart = tuple[list[str], list[UUID], dict[UUID, Any], dict[UUID, dict[str, str]], list[Any],
                         list[str | None]]


def pseudonymize_part(part: PseudonymizePart) -> tuple[list[str], dict[UUID, dict[str, str]]]:
    """Pseudonymize one part's texts with one batch call (in this process or a worker of the text pool):
    ``(texts, customer of each text, known identifiers and placeholder state by customer, languages,
    locales)`` -> the pseudonymized texts and the customers' updated states."""
    from ..pseudonymizer import get_pseudonymizer

    texts, customers, known, states, languages, locales = part
    results = get_pseudonymizer().pseudonymize_batch(
        texts, known=[known[c] for c in customers], placeholder_states=[states[c] for c in customers],
        language=languages, locale=locales)
    return [r.text for r in results], states


def save_placeholder_states(ctx: TextContext, keys: dict[UUID, DataKey]) -> None:
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
