"""Protected characteristics: names that may never be declared as scoring features.

A declared feature attribute is refused when its name looks like
- special-category data (GDPR Art. 9 / Art. 10: health, religion, ethnic origin, sexual orientation, politics,
  trade-union membership, biometric and genetic data, criminal records; the vocabulary of
  ``config.special_categories.SPECIAL_CATEGORY_DENYLIST``) -> code ``special_category``;
- gender or sex, or age (date or year of birth, age band) -> code ``protected_characteristic``.
  Age is allowed as a feature only when ``SCORING_ALLOW_AGE_FEATURE`` is true (documented in the README).

Names are matched robustly: case, separators and camelCase are normalised, accents are folded (``kön`` ->
``kon``, ``płeć`` -> ``plec``), and common synonyms in the supported languages (en, de, nl, pl, fi, sv) are
known. Short words (``sex``, ``age``, ``race``) match whole tokens only, so ``usage`` or ``page_views`` pass.

Such a column may instead be declared *audit-only* (CSV prefix ``audit_``, REST ``audit_attributes``): it is
stored encrypted under the customer's data key like any personal field and is used only for the fairness
report of a training run (``scoring.fairness``), never as a feature.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from django.conf import settings

from config.special_categories import special_category_match

#: Prefix of the encrypted personal-field rows holding audit-only characteristics.
AUDIT_FIELD_PREFIX = "audit_"

SPECIAL_CATEGORY = "special_category"
PROTECTED = "protected_characteristic"

_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "ß": "ss", "đ": "d"})

# category -> (whole-token words, substrings of the joined name)
_VOCABULARY: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "gender": (
        frozenset({"sex", "sexe", "gender", "genders", "geslacht", "geschlecht", "kon", "plec", "sukupuoli",
                   "female", "male", "is_female", "is_male", "gender_identity", "pronoun", "pronouns"}),
        ("gender", "geschlecht", "geslacht", "sukupuoli"),
    ),
    "ethnicity": (
        frozenset({"race", "races", "racial", "ethnie", "nationality", "nationaliteit", "nationalitat",
                   "narodowosc", "kansallisuus", "nationalitet", "caste"}),
        ("ethnic", "etnic", "etnis", "etnisk", "racial", "national_origin", "skin_colo", "hautfarbe",
         "huidskleur", "pochodzenie_etniczne"),
    ),
    "religion": (
        frozenset({"faith", "church", "belief", "beliefs", "geloof", "kirche", "kerk", "wyznanie", "religia",
                   "uskonto", "konfession", "denomination", "kosciol", "kyrka"}),
        ("religio", "godsdienst", "uskont", "wyznani", "konfession"),
    ),
    "sexual_orientation": (
        frozenset({"gay", "lesbian", "lgbt", "lgbtq", "lgbtqi", "orientation", "sexuality", "orientacja"}),
        ("sexual", "sex_life", "sexuell", "seksual", "seksuaal", "orientacja_seksualna", "suuntautum"),
    ),
    "health": (
        frozenset({"mental", "zdrowie", "terveys", "halsa", "gezondheid", "gesundheit", "disease", "illness",
                   "sick", "sickness", "bmi", "blood_type"}),
        ("health", "medical", "diagnos", "disabil", "handicap", "pregnan", "prescription", "gesundheit",
         "gezondheid", "zdrowi", "terveys", "halsotillstand", "krankheit", "ziekte", "choroba", "sairaus",
         "sjukdom", "behinder"),
    ),
    "age": (
        frozenset({"age", "ages", "aged", "dob", "yob", "birthday", "birthdate", "birthyear", "alter", "leeftijd",
                   "wiek", "ika", "alder", "agegroup", "ageband", "agerange", "age_group", "age_band",
                   "age_range", "seniorcitizen", "senior_citizen", "geburtsjahr", "geburtsdatum",
                   "geboortedatum", "geboortejaar", "syntymavuosi", "syntymaaika", "fodelsear", "fodelsedatum",
                   "rok_urodzenia", "data_urodzenia"}),
        ("birth_year", "year_of_birth", "birth_date", "date_of_birth", "birthyear", "birthdate", "geburts",
         "geboorte", "urodzeni", "syntyma", "fodelse", "senior_citizen", "seniorcitizen", "age_group",
         "age_band", "age_range", "age_bucket"),
    ),
}
_ART9 = {"ethnicity", "religion", "sexual_orientation", "health"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).translate(_FOLD))
    folded = "".join(c for c in unicodedata.normalize("NFKD", spaced) if not unicodedata.combining(c))
    return [t for t in re.split(r"[^a-z0-9]+", folded.lower()) if t]


def protected_category(name: str) -> str | None:
    """The protected characteristic ``name`` looks like (``gender``, ``ethnicity``, ``religion``,
    ``sexual_orientation``, ``health``, ``age`` or ``special_category`` for other Art. 9/10 data), or ``None``.
    Memoized: a schema name (never a value), asked for on every imported row."""
    if not isinstance(name, str) or len(name) > 200:
        return _protected_category(name)
    return _protected_category_cached(name)


@functools.lru_cache(maxsize=4096)
def _protected_category_cached(name: str) -> str | None:
    return _protected_category(name)


def _protected_category(name: str) -> str | None:
    tokens = _tokens(name)
    if not tokens:
        return None
    joined = "_".join(tokens)
    compact = joined.replace("_", "")
    for category, (words, fragments) in _VOCABULARY.items():
        if joined in words or any(t in words for t in tokens):
            return category
        # adjacent token pairs ("age_group", "birth_date") and substrings of the joined name
        pairs = {f"{a}_{b}" for a, b in zip(tokens, tokens[1:], strict=False)}
        if pairs & words or any(f in joined or f.replace("_", "") in compact for f in fragments):
            return category
    return SPECIAL_CATEGORY if special_category_match(" ".join(tokens)) is not None else None


def age_feature_allowed() -> bool:
    return bool(getattr(settings, "SCORING_ALLOW_AGE_FEATURE", False))


def feature_refusal(name: str) -> str | None:
    """The error code refusing ``name`` as a feature declaration (``special_category`` for Art. 9 data,
    ``protected_characteristic`` for gender and age), or ``None`` when it may be a feature."""
    category = protected_category(name)
    if category is None or (category == "age" and age_feature_allowed()):
        return None
    return SPECIAL_CATEGORY if category in _ART9 or category == SPECIAL_CATEGORY else PROTECTED


def is_protected_feature_name(name: str) -> bool:
    """True when ``name`` may not be a model feature (see :func:`feature_refusal`)."""
    return feature_refusal(name) is not None


def audit_field(name: str) -> str:
    """The personal-field name under which the audit-only characteristic ``name`` is stored (encrypted)."""
    return AUDIT_FIELD_PREFIX + name
