"""Readable values for the DPO console: money with its currency, probabilities as percentages with one
decimal, dates and times in the reader's locale (``Accept-Language``, through Django's localisation), model
inputs in words, and structured values (dicts, lists) as short text, never as Python literals.

``{% load console_format %}`` then ``{{ score.clv|money:score.currency }}``, ``{{ p|percent }}``,
``{{ when|when }}``, ``{{ "orders_90d"|feature }}``, ``{{ outputs|readable }}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from django import template
from django.utils import formats, timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

register = template.Library()

#: Output keys whose values are probabilities (0..1) and read as percentages.
PROBABILITY_KEYS = frozenset({"churn_probability", "upsell", "advocacy", "probability", "share", "override_rate",
                              "high_risk_rate"})
#: Output keys whose values are money (in the score currency).
MONEY_KEYS = frozenset({"clv", "amount", "expected_value", "spend", "total_spend"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@register.filter
def money(value: Any, currency: str | None = None) -> str:
    """``1234.5`` -> ``1,234.50 EUR`` (grouping and decimal mark of the reader's locale); without a currency,
    the score currency (``SCORING_CURRENCY``)."""
    number = _number(value)
    if number is None:
        return "-"
    if not currency:
        from scoring import selectors as scoring_selectors

        currency = scoring_selectors.score_currency()
    return f"{formats.number_format(round(number, 2), 2, force_grouping=True)} {currency}"


@register.filter
def percent(value: Any) -> str:
    """A probability ``0.1234`` -> ``12.3 %`` (one decimal, the reader's decimal mark)."""
    number = _number(value)
    if number is None:
        return "-"
    return f"{formats.number_format(round(number * 100, 1), 1)} %"


@register.filter
def number(value: Any, decimals: int = 2) -> str:
    """A rounded number in the reader's locale; integers stay integers."""
    num = _number(value)
    if num is None:
        return "-"
    if num.is_integer() and not isinstance(value, float):
        return formats.number_format(int(num), 0, force_grouping=True)
    return formats.number_format(round(num, int(decimals)), int(decimals), force_grouping=True)


@register.filter
def signed(value: Any, decimals: int = 2) -> str:
    """A contribution with its sign: ``+310.00`` / ``-60.00``."""
    num = _number(value)
    if num is None:
        return "-"
    shown = formats.number_format(round(abs(num), int(decimals)), int(decimals), force_grouping=True)
    return ("-" if num < 0 else "+") + shown


@register.filter
def when(value: Any, style: str = "datetime") -> str:
    """A date or time in the reader's locale (``SHORT_DATETIME_FORMAT``/``SHORT_DATE_FORMAT`` of the active
    language) and the console's time zone; ``style="date"`` for the date alone. ISO strings are parsed."""
    if value in (None, ""):
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        if style == "date":
            return formats.date_format(value.date(), "SHORT_DATE_FORMAT", use_l10n=True)
        return formats.date_format(value, "SHORT_DATETIME_FORMAT", use_l10n=True)
    if isinstance(value, date):
        return formats.date_format(value, "SHORT_DATE_FORMAT", use_l10n=True)
    return str(value)


@register.filter
def feature(name: Any) -> str:
    """A model input's name in words: ``orders_90d`` -> ``Orders in the last 90 days``."""
    from scoring import selectors as scoring_selectors

    return scoring_selectors.feature_in_words(name=str(name))["label"]


@register.filter
def feature_value(value: Any, name: Any) -> str:
    """A model input's value as the explanations show it (``{{ value|feature_value:name }}``)."""
    from scoring import selectors as scoring_selectors

    return scoring_selectors.feature_in_words(name=str(name), value=value)["value"] or "-"


#: Names of score outputs in words (the rest: underscores to spaces, first letter capital).
OUTPUT_WORDS = {"clv": "Customer lifetime value", "clv_score": "CLV percentile", "churn_probability":
                "Churn probability", "upsell": "Upsell propensity", "advocacy": "Advocacy propensity"}


def _words(key: str) -> str:
    if key in OUTPUT_WORDS:
        return OUTPUT_WORDS[key]
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def readable_value(value: Any, key: str = "", currency: str | None = None) -> str:
    """Any stored value as short text: money and probabilities by their key, floats rounded, booleans as
    yes/no, dates localised, dicts as ``Key: value; ...`` and lists joined."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{_words(k)}: {readable_value(v, str(k), currency)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        sep = " | " if any(isinstance(v, Mapping) for v in value) else ", "
        return sep.join(readable_value(v, key, currency) for v in value) or "-"
    if isinstance(value, datetime | date):
        return when(value)
    if isinstance(value, int | float):
        if key in PROBABILITY_KEYS:
            return percent(value)
        if key in MONEY_KEYS:
            return money(value, currency)
        return number(value, 2) if isinstance(value, float) else number(value, 0)
    return str(value)


@register.filter
def readable(value: Any, key: str = "") -> str:
    return readable_value(value, str(key or ""))


@register.filter
def words(key: Any) -> str:
    """``service_level`` -> ``Service level``."""
    return _words(str(key))


@register.filter
def readable_rows(value: Any) -> SafeString:
    """A dict as table rows: one ``<tr><th>Key in words</th><td>value</td></tr>`` per entry (escaped)."""
    if not isinstance(value, Mapping):
        return format_html_join("", "<tr><td colspan=\"2\">{}</td></tr>", [(readable_value(value),)])
    return format_html_join("", "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                            [(_words(str(k)), readable_value(v, str(k))) for k, v in value.items()])


@register.simple_tag
def score_currency() -> str:
    """The currency of money scores (``SCORING_CURRENCY``)."""
    from scoring import selectors as scoring_selectors

    return scoring_selectors.score_currency()
