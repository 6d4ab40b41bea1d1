"""The customer's own known identifiers and their compile-free matcher (any language, any case)."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import phonenumbers

from .spans import TIER_KNOWN, Span
from .text import NON_DIGIT, NON_WORD, PHONE_EXTENSION, fold_text, fold_with_offsets, normalize, text_key


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




# Name particles that must not be matched on their own ("van" is just "of" in Dutch).
NAME_PARTICLES = frozenset(
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
GIVEN_NAME_PARTICLES = frozenset({"del", "al", "el", "di"})
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
        self.folded, self.offsets = fold_with_offsets(text)
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
class KnownMatcher:
    """A customer's identifiers, pre-folded; plain strings only (no compiled per-customer pattern)."""

    name_key: str = ""
    names: tuple[_NameAlternative, ...] = ()
    inflected: tuple[_InflectedAlternative, ...] = ()
    emails: tuple[tuple[str, str], ...] = ()  # (folded e-mail, key)
    phones: tuple[tuple[tuple[str, ...], str], ...] = ()  # (digit bodies in alternation order, key)
    tokens: tuple[_TokenRule, ...] = ()

    def __repr__(self) -> str:  # never print PII
        return "KnownMatcher(...)"


_GRADATION = re.compile(r"(kk|pp|tt)(?=[^kpt]*$)")
_GRADED_ENDINGS = ("n", "lle", "lla", "lta", "ksi", "ssa", "sta", "t", "ni", "si", "mme")


def _name_tokens(folded_name: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", folded_name) if t]


_Alt = TypeVar("_Alt")


def _ordered(alternatives: dict[str, _Alt]) -> tuple[_Alt, ...]:
    """Alternatives in the order a regex alternation sorted by (-len(source), source) would try them."""
    return tuple(alternatives[src] for src in sorted(alternatives, key=lambda v: (-len(v), v)))


def _build_name_matcher(
    names: Sequence[str],
) -> tuple[str, tuple[_NameAlternative, ...], tuple[_InflectedAlternative, ...]]:
    folded = [" ".join(_name_tokens(fold_text(n))) for n in names]
    folded = [f for f in folded if len(NON_WORD.sub("", f)) >= 2]
    if not folded:
        return "", (), ()
    # All known names belong to the customer: one placeholder, keyed like an NER-detected full name.
    canonical = max(folded, key=lambda f: (len(f.split()), len(f)))
    key = text_key(canonical)
    exact: dict[str, _NameAlternative] = {}  # regex source -> alternative
    inflected: dict[str, _InflectedAlternative] = {}
    for name in folded:
        tokens = name.split()
        escaped = [re.escape(t) for t in tokens]
        # "Del", "Al", "El", "Di" leading a name are given names, not particles: never leave them in clear.
        particles = NAME_PARTICLES - {tokens[0]} if tokens[0] in GIVEN_NAME_PARTICLES else NAME_PARTICLES
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


def _graded_forms(names: Sequence[str]) -> tuple[_NameAlternative, ...]:
    """Finnish consonant gradation of the known names ("Matti" -> "Matin", "Matille"; "Pekka" -> "Pekan"),
    which the stem rule above cannot reach. Matched like exact name parts (kept apart from the matcher the
    regex oracle describes)."""
    forms: dict[str, _NameAlternative] = {}
    for name in names:
        for token in _name_tokens(fold_text(name)):
            if len(token) < 4 or not token.isalpha() or token[-1] not in "aeiouy":
                continue
            body = token[:-1]
            graded = _GRADATION.sub(lambda m: m.group(1)[0], body)
            if graded != body:
                for ending in _GRADED_ENDINGS:
                    form = graded + token[-1] + ending
                    forms[form] = _NameAlternative((form,), False)
    return _ordered(forms)


def _any_separator_rules(values: Sequence[str]) -> tuple[_TokenRule, ...]:
    """Other identifiers (IBAN, customer numbers, ids) written with separators anywhere ("SE45 5000 ...",
    "cust 99812" for "CUST-99812"): a gap of up to 4 non-alphanumeric characters may fall at any position."""
    rules = []
    for rule in _build_token_matchers(values, "IDENTIFIER", split_parts=False):
        if len(rule.joined) >= 5:
            everywhere = frozenset(range(1, len(rule.joined)))
            rules.append(_TokenRule(rule.joined, everywhere, "", "", rule.placeholder_type, rule.key))
    return tuple(rules)


def build_known_matchers(known: KnownIdentifiers) -> list[KnownMatcher]:
    """The oracle-described matcher plus the extra forms: Finnish graded names and identifiers with any
    separators (same placeholder keys)."""
    main = build_known_matcher(known)
    graded = _graded_forms(known.names) if main.name_key else ()
    endings = _whole_word_endings(known.names) if main.name_key else ()
    anysep = _any_separator_rules(known.other)
    if not graded and not anysep and not endings:
        return [main]
    return [main, KnownMatcher(name_key=main.name_key, names=graded, inflected=endings, tokens=anysep)]


def _whole_word_endings(names: Sequence[str]) -> tuple[_InflectedAlternative, ...]:
    """The whole name part plus a case ending of up to 4 letters ("Harju" -> "Harjulle", "Anna" -> "Annasta"),
    which the vowel-dropping stem above allows only up to 3 letters for short names. Capitalised only."""
    out: dict[str, _InflectedAlternative] = {}
    for name in names:
        for token in _name_tokens(fold_text(name)):
            for part in token.split("-"):
                if len(part) >= 4 and part.isalpha() and part not in NAME_PARTICLES:
                    out[re.escape(part) + _LETTERS + "{1,4}"] = _InflectedAlternative(part, 4)
    return _ordered(out)


def _build_email_matchers(emails: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for email in emails:
        folded = fold_text(email).strip()
        if "@" not in folded or len(folded) < 3:
            continue
        out.append((folded, normalize("EMAIL", folded)))
    return out




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


def _build_phone_matchers(phones: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    out = []
    for phone in phones:
        bodies = _phone_bodies(phone)
        if bodies:
            out.append((tuple(sorted(bodies, key=lambda b: (-len(b), b))), normalize("PHONE", phone)))
    return out


def address_subparts(part: str) -> list[str]:
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
                candidates.extend(address_subparts(part))
    seen: set[str] = set()
    for candidate in candidates:
        folded = fold_text(candidate)
        tokens = _ALNUM_RUN.findall(folded)
        joined = "".join(tokens)
        if len(joined) < 3 or (split_parts and len(joined) < 4 and candidate not in values):
            continue
        if joined in seen:
            continue
        seen.add(joined)
        boundaries = frozenset(itertools.accumulate(len(t) for t in tokens[:-1]))
        key = NON_WORD.sub(" ", folded).strip()  # == normalize(placeholder_type, candidate) for both types
        rules.append(_TokenRule(joined, boundaries, tokens[0], tokens[-1], placeholder_type, key))
    return rules


def build_known_matcher(known: KnownIdentifiers) -> KnownMatcher:
    name_key, names, inflected = _build_name_matcher(known.names)
    return KnownMatcher(
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


def _match_names(s: str, m: KnownMatcher) -> list[tuple[int, int, bool]]:
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



def match_known(text: str, matcher: KnownMatcher) -> list[Span]:
    ft = _FoldedText(text)
    folded, offsets = ft.folded, ft.offsets
    found: list[tuple[int, int, str, str, bool]] = []
    if matcher.names or matcher.inflected:
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
        spans.append(Span(start, end, placeholder_type, key, 1.0, TIER_KNOWN))
    return spans

