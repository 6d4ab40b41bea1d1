"""The pseudonymization engine: language first, then that language's recognizers.

For each text: (1) its language is the caller's ``language=`` or is detected offline
(:func:`profiles.language.language_detect`) with the customer's locale as a prior; (2) the customer's own
known identifiers are matched (any language, any case, any separators, inflected, spelled out); (3) the
shared checked-number recognizers run (:mod:`.shared`), with the customer's country as the first phone
region; (4) the language module's rule-based recognizers run (names, streets, dates of birth, ages);
(5) only for English text, the spaCy NER fills the remaining gaps, and only where a gap holds a capitalised
word (:func:`_needs_ner`). The English NER never sees a text of another language. Overlaps: known
identifiers win, then the longest checked/rule match, then NER.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..language import UNDETERMINED, language_detect, language_of_locale
from .base import LanguageSpec
from .known import KnownIdentifiers, KnownMatcher, build_known_matchers, match_known
from .registry import FALLBACK, LANGUAGES, spec_for
from .shared import (
    find_cards,
    find_emails,
    find_ibans,
    find_ips,
    find_national_ids,
    find_phones,
    find_spelled_emails,
    find_urls,
    harden_presidio_logging,
)
from .spans import TIER_KNOWN, TIER_NER, PlaceholderState, PseudonymizedText, Span, apply_spans, resolve_spans
from .text import normalize

_NER_LABELS: dict[str, str] = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION",
                               "FAC": "LOCATION"}
_NER_SCORE = 0.85

LanguageArg = str | None | Sequence[str | None]


def _per_text(value: LanguageArg, n: int, name: str) -> list[str | None]:
    if value is None or isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name} must have the same length as texts")
    return values


def phone_regions(locale: str | None, spec: LanguageSpec) -> tuple[str, ...]:
    """The customer's country first (from ``pl-PL``, ``PL`` or ``pl``), then the text language's countries."""
    first: list[str] = []
    if locale:
        parts = str(locale).replace("_", "-").split("-")
        if len(parts) > 1 and len(parts[-1]) == 2:
            first.append(parts[-1].upper())
        else:
            lang = language_of_locale(locale)
            if lang in LANGUAGES:
                first.append(LANGUAGES[lang].country)
            elif len(parts[0]) == 2:
                first.append(parts[0].upper())
    first.append(spec.country)
    # National formats of the customer's country and the text language's countries only: a bare order
    # number is not a phone because some far-away numbering plan accepts it. International numbers
    # ("+46 ...", "0046 ...") parse whatever the region.
    return tuple(dict.fromkeys([*first, *spec.phone_regions]))


class Pseudonymizer:
    """Replaces personal entities by per-customer stable placeholders (see the package docstring).

    ``language``: the language assumed when a text's language cannot be told and no locale is given.
    """

    def __init__(self, *, language: str = FALLBACK, score_threshold: float = 0.5) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {sorted(LANGUAGES)}")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        self.language = language
        self.score_threshold = score_threshold
        harden_presidio_logging()
        self._nlp_lock = threading.Lock()
        self._nlp_model: Any = None
        self.ner_calls = 0  # texts handed to the English NER since start (tests spy on it)

    @property
    def _nlp(self) -> Any:
        """The process-wide NER-only English spaCy pipeline, loaded on first English text (never downloaded)."""
        if self._nlp_model is None:
            from ..offline_nlp import load_spacy

            self._nlp_model = load_spacy()
        return self._nlp_model

    @property
    def recognizer_names(self) -> tuple[str, ...]:
        """What runs, for documentation / DPO review."""
        from ..offline_nlp import SPACY_MODEL_PACKAGE

        return ("KnownIdentifiers", "EMAIL", "SPELLED_EMAIL", "IBAN(stdnum)", "CARD(Luhn)", "IP", "URL",
                "NATIONAL_ID(stdnum)", "PHONE(phonenumbers)",
                *(f"{code}: names, streets, dates of birth, ages" for code in LANGUAGES),
                f"spaCy NER ({SPACY_MODEL_PACKAGE}, English text only)")

    # -- public API --------------------------------------------------------------------------------------

    def detect_language(self, text: str, *, locale: str | None = None) -> str:
        """The text's language (a key of the registry), or ``"und"`` when neither the text nor the locale
        tells. An undetermined text gets the rule-based recognizers of ``self.language`` but never the NER."""
        lang = language_detect(text, prior=locale) if text.strip() else UNDETERMINED
        if lang in LANGUAGES:
            return lang
        prior = language_of_locale(locale)
        return prior if prior in LANGUAGES else UNDETERMINED

    def pseudonymize(
        self,
        text: str,
        *,
        known: KnownIdentifiers | None = None,
        placeholder_state: dict[str, str] | None = None,
        language: str | None = None,
        locale: str | None = None,
    ) -> PseudonymizedText:
        """Pseudonymize one text; ``placeholder_state`` (if given) is updated in place.

        ``language``: the text's language if known (else detected); ``locale``: the customer's locale or
        country ("pl-PL", "PL"), a prior for the detector and the default phone region.
        """
        return self.pseudonymize_batch(
            [text], known=[known], placeholder_states=[placeholder_state], batch_size=1, language=language,
            locale=locale,
        )[0]

    def pseudonymize_batch(
        self,
        texts: Sequence[str],
        *,
        known: Sequence[KnownIdentifiers | None] | None = None,
        placeholder_states: Sequence[dict[str, str] | None] | None = None,
        batch_size: int = 64,
        n_process: int = 1,
        language: LanguageArg = None,
        locale: LanguageArg = None,
    ) -> list[PseudonymizedText]:
        """Pseudonymize many texts; same output as :meth:`pseudonymize` per text.

        ``known[i]`` / ``placeholder_states[i]`` belong to ``texts[i]``; ``language`` / ``locale`` are one
        value for all texts or one per text. Texts are processed in order, so passing the same state dict for
        several texts of one customer numbers placeholders as sequential calls would.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a string")
        n = len(texts)
        if known is not None and len(known) != n:
            raise ValueError("known must have the same length as texts")
        if placeholder_states is not None and len(placeholder_states) != n:
            raise ValueError("placeholder_states must have the same length as texts")
        for t in texts:
            if not isinstance(t, str):
                raise TypeError("every text must be a str")
        languages = _per_text(language, n, "language")
        locales = _per_text(locale, n, "locale")
        if n == 0:
            return []
        langs = [
            lang if lang in LANGUAGES else self.detect_language(text, locale=loc)
            for text, lang, loc in zip(texts, languages, locales, strict=True)
        ]
        matchers: dict[int, list[KnownMatcher]] = {}  # per call only: identifiers are not kept around
        specs: list[LanguageSpec] = []
        rule_spans: list[list[Span]] = []
        for i, text in enumerate(texts):
            k = known[i] if known is not None else None
            matcher: list[KnownMatcher] | None = None
            if k is not None and not k.is_empty():
                matcher = matchers.get(id(k))
                if matcher is None:
                    matcher = matchers[id(k)] = build_known_matchers(k)
            spec = spec_for(langs[i] if langs[i] in LANGUAGES else self.language)
            specs.append(spec)
            rule_spans.append(self._rule_spans(text, spec, matcher, phone_regions(locales[i], spec)))
        # The English NER runs only on English text, and only where it could still add something: a
        # capitalised word that no rule or known identifier covers (see _needs_ner).
        english = [i for i, lang in enumerate(langs) if lang in LANGUAGES and LANGUAGES[lang].use_ner
                   and texts[i].strip() and self.score_threshold <= _NER_SCORE
                   and _needs_ner(texts[i], rule_spans[i], specs[i])]
        ner_of: dict[int, list[tuple[int, int, str]]] = {}
        if english:
            ner_of = dict(zip(english, self._ner([texts[i] for i in english], batch_size, n_process), strict=True))
        results: list[PseudonymizedText] = []
        for i, text in enumerate(texts):
            raw_state = placeholder_states[i] if placeholder_states is not None else None
            state = PlaceholderState(raw_state if raw_state is not None else {})
            spans = self._with_ner(text, specs[i], rule_spans[i], ner_of.get(i, []))
            results.append(apply_spans(text, spans, state))
        return results

    # -- detection ---------------------------------------------------------------------------------------

    def _ner(self, texts: list[str], batch_size: int, n_process: int) -> list[list[tuple[int, int, str]]]:
        """English NER entities per text. Only English texts ever reach this method."""
        nlp = self._nlp
        self.ner_calls += len(texts)
        # spaCy adds every token it sees (names included) to the shared vocabulary for the life of the process;
        # inside a memory zone those strings are freed when the batch is done, so no text's words outlive the
        # call and a long-running worker does not grow. The zone is not thread-safe: one batch at a time.
        with self._nlp_lock, nlp.memory_zone():
            return [
                [(e.start_char, e.end_char, _NER_LABELS[e.label_]) for e in doc.ents if e.label_ in _NER_LABELS]
                for doc in nlp.pipe(texts, batch_size=max(1, batch_size), n_process=max(1, n_process))
            ]

    def _rule_spans(
        self,
        text: str,
        spec: LanguageSpec,
        matcher: list[KnownMatcher] | None,
        regions: Sequence[str],
    ) -> list[Span]:
        """Known identifiers, checked numbers and the language's rules, overlaps resolved (no NER yet)."""
        if not text.strip():
            return []
        spans: list[Span] = []
        for m in matcher or ():
            spans.extend(s for s in match_known(text, m) if not _common_word_in_lower_case(text, s, spec))
        digits = sum(map(str.isdigit, text))
        spans += find_emails(text)
        # Spelled-out e-mails compete with the known names they contain ("jan dot kowalski at ..."): the longer
        # e-mail wins, so they are resolved in the known tier.
        spans += [replace(s, tier=TIER_KNOWN) for s in find_spelled_emails(text)]
        spans += find_urls(text)
        if digits >= 3:
            spans += find_ips(text)
        if digits >= 12:
            spans += find_ibans(text)
            spans += find_cards(text)
        if digits >= 6:
            spans += find_national_ids(text, spec.code, digits)
        if digits >= 7:
            spans += find_phones(text, regions, covered=[(s.start, s.end) for s in spans])
        spans += spec.find_addresses(text)
        spans += spec.find_dates_of_birth_and_ages(text)
        spans += spec.find_names(text)
        return resolve_spans(text, [s for s in spans if s.score >= self.score_threshold])

    def _with_ner(
        self, text: str, spec: LanguageSpec, rule_spans: list[Span], ner: Sequence[tuple[int, int, str]]
    ) -> list[Span]:
        """The rule spans plus the NER entities that fill the gaps (rule spans always win: resolving the
        already resolved rule spans again with NER spans added keeps every rule span as it was)."""
        if not ner:
            return rule_spans
        spans = list(rule_spans)
        for start, end, entity_type in ner:
            value = text[start:end]
            if end > start and _has_capitalized_word(value) and not (
                entity_type == "PERSON" and _all_common(value, spec)
            ):
                spans.append(Span(start, end, entity_type, normalize(entity_type, value), _NER_SCORE, TIER_NER))
        return resolve_spans(text, spans)


#: Capitalised words the English NER never turns into a PERSON or a place on their own (dates, the pronoun).
_NEVER_ENTITY = frozenset(
    ["i", "i'm", "i'll", "i've", "i'd", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
     "sunday", "january", "february", "march", "april", "june", "july", "august", "september", "october",
     "november", "december"]
)
_CAP_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = frozenset(".!?:;\n\r\t•*-–—\"'“”‘’([")


def _needs_ner(text: str, accepted: Sequence[Span], spec: LanguageSpec) -> bool:
    """Whether the NER could still add an entity to ``accepted`` (the resolved rule spans).

    An NER entity is kept only for a part that no rule span covers and that holds a capitalised word
    (``resolve_spans``), so a text whose every capitalised word is covered gets nothing from it. Two kinds of
    uncovered capitalised words are also passed over: a common word of the language that is not a
    gazetteer name and starts a sentence ("Please", "The", "Thanks": capitalised because they start the
    sentence, and a single common word is dropped as PERSON anyway, see ``_all_common``), and weekdays,
    months and "I". Every other uncovered capitalised word (mid-sentence, unknown, a name, an acronym)
    sends the text to the NER.
    """
    if not any(c.isupper() for c in text):
        return False
    covered = [(s.start, s.end) for s in accepted]
    for m in _CAP_WORD.finditer(text):
        word = m.group()
        if not any(c.isupper() for c in word):
            continue
        s, e = m.start(), m.end()
        if any(a <= s and e <= b for a, b in covered):
            continue
        low = word.lower()
        if low in _NEVER_ENTITY:
            continue
        if not word[0].isupper() or (len(word) > 1 and not word[1:].islower()):
            return True  # "McDonald", "NHS", "iPhone": not a plain sentence-initial word
        j = s - 1
        while j >= 0 and text[j] == " ":
            j -= 1
        if (j < 0 or text[j] in _SENTENCE_END) and spec.is_common(word):
            given, surname, _flagged = spec.name_kind(word)
            if not (given or surname):
                continue
        return True
    return False


def _has_capitalized_word(value: str) -> bool:
    return any(w[:1].isupper() for w in value.split())


def _all_common(value: str, spec: LanguageSpec) -> bool:
    """An NER entity made only of ordinary words ("Drill", "Will") is not a name on its own."""
    words = [w.strip(".,:;!?'\"()") for w in value.split()]
    words = [w for w in words if w]
    if not words:
        return True
    if len(words) > 1:
        return False  # "Jack Morgan": several capitalised words the NER calls a person are trusted
    for w in words:
        given, surname, flagged = spec.name_kind(w)
        if (given or surname) and not flagged:
            return False
        if not spec.is_common(w):
            return False
    return True


def _common_word_in_lower_case(text: str, span: Span, spec: LanguageSpec) -> bool:
    """A known name part that is also an ordinary word of the text's language ("Will" in "I will call")
    counts only when written capitalised."""
    if span.placeholder_type != "PERSON":
        return False
    value = text[span.start : span.end]
    return " " not in value and not value[:1].isupper() and spec.is_common(value)


_singleton: Pseudonymizer | None = None
_singleton_lock = threading.Lock()


def get_pseudonymizer() -> Pseudonymizer:
    """Process-wide shared :class:`Pseudonymizer` (created once, thread-safe)."""
    global _singleton
    if _singleton is None:
        with _singleton_lock:
            if _singleton is None:
                _singleton = Pseudonymizer()
    return _singleton
