"""Pseudonymization of free text (support tickets, notes) before it is scored.

Every personal entity is replaced by a typed placeholder that is stable within one customer
(``<PERSON_1>``, ``<EMAIL_2>``, ...). Detection combines:

* the customer's own known identifiers (names and their parts, e-mails, phones, addresses, other ids),
  matched case-, whitespace- and diacritics-insensitively in *any* language; these always win;
* Presidio pattern recognizers (e-mail, phone, IBAN, credit card, IP, URL, pattern-based national ids),
  which are language independent and run with cheap pre-filters;
* the English spaCy NER (PERSON, GPE/LOC/FAC -> LOCATION) through Presidio's ``SpacyNlpEngine``.

Privacy notes: nothing is downloaded at run time (see :mod:`profiles.offline_nlp`); no raw value is
logged, raised or stored in ``placeholder_state`` (keys are HMAC-SHA256 digests under a per-state random
salt); Presidio's ``encrypt`` operator is never used. Pure Python: no Django imports.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer import predefined_recognizers as presidio_recognizers
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
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


def _fold(text: str) -> str:
    return "".join(_fold_char(ch) for ch in text)


def _fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each folded char, the index of the original char it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
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
# Not preceded by a word char or "@", nor by "x." (so that names inside e-mails/URLs are left to those).
_NAME_LEFT = r"(?<![\w@])(?<!\w\.)"
_NAME_RIGHT = r"(?![\w@]|\.\w)"
_LETTERS = r"[^\W\d_]"
_SEP = r"[\s\-]+"
_PHONE_SEP = r"[\s.\-/()]{0,3}"
# Optional country code ("+48", "0048", "(+358)", "+44 (0)") or trunk zeros ("0", "(0)", "00").
_PHONE_PREFIX = r"(?:\(?(?:\+|00)[\s.]*\d{1,3}\)?[\s.\-/]*(?:\(?0{1,3}\)?[\s.\-/]*)?|\(?0{1,3}\)?[\s.\-/]*)?"


@dataclass(frozen=True)
class _KnownRule:
    regex: re.Pattern[str]
    placeholder_type: str
    key: str
    capitalized_only: bool = False


def _alternation(variants: Iterable[str]) -> str:
    unique = sorted(set(variants), key=lambda v: (-len(v), v))
    return "(?:" + "|".join(unique) + ")"


def _name_tokens(folded_name: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", folded_name) if t]


def _build_name_rules(names: Sequence[str]) -> list[_KnownRule]:
    folded = [" ".join(_name_tokens(_fold(n))) for n in names]
    folded = [f for f in folded if len(_NON_WORD.sub("", f)) >= 2]
    if not folded:
        return []
    # All known names belong to the customer: one placeholder, keyed like an NER-detected full name.
    canonical = max(folded, key=lambda f: (len(f.split()), len(f)))
    key = _text_key(canonical)
    exact: set[str] = set()
    inflected: set[str] = set()
    for name in folded:
        tokens = name.split()
        escaped = [re.escape(t) for t in tokens]
        # "Del", "Al", "El", "Di" leading a name are given names, not particles: never leave them in clear.
        particles = _NAME_PARTICLES - {tokens[0]} if tokens[0] in _GIVEN_NAME_PARTICLES else _NAME_PARTICLES
        if len(tokens) > 1:
            exact.add(r"[\s,\-]+".join(reversed(escaped)))
        # Every contiguous run of tokens ("van den Velde", "Anna Maria"), but not bare particles.
        for i in range(len(tokens)):
            for j in range(i + 1, len(tokens) + 1):
                if tokens[j - 1] not in particles and (j - i > 1 or tokens[i] not in particles):
                    exact.add(_SEP.join(escaped[i:j]))
        for token in {p for t in tokens for p in t.split("-") if p}:
            if len(token) < 2 or token in particles or not any(c.isalpha() for c in token):
                continue
            exact.add(re.escape(token))
            if len(token) >= 3 and token.isalpha():
                # Declined forms (PL "Kowalskiego", "Anny"; FI "Virtasen"): capitalized in the text only.
                stem = token[:-1] if len(token) >= 4 and token[-1] in "aeiouy" else token
                inflected.add(re.escape(stem) + _LETTERS + ("{1,4}" if len(stem) >= 5 else "{1,3}"))
                if token.endswith("nen") and len(token) >= 6:
                    inflected.add(re.escape(token[:-3]) + "s" + _LETTERS + "{1,4}")
    rules = [_KnownRule(re.compile(_NAME_LEFT + _alternation(exact) + _NAME_RIGHT), "PERSON", key)]
    if inflected:
        rules.append(
            _KnownRule(
                re.compile(_NAME_LEFT + _alternation(inflected) + _NAME_RIGHT),
                "PERSON",
                key,
                capitalized_only=True,
            )
        )
    return rules


def _build_email_rules(emails: Sequence[str]) -> list[_KnownRule]:
    rules = []
    for email in emails:
        folded = _fold(email).strip()
        if "@" not in folded or len(folded) < 3:
            continue
        regex = re.compile(r"(?<![\w.+\-@])" + re.escape(folded) + r"(?![\w\-@]|\.\w)")
        rules.append(_KnownRule(regex, "EMAIL", _normalize("EMAIL", folded)))
    return rules


_PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_EXTENSION_TEXT = r"(?:\s*(?:x|ext\.?|extension|#)\s*\d{1,6})?"


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


def _build_phone_rules(phones: Sequence[str]) -> list[_KnownRule]:
    rules = []
    for phone in phones:
        bodies = _phone_bodies(phone)
        if not bodies:
            continue
        body = _alternation(_PHONE_SEP.join(re.escape(d) for d in b) for b in bodies)
        regex = re.compile(r"(?<![\d+])" + _PHONE_PREFIX + body + r"(?!\d)" + _PHONE_EXTENSION_TEXT)
        rules.append(_KnownRule(regex, "PHONE", _normalize("PHONE", phone)))
    return rules


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


def _build_token_rules(
    values: Sequence[str], placeholder_type: str, *, split_parts: bool
) -> list[_KnownRule]:
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
        tokens = re.findall(r"[^\W_]+", _fold(candidate))
        joined = "".join(tokens)
        if len(joined) < 3 or (split_parts and len(joined) < 4 and candidate not in values):
            continue
        if joined in seen:
            continue
        seen.add(joined)
        body = r"[\W_]{0,4}".join(re.escape(t) for t in tokens)
        regex = re.compile(r"(?<![^\W_])" + body + r"(?![^\W_])")
        rules.append(_KnownRule(regex, placeholder_type, _normalize(placeholder_type, candidate)))
    return rules


def _build_known_rules(known: KnownIdentifiers) -> list[_KnownRule]:
    return [
        *_build_name_rules(known.names),
        *_build_email_rules(known.emails),
        *_build_phone_rules(known.phones),
        *_build_token_rules(known.addresses, "ADDRESS", split_parts=True),
        *_build_token_rules(known.other, "IDENTIFIER", split_parts=False),
    ]


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
            if sum(c.isdigit() for c in snippet) < 7 or any(
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
        nlp = load_spacy()
        ner_labels = set(getattr(nlp.get_pipe("ner"), "labels", ())) if "ner" in nlp.pipe_names else set()
        config = NerModelConfiguration(
            model_to_presidio_entity_mapping=dict(_NER_LABELS),
            labels_to_ignore=sorted(ner_labels - set(_NER_LABELS)),
            low_score_entity_names=[],
            default_score=_NER_SCORE,
        )
        # Wraps the already loaded pipeline: SpacyNlpEngine.load() (which may download) is never called.
        self._nlp_engine = SpacyNlpEngine(
            models=[{"lang_code": language, "model_name": SPACY_MODEL_PACKAGE}],
            ner_model_configuration=config,
        )
        self._nlp_engine.nlp = {language: nlp}  # type: ignore[assignment]
        self._ner = SpacyRecognizer(
            supported_language=language, supported_entities=["PERSON", "LOCATION"], ner_strength=_NER_SCORE
        )
        self._patterns = _build_pattern_specs()

    @property
    def recognizer_names(self) -> tuple[str, ...]:
        """Names of the Presidio recognizers in use (for documentation / DPO review)."""
        recognizers = [spec.recognizer for spec in self._patterns] + [self._ner]
        return tuple(str(getattr(r, "name", type(r).__name__)) for r in recognizers)

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

        rules_cache: dict[int, list[_KnownRule]] = {}  # per call only: compiled PII is not kept around
        artifacts = self._nlp_engine.process_batch(
            list(texts), self.language, batch_size=max(1, batch_size), n_process=max(1, n_process)
        )
        results: list[PseudonymizedText] = []
        for i, item in enumerate(artifacts):
            text, nlp_artifacts = texts[i], item[1]
            k = known[i] if known is not None else None
            rules: list[_KnownRule] = []
            if k is not None and not k.is_empty():
                if id(k) not in rules_cache:
                    rules_cache[id(k)] = _build_known_rules(k)
                rules = rules_cache[id(k)]
            raw_state = placeholder_states[i] if placeholder_states is not None else None
            state = _PlaceholderState(raw_state if raw_state is not None else {})
            spans = self._detect(text, nlp_artifacts, rules)
            results.append(_apply(text, spans, state))
        return results

    # -- detection ---------------------------------------------------------------------------------------

    def _detect(self, text: str, nlp_artifacts: NlpArtifacts, rules: list[_KnownRule]) -> list[_Span]:
        if not text.strip():
            return []
        spans: list[_Span] = []
        if rules:
            spans.extend(_match_known(text, rules))
        digits = sum(c.isdigit() for c in text)
        for spec in self._patterns:
            if not spec.should_run(text, digits):
                continue
            if isinstance(spec.recognizer, _FastPhoneRecognizer):
                found = spec.recognizer.analyze(
                    text,
                    spec.recognizer.supported_entities,
                    nlp_artifacts,
                    covered=[(sp.start, sp.end) for sp in spans],
                )
            else:
                found = spec.recognizer.analyze(text, spec.recognizer.supported_entities, nlp_artifacts)
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
        for r in self._ner.analyze(text, ["PERSON", "LOCATION"], nlp_artifacts):
            if not _has_capitalized_word(text[r.start : r.end]):
                continue
            if r.score >= self.score_threshold and r.end > r.start:
                ptype = _PLACEHOLDER_TYPE[r.entity_type]
                spans.append(
                    _Span(r.start, r.end, ptype, _normalize(ptype, text[r.start : r.end]), r.score, _TIER_NER)
                )
        return _resolve(text, spans)


def _match_known(text: str, rules: list[_KnownRule]) -> list[_Span]:
    folded, offsets = _fold_with_offsets(text)
    spans = []
    for rule in rules:
        for m in rule.regex.finditer(folded):
            if m.end() <= m.start():
                continue
            start, end = offsets[m.start()], offsets[m.end() - 1] + 1
            while end < len(text) and unicodedata.combining(text[end]):
                end += 1  # keep decomposed diacritics with their letter
            if rule.capitalized_only and not text[start].isupper():
                continue
            spans.append(_Span(start, end, rule.placeholder_type, rule.key, 1.0, _TIER_KNOWN))
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
