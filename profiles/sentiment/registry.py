"""Which languages have a sentiment model, and the analyzers, built once per process.

A language is one module (``<code>.py`` with ``RULES``) plus one line in ``_FACTORIES``. A language without
an entry has no model: its texts get the label ``unknown`` and no score, never another language's guess.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from . import de, fi, nl, pl, sv
from .base import LanguageRules, LexiconAnalyzer, Sentiment


class Analyzer(Protocol):
    rules: LanguageRules
    lexicon: dict[str, float]

    def compound(self, text: str) -> float: ...
    def analyze(self, text: str) -> Sentiment: ...
    def plain_polarity(self, text: str) -> int: ...


def _english() -> Analyzer:
    from .en import VaderAnalyzer

    return VaderAnalyzer()


def _lexicon(rules: LanguageRules) -> Callable[[], Analyzer]:
    return lambda: LexiconAnalyzer(rules)


_FACTORIES: dict[str, Callable[[], Any]] = {
    "en": _english,
    "de": _lexicon(de.RULES),
    "nl": _lexicon(nl.RULES),
    "pl": _lexicon(pl.RULES),
    "fi": _lexicon(fi.RULES),
    "sv": _lexicon(sv.RULES),
}

_built: dict[str, Analyzer] = {}
_lock = threading.Lock()


def sentiment_languages() -> tuple[str, ...]:
    """Language codes with a model."""
    return tuple(_FACTORIES)


def analyzer_get(language: str) -> Analyzer | None:
    """The language's analyzer (built on first use, then cached), or None when it has no model."""
    analyzer = _built.get(language)
    if analyzer is not None:
        return analyzer
    factory = _FACTORIES.get(language)
    if factory is None:
        return None
    with _lock:
        if language not in _built:
            _built[language] = factory()
        return _built[language]
