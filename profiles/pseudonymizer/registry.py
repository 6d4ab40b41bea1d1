"""The supported languages: one module each, one line here. ``und`` (undetermined) texts use ``FALLBACK``."""

from __future__ import annotations

from . import de, en, fi, nl, pl, sv
from .base import LanguageSpec

LANGUAGES: dict[str, LanguageSpec] = {
    "en": en.SPEC,
    "pl": pl.SPEC,
    "fi": fi.SPEC,
    "nl": nl.SPEC,
    "sv": sv.SPEC,
    "de": de.SPEC,
}
FALLBACK = "en"


def spec_for(language: str | None) -> LanguageSpec:
    return LANGUAGES.get(language or FALLBACK) or LANGUAGES[FALLBACK]
