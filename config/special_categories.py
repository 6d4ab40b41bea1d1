"""The vocabulary of GDPR Art. 9 special-category data (and Art. 10 criminal data) in attribute names.

Shared plumbing below every app: ``profiles.protected`` refuses such names as feature declarations at
import time, and ``scoring.ml.features`` refuses them when a model is trained from a CRM table. Pure Python.
"""

from __future__ import annotations

import re

__all__ = ["SPECIAL_CATEGORY_DENYLIST", "special_category_match"]

#: Name fragments of GDPR Art. 9 special-category data (and Art. 10 criminal data). A declared CRM
#: attribute whose name contains one of these is refused: Art. 22(4) forbids automated decisions on them.
SPECIAL_CATEGORY_DENYLIST: tuple[str, ...] = (
    "health",
    "medical",
    "diagnos",
    "disease",
    "illness",
    "disabilit",
    "handicap",
    "pregnan",
    "mental",
    "prescription",
    "religio",
    "faith",
    "church",
    "belief",
    "philosoph",
    "ethnic",
    "race",
    "racial",
    "national_origin",
    "skin_colo",
    "politic",
    "party_member",
    "sexual",
    "sex_life",
    "lgbt",
    "gay",
    "lesbian",
    "trade_union",
    "union_member",
    "tradeunion",
    "biometric",
    "fingerprint",
    "face_scan",
    "retina",
    "iris_scan",
    "genetic",
    "genome",
    "dna",
    "criminal",
    "conviction",
    "offence",
)
_SHORT_TOKEN_FRAGMENTS = {"race", "gay", "dna", "faith", "church", "belief", "mental"}  # token match only


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def special_category_match(name: str) -> str | None:
    """Return the denylist fragment that ``name`` matches, or ``None``."""
    tokens = _tokens(name)
    joined = "_".join(tokens)
    for fragment in SPECIAL_CATEGORY_DENYLIST:
        if fragment in _SHORT_TOKEN_FRAGMENTS:
            if fragment in tokens:
                return fragment
        elif fragment in joined or fragment.replace("_", "") in joined.replace("_", ""):
            return fragment
    return None
