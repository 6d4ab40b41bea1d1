"""Offline ticket sentiment per language (en, de, nl, pl, fi, sv).

Computed at ingestion on the original text, in memory, before pseudonymization; only the label and the score
are stored (``Ticket.sentiment_label`` / ``sentiment_score``). A language without a model gives ``unknown``.

- ``sentiment_analyze(text, language=...)`` → :class:`Sentiment` (label, compound score in [-1, 1]);
- ``sentiment_of(text, prior=...)`` → ``(language, Sentiment)``, detecting the language first;
- labels and thresholds: :mod:`profiles.sentiment.base`; models per language: :mod:`.registry`.
"""

from __future__ import annotations

from .base import (
    LABEL_NEGATIVE,
    LABEL_NEUTRAL,
    LABEL_POSITIVE,
    LABEL_UNKNOWN,
    NEGATIVE_THRESHOLD,
    POSITIVE_THRESHOLD,
    Sentiment,
    label_for,
)
from .registry import analyzer_get, sentiment_languages

__all__ = [
    "LABEL_NEGATIVE", "LABEL_NEUTRAL", "LABEL_POSITIVE", "LABEL_UNKNOWN", "NEGATIVE_THRESHOLD",
    "POSITIVE_THRESHOLD", "Sentiment", "analyzer_get", "label_for", "sentiment_analyze", "sentiment_languages",
    "sentiment_of",
]

NO_TEXT = Sentiment("", None)
UNKNOWN = Sentiment(LABEL_UNKNOWN, None)


def sentiment_analyze(text: str | None, *, language: str) -> Sentiment:
    """The text's mood with ``language``'s model; ``unknown`` (no score) when that language has none."""
    if not text or not text.strip():
        return NO_TEXT
    analyzer = analyzer_get(language)
    if analyzer is None:
        return UNKNOWN
    return analyzer.analyze(text)


def sentiment_of(text: str | None, *, prior: str | None = None) -> tuple[str, Sentiment]:
    """Detect the language (``prior``: the customer's language or country) and score the text with it."""
    if not text or not text.strip():
        return "", NO_TEXT
    from profiles.language import language_detect

    language = language_detect(text, prior=prior)
    return language, sentiment_analyze(text, language=language)
