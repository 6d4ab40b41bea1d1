"""Language-independent recognizers: numbers that are *checked*, not just matched, and other identifiers.

* IBAN in any case and spacing, validated by ``python-stdnum`` (country length + mod-97 check digits);
* payment cards of 12-19 digits, Luhn-valid, with a plausible issuer digit (2-6);
* phone numbers via ``phonenumbers`` (leniency VALID): the customer's country first, then the text
  language's country, then the other supported regions; numbers in international form parse anywhere;
* national identifiers with their checksums (``python-stdnum``): PESEL, NIP, Finnish HETU, Swedish
  personnummer, Dutch BSN, German Steuer-IdNr, plus the UK NINO / NHS number, Spanish NIF, Italian codice
  fiscale and US SSN. Weak checksums (BSN 1 in 11, NIP, Steuer-IdNr) count without a keyword only in their
  own language; elsewhere a keyword ("BSN", "NIP", "Steuer-ID", ...) must stand before them;
* e-mail addresses, also spelled out ("jan dot kowalski at example dot com", "kropka"/"małpa", ...);
* IPv4 / IPv6 (validated by :mod:`ipaddress`), URLs (Presidio's URL recognizer, offline).

Every regex is compiled once at import; every recognizer has a cheap pre-filter. Pure Python, no Django.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.de import idnr as de_idnr
from stdnum.es import nif as es_nif
from stdnum.fi import hetu as fi_hetu
from stdnum.gb import nhs as gb_nhs
from stdnum.it import codicefiscale as it_cf
from stdnum.nl import bsn as nl_bsn
from stdnum.pl import nip as pl_nip
from stdnum.pl import pesel as pl_pesel
from stdnum.se import personnummer as se_pnr
from stdnum.us import ssn as us_ssn

from .spans import TIER_PATTERN, Span
from .text import normalize

__all__ = [
    "CARD_HINT",
    "IBAN_HINT",
    "PHONE_REGIONS",
    "SPELLED_AT",
    "SPELLED_DOT",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_ips",
    "find_national_ids",
    "find_phones",
    "find_spelled_emails",
    "find_urls",
    "harden_presidio_logging",
]

PHONE_REGIONS: tuple[str, ...] = ("GB", "DE", "NL", "PL", "FI", "SE", "US")
# Countries whose national numbers have no trunk prefix "0" (a bare "601234567" is a Polish mobile).
_NO_TRUNK = frozenset({"PL", "US", "CA", "ES", "IT", "PT", "DK", "NO", "GR", "LU"})

#: Cheap pre-filters (also used by :mod:`profiles.identifiers`). Case-insensitive: "pl61 1090 ..." counts.
IBAN_HINT = re.compile(r"[A-Za-z]{2}\s?\d{2}")
CARD_HINT = re.compile(r"\d(?:[ -]?\d){11}")

_SCORE_CHECKED = 0.95  # a checksum passed
_SCORE_PHONE = 0.6

# ---------------------------------------------------------------------------------------------------------
# IBAN and cards
# ---------------------------------------------------------------------------------------------------------

_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-.]?[A-Za-z0-9]){10,32}")


def find_ibans(text: str) -> list[Span]:
    """IBANs in any case and with any single separators, checked (longest valid prefix of a candidate)."""
    out = []
    for m in _IBAN_CANDIDATE.finditer(text):
        raw = m.group()
        positions = [i for i, c in enumerate(raw) if c.isalnum()]
        compact = "".join(raw[i] for i in positions).upper()
        for n in range(min(len(compact), 34), 14, -1):
            if std_iban.is_valid(compact[:n]):
                end = m.start() + positions[n - 1] + 1
                out.append(Span(m.start(), end, "IBAN", compact[:n].lower(), _SCORE_CHECKED, TIER_PATTERN))
                break
    return out


_CARD_CANDIDATE = re.compile(r"(?<![\d\w])\d(?:[ \-]?\d){11,18}(?![\d\w])")


def find_cards(text: str) -> list[Span]:
    """Payment cards: 12-19 digits (single spaces or dashes between), Luhn-valid, issuer digit 2-6 (or the
    JCB 1800 / 2131 and the old Maestro 0604 ranges)."""
    out = []
    for m in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if (digits[0] in "23456" or digits.startswith(("1800", "2131", "0604"))) and luhn.is_valid(digits):
            out.append(Span(m.start(), m.end(), "CREDIT_CARD", digits, _SCORE_CHECKED, TIER_PATTERN))
    return out


# ---------------------------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------------------------

_PHONE_CANDIDATE = re.compile(
    r"\(?(?:\+|\b00)?\(?\d[\d \t().\-/]{4,24}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?(?!\w)", re.I
)


def find_phones(text: str, regions: Sequence[str], covered: Sequence[tuple[int, int]] = ()) -> list[Span]:
    """Phone numbers valid per ``phonenumbers``; the first region that parses a whole candidate wins."""
    out: list[Span] = []
    leniency = phonenumbers.Leniency.VALID
    for cand in _PHONE_CANDIDATE.finditer(text):
        snippet = cand.group()
        offset = cand.start()
        if sum(map(str.isdigit, snippet)) < 7 or any(s <= offset and cand.end() <= e for s, e in covered):
            continue
        if snippet.isdigit() and snippet[0] != "0" and not _NO_TRUNK.intersection(regions[:1]):
            continue  # a bare run of digits without the trunk "0" is an order or reference number
        full = len(snippet.rstrip(" \t().-/"))
        found: list[tuple[int, int]] = []
        for region in regions:
            complete = False
            found = []
            for match in phonenumbers.PhoneNumberMatcher(snippet, region, leniency=leniency):
                found.append((offset + match.start, offset + match.end))
                complete = complete or (match.start <= 1 and match.end >= full)
            if complete:
                break
        if not found:
            continue
        for start, end in found:
            value = text[start:end]
            out.append(Span(start, end, "PHONE", normalize("PHONE", value), _SCORE_PHONE, TIER_PATTERN))
    return out


# ---------------------------------------------------------------------------------------------------------
# National identifiers
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NationalId:
    """One national identifier: a candidate regex, its stdnum validator, and whether it needs a keyword."""

    name: str
    language: str  # the language whose texts may carry it without a keyword ("" = strong, any text)
    pattern: re.Pattern[str]
    is_valid: Callable[[str], bool]
    keywords: tuple[str, ...] = ()


def _ok(fn: Callable[[str], bool]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return bool(fn(value))
        except Exception:  # stdnum raises on odd input in a few modules; a failed check is "not valid"
            return False

    return check


def _nino_valid(value: str) -> bool:
    v = re.sub(r"\s", "", value).upper()
    return (
        re.fullmatch(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", v) is not None
    )


def _b(p: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w\-+])" + p + r"(?![\w]|-\d)", re.IGNORECASE)


NATIONAL_IDS: tuple[NationalId, ...] = (
    NationalId("PESEL", "", _b(r"\d{11}"), _ok(pl_pesel.is_valid)),
    NationalId("HETU", "", _b(r"\d{6}[-+aA-FYXWVUbB-fyxwvu]\d{3}[0-9A-Ya-y]"), _ok(fi_hetu.is_valid)),
    NationalId("personnummer", "", _b(r"(?:\d{2})?\d{6}[-+]\d{4}"), _ok(se_pnr.is_valid)),
    NationalId("personnummer", "sv", _b(r"(?:19|20)?\d{10}"), _ok(se_pnr.is_valid)),
    NationalId("BSN", "nl", _b(r"\d{4}\.?\d{2}\.?\d{3}|\d{3}[ .]\d{3}[ .]\d{3}"), _ok(nl_bsn.is_valid),
               ("bsn", "burgerservicenummer", "sofinummer", "sofi-nummer")),
    NationalId("NIP", "pl", _b(r"\d{3}-?\d{3}-?\d{2}-?\d{2}|\d{3}-\d{2}-\d{2}-\d{3}"), _ok(pl_nip.is_valid),
               ("nip", "vat", "tax id", "tax number")),
    NationalId("Steuer-IdNr", "de", _b(r"\d{2} ?\d{3} ?\d{3} ?\d{3}"), _ok(de_idnr.is_valid),
               ("steuer-id", "steuerid", "steuer-idnr", "idnr", "steueridentifikationsnummer",
                "identifikationsnummer", "tax id", "steuernummer")),
    NationalId("NHS", "en", _b(r"\d{3}[ -]?\d{3}[ -]?\d{4}"), _ok(gb_nhs.is_valid), ("nhs",)),
    NationalId("NINO", "", _b(r"[a-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[a-d]"), _nino_valid),
    NationalId("NIF", "", _b(r"\d{8}-?[a-z]|[xyz]\d{7}-?[a-z]"), _ok(es_nif.is_valid)),
    NationalId("codice fiscale", "", _b(r"[a-z]{6}\d{2}[a-z]\d{2}[a-z]\d{3}[a-z]"), _ok(it_cf.is_valid)),
    NationalId("SSN", "en", _b(r"\d{3}-\d{2}-\d{4}"), _ok(us_ssn.is_valid), ("ssn", "social security")),
)
_KEYWORD_WINDOW = 40


def find_national_ids(text: str, language: str, digits: int) -> list[Span]:
    """National identifiers whose checksum passes (see :data:`NATIONAL_IDS` for the keyword rule)."""
    if digits < 6:
        return []
    out = []
    lowered: str | None = None
    for nid in NATIONAL_IDS:
        for m in nid.pattern.finditer(text):
            value = m.group()
            if not nid.is_valid(value):
                continue
            if nid.language and nid.language != language:
                if not nid.keywords:
                    continue
                lowered = lowered if lowered is not None else text.lower()
                window = lowered[max(0, m.start() - _KEYWORD_WINDOW) : m.start()]
                if not any(k in window for k in nid.keywords):
                    continue
            out.append(Span(m.start(), m.end(), "NATIONAL_ID", normalize("NATIONAL_ID", value), 0.97,
                             TIER_PATTERN))
    return out


# ---------------------------------------------------------------------------------------------------------
# E-mail (plain and spelled out), IP, URL
# ---------------------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+\-@])[\w.%+\-]*\w@[\w](?:[\w\-]*\w)?(?:\.[\w](?:[\w\-]*\w)?)*\.[^\W\d_]{2,24}(?![\w@]|-\w)"
)


def find_emails(text: str) -> list[Span]:
    if "@" not in text:
        return []
    return [Span(m.start(), m.end(), "EMAIL", normalize("EMAIL", m.group()), 1.0, TIER_PATTERN)
            for m in _EMAIL.finditer(text)]


#: Spelled-out "@" and "." in every supported language (folded, lower case).
SPELLED_AT: tuple[str, ...] = ("at", "małpa", "malpa", "ät", "snabel-a", "snabela", "apenstaartje",
                               "klammeraffe", "miukumauku", "kissanhäntä")
SPELLED_DOT: tuple[str, ...] = ("dot", "kropka", "punt", "piste", "punkt", "pkt")
_AT_WORDS = "|".join(re.escape(w) for w in sorted(SPELLED_AT, key=len, reverse=True))
_DOT_WORDS = "|".join(re.escape(w) for w in sorted(SPELLED_DOT, key=len, reverse=True))
_AT = rf"(?:\s*[\[(<{{]\s*(?:{_AT_WORDS}|@)\s*[\])>}}]\s*|\s+(?:{_AT_WORDS})\s+)"
_DOT = rf"(?:\s*[\[(<{{]\s*(?:{_DOT_WORDS}|\.)\s*[\])>}}]\s*|\s+(?:{_DOT_WORDS})\s+|\.)"
_LABEL = r"[^\W_](?:[\w\-]*[^\W_])?"
_SPELLED_EMAIL = re.compile(
    rf"(?<![\w.@])(?:{_LABEL}(?:{_DOT}|[_\-+]))*{_LABEL}{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[^\W\d_]{{2,12}}(?!\w)",
    re.IGNORECASE,
)
_SPELLED_HINT = re.compile(rf"(?:\s|[\[(<{{])(?:{_AT_WORDS})(?:\s|[\])>}}])", re.IGNORECASE)


def find_spelled_emails(text: str) -> list[Span]:
    """E-mail addresses written out: "jan dot kowalski at example dot com", "ala (at) firma.pl"."""
    if _SPELLED_HINT.search(text) is None:
        return []
    out = []
    for m in _SPELLED_EMAIL.finditer(text):
        value = m.group()
        # "at" must join two parts, and the domain must be spelled out or dotted: "meet at home dot" is rare.
        key = _spelled_key(value)
        if key.count("@") == 1 and "." in key.split("@")[1]:
            out.append(Span(m.start(), m.end(), "EMAIL", key, 1.0, TIER_PATTERN))
    return out


_AT_RE = re.compile(_AT, re.IGNORECASE)
_DOT_RE = re.compile(_DOT, re.IGNORECASE)


def _spelled_key(value: str) -> str:
    """The address a spelled-out e-mail stands for (lower case): the same placeholder as the written one."""
    v = _AT_RE.sub("@", value)
    v = _DOT_RE.sub(".", v)
    return normalize("EMAIL", re.sub(r"\s+", "", v))


_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def find_ips(text: str) -> list[Span]:
    out = []
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            out.append(Span(m.start(), m.end(), "IP", m.group(), 0.95, TIER_PATTERN))
    if "::" in text or text.count(":") >= 3:
        for m in _IPV6.finditer(text):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            out.append(Span(m.start(), m.end(), "IP", m.group().lower(), 0.95, TIER_PATTERN))
    return out


_URL_HINT = re.compile(r"[A-Za-z0-9]\.[A-Za-z]{2}")
_URL_TRAILING = ".,;:!?'\")]"
_url_lock = threading.Lock()
_url_recognizer = None


def _url() -> object:
    global _url_recognizer
    if _url_recognizer is None:
        with _url_lock:
            if _url_recognizer is None:
                from presidio_analyzer.predefined_recognizers import UrlRecognizer

                from ..offline_nlp import ensure_offline_tldextract

                ensure_offline_tldextract()
                harden_presidio_logging()
                _url_recognizer = UrlRecognizer(supported_language="en")
    return _url_recognizer


def find_urls(text: str) -> list[Span]:
    if _URL_HINT.search(text) is None:
        return []
    out = []
    recognizer = _url()
    for r in recognizer.analyze(text, ["URL"], None):  # type: ignore[attr-defined]
        start, end = r.start, r.end
        end = start + len(text[start:end].rstrip(_URL_TRAILING))  # "see x.com/a." keeps the dot
        if r.score >= 0.5 and end > start:
            out.append(Span(start, end, "URL", normalize("URL", text[start:end]), r.score, TIER_PATTERN))
    return out


# ---------------------------------------------------------------------------------------------------------
# Presidio log hardening (used wherever a Presidio recognizer runs)
# ---------------------------------------------------------------------------------------------------------


class _RedactStringArgs(logging.Filter):
    """Presidio logs some matched values (e.g. IBAN validation errors): drop string args of its records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple("[redacted]" if isinstance(a, str) else a for a in args)
        return True


def harden_presidio_logging() -> None:
    presidio_logger = logging.getLogger("presidio-analyzer")
    if not any(isinstance(f, _RedactStringArgs) for f in presidio_logger.filters):
        presidio_logger.addFilter(_RedactStringArgs())
