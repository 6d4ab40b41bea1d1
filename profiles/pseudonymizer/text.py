"""Text folding and value normalization shared by every recognizer (pure Python, no Django)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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


FOLD_TABLE = _FoldTable()
_FOLD_IRREGULAR: set[str] = set()  # characters that fold to "" or to several characters


def fold_text(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(FOLD_TABLE)


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """Folded text and, for each folded char, the index of the original char it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    folded = text.translate(FOLD_TABLE)
    if len(folded) == len(text) and _FOLD_IRREGULAR.isdisjoint(text):
        return folded, list(range(len(text)))
    parts: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        parts.append(folded)
        offsets.extend([i] * len(folded))
    return "".join(parts), offsets


NON_WORD = re.compile(r"[\W_]+")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
NON_DIGIT = re.compile(r"\D+")
PHONE_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def _phone_key(value: str) -> str:
    """Last 9 digits (extension ignored): equal for "+48 601 234 567", "601-234-567" and "0601234567"."""
    digits = NON_DIGIT.sub("", PHONE_EXTENSION.sub("", value))
    return digits[-9:] if len(digits) >= 5 else fold_text(value).strip()


def _url_key(value: str) -> str:
    v = fold_text(value).strip().strip("\"'")
    v = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", v)
    v = v.removeprefix("www.")
    return v.rstrip("/")


def text_key(value: str) -> str:
    return NON_WORD.sub(" ", fold_text(value)).strip()


def normalize(placeholder_type: str, value: str) -> str:
    """Normalized form of a detected value, used (hashed) as the placeholder-state key."""
    if placeholder_type == "EMAIL":
        return fold_text(value).strip()
    if placeholder_type == "PHONE":
        return _phone_key(value)
    if placeholder_type in ("IBAN", "CREDIT_CARD", "NATIONAL_ID"):
        return _NON_ALNUM.sub("", fold_text(value))
    if placeholder_type == "IP":
        return fold_text(value).strip()
    if placeholder_type == "URL":
        return _url_key(value)
    return text_key(value)

