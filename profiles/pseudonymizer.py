"""Pseudonymization of free text (support tickets, notes) before it is scored.

Every personal entity is replaced by a typed placeholder that is stable within one customer
(``<PERSON_1>``, ``<EMAIL_2>``, ...). Detection combines:

* the customer's own known identifiers (names and their parts, e-mails, phones, addresses, other ids),
  matched case-, whitespace- and diacritics-insensitively in *any* language; these always win;
* Presidio pattern recognizers (e-mail, phone, IBAN, credit card, IP, URL, pattern-based national ids),
  which are language independent and run with cheap pre-filters;
* the English spaCy NER (PERSON, GPE/LOC/FAC -> LOCATION), read straight from ``nlp.pipe`` (the same
  entities and fixed score Presidio's ``SpacyNlpEngine`` + ``SpacyRecognizer`` give, without building
  their per-text ``NlpArtifacts``: lemmas, token indices and explanation objects nobody here reads).

Privacy notes: nothing is downloaded at run time (see :mod:`profiles.offline_nlp`); no raw value is
logged, raised or stored in ``placeholder_state`` (keys are HMAC-SHA256 digests under a per-state random
salt); Presidio's ``encrypt`` operator is never used. Pure Python: no Django imports.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import re
import secrets
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import phonenumbers
from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer import predefined_recognizers as presidio_recognizers
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
)

from .offline_nlp import SPACY_MODEL_PACKAGE, ensure_offline_tldextract, load_spacy

__all__ = [
    "PHONE_REGIONS",
    "KnownIdentifiers",
    "PseudonymizedText",
    "Pseudonymizer",
    "get_pseudonymizer",
]

PHONE_REGIONS: tuple[str, ...] = ("GB", "DE", "NL", "PL", "FI", "SE", "US")

# Presidio class name -> (minimum digits in the text, quick regex that is a superset of its patterns).
# Only pattern-based recognizers whose matches are checksum-validated or score >= 0.5 without context.
_NATIONAL_ID_RECOGNIZERS: dict[str, tuple[int, str]] = {
    "NhsRecognizer": (10, r"\d{3}[- ]?\d{3}[- ]?\d{4}"),
    "UkNinoRecognizer": (6, r"[a-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[a-d]"),
    "UkDrivingLicenceRecognizer": (6, r"[a-z9]{5}\d{3}"),
    "PlPeselRecognizer": (11, r"\d{11}"),
    "FiPersonalIdentityCodeRecognizer": (9, r"\d{6}[-+a-z]\d{3}"),
    "SePersonnummerRecognizer": (10, r"\d{6,8}[-+]?\d{4}"),
    "EsNifRecognizer": (7, r"\d{7}-?[a-z]"),
    "EsNieRecognizer": (7, r"\d{7}-?[a-z]"),
    "ItFiscalCodeRecognizer": (1, r"[a-z]{6}[\dlmnp-v]{2}[a-z]"),
    "DeTaxIdRecognizer": (11, r"\d{11}"),
    "DeSocialSecurityRecognizer": (11, r"\d{8}[a-z]\d{3}"),
    "DeIdCardRecognizer": (1, r"\b[a-z][a-z0-9]{7}\d\b"),
    "UsSsnRecognizer": (9, r"\d{3}[- .]\d{2}[- .]\d{4}"),
}

# Presidio entity type -> placeholder type.
_PLACEHOLDER_TYPE: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IP_ADDRESS": "IP",
    "URL": "URL",
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
}
_NER_LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
}
_NER_SCORE = 0.85

# Tiers for overlap resolution (lower wins first).
_TIER_KNOWN, _TIER_PATTERN, _TIER_NER = 0, 1, 2

_STATE_VERSION = "1"
_STATE_SALT = "_salt"
_STATE_VERSION_KEY = "_v"
_STATE_COUNTER_PREFIX = "_n:"


# ---------------------------------------------------------------------------------------------------------
# Public data types
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownIdentifiers:
    """The customer's own identifiers (from the decrypted profile); matched in any language."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print PII (e.g. in tracebacks or debug logs)
        counts = ", ".join(
            f"{f}={len(getattr(self, f))}" for f in ("names", "emails", "phones", "addresses", "other")
        )
        return f"KnownIdentifiers({counts})"

    def is_empty(self) -> bool:
        """True when no identifier is given."""
        return not (self.names or self.emails or self.phones or self.addresses or self.other)


@dataclass(frozen=True)
class PseudonymizedText:
    """Rewritten text plus a value-free summary."""

    text: str
    entities: tuple[tuple[str, int], ...]
    mapping_hash: str


# ---------------------------------------------------------------------------------------------------------
# Normalization helpers
# ---------------------------------------------------------------------------------------------------------

_SPECIAL_FOLD = {
    "ł": "l",
    "Ł": "l",
    "ø": "o",
    "Ø": "o",
    "đ": "d",
    "Đ": "d",
    "ð": "d",
    "Ð": "d",
    "þ": "th",
    "Þ": "th",
    "æ": "ae",
    "Æ": "ae",
    "œ": "oe",
    "Œ": "oe",
    "ß": "ss",
    "ı": "i",
    "ħ": "h",
    "Ħ": "h",
}


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """Lower-case, strip diacritics (``ł``->``l``, ``é``->``e``); may return "" for combining marks."""
    special = _SPECIAL_FOLD.get(ch)
    if special is not None:
        return special
    if ch.isascii():
        return ch.lower()
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base.casefold()


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first use of each character (characters only, never values)."""

    def __missing__(self, ordinal: int) -> str:
        folded = _fold_char(chr(ordinal))
        if len(folded) != 1:
            _FOLD_IRREGULAR.add(chr(ordinal))
        self[ordinal] = folded
        return folded


_FOLD_TABLE = _FoldTable()
_FOLD_IRREGULAR: set[str] = set()  # characters that fold to "" or to several characters


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_FOLD_TABLE)


def _fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each folded char, the index of the original char it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    folded = text.translate(_FOLD_TABLE)
    if len(folded) == len(text) and _FOLD_IRREGULAR.isdisjoint(text):
        return folded, list(range(len(text)))
    parts: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        parts.append(folded)
        offsets.extend([i] * len(folded))
    return "".join(parts), offsets


_NON_WORD = re.compile(r"[\W_]+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NON_DIGIT = re.compile(r"\D+")


def _phone_key(value: str) -> str:
    """Last 9 digits (extension ignored): equal for "+48 601 234 567", "601-234-567" and "0601234567"."""
    digits = _NON_DIGIT.sub("", _PHONE_EXTENSION.sub("", value))
    return digits[-9:] if len(digits) >= 5 else _fold(value).strip()


def _url_key(value: str) -> str:
    v = _fold(value).strip().strip("\"'")
    v = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", v)
    v = v.removeprefix("www.")
    return v.rstrip("/")


def _text_key(value: str) -> str:
    return _NON_WORD.sub(" ", _fold(value)).strip()


def _normalize(placeholder_type: str, value: str) -> str:
    """Normalized form of a detected value, used (hashed) as the placeholder-state key."""
    if placeholder_type == "EMAIL":
        return _fold(value).strip()
    if placeholder_type == "PHONE":
        return _phone_key(value)
    if placeholder_type in ("IBAN", "CREDIT_CARD", "NATIONAL_ID"):
        return _NON_ALNUM.sub("", _fold(value))
    if placeholder_type == "IP":
        return _fold(value).strip()
    if placeholder_type == "URL":
        return _url_key(value)
    return _text_key(value)


# ---------------------------------------------------------------------------------------------------------
# Known-identifier matcher
# ---------------------------------------------------------------------------------------------------------

# Name particles that must not be matched on their own ("van" is just "of" in Dutch).
_NAME_PARTICLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "prof",
        "sir",
        "van",
        "von",
        "der",
        "den",
        "de",
        "la",
        "le",
        "da",
        "di",
        "del",
        "du",
        "af",
        "av",
        "ter",
        "ten",
        "het",
        "el",
        "al",
        "y",
        "e",
    }
)
_GIVEN_NAME_PARTICLES = frozenset({"del", "al", "el", "di"})
# The customer's identifiers are matched without compiling anything per customer: a per-customer regex
# (one alternation per kind) cost ~1 ms to compile and every text of a batch usually has a different
# author, so compiling dominated the run time while a cache of compiled patterns would have kept raw PII
# around. Instead each kind is matched by literal ``str.find`` of the folded identifier pieces in the folded
# text plus explicit boundary checks, emulating the regexes below (documented, and kept as the test oracle
# ``tests/profiles/known_regex_oracle.py``) with ``re.finditer`` semantics: leftmost match first, the first
# alternative in (-len(source), source) order wins at a position, no overlaps within one rule.
#
#   names:     (?<![\w@])(?<!\w\.) (?:tok[\s\-]+tok...|tok[\s,\-]+tok (reversed)|tok) (?![\w@]|\.\w)
#   inflected: same boundaries, stem[^\W\d_]{1,3|4}, kept only when capitalized in the text
#   e-mails:   (?<![\w.+\-@]) literal (?![\w\-@]|\.\w)
#   phones:    (?<![\d+]) PREFIX? d[\s.\-/()]{0,3}d...d (?!\d) EXTENSION?
#   addresses / other ids: (?<![^\W_]) tok[\W_]{0,4}tok... (?![^\W_])
#
# The matcher is built per call from the KnownIdentifiers and dropped with it: nothing is cached across
# calls, so no raw identifier outlives the request that carried it.

_LETTERS = r"[^\W\d_]"
_SEP = r"[\s\-]+"
_SEP_REVERSED = r"[\s,\-]+"
_PHONE_SEP = r"[\s.\-/()]{0,3}"
# Optional country code ("+48", "0048", "(+358)", "+44 (0)") or trunk zeros ("0", "(0)", "00").
_PHONE_PREFIX = r"(?:\(?(?:\+|00)[\s.]*\d{1,3}\)?[\s.\-/]*(?:\(?0{1,3}\)?[\s.\-/]*)?|\(?0{1,3}\)?[\s.\-/]*)?"
# Leftmost start of "(?<![\d+]) PREFIX?" ending exactly at endpos (module level: compiled once).
_PHONE_LEFT = re.compile(r"(?<![\d+])" + _PHONE_PREFIX + r"\Z")
_PHONE_EXTENSION_AT = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}")
# Digits whose gaps are 0-3 phone separators: a known phone body can only occur inside one such chain.
_DIGIT_CHAIN = re.compile(r"\d(?:[\s.\-/()]{0,3}\d)*")
_ALNUM_RUN = re.compile(r"[^\W_]+")


def _is_word(ch: str) -> bool:
    """``re``'s ``\\w`` for str patterns."""
    return ch.isalnum() or ch == "_"


def _is_letter(ch: str) -> bool:
    """``re``'s ``[^\\W\\d_]``."""
    return ch.isalnum() and not ch.isdecimal()


def _name_left_ok(s: str, p: int) -> bool:
    """``(?<![\\w@])(?<!\\w\\.)`` at ``p``."""
    if p == 0:
        return True
    c = s[p - 1]
    if c == "@" or _is_word(c):
        return False
    return not (c == "." and p >= 2 and _is_word(s[p - 2]))


def _name_right_ok(s: str, e: int) -> bool:
    """``(?![\\w@]|\\.\\w)`` at ``e``."""
    if e >= len(s):
        return True
    c = s[e]
    if c == "@" or _is_word(c):
        return False
    return not (c == "." and e + 1 < len(s) and _is_word(s[e + 1]))


def _find_all(s: str, literal: str) -> list[int]:
    """Start of every (possibly overlapping) occurrence of ``literal`` in ``s``."""
    out = []
    i = s.find(literal)
    while i != -1:
        out.append(i)
        i = s.find(literal, i + 1)
    return out


class _FoldedText:
    """One text folded once, with lazily built indexes shared by all of a customer's identifiers."""

    __slots__ = ("_chains", "_runs", "folded", "offsets")

    def __init__(self, text: str) -> None:
        self.folded, self.offsets = _fold_with_offsets(text)
        self._chains: list[tuple[str, list[int]]] | None = None
        self._runs: tuple[str, list[int], list[int], list[int], dict[int, int]] | None = None

    def digit_chains(self) -> list[tuple[str, list[int]]]:
        """(digits, position of each digit) for every chain of digits joined by 0-3 phone separators."""
        if self._chains is None:
            chains = []
            for m in _DIGIT_CHAIN.finditer(self.folded):
                base = m.start()
                positions = [base + k for k, c in enumerate(m.group()) if c.isdecimal()]
                chains.append(("".join(self.folded[p] for p in positions), positions))
            self._chains = chains
        return self._chains

    def alnum_runs(self) -> tuple[str, list[int], list[int], list[int], dict[int, int]]:
        """Letters/digits only (``[^\\W_]``) and, per run: start in it, start in the text, length;
        plus start-in-projection -> run index."""
        if self._runs is None:
            parts: list[str] = []
            proj_starts: list[int] = []
            text_starts: list[int] = []
            lengths: list[int] = []
            n = 0
            for m in _ALNUM_RUN.finditer(self.folded):
                run = m.group()
                parts.append(run)
                proj_starts.append(n)
                text_starts.append(m.start())
                lengths.append(len(run))
                n += len(run)
            index = {p: k for k, p in enumerate(proj_starts)}
            self._runs = ("".join(parts), proj_starts, text_starts, lengths, index)
        return self._runs


@dataclass(frozen=True)
class _NameAlternative:
    tokens: tuple[str, ...]  # folded literals
    comma: bool  # separators are [\s,\-]+ (reversed order "Nowak, Anna") instead of [\s\-]+


@dataclass(frozen=True)
class _InflectedAlternative:
    stem: str
    max_letters: int


@dataclass(frozen=True)
class _TokenRule:
    joined: str  # the value's letters/digits
    boundaries: frozenset[int]  # offsets in ``joined`` where the value has a separator
    first: str  # first and last word of the value: a match contains both verbatim (cheap pre-check)
    last: str
    placeholder_type: str
    key: str


@dataclass(frozen=True)
class _KnownMatcher:
    """A customer's identifiers, pre-folded; plain strings only (no compiled per-customer pattern)."""

    name_key: str = ""
    names: tuple[_NameAlternative, ...] = ()
    inflected: tuple[_InflectedAlternative, ...] = ()
    emails: tuple[tuple[str, str], ...] = ()  # (folded e-mail, key)
    phones: tuple[tuple[tuple[str, ...], str], ...] = ()  # (digit bodies in alternation order, key)
    tokens: tuple[_TokenRule, ...] = ()

    def __repr__(self) -> str:  # never print PII
        return "_KnownMatcher(...)"


def _name_tokens(folded_name: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", folded_name) if t]


_Alt = TypeVar("_Alt")


def _ordered(alternatives: dict[str, _Alt]) -> tuple[_Alt, ...]:
    """Alternatives in the order a regex alternation sorted by (-len(source), source) would try them."""
    return tuple(alternatives[src] for src in sorted(alternatives, key=lambda v: (-len(v), v)))


def _build_name_matcher(
    names: Sequence[str],
) -> tuple[str, tuple[_NameAlternative, ...], tuple[_InflectedAlternative, ...]]:
    folded = [" ".join(_name_tokens(_fold(n))) for n in names]
    folded = [f for f in folded if len(_NON_WORD.sub("", f)) >= 2]
    if not folded:
        return "", (), ()
    # All known names belong to the customer: one placeholder, keyed like an NER-detected full name.
    canonical = max(folded, key=lambda f: (len(f.split()), len(f)))
    key = _text_key(canonical)
    exact: dict[str, _NameAlternative] = {}  # regex source -> alternative
    inflected: dict[str, _InflectedAlternative] = {}
    for name in folded:
        tokens = name.split()
        escaped = [re.escape(t) for t in tokens]
        # "Del", "Al", "El", "Di" leading a name are given names, not particles: never leave them in clear.
        particles = _NAME_PARTICLES - {tokens[0]} if tokens[0] in _GIVEN_NAME_PARTICLES else _NAME_PARTICLES
        if len(tokens) > 1:
            exact[_SEP_REVERSED.join(reversed(escaped))] = _NameAlternative(tuple(reversed(tokens)), True)
        # Every contiguous run of tokens ("van den Velde", "Anna Maria"), but not bare particles.
        for i in range(len(tokens)):
            for j in range(i + 1, len(tokens) + 1):
                if tokens[j - 1] not in particles and (j - i > 1 or tokens[i] not in particles):
                    exact[_SEP.join(escaped[i:j])] = _NameAlternative(tuple(tokens[i:j]), False)
        for token in {p for t in tokens for p in t.split("-") if p}:
            if len(token) < 2 or token in particles or not any(c.isalpha() for c in token):
                continue
            exact[re.escape(token)] = _NameAlternative((token,), False)
            if len(token) >= 3 and token.isalpha():
                # Declined forms (PL "Kowalskiego", "Anny"; FI "Virtasen"): capitalized in the text only.
                stem = token[:-1] if len(token) >= 4 and token[-1] in "aeiouy" else token
                most = 4 if len(stem) >= 5 else 3
                inflected[re.escape(stem) + _LETTERS + f"{{1,{most}}}"] = _InflectedAlternative(stem, most)
                if token.endswith("nen") and len(token) >= 6:
                    inflected[re.escape(token[:-3]) + "s" + _LETTERS + "{1,4}"] = _InflectedAlternative(
                        token[:-3] + "s", 4
                    )
    return key, _ordered(exact), _ordered(inflected)


def _build_email_matchers(emails: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for email in emails:
        folded = _fold(email).strip()
        if "@" not in folded or len(folded) < 3:
            continue
        out.append((folded, _normalize("EMAIL", folded)))
    return out


_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def _phone_bodies(phone: str) -> set[str]:
    """Digit sequences that identify the number whatever the prefix: national significant number(s)."""
    stripped = _PHONE_EXTENSION.sub("", phone).strip().lstrip("(").strip()
    digits = _NON_DIGIT.sub("", stripped)
    bodies = {digits.lstrip("0")}
    if stripped.startswith(("+", "00")):
        try:
            parsed = phonenumbers.parse("+" + digits[2:] if stripped.startswith("00") else stripped, None)
            bodies.add(phonenumbers.national_significant_number(parsed).lstrip("0"))
        except phonenumbers.NumberParseException:
            pass
    return {b for b in bodies if len(b) >= 5}


def _build_phone_matchers(phones: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    out = []
    for phone in phones:
        bodies = _phone_bodies(phone)
        if bodies:
            out.append((tuple(sorted(bodies, key=lambda b: (-len(b), b))), _normalize("PHONE", phone)))
    return out


def _address_subparts(part: str) -> list[str]:
    """Split "1015 CX Amsterdam", "London SW1A 1AA", "Keizersgracht 12" into code/number and the rest."""
    tokens = re.findall(r"[^\W_]+", part)

    def code_like(i: int, run: range) -> bool:
        tok = tokens[i]
        return any(c.isdigit() for c in tok) or (
            len(tok) <= 3
            and tok.isupper()
            and any(j in run and any(c.isdigit() for c in tokens[j]) for j in (i - 1, i + 1))
        )

    out = []
    lead = 0
    while lead < len(tokens) and code_like(lead, range(len(tokens))):
        lead += 1
    trail = len(tokens)
    while trail > lead and code_like(trail - 1, range(len(tokens))):
        trail -= 1
    if 0 < lead < len(tokens):
        out += [" ".join(tokens[:lead]), " ".join(tokens[lead:])]
    if lead <= trail < len(tokens) and trail > 0:
        out += [" ".join(tokens[lead:trail]), " ".join(tokens[trail:])]
    return out


def _build_token_matchers(values: Sequence[str], placeholder_type: str, *, split_parts: bool) -> list[_TokenRule]:
    """Addresses / other ids: word tokens joined by up to 4 non-word chars (``00-950`` ~ ``00950``)."""
    rules = []
    candidates: list[str] = []
    for value in values:
        candidates.append(value)
        if split_parts:
            for part in re.split(r"[,;\n]+", value):
                candidates.append(part)
                candidates.extend(_address_subparts(part))
    seen: set[str] = set()
    for candidate in candidates:
        folded = _fold(candidate)
        tokens = _ALNUM_RUN.findall(folded)
        joined = "".join(tokens)
        if len(joined) < 3 or (split_parts and len(joined) < 4 and candidate not in values):
            continue
        if joined in seen:
            continue
        seen.add(joined)
        boundaries = frozenset(itertools.accumulate(len(t) for t in tokens[:-1]))
        key = _NON_WORD.sub(" ", folded).strip()  # == _normalize(placeholder_type, candidate) for both types
        rules.append(_TokenRule(joined, boundaries, tokens[0], tokens[-1], placeholder_type, key))
    return rules


def _build_known_matcher(known: KnownIdentifiers) -> _KnownMatcher:
    name_key, names, inflected = _build_name_matcher(known.names)
    return _KnownMatcher(
        name_key=name_key,
        names=names,
        inflected=inflected,
        emails=tuple(_build_email_matchers(known.emails)),
        phones=tuple(_build_phone_matchers(known.phones)),
        tokens=(
            *_build_token_matchers(known.addresses, "ADDRESS", split_parts=True),
            *_build_token_matchers(known.other, "IDENTIFIER", split_parts=False),
        ),
    )


def _match_name_tokens(s: str, p: int, tokens: tuple[str, ...], comma: bool) -> int | None:
    """End of ``tok (sep+ tok)*`` at ``p`` followed by a name boundary; backtracks like ``re``."""

    def is_sep(c: str) -> bool:
        return c.isspace() or c == "-" or (comma and c == ",")

    def rec(i: int, q: int) -> int | None:
        token = tokens[i]
        if not s.startswith(token, q):
            return None
        e = q + len(token)
        if i == len(tokens) - 1:
            return e if _name_right_ok(s, e) else None
        r = e
        while r < len(s) and is_sep(s[r]):
            r += 1
        for q2 in range(r, e, -1):  # greedy separator run first, then shorter ones
            end = rec(i + 1, q2)
            if end is not None:
                return end
        return None

    return rec(0, p)


def _match_inflected(s: str, p: int, alt: _InflectedAlternative) -> int | None:
    if not s.startswith(alt.stem, p):
        return None
    q = p + len(alt.stem)
    r = q
    while r < len(s) and r - q <= alt.max_letters and _is_letter(s[r]):
        r += 1
    # The letter run must be 1..max long and maximal (a shorter one is followed by a letter: no boundary).
    if not 1 <= r - q <= alt.max_letters:
        return None
    return r if _name_right_ok(s, r) else None


def _scan(s: str, firsts: Iterable[str], try_at: Callable[[int], int | None]) -> list[tuple[int, int]]:
    """``finditer`` over candidate starts (occurrences of ``firsts``): leftmost first, no overlaps."""
    out = []
    last = 0
    for p in sorted({p for literal in firsts for p in _find_all(s, literal)}):
        if p < last or not _name_left_ok(s, p):
            continue
        end = try_at(p)
        if end is not None:
            out.append((p, end))
            last = end
    return out


def _match_names(s: str, m: _KnownMatcher) -> list[tuple[int, int, bool]]:
    def exact_at(p: int) -> int | None:
        for alt in m.names:
            end = _match_name_tokens(s, p, alt.tokens, alt.comma)
            if end is not None:
                return end
        return None

    def inflected_at(p: int) -> int | None:
        for alt in m.inflected:
            end = _match_inflected(s, p, alt)
            if end is not None:
                return end
        return None

    out = [(a, b, False) for a, b in _scan(s, {alt.tokens[0] for alt in m.names}, exact_at)]
    if m.inflected:
        out += [(a, b, True) for a, b in _scan(s, {alt.stem for alt in m.inflected}, inflected_at)]
    return out


def _email_left_ok(s: str, p: int) -> bool:
    """``(?<![\\w.+\\-@])``."""
    return p == 0 or not (_is_word(s[p - 1]) or s[p - 1] in ".+-@")


def _email_right_ok(s: str, e: int) -> bool:
    """``(?![\\w\\-@]|\\.\\w)``."""
    if e >= len(s):
        return True
    c = s[e]
    if c in "-@" or _is_word(c):
        return False
    return not (c == "." and e + 1 < len(s) and _is_word(s[e + 1]))


def _match_email(s: str, literal: str) -> list[tuple[int, int]]:
    out = []
    i = s.find(literal)
    while i != -1:
        e = i + len(literal)
        if _email_left_ok(s, i) and _email_right_ok(s, e):
            out.append((i, e))
            i = s.find(literal, e)
        else:
            i = s.find(literal, i + 1)
    return out


def _match_phone(ft: _FoldedText, bodies: tuple[str, ...]) -> list[tuple[int, int]]:
    s = ft.folded
    # Every occurrence of a body inside one digit chain, not followed by a digit: (body start, body end).
    occurrences: list[tuple[int, int]] = []
    for digits, positions in ft.digit_chains():
        for body in bodies:
            for i in _find_all(digits, body):
                j = i + len(body)
                if j < len(positions) and positions[j] == positions[j - 1] + 1:
                    continue  # (?!\d)
                occurrences.append((positions[i], positions[j - 1] + 1))
    out: list[tuple[int, int]] = []
    last = 0
    while occurrences:
        best: tuple[int, int] | None = None
        for body_start, body_end in occurrences:
            if body_start < last:
                continue
            m = _PHONE_LEFT.search(s, last, body_start)  # leftmost start of an optional prefix
            if m is not None and (best is None or (m.start(), -body_end) < (best[0], -best[1])):
                best = (m.start(), body_end)
        if best is None:
            break
        start, end = best
        ext = _PHONE_EXTENSION_AT.match(s, end)
        if ext is not None:
            end = ext.end()
        out.append((start, end))
        last = end
        occurrences = [o for o in occurrences if o[0] >= last]
    return out


def _match_token_rule(ft: _FoldedText, rule: _TokenRule) -> list[tuple[int, int]]:
    if rule.first not in ft.folded or rule.last not in ft.folded:
        return []
    proj, proj_starts, text_starts, lengths, run_at = ft.alnum_runs()
    joined = rule.joined
    out = []
    i = proj.find(joined)
    while i != -1:
        j = i + len(joined)
        k = run_at.get(i)  # (?<![^\W_]): starts a run
        ok = k is not None
        kk = k if k is not None else 0
        while ok and proj_starts[kk] + lengths[kk] < j:
            # A gap in the text (1-4 non-alnum chars) must fall where the value has a separator.
            gap = text_starts[kk + 1] - text_starts[kk] - lengths[kk]
            if gap > 4 or proj_starts[kk + 1] - i not in rule.boundaries:
                ok = False
            kk += 1
        if ok and proj_starts[kk] + lengths[kk] == j:  # (?![^\W_]): ends a run
            out.append((text_starts[k], text_starts[kk] + j - proj_starts[kk]))  # type: ignore[index]
            i = proj.find(joined, j)
        else:
            i = proj.find(joined, i + 1)
    return out


# ---------------------------------------------------------------------------------------------------------
# Spans and overlap resolution
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    placeholder_type: str
    key: str  # normalized value; hashed before it reaches the state
    score: float
    tier: int

    @property
    def length(self) -> int:
        return self.end - self.start


def _overlaps(span: _Span, accepted: Sequence[_Span]) -> bool:
    return any(span.start < a.end and a.start < span.end for a in accepted)


def _uncovered(start: int, end: int, accepted: Sequence[_Span]) -> list[tuple[int, int]]:
    segments = [(start, end)]
    for a in accepted:
        nxt = []
        for s, e in segments:
            if a.end <= s or a.start >= e:
                nxt.append((s, e))
                continue
            if s < a.start:
                nxt.append((s, a.start))
            if a.end < e:
                nxt.append((a.end, e))
        segments = nxt
    return segments


def _has_capitalized_word(value: str) -> bool:
    """Names are written capitalized; this drops English-NER noise on other languages ("mijn naam")."""
    return any(w[:1].isupper() for w in value.split())


def _resolve(text: str, spans: list[_Span]) -> list[_Span]:
    """Known ids win, then pattern hits (longer, then higher score); NER fills the remaining gaps."""
    accepted: list[_Span] = []
    for span in sorted(
        (s for s in spans if s.tier != _TIER_NER), key=lambda s: (s.tier, -s.length, -s.score, s.start)
    ):
        if not _overlaps(span, accepted):
            accepted.append(span)
    for span in sorted(
        (s for s in spans if s.tier == _TIER_NER), key=lambda s: (-s.length, -s.score, s.start)
    ):
        if not _overlaps(span, accepted):
            accepted.append(span)
            continue
        # Keep the part of an NER entity not covered by a stronger match ("Anna Nowak" next to own name).
        for s, e in _uncovered(span.start, span.end, accepted):
            piece = text[s:e]
            lead = len(piece) - len(piece.lstrip(" \t\n,.;:'\"()-"))
            trail = len(piece) - len(piece.rstrip(" \t\n,.;:'\"()-"))
            s, e = s + lead, e - trail
            if e - s >= 2 and sum(c.isalnum() for c in text[s:e]) >= 2 and _has_capitalized_word(text[s:e]):
                accepted.append(
                    _Span(
                        s,
                        e,
                        span.placeholder_type,
                        _normalize(span.placeholder_type, text[s:e]),
                        span.score,
                        _TIER_NER,
                    )
                )
    return sorted(accepted, key=lambda s: s.start)


# ---------------------------------------------------------------------------------------------------------
# Placeholder state
# ---------------------------------------------------------------------------------------------------------


class _PlaceholderState:
    """View over the caller's ``dict[str, str]``: HMAC(salt, type|value) -> placeholder, plus counters."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data
        if _STATE_SALT not in data:
            data[_STATE_VERSION_KEY] = _STATE_VERSION
            data[_STATE_SALT] = secrets.token_hex(16)
        self._salt = bytes.fromhex(data[_STATE_SALT])

    def digest(self, placeholder_type: str, key: str) -> str:
        return hmac.new(self._salt, f"{placeholder_type}|{key}".encode(), hashlib.sha256).hexdigest()

    def placeholder_for(self, placeholder_type: str, key: str) -> tuple[str, str]:
        digest = self.digest(placeholder_type, key)
        existing = self.data.get(digest)
        if existing is not None:
            return existing, digest
        counter_key = _STATE_COUNTER_PREFIX + placeholder_type
        n = int(self.data.get(counter_key, "0")) + 1
        self.data[counter_key] = str(n)
        placeholder = f"<{placeholder_type}_{n}>"
        self.data[digest] = placeholder
        return placeholder, digest


def _apply(text: str, spans: list[_Span], state: _PlaceholderState) -> PseudonymizedText:
    if not spans:
        return PseudonymizedText(text=text, entities=(), mapping_hash="")
    assigned = [(span, *state.placeholder_for(span.placeholder_type, span.key)) for span in spans]
    out = text
    for span, placeholder, _digest in sorted(assigned, key=lambda a: a[0].start, reverse=True):
        out = out[: span.start] + placeholder + out[span.end :]
    counts = Counter(span.placeholder_type for span, _p, _d in assigned)
    pairs = sorted({f"{placeholder}={digest}" for _s, placeholder, digest in assigned})
    mapping_hash = hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:16]
    return PseudonymizedText(text=out, entities=tuple(sorted(counts.items())), mapping_hash=mapping_hash)


# ---------------------------------------------------------------------------------------------------------
# Pattern recognizers
# ---------------------------------------------------------------------------------------------------------

_PHONE_CANDIDATE = re.compile(
    r"\(?(?:\+|\b00)?\(?\d[\d \t().\-/]{4,24}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?", re.I
)


class _FastPhoneRecognizer(PhoneRecognizer):
    """Presidio's PhoneRecognizer run only on digit-run candidates, stopping at the first region that parses
    the whole candidate. Numbers are validated by ``phonenumbers`` (leniency VALID), hence score 0.6."""

    SCORE = 0.6

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        covered: Sequence[tuple[int, int]] = (),
    ) -> list[RecognizerResult]:
        """``covered``: spans already matched by a stronger recognizer (IBAN, card, ...); skipped."""
        results: list[RecognizerResult] = []
        leniency = phonenumbers.Leniency.VALID if self.leniency is None else self.leniency
        for cand in _PHONE_CANDIDATE.finditer(text):
            snippet = cand.group()
            offset = cand.start()
            if sum(map(str.isdigit, snippet)) < 7 or any(
                s <= offset and cand.end() <= e for s, e in covered
            ):
                continue
            full = len(snippet.rstrip(" \t().-/"))
            for region in self.supported_regions:
                complete = False
                for match in phonenumbers.PhoneNumberMatcher(snippet, region, leniency=leniency):
                    result = self._get_recognizer_result(match, snippet, region, nlp_artifacts)
                    result.start += offset
                    result.end += offset
                    results.append(result)
                    complete = complete or (match.start <= 1 and match.end >= full)
                if complete:
                    break
        return EntityRecognizer.remove_duplicates(results)


@dataclass(frozen=True)
class _PatternSpec:
    recognizer: EntityRecognizer
    placeholder_type: str
    should_run: Callable[[str, int], bool]


_IBAN_HINT = re.compile(r"[A-Z]{2}\d{2}")
_CC_HINT = re.compile(r"\d(?:[ -]?\d){12}")
_IP_HINT = re.compile(r"\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f:]|::")
_URL_HINT = re.compile(r"[A-Za-z0-9]\.[A-Za-z]{2}")
_URL_TRAILING = ".,;:!?'\")]"


def _min_digits(n: int) -> Callable[[str, int], bool]:
    return lambda _text, digits: digits >= n


def _hint(min_digits: int, pattern: str) -> Callable[[str, int], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda text, digits: digits >= min_digits and regex.search(text) is not None


def _build_pattern_specs() -> list[_PatternSpec]:
    specs = [
        _PatternSpec(EmailRecognizer(supported_language="en"), "EMAIL", lambda t, _d: "@" in t),
        _PatternSpec(
            IbanRecognizer(supported_language="en"),
            "IBAN",
            lambda t, d: d >= 8 and _IBAN_HINT.search(t) is not None,
        ),
        _PatternSpec(
            CreditCardRecognizer(supported_language="en"),
            "CREDIT_CARD",
            lambda t, d: d >= 13 and _CC_HINT.search(t) is not None,
        ),
        _PatternSpec(
            IpRecognizer(supported_language="en"), "IP", lambda t, _d: _IP_HINT.search(t) is not None
        ),
        _PatternSpec(
            UrlRecognizer(supported_language="en"), "URL", lambda t, _d: _URL_HINT.search(t) is not None
        ),
        # After the above: phone candidates inside an IBAN / card / IP / URL / e-mail match are skipped.
        _PatternSpec(
            _FastPhoneRecognizer(supported_language="en", supported_regions=PHONE_REGIONS),
            "PHONE",
            _min_digits(7),
        ),
    ]
    for class_name, (min_digits, hint) in _NATIONAL_ID_RECOGNIZERS.items():
        cls = getattr(presidio_recognizers, class_name, None)
        if cls is None or not issubclass(cls, PatternRecognizer):
            continue  # not in this Presidio version / not pattern based
        specs.append(_PatternSpec(cls(supported_language="en"), "NATIONAL_ID", _hint(min_digits, hint)))
    return specs


class _RedactStringArgs(logging.Filter):
    """Presidio logs some matched values (e.g. IBAN validation errors): drop string args of its records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple("[redacted]" if isinstance(a, str) else a for a in args)
        return True


def _harden_presidio_logging() -> None:
    presidio_logger = logging.getLogger("presidio-analyzer")
    if not any(isinstance(f, _RedactStringArgs) for f in presidio_logger.filters):
        presidio_logger.addFilter(_RedactStringArgs())


# ---------------------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------------------


class Pseudonymizer:
    """Replaces personal entities by per-customer stable placeholders (see module docstring)."""

    def __init__(self, *, language: str = "en", score_threshold: float = 0.5) -> None:
        if language != "en":
            # Known-identifier and pattern matching are language independent; NER only exists for English.
            raise ValueError("only language='en' is supported (non-English text is still handled)")
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError("score_threshold must be within [0, 1]")
        self.language = language
        self.score_threshold = score_threshold
        ensure_offline_tldextract()
        _harden_presidio_logging()
        # The process-wide, NER-only pipeline loaded by package name (never downloaded).
        self._nlp = load_spacy()
        self._nlp_lock = threading.Lock()
        self._patterns = _build_pattern_specs()

    @property
    def recognizer_names(self) -> tuple[str, ...]:
        """Names of the Presidio recognizers in use (for documentation / DPO review)."""
        names = [str(getattr(spec.recognizer, "name", type(spec.recognizer).__name__)) for spec in self._patterns]
        return (*names, f"spaCy NER ({SPACY_MODEL_PACKAGE})")

    # -- public API --------------------------------------------------------------------------------------

    def pseudonymize(
        self,
        text: str,
        *,
        known: KnownIdentifiers | None = None,
        placeholder_state: dict[str, str] | None = None,
    ) -> PseudonymizedText:
        """Pseudonymize one text; ``placeholder_state`` (if given) is updated in place."""
        return self.pseudonymize_batch(
            [text], known=[known], placeholder_states=[placeholder_state], batch_size=1
        )[0]

    def pseudonymize_batch(
        self,
        texts: Sequence[str],
        *,
        known: Sequence[KnownIdentifiers | None] | None = None,
        placeholder_states: Sequence[dict[str, str] | None] | None = None,
        batch_size: int = 64,
        n_process: int = 1,
    ) -> list[PseudonymizedText]:
        """Pseudonymize many texts with one spaCy ``pipe`` pass; same output as :meth:`pseudonymize` per text.

        ``known[i]`` / ``placeholder_states[i]`` belong to ``texts[i]``. Texts are processed in order, so
        passing the same state dict for several texts of one customer numbers placeholders as sequential
        calls would.
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
        if n == 0:
            return []

        # spaCy adds every token it sees (names included) to the shared vocabulary for the life of the process;
        # inside a memory zone those strings are freed when the batch is done, so no text's words outlive the
        # call and a long-running worker does not grow. The zone is not thread-safe: one batch at a time.
        with self._nlp_lock, self._nlp.memory_zone():
            ner_of = [
                [(e.start_char, e.end_char, _NER_LABELS[e.label_]) for e in doc.ents if e.label_ in _NER_LABELS]
                for doc in self._nlp.pipe(list(texts), batch_size=max(1, batch_size), n_process=max(1, n_process))
            ]
        matchers: dict[int, _KnownMatcher] = {}  # per call only: identifiers are not kept around
        results: list[PseudonymizedText] = []
        for i, ner in enumerate(ner_of):
            text = texts[i]
            k = known[i] if known is not None else None
            matcher: _KnownMatcher | None = None
            if k is not None and not k.is_empty():
                matcher = matchers.get(id(k))
                if matcher is None:
                    matcher = matchers[id(k)] = _build_known_matcher(k)
            raw_state = placeholder_states[i] if placeholder_states is not None else None
            state = _PlaceholderState(raw_state if raw_state is not None else {})
            spans = self._detect(text, ner, matcher)
            results.append(_apply(text, spans, state))
        return results

    # -- detection ---------------------------------------------------------------------------------------

    def _detect(
        self, text: str, ner: Sequence[tuple[int, int, str]], matcher: _KnownMatcher | None
    ) -> list[_Span]:
        """``ner``: (start, end, PERSON | LOCATION) entities of the spaCy doc, in document order."""
        if not text.strip():
            return []
        spans: list[_Span] = []
        if matcher is not None:
            spans.extend(_match_known(text, matcher))
        digits = sum(map(str.isdigit, text))
        for spec in self._patterns:
            if not spec.should_run(text, digits):
                continue
            if isinstance(spec.recognizer, _FastPhoneRecognizer):
                found = spec.recognizer.analyze(
                    text,
                    spec.recognizer.supported_entities,
                    None,
                    covered=[(sp.start, sp.end) for sp in spans],
                )
            else:
                # Pattern recognizers do not read NLP artifacts (Presidio types the argument as required).
                found = spec.recognizer.analyze(text, spec.recognizer.supported_entities, None)  # type: ignore[arg-type]
            for r in found:
                start, end = r.start, r.end
                if spec.placeholder_type == "URL":
                    end = start + len(text[start:end].rstrip(_URL_TRAILING))  # "see x.com/a." keeps the dot
                if r.score >= self.score_threshold and end > start:
                    spans.append(
                        _Span(
                            start,
                            end,
                            spec.placeholder_type,
                            _normalize(spec.placeholder_type, text[start:end]),
                            r.score,
                            _TIER_PATTERN,
                        )
                    )
        if self.score_threshold <= _NER_SCORE:
            for start, end, entity_type in ner:
                if end > start and _has_capitalized_word(text[start:end]):
                    ptype = _PLACEHOLDER_TYPE[entity_type]
                    spans.append(
                        _Span(start, end, ptype, _normalize(ptype, text[start:end]), _NER_SCORE, _TIER_NER)
                    )
        return _resolve(text, spans)


def _match_known(text: str, matcher: _KnownMatcher) -> list[_Span]:
    ft = _FoldedText(text)
    folded, offsets = ft.folded, ft.offsets
    found: list[tuple[int, int, str, str, bool]] = []
    if matcher.names:
        found += [(a, b, "PERSON", matcher.name_key, cap) for a, b, cap in _match_names(folded, matcher)]
    for literal, key in matcher.emails:
        found += [(a, b, "EMAIL", key, False) for a, b in _match_email(folded, literal)]
    for bodies, key in matcher.phones:
        found += [(a, b, "PHONE", key, False) for a, b in _match_phone(ft, bodies)]
    for rule in matcher.tokens:
        found += [(a, b, rule.placeholder_type, rule.key, False) for a, b in _match_token_rule(ft, rule)]
    spans = []
    for a, b, placeholder_type, key, capitalized_only in found:
        start, end = offsets[a], offsets[b - 1] + 1
        while end < len(text) and unicodedata.combining(text[end]):
            end += 1  # keep decomposed diacritics with their letter
        if capitalized_only and not text[start].isupper():
            continue
        spans.append(_Span(start, end, placeholder_type, key, 1.0, _TIER_KNOWN))
    return spans


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
