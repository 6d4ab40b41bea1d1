"""Reference oracle for the known-identifier matcher: the per-customer regex rules the pseudonymizer used
before the compile-free matcher (copied verbatim from ``profiles/pseudonymizer.py`` at commit dffd503).

Tests compare the production matcher against it span for span; the service never uses it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import phonenumbers

from profiles.pseudonymizer import (
    GIVEN_NAME_PARTICLES,
    NAME_PARTICLES,
    NON_DIGIT,
    NON_WORD,
    KnownIdentifiers,
    address_subparts,
    fold_text,
    fold_with_offsets,
    normalize,
    text_key,
)

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
    folded = [" ".join(_name_tokens(fold_text(n))) for n in names]
    folded = [f for f in folded if len(NON_WORD.sub("", f)) >= 2]
    if not folded:
        return []
    # All known names belong to the customer: one placeholder, keyed like an NER-detected full name.
    canonical = max(folded, key=lambda f: (len(f.split()), len(f)))
    key = text_key(canonical)
    exact: set[str] = set()
    inflected: set[str] = set()
    for name in folded:
        tokens = name.split()
        escaped = [re.escape(t) for t in tokens]
        # "Del", "Al", "El", "Di" leading a name are given names, not particles: never leave them in clear.
        particles = NAME_PARTICLES - {tokens[0]} if tokens[0] in GIVEN_NAME_PARTICLES else NAME_PARTICLES
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
        folded = fold_text(email).strip()
        if "@" not in folded or len(folded) < 3:
            continue
        regex = re.compile(r"(?<![\w.+\-@])" + re.escape(folded) + r"(?![\w\-@]|\.\w)")
        rules.append(_KnownRule(regex, "EMAIL", normalize("EMAIL", folded)))
    return rules


PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)
_PHONE_EXTENSION_TEXT = r"(?:\s*(?:x|ext\.?|extension|#)\s*\d{1,6})?"


def _phone_bodies(phone: str) -> set[str]:
    """Digit sequences that identify the number whatever the prefix: national significant number(s)."""
    stripped = PHONE_EXTENSION.sub("", phone).strip().lstrip("(").strip()
    digits = NON_DIGIT.sub("", stripped)
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
        rules.append(_KnownRule(regex, "PHONE", normalize("PHONE", phone)))
    return rules


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
                candidates.extend(address_subparts(part))
    seen: set[str] = set()
    for candidate in candidates:
        tokens = re.findall(r"[^\W_]+", fold_text(candidate))
        joined = "".join(tokens)
        if len(joined) < 3 or (split_parts and len(joined) < 4 and candidate not in values):
            continue
        if joined in seen:
            continue
        seen.add(joined)
        body = r"[\W_]{0,4}".join(re.escape(t) for t in tokens)
        regex = re.compile(r"(?<![^\W_])" + body + r"(?![^\W_])")
        rules.append(_KnownRule(regex, placeholder_type, normalize(placeholder_type, candidate)))
    return rules


def _build_known_rules(known: KnownIdentifiers) -> list[_KnownRule]:
    return [
        *_build_name_rules(known.names),
        *_build_email_rules(known.emails),
        *_build_phone_rules(known.phones),
        *_build_token_rules(known.addresses, "ADDRESS", split_parts=True),
        *_build_token_rules(known.other, "IDENTIFIER", split_parts=False),
    ]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    placeholder_type: str
    key: str


def match_known(text: str, rules: list[_KnownRule]) -> list[Span]:
    folded, offsets = fold_with_offsets(text)
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
            spans.append(Span(start, end, rule.placeholder_type, rule.key))
    return spans



def known_spans(text: str, known: KnownIdentifiers) -> list[tuple[int, int, str, str]]:
    """(start, end, placeholder type, key) of every known-identifier match, in rule order."""
    return [(s.start, s.end, s.placeholder_type, s.key) for s in match_known(text, _build_known_rules(known))]
