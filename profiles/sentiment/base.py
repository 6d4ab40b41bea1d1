"""The shared engine: a VADER-style lexicon scorer with simple per-language rules.

A language module gives a :class:`LanguageRules` (its word list file, negators, intensifiers, dampeners and
contrast words); :class:`LexiconAnalyzer` applies the same rules as VADER (Hutto and Gilbert, 2014), simplified:

- each word's valence comes from the lexicon (lowercase); an unknown word is looked up again after the
  language's inflection rewrites (a few endings per language), then by its Snowball
  stem (``snowballstemmer``, pure Python, offline) in an index of the lexicon's stems built once at load, so
  inflected forms ("tyytyväisiä", "schlechten", "besvikna") count;
- an intensifier/dampener among the three words before it adds/removes 0.293 (scaled 1, 0.95, 0.9 by distance);
- a negator among the three words before it multiplies the valence by -0.74;
- a word in capitals in a text that is not all capitals adds 0.733 to its magnitude;
- after a contrast word ("but") words count 1.5×, before it 0.5×;
- exclamation marks (up to 4) add 0.292 each to the sum's magnitude;
- where the language enables it (Dutch, Swedish), a question without an exclamation mark has its sum halved;
- compound = sum / sqrt(sum² + 15), in [-1, 1].

Labels: compound ≥ ``POSITIVE_THRESHOLD`` → positive, ≤ ``NEGATIVE_THRESHOLD`` → negative, otherwise neutral.
The thresholds (±0.2) were set before any evaluation, not tuned on the benchmark sets: wider than VADER's
social-media ±0.05 because support tickets are mostly neutral requests carrying polite words ("please",
"thanks"), which alone should not make a ticket positive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"

POSITIVE_THRESHOLD = 0.2
NEGATIVE_THRESHOLD = -0.2

LABEL_POSITIVE = "positive"
LABEL_NEUTRAL = "neutral"
LABEL_NEGATIVE = "negative"
LABEL_UNKNOWN = "unknown"  # no model for the text's language (never guessed with another language's model)

B_INCR = 0.293
B_DECR = -0.293
C_INCR = 0.733
N_SCALAR = -0.74
ALPHA = 15.0
#: Texts are scored on their first characters only (a compound saturates long before; bounds the cost).
MAX_CHARS = 5000

#: Shorter stems are not looked up (they collide across unrelated words).
MIN_STEM = 5

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)


@dataclass(frozen=True)
class Sentiment:
    label: str
    score: float | None


def label_for(compound: float) -> str:
    if compound >= POSITIVE_THRESHOLD:
        return LABEL_POSITIVE
    if compound <= NEGATIVE_THRESHOLD:
        return LABEL_NEGATIVE
    return LABEL_NEUTRAL


def normalize(total: float, alpha: float = ALPHA) -> float:
    score = total / math.sqrt(total * total + alpha)
    return max(-1.0, min(1.0, score))


def load_tsv(name: str) -> dict[str, float]:
    """``word<TAB>valence`` lines (built by ``data/build.py``), read once per process."""
    out: dict[str, float] = {}
    with (DATA_DIR / name).open(encoding="utf-8") as fh:
        for line in fh:
            word, _, value = line.rstrip("\n").partition("\t")
            if word and value:
                out[word] = float(value)
    return out


@dataclass(frozen=True)
class LanguageRules:
    code: str
    lexicon_file: str
    negators: frozenset[str]
    boosters: frozenset[str] = frozenset()
    dampeners: frozenset[str] = frozenset()
    contrast: frozenset[str] = frozenset()
    #: Words that are never scored: function words and request verbs ("I", "would", "want", "change") that a
    #: translated or machine-expanded list carries with a valence by mistake.
    ignore: frozenset[str] = frozenset()
    #: Fused negation prefixes ("nie" in Polish "niedobry"): an unknown word with the prefix whose rest is
    #: known takes the rest's valence negated.
    negation_prefixes: tuple[str, ...] = ()
    #: Extra valences (domain words of customer service the general lists miss), set in the language module
    #: from the language's general usage, never from evaluation texts.
    extra: dict[str, float] = field(default_factory=dict)
    #: ``snowballstemmer`` algorithm name, or None for no stem fallback.
    stemmer: str | None = None
    #: Inflection rewrites tried before the stem, in order: (ending, replacement) — "schlechten" -> "schlecht",
    #: Finnish "tyytyväisiä" -> "tyytyväinen"; the first rewrite found in the lexicon wins.
    suffixes: tuple[tuple[str, str], ...] = ()
    #: A text that asks (ends with "?") and holds no exclamation mark is a request ("Is the helpline open at
    #: weekends?"): its sum is scaled by this, so one mildly scored word does not make a question positive
    #: or negative. 1.0: off.
    question_scale: float = 1.0


class LexiconAnalyzer:
    """Scores one language. Built once per process (the registry caches it); thread-safe after building."""

    def __init__(self, rules: LanguageRules, lexicon: dict[str, float] | None = None) -> None:
        self.rules = rules
        lex = dict(lexicon if lexicon is not None else load_tsv(rules.lexicon_file))
        lex.update(rules.extra)
        for word in rules.negators | rules.boosters | rules.dampeners | rules.contrast | rules.ignore:
            lex.pop(word, None)
        self.lexicon = lex
        self._stem: Callable[[str], str] | None = None
        self._stems: dict[str, float] = {}
        if rules.stemmer:
            import snowballstemmer

            stem_word = snowballstemmer.stemmer(rules.stemmer).stemWord
            self._stem = stem_word
            grouped: dict[str, list[float]] = {}
            for word, value in lex.items():
                stem = stem_word(word)
                if len(stem) >= MIN_STEM:
                    grouped.setdefault(stem, []).append(value)
            # A stem shared by words of both signs is ambiguous and left out.
            self._stems = {s: sum(v) / len(v) for s, v in grouped.items() if min(v) * max(v) > 0}
        skip = rules.negators | rules.boosters | rules.dampeners | rules.contrast | rules.ignore
        self._skip = skip
        self._cache: dict[str, float] = {}

    # -- lookup -------------------------------------------------------------------------------------------
    def _by_stem(self, word: str) -> float | None:
        if self._stem is None:
            return None
        stem = self._stem(word)
        if len(stem) < MIN_STEM:  # short stems collide ("ändern" -> "and" <- "anders")
            return None
        return self._stems.get(stem)

    def valence(self, word: str) -> float:
        """The word's valence (lowercase input), 0.0 when unknown. Memoized (bounded)."""
        lex = self.lexicon
        if word in lex:
            return lex[word]
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        value = self._valence_slow(word)
        if len(self._cache) > 100_000:  # bounded: a long import cannot grow it without limit
            self._cache.clear()
        self._cache[word] = value
        return value

    def _valence_slow(self, word: str) -> float:
        if word in self._skip or len(word) < 3:
            return 0.0
        for prefix in self.rules.negation_prefixes:
            rest = word[len(prefix):]
            if word.startswith(prefix) and len(rest) > 2:
                base = self.lexicon.get(rest)
                if base is None:
                    base = self._by_suffix(rest)
                if base is None:
                    base = self._by_stem(rest)
                if base is not None:
                    return base * N_SCALAR
        known = self._by_suffix(word)
        if known is not None:
            return known
        by_stem = self._by_stem(word)
        return by_stem if by_stem is not None else 0.0

    def _by_suffix(self, word: str) -> float | None:
        for ending, replacement in self.rules.suffixes:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                candidate = word[: len(word) - len(ending)] + replacement
                if candidate in self.lexicon:
                    return self.lexicon[candidate]
        return None

    # -- scoring ------------------------------------------------------------------------------------------
    def tokens(self, text: str) -> list[str]:
        return WORD.findall(text[:MAX_CHARS])

    def compound(self, text: str) -> float:
        words = self.tokens(text)
        if not words:
            return 0.0
        lower = [w.lower() for w in words]
        rules = self.rules
        caps_differ = any(w.isupper() for w in words) and not all(w.isupper() for w in words)
        valences: list[float] = []
        for i, (word, low) in enumerate(zip(words, lower, strict=True)):
            v = self.valence(low)
            if v == 0.0:
                valences.append(0.0)
                continue
            if caps_differ and word.isupper() and len(word) > 1:
                v += C_INCR if v > 0 else -C_INCR
            negated = False
            for dist, scale in ((1, 1.0), (2, 0.95), (3, 0.9)):
                j = i - dist
                if j < 0:
                    break
                prev = lower[j]
                if prev in rules.boosters:
                    v += (B_INCR if v > 0 else -B_INCR) * scale
                elif prev in rules.dampeners:
                    v += (B_DECR if v > 0 else -B_DECR) * scale
                elif prev in rules.negators:
                    negated = True
            if negated:
                v *= N_SCALAR
            valences.append(v)
        for i, low in enumerate(lower):
            if low in rules.contrast:
                valences = [v * 0.5 for v in valences[:i]] + [v * 1.5 for v in valences[i:]]
                break
        total = sum(valences)
        if total:
            bangs = min(text.count("!"), 4) * 0.292
            total += bangs if total > 0 else -bangs
            if rules.question_scale != 1.0 and not bangs and text.rstrip().endswith("?"):
                total *= rules.question_scale
        return round(normalize(total), 4)

    def analyze(self, text: str) -> Sentiment:
        score = self.compound(text)
        return Sentiment(label_for(score), score)

    def plain_polarity(self, text: str) -> int:
        """Baseline: positive minus negative lexicon words, unweighted, no rules (for the benchmark)."""
        return sum((v > 0) - (v < 0) for v in (self.lexicon.get(w.lower(), 0.0) for w in self.tokens(text)))


def words(*groups: Iterable[str]) -> frozenset[str]:
    return frozenset(w.lower() for g in groups for w in g)
