"""What a language module declares (:class:`LanguageSpec`) and the rule-based recognizers driven by it:
person names (gazetteers + context cues + capitalisation), street addresses with postal codes, dates of
birth and ages. Pure Python, no Django; every regex is compiled once per language, on first use.

Names. A capitalised token is looked up, with the language's case endings stripped ("Kowalskiego" ->
"Kowalski", "Virtaselle" -> "Virtanen"), in the language's given-name and surname gazetteers
(``data/given_<lang>.txt``, ``data/surnames_<lang>.txt``, built by ``tools/build_name_gazetteers.py`` from
names-dataset; never from Faker). A name that is also a common word of the language (flagged in the
gazetteer) counts only in a name context. Name contexts:

* a cue phrase ("my name is", "nazywam się", "ik ben", "jag heter", "nimeni on", "mein Name ist", ...) or a
  title ("Mr", "Pani", "Herr", "meneer", ...) right before the capitalised words;
* a sign-off ("Pozdrawiam,", "Met vriendelijke groet,", "Mit freundlichen Grüßen,", "Hälsningar,",
  "Terveisin,", "Kind regards,") before them;
* a given name followed by a surname or another capitalised word that is not a common word (or the
  reverse order "Kowalski Jan").

A lone given name that is not a common word counts anywhere; a lone surname only in a context.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .spans import TIER_PATTERN, Span
from .text import normalize

DATA_DIR = Path(__file__).resolve().parent / "data"

_NAME_SCORE = 0.8
_TOKEN = re.compile(r"['’]t(?!\w)|[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_NUMERIC_DATE = r"(?:\d{1,2}[./\-]\d{1,2}[./\-](?:19|20)?\d{2}|(?:19|20)\d{2}[./\-]\d{1,2}[./\-]\d{1,2})"

_gazetteer_lock = threading.Lock()


@dataclass(frozen=True)
class Gazetteer:
    """Given names and surnames of one language (folded to lower case) and its common words."""

    given: dict[str, bool]  # name -> also a common word
    surnames: dict[str, bool]
    common: frozenset[str]


def _read_names(path: Path) -> dict[str, bool]:
    out: dict[str, bool] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, flag = line.partition("\t")
        if name:
            out[name.lower()] = flag.strip() == "*"
    return out


@dataclass(frozen=True)
class LanguageSpec:
    """Everything language specific. A new language is one module defining ``SPEC`` + a registry line."""

    code: str  # ISO 639-1
    country: str  # default phone region (ISO 3166-1 alpha-2)
    name_cues: tuple[str, ...] = ()  # phrases followed by a name ("my name is")
    titles: tuple[str, ...] = ()  # words followed by a surname ("Mr", "Pani")
    signoffs: tuple[str, ...] = ()  # closing formulas followed by the writer's name
    weak_cues: tuple[str, ...] = ()  # greetings, prepositions, "I am": followed by a name only if a gazetteer one
    street: str = ""  # regex of a street with its house number
    postal_city: str = ""  # regex of a postal code (+ city) that may follow a street
    months: tuple[str, ...] = ()  # month names / stems, for dates of birth
    dob_cues: tuple[str, ...] = ()  # "born", "date of birth", ...
    ages: tuple[str, ...] = ()  # regexes with one group: the age
    name_endings: tuple[tuple[str, str], ...] = ()  # (case ending, replacement) to find a name's base form
    use_ner: bool = False  # the English spaCy NER (English only)
    phone_regions: tuple[str, ...] = ()  # regions whose national format the language's texts use
    extra_names: Callable[[str], Iterable[str]] | None = field(default=None, compare=False)

    # -- compiled, once per language ---------------------------------------------------------------------

    @cached_property
    def gazetteer(self) -> Gazetteer:
        with _gazetteer_lock:
            common_path = DATA_DIR / f"common_{self.code}.txt"
            common = frozenset(common_path.read_text(encoding="utf-8").split()) if common_path.exists() else frozenset()
            return Gazetteer(
                _read_names(DATA_DIR / f"given_{self.code}.txt"),
                _read_names(DATA_DIR / f"surnames_{self.code}.txt"),
                common,
            )

    @cached_property
    def _cue_re(self) -> re.Pattern[str] | None:
        phrases = [*self.name_cues, *self.titles]
        if not phrases:
            return None
        alt = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(phrases, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alt})(?:\.|:)?[ \t]*$", re.IGNORECASE)

    @cached_property
    def _cue_words(self) -> frozenset[str]:
        """Single words that are titles, or the last word of a cue or sign-off ("Herr", "ist", "Grüßen")."""
        words = {t.rstrip(".").lower() for t in self.titles if " " not in t}
        words |= {p.split()[-1].rstrip(".,:").lower() for p in (*self.name_cues, *self.signoffs, *self.weak_cues)
                  if p.split()}
        return frozenset(w for w in words if w)

    @cached_property
    def _title_re(self) -> re.Pattern[str] | None:
        if not self.titles:
            return None
        alt = "|".join(re.escape(t.rstrip(".")) for t in sorted(self.titles, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alt})\.?[ \t]+$", re.IGNORECASE)

    @cached_property
    def _weak_re(self) -> re.Pattern[str] | None:
        if not self.weak_cues:
            return None
        alt = "|".join(re.escape(p) for p in sorted(self.weak_cues, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alt})[ \t]*[,.!:]?[ \t]*\n?[ \t]*$", re.IGNORECASE)

    @cached_property
    def _signoff_re(self) -> re.Pattern[str] | None:
        if not self.signoffs:
            return None
        alt = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(self.signoffs, key=len, reverse=True))
        return re.compile(rf"(?<!\w)(?:{alt})[ \t]*[,.!:\-–]?[ \t]*\n?[ \t]*$", re.IGNORECASE)

    @cached_property
    def _street_re(self) -> re.Pattern[str] | None:
        if not self.street:
            return None
        tail = rf"(?:[ \t]*,?[ \t]*(?:{self.postal_city}))?" if self.postal_city else ""
        return re.compile(rf"(?:{self.street}){tail}")

    @cached_property
    def _dob_re(self) -> re.Pattern[str] | None:
        if not self.dob_cues:
            return None
        months = "|".join(self.months)
        textual = rf"\d{{1,2}}\.?\s+(?:{months})[^\W\d_]*\.?\s+(?:19|20)\d{{2}}" if months else ""
        english = rf"(?:{months})[^\W\d_]*\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}" if months else ""
        date = "|".join(p for p in (_NUMERIC_DATE, textual, english) if p)
        cues = "|".join(re.escape(c).replace(r"\ ", r"\s+") for c in sorted(self.dob_cues, key=len, reverse=True))
        # The cue before the date ("born on", "urodził się", "syntyneensä") or right after it ("am ... geboren").
        return re.compile(rf"(?<!\w)(?:{cues})[^\n\d]{{0,25}}?({date})|({date})[ \t,]{{0,3}}(?:{cues})",
                          re.IGNORECASE)

    @cached_property
    def _age_res(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in self.ages)

    # -- lookups -----------------------------------------------------------------------------------------

    def base_forms(self, word: str) -> list[str]:
        """``word`` (lower case) and its possible base forms with a case ending removed."""
        forms = [word]
        for ending, replacement in self.name_endings:
            if word.endswith(ending) and len(word) - len(ending) >= 2:
                forms.append(word[: len(word) - len(ending)] + replacement)
        return forms

    def name_kind(self, word: str) -> tuple[bool, bool, bool]:
        """(is a given name, is a surname, is also a common word) for a token, any inflection."""
        gaz = self.gazetteer
        lower = word.lower()
        given = surname = False
        flagged = lower in gaz.common
        for form in self.base_forms(lower):
            g = gaz.given.get(form)
            s = gaz.surnames.get(form)
            if g is not None:
                given = True
                flagged = flagged or (g and form == lower)
            if s is not None:
                surname = True
                flagged = flagged or (s and form == lower)
            if given or surname:
                break
        if not (given or surname) and "-" in lower:
            parts = [self.name_kind(part) for part in word.split("-") if part]
            given = any(k[0] for k in parts)
            surname = any(k[1] for k in parts)
            flagged = all(k[2] for k in parts)
        return given, surname, flagged

    def is_common(self, word: str) -> bool:
        return word.lower() in self.gazetteer.common

    # -- recognizers -------------------------------------------------------------------------------------

    def find_names(self, text: str) -> list[Span]:
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        if not tokens:
            return []
        out: list[Span] = []
        i = 0
        n = len(tokens)
        while i < n:
            s, e, w = tokens[i]
            if not _capitalized(w) or w.lower() in self._cue_words:
                i += 1  # a title or cue word ("Herr", "Meneer", "Pozdrawiam") is context, not part of a name
                continue
            # A run of capitalised tokens separated by one space or hyphen (no punctuation, no line break).
            j = i + 1
            while j < n and j - i < 5 and _joined(text, tokens[j - 1][1], tokens[j][0]):
                if _capitalized(tokens[j][2]):
                    j += 1
                else:
                    c = j  # "Daan de Vries", "Tijs van der Veen", "Teun van 't Erve"
                    while (c < n and c - j < 3 and tokens[c][2].lower() in _PARTICLES
                           and (c == j or _joined(text, tokens[c - 1][1], tokens[c][0]))):
                        c += 1
                    if c > j and c < n and _capitalized(tokens[c][2]) and _joined(text, tokens[c - 1][1], tokens[c][0]):
                        j = c + 1
                    else:
                        break
            run = tokens[i:j]
            strength = self._context(text, s)
            in_context = strength > 0
            kinds = [_PARTICLE_KIND if not _capitalized(t[2]) and t[2].lower() in _PARTICLES
                     else self.name_kind(t[2]) for t in run]
            picked: tuple[int, int] | None = None
            if in_context:
                # The capitalised words right after a cue are the name (at most 3, none a plain common word
                # unless it is also a name).
                k = 0
                while k < len(run) and k < 4 and (kinds[k] is _PARTICLE_KIND or any(kinds[k][:2])
                                                  or (strength > 1 and not self.is_common(run[k][2]))):
                    k += 1
                while k and kinds[k - 1] is _PARTICLE_KIND:
                    k -= 1
                if k:
                    picked = (0, k)
            plain = self._pick_without_context(run, kinds)
            if picked is None or (plain is not None and plain[1] - plain[0] > picked[1] - picked[0]):
                picked = plain
            if picked is not None:
                a, b = picked
                start, end = run[a][0], run[b - 1][1]
                if a == 0:
                    start = _particles_before(text, start)  # "Meneer van Loon": the particle is the name's
                    title = self._title_re.search(text, max(0, start - 16), start) if self._title_re else None
                    if title is not None:
                        start = title.start()  # "Mr", "Pani", "Herr": a title says who, it goes too
                out.append(Span(start, end, "PERSON", normalize("PERSON", text[start:end]), _NAME_SCORE,
                                 TIER_PATTERN))
            i = j
        return out

    def _pick_without_context(self, run: list[tuple[int, int, str]], kinds: list[tuple[bool, bool, bool]]
                              ) -> tuple[int, int] | None:
        for a in range(len(run)):
            if kinds[a] is _PARTICLE_KIND:
                continue
            given, surname, flagged = kinds[a]
            if not (given or surname):
                continue
            b = a + 1
            # Extend over further name tokens (a particle only before one), or one capitalised non-common
            # word after a given name.
            while b < len(run):
                if kinds[b] is _PARTICLE_KIND:
                    c = b
                    while c < len(run) and kinds[c] is _PARTICLE_KIND:
                        c += 1  # "van der", "van den"
                    if c < len(run) and (any(kinds[c][:2]) or not self.is_common(run[c][2])):
                        b = c + 1
                        continue
                    break
                g2, s2, _f2 = kinds[b]
                if g2 or s2:
                    b += 1
                    continue
                if kinds[b - 1][0] and not self.is_common(run[b][2]) and len(run[b][2]) > 1:
                    b += 1
                break
            if (a > 0 and kinds[a - 1] is not _PARTICLE_KIND and not any(kinds[a - 1][:2])
                    and not self.is_common(run[a - 1][2]) and len(run[a - 1][2]) > 1):
                a -= 1  # "Ingbert Johann": an unknown given name before a known name
            names = [k for k in kinds[a:b] if k is not _PARTICLE_KIND]
            if len(names) >= 2:
                has_given = any(k[0] for k in names)
                unflagged = any((k[0] or k[1]) and not k[2] for k in names)
                all_common = all(self.is_common(t[2]) for t, k in zip(run[a:b], kinds[a:b], strict=True)
                                 if k is not _PARTICLE_KIND)
                if unflagged or (has_given and not all_common):
                    return (a, b)
            elif given and not flagged:
                return (a, b)
        return None

    def _context(self, text: str, start: int) -> int:
        """2: a cue, title or sign-off stands right before ``start``; 1: a weak cue (a greeting, a
        preposition, "I am"), after which only a gazetteer name counts; 0: none."""
        before = _TRAILING_PARTICLES.sub("", text[max(0, start - 60) : start])
        if self._cue_re is not None and self._cue_re.search(before):
            return 2
        if self._signoff_re is not None and self._signoff_re.search(before):
            return 2
        return 1 if self._weak_re is not None and self._weak_re.search(before) else 0

    def find_addresses(self, text: str) -> list[Span]:
        if self._street_re is None or not any(c.isdigit() for c in text):
            return []
        out = []
        for m in self._street_re.finditer(text):
            value = m.group().rstrip(" ,")
            if value:
                end = m.start() + len(value)
                out.append(Span(m.start(), end, "ADDRESS", normalize("ADDRESS", value), 0.85, TIER_PATTERN))
                # The town right after the address ("…, Leeds", "… w miejscowości Ełk", "… in Utrecht").
                town = _TOWN_AFTER.match(text, end)
                if town and not all(self.is_common(w) for w in town.group(1).split()):
                    s, e = town.span(1)
                    out.append(Span(s, e, "LOCATION", normalize("LOCATION", town.group(1)), 0.8, TIER_PATTERN))
        return out

    def find_dates_of_birth_and_ages(self, text: str) -> list[Span]:
        if not any(c.isdigit() for c in text):
            return []
        out = []
        if self._dob_re is not None:
            for m in self._dob_re.finditer(text):
                g = 1 if m.group(1) else 2
                s, e = m.span(g)
                out.append(Span(s, e, "DATE_OF_BIRTH", normalize("DATE_OF_BIRTH", m.group(g)), 0.9, TIER_PATTERN))
        for regex in self._age_res:
            for m in regex.finditer(text):
                s, e = m.span(1)
                out.append(Span(s, e, "AGE", m.group(1), 0.85, TIER_PATTERN))
        return out


_PARTICLES = frozenset({"van", "de", "der", "den", "von", "ter", "ten", "zu", "af", "av", "la", "le", "da", "di",
                        "del", "van't", "vom", "zum", "'t", "’t", "t", "in", "het"})
_TRAILING_PARTICLES = re.compile(r"(?:(?<=\s)(?:van|de|der|den|von|ter|ten|zu|af|av|vom|zum)\s+)+$")
_PARTICLE_KIND = (False, False, False)  # a particle: continues a name, is none on its own


_PARTICLES_BEFORE = re.compile(
    r"(?:(?<=\s)|^)(?:(?:van|de|der|den|von|ter|ten|zu|af|av|vom|zum|['’]t)[ ])+$"
)


_TOWN_AFTER = re.compile(
    r"[ \t]*(?:,[ \t]*|[ \t]+(?:(?:in|w|we|miejscowości|mieście|i|im|der|bei|te|nabij)[ \t]+){1,2})"
    r"([A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻŠŽČŘ][^\W\d_]+(?:[ \t\-][A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻŠŽČŘ][^\W\d_]+)?)(?![\w@])"
)


def _particles_before(text: str, start: int) -> int:
    m = _PARTICLES_BEFORE.search(text, max(0, start - 20), start)
    return m.start() if m else start


def _capitalized(word: str) -> bool:
    return word[:1].isupper() and (len(word) == 1 or not word[1:].isupper() or len(word) <= 3)


def _joined(text: str, end: int, start: int) -> bool:
    gap = text[end:start]
    return gap in (" ", "-", "  ")


# Shared pieces for the language modules.
HOUSE = r"(?!(?:19|20)\d\d(?!\d))\d{1,4}[A-Za-z]?(?![\w])(?:[ ]?[/\-][ ]?\d{1,4}[A-Za-z]?)?"  # not a year
CAP = r"[A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻŠŽČŘŐŰ][^\W\d_]*"  # a capitalised word (upper-case first letter), no dot
WORD = r"[^\W\d_][\w'’\-]*\.?"
