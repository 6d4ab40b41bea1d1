"""Ticket language and sentiment at ingestion (issue 18 §4).

Called by ``services.facts_ingest_batch`` for tickets, after validation and BEFORE pseudonymization: each
ticket's ORIGINAL text is scored in memory and only the detected language, the sentiment label and the score
are put in the record's values (so the bulk and per-record write paths store them like any other column).
The text itself is never stored, logged or passed on from here. A ticket without text gets ``""``/``None``,
so an update that removes the text also removes its mood.

The language prior is the customer's preferred language (decrypted in memory for the call) or, failing
that, their country. A language detected in the record values already (another ingestion step) is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from config.chunking import chunked
from config.envelope import DecryptionError

from . import text_pool
from .data_keys import DataKey
from .models import Customer, PersonalField

logger = logging.getLogger(__name__)

_IN_CHUNK = 500


class _Record(Protocol):
    customer_id: UUID
    text: str | None
    values: dict[str, Any]


def _priors(customer_ids: list[UUID], keys: dict[UUID, DataKey]) -> dict[UUID, str]:
    """Language prior per customer: preferred language (decrypted) else country; one query of each kind."""
    priors: dict[UUID, str] = {}
    for chunk in chunked(customer_ids, _IN_CHUNK):
        for cid, country in Customer.objects.filter(id__in=chunk).values_list("id", "country"):
            if country:
                priors[cid] = country
        for row in PersonalField.objects.filter(customer_id__in=chunk, field="preferred_language"):
            key = keys.get(row.customer_id)
            if key is None:
                continue
            try:
                value = key.decrypt_field("preferred_language", row.ciphertext, row.key_version)
            except DecryptionError:  # an unreadable prior only means "no prior"
                value = ""
            if value:
                priors[row.customer_id] = value
    return priors


def tickets_mood_apply(records: Sequence[_Record], keys: dict[UUID, DataKey]) -> None:
    """Set ``language``, ``sentiment_label`` and ``sentiment_score`` in each record's values, in place."""
    with_text = [r for r in records if r.text and r.text.strip()]
    for r in records:
        if not (r.text and r.text.strip()):
            r.values.update(language="", sentiment_label="", sentiment_score=None)
    if not with_text:
        return
    priors = _priors(sorted({r.customer_id for r in with_text}, key=str), keys)
    items = [(r.text or "", r.values.get("language") or None, priors.get(r.customer_id)) for r in with_text]
    # Pure per text: on the text pool (TEXT_WORKERS) in contiguous parts, the same result as in this process.
    parts = text_pool.split_contiguous(items, text_pool.text_workers())
    moods = [m for part in text_pool.parts_run(moods_of_texts, parts) for m in part]
    for r, (language, label, score) in zip(with_text, moods, strict=True):
        r.values["language"] = language
        r.values["sentiment_label"] = label
        r.values["sentiment_score"] = score


def moods_of_texts(items: Sequence[tuple[str, str | None, str | None]]) -> list[tuple[str, str, float | None]]:
    """``(language, sentiment label, score)`` of each ``(text, known language, customer's locale prior)``."""
    from .language import language_detect, language_of_locale
    from .sentiment import sentiment_analyze

    out: list[tuple[str, str, float | None]] = []
    for text, known, prior in items:
        try:
            language = known or language_detect(text, prior=language_of_locale(prior))
            mood = sentiment_analyze(text, language=language)
        except Exception as exc:  # noqa: BLE001 - a scoring failure must not lose the ticket
            logger.warning("ticket sentiment failed", extra={"error": type(exc).__name__})
            out.append((known or "und", "unknown", None))
            continue
        out.append((language, mood.label, mood.score))
    return out
