"""Validation of incoming records: field names, sources, personal values and fact values.

Messages never contain values, only field names and codes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils import timezone

from config import blind_index
from config.blind_index import InvalidIdentifier

from ..errors import RecordInvalid
from ..identifiers import identifier_kind, is_direct_identifier_name
from ..models import (
    SOURCES,
)
from ..protected import audit_field, feature_refusal

MAX_VALUE_LENGTH = 500


MAX_EXTERNAL_ID_LENGTH = 200


FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


STRONG_KINDS = ("email", "phone")


def check_source(source: str, field: str = "source") -> str:
    if source not in SOURCES:
        raise RecordInvalid(field, "invalid_choice")
    return source


def check_external_id(value: Any, field: str = "external_id") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordInvalid(field, "required")
    if not isinstance(value, str | int):
        raise RecordInvalid(field, "invalid")
    text = str(value).strip()
    if len(text) > MAX_EXTERNAL_ID_LENGTH:
        raise RecordInvalid(field, "max_length")
    return text


def _region(country: str | None) -> str:
    return (country or settings.DEFAULT_PHONE_REGION).upper()


def clean_personal(personal: dict[str, Any], country: str | None) -> dict[str, str]:
    """Validated, normalized personal values; empty values are dropped (they do not clear a field)."""
    if not isinstance(personal, dict):
        raise RecordInvalid("personal", "invalid")
    cleaned: dict[str, str] = {}
    for field, raw in personal.items():
        if not isinstance(field, str) or not FIELD_NAME.match(field):
            raise RecordInvalid("personal", "invalid_field_name")
        if raw is None:
            continue
        if not isinstance(raw, str):
            raise RecordInvalid(field, "invalid")
        value = raw.strip()
        if not value:
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise RecordInvalid(field, "max_length")
        cleaned[field] = _normalize_personal(field, value, country)
    return cleaned


def _normalize_personal(field: str, value: str, country: str | None) -> str:
    try:
        if field == "email":
            return blind_index.normalize_email(value)
        if field == "phone":
            return blind_index.normalize_phone(value, _region(country))
    except InvalidIdentifier as exc:
        raise RecordInvalid(field, "invalid") from exc
    if field == "date_of_birth":
        try:
            parsed = date.fromisoformat(value)
        except ValueError as exc:
            raise RecordInvalid(field, "date") from exc
        if parsed > timezone.now().date() or parsed.year < 1900:
            raise RecordInvalid(field, "date")
        return parsed.isoformat()
    return value


def normalized_strong_digest(field: str, normalized: str, country: str | None) -> str:
    """``strong_digest`` of a value ``clean_personal`` returned: a phone number is E.164 already (the same
    digest without parsing it a second time)."""
    if field == "phone" and _E164.fullmatch(normalized):
        return blind_index.blind_index("phone", normalized)
    if field == "email" and normalized.isascii():  # normalize_email of its own ASCII output is that output
        return blind_index.blind_index("email", normalized)
    return strong_digest(field, normalized, country)


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def strong_digest(field: str, value: str, country: str | None) -> str:
    if field == "email":
        return blind_index.email_index(value)
    return blind_index.phone_index(value, _region(country))


def clean_attributes(attributes: dict | None, feature_attributes: list[str] | None) -> tuple[dict, list[str] | None]:
    attributes = attributes or {}
    if not isinstance(attributes, dict) or len(attributes) > 100:
        raise RecordInvalid("attributes", "invalid")
    for key, value in attributes.items():
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            raise RecordInvalid("attributes", "invalid_field_name")
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise RecordInvalid("attributes", "invalid")
        if isinstance(value, float) and not math.isfinite(value):  # 1e400, NaN: no JSON column stores them
            raise RecordInvalid(f"attributes.{key}", "invalid")
        if isinstance(value, str) and len(value) > 200:
            raise RecordInvalid("attributes", "max_length")
        # Plain attributes are no personal fields (encrypted as one blob, not indexed or rectifiable): a direct
        # identifier belongs in the personal fields.
        # (The error names the attribute: a schema name of the sender's, never a value.)
        if is_direct_identifier_name(key):
            raise RecordInvalid(f"attributes.{key}", "personal_field")
        if isinstance(value, str) and identifier_kind(value) is not None:
            raise RecordInvalid(f"attributes.{key}", "personal_data")
    if feature_attributes is not None and (
        not isinstance(feature_attributes, list) or not all(isinstance(f, str) for f in feature_attributes)
    ):
        raise RecordInvalid("feature_attributes", "invalid")
    for name in feature_attributes or ():
        # Art. 22(4) and non-discrimination: a protected characteristic is refused as a feature at the door,
        # loudly, naming the attribute (a schema name, never a value); aggregation and training also drop
        # such names (defence in depth). It may be declared audit-only instead (``audit_attributes``).
        code = feature_refusal(name)
        if code is not None:
            raise RecordInvalid(f"feature_attributes.{name}" if FIELD_NAME.match(name) else "feature_attributes",
                                code)
    return attributes, feature_attributes


def clean_audit_attributes(audit_attributes: dict | None, attributes: dict) -> dict[str, str]:
    """Audit-only characteristics (e.g. gender for the fairness report) -> encrypted personal-field values
    (``audit_<name>``). Never a feature; a name may not also be sent as a plain (unencrypted) attribute."""
    if not audit_attributes:
        return {}
    if not isinstance(audit_attributes, dict) or len(audit_attributes) > 20:
        raise RecordInvalid("audit_attributes", "invalid")
    out: dict[str, str] = {}
    for name, raw in audit_attributes.items():
        if not isinstance(name, str) or not FIELD_NAME.match(name) or len(name) > 56:
            raise RecordInvalid("audit_attributes", "invalid_field_name")
        if name in attributes:
            raise RecordInvalid(f"attributes.{name}", "audit_only")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if not isinstance(raw, str | int | float | bool):
            raise RecordInvalid(f"audit_attributes.{name}", "invalid")
        value = str(raw).strip()
        if len(value) > 200:
            raise RecordInvalid(f"audit_attributes.{name}", "max_length")
        out[audit_field(name)] = value
    return out


def check_country(country: str | None) -> str | None:
    if country is None or country == "":
        return None
    if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise RecordInvalid("country", "invalid")
    return country.strip().upper()


def parse_datetime(value: Any, field: str, *, required: bool = True) -> datetime | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RecordInvalid(field, "datetime") from exc
    else:
        raise RecordInvalid(field, "datetime")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > timezone.now() + timedelta(days=1):
        raise RecordInvalid(field, "in_future")
    if parsed.date() < _earliest_fact_date():  # plausibility bound (FACT_EARLIEST_DATE)
        raise RecordInvalid(field, "too_early")
    return parsed


def _earliest_fact_date() -> date:
    return date.fromisoformat(str(getattr(settings, "FACT_EARLIEST_DATE", "1970-01-01")))


def bounded_amount(value: Decimal | None, field: str) -> Decimal | None:
    """Plausibility bounds of money amounts on facts (FACT_AMOUNT_MIN / FACT_AMOUNT_MAX)."""
    if value is None:
        return None
    if value < Decimal(str(getattr(settings, "FACT_AMOUNT_MIN", -100_000))):
        raise RecordInvalid(field, "min_value")
    if value > Decimal(str(getattr(settings, "FACT_AMOUNT_MAX", 10_000_000))):
        raise RecordInvalid(field, "max_value")
    return value


def parse_decimal(value: Any, field: str, *, required: bool = True, minimum: Decimal | None = None
                   ) -> Decimal | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, float | bool):
        value = str(value) if not isinstance(value, bool) else "x"
    try:
        parsed = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise RecordInvalid(field, "invalid") from exc
    if not parsed.is_finite() or abs(parsed) >= Decimal("1e12"):
        raise RecordInvalid(field, "invalid")
    if minimum is not None and parsed < minimum:
        raise RecordInvalid(field, "min_value")
    return parsed.quantize(Decimal("0.01"))


def parse_int(value: Any, field: str, *, required: bool = True, minimum: int | None = None,
               maximum: int | None = None) -> int | None:
    if value is None or value == "":
        if required:
            raise RecordInvalid(field, "required")
        return None
    if isinstance(value, bool):
        raise RecordInvalid(field, "invalid")
    try:
        parsed = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError as exc:
        raise RecordInvalid(field, "invalid") from exc
    if minimum is not None and parsed < minimum:
        raise RecordInvalid(field, "min_value")
    if maximum is not None and parsed > maximum:
        raise RecordInvalid(field, "max_value")
    return parsed


_TRUE = {"true", "1", "yes", "y", "t"}


_FALSE = {"false", "0", "no", "n", "f", ""}


def parse_bool(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RecordInvalid(field, "invalid")


def parse_choice(value: Any, field: str, choices: Iterable[str], *, default: str | None = None) -> str:
    if value is None or value == "":
        if default is None:
            raise RecordInvalid(field, "required")
        return default
    text = str(value).strip().lower()
    if text not in (choices if isinstance(choices, frozenset | set) else set(choices)):
        raise RecordInvalid(field, "invalid_choice")
    return text


def parse_label(value: Any, field: str, *, max_length: int = 64) -> str:
    """A short non-personal label (a product or ticket category), stored unencrypted: a direct identifier
    in it is refused (``personal_data``), never stored."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(field, "invalid")
    text = value.strip()
    if len(text) > max_length:
        raise RecordInvalid(field, "max_length")
    if identifier_kind(text) is not None:
        raise RecordInvalid(field, "personal_data")
    return text


MAX_FREE_TEXT = 20_000


def parse_free_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(field, "invalid")
    if len(value) > MAX_FREE_TEXT:
        raise RecordInvalid(field, "max_length")
    return value.strip()
