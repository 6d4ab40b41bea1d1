"""Language of a free text, offline (py3langid ships its model inside the package).

``language_detect(text, prior=...)`` returns an ISO 639-1 code from ``SUPPORTED_LANGUAGES``, or ``"und"``
when the text is too short or too ambiguous to tell and there is no prior. The customer's locale is a prior:
it wins whenever the text does not clearly say otherwise (short texts, names, numbers).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

#: Languages the service has recognizers (and, where a model exists, sentiment) for.
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "de", "nl", "pl", "fi", "sv")
UNDETERMINED = "und"

#: Above this normalised probability the text's own evidence overrides the prior.
_CONFIDENT = 0.90
#: Texts with fewer letters than this carry too little evidence on their own.
_MIN_LETTERS = 12

_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    with _lock:
        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        ident.set_languages(list(SUPPORTED_LANGUAGES))
    return ident


def language_of_locale(locale: str | None) -> str | None:
    """``"pl-PL"``, ``"pl_PL"``, ``"PL"`` (a country: its main language) → ``"pl"``; unknown → None."""
    if not locale:
        return None
    head = str(locale).replace("_", "-").split("-")[0].strip().lower()
    if head in SUPPORTED_LANGUAGES:
        return head
    by_country = {"gb": "en", "ie": "en", "us": "en", "at": "de", "ch": "de", "be": "nl", "se": "sv",
                  "dk": None, "no": None}
    return by_country.get(head)


def language_detect(text: str, *, prior: str | None = None) -> str:
    """The text's language. ``prior`` (a language or locale code) is used when the text is not conclusive."""
    prior_lang = language_of_locale(prior)
    letters = sum(1 for ch in text if ch.isalpha())
    if letters < _MIN_LETTERS:
        return prior_lang or UNDETERMINED
    lang, prob = _identifier().classify(text)
    if prior_lang and prior_lang != lang and prob < _CONFIDENT:
        return prior_lang
    if not prior_lang and prob < 0.5:
        return UNDETERMINED
    return str(lang)
