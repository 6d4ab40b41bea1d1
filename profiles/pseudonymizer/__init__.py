"""Pseudonymization of free text (support tickets, notes) in the customers' own languages.

Every personal entity is replaced by a typed placeholder that is stable within one customer
(``<PERSON_1>``, ``<EMAIL_2>``, ...). Language first: each text's language is given or detected offline
(the customer's locale as a prior), and that language's recognizer set runs:

* the customer's own known identifiers (:mod:`.known`): names in any inflection, e-mails (also spelled
  out), phones whatever their validity, addresses, IBAN and every other held identifier, in any case and
  with any separators; these always win;
* checked numbers and identifiers shared by all languages (:mod:`.shared`): IBAN (stdnum), cards (Luhn),
  phones (phonenumbers, the customer's country first), national ids with checksums (stdnum), e-mail, IP, URL;
* the language's own module (:mod:`.en`, :mod:`.pl`, :mod:`.fi`, :mod:`.nl`, :mod:`.sv`, :mod:`.de`):
  names (gazetteers, cues, capitalisation), streets with house numbers and postal codes, dates of birth,
  ages; English text alone also goes through the spaCy NER, when it holds a capitalised word that no rule
  or known identifier covers (an NER hit is kept only there; ordinary words that merely start a sentence,
  weekdays and months do not count).

Adding a language: one module defining ``SPEC = LanguageSpec(...)`` and one line in :mod:`.registry`.

Privacy notes: nothing is downloaded at run time (see :mod:`profiles.offline_nlp`); no raw value is logged,
raised or stored in ``placeholder_state`` (keys are HMAC-SHA256 digests under a per-state random salt).
Pure Python: no Django imports.
"""

from __future__ import annotations

from .base import LanguageSpec
from .engine import Pseudonymizer, get_pseudonymizer, phone_regions
from .known import (
    GIVEN_NAME_PARTICLES,
    NAME_PARTICLES,
    KnownIdentifiers,
    address_subparts,
    build_known_matcher,
    match_known,
)
from .registry import LANGUAGES
from .shared import CARD_HINT, IBAN_HINT, PHONE_REGIONS, harden_presidio_logging
from .spans import PseudonymizedText
from .text import FOLD_TABLE, NON_DIGIT, NON_WORD, fold_text, fold_with_offsets, normalize, text_key

__all__ = [
    "CARD_HINT",
    "IBAN_HINT",
    "LANGUAGES",
    "PHONE_REGIONS",
    "KnownIdentifiers",
    "LanguageSpec",
    "PseudonymizedText",
    "Pseudonymizer",
    "get_pseudonymizer",
    "harden_presidio_logging",
    "phone_regions",
]
_REEXPORTED_PRIVATE = (GIVEN_NAME_PARTICLES, NAME_PARTICLES, address_subparts, build_known_matcher,
                       match_known, FOLD_TABLE, NON_DIGIT, NON_WORD, fold_text, fold_with_offsets, normalize,
                       text_key)
