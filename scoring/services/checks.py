"""Argument checks shared by the scoring services: ids and purposes (a clear 400, never a 500)."""

from __future__ import annotations

import uuid
from typing import Any

from config.errors import ValidationFailed
from config.uuids import as_uuid
from consent import selectors as consent_selectors


def parse_uuid(value: Any, field_name: str = "customer") -> uuid.UUID:
    try:
        return as_uuid(value)
    except ValueError:
        raise ValidationFailed("Invalid customer id.", extra={"errors": {field_name: [{"code": "invalid"}]}}) from None


def check_purpose(purpose: Any) -> str:
    if not isinstance(purpose, str) or not purpose:
        raise ValidationFailed("A purpose is required.", extra={"errors": {"purpose": [{"code": "required"}]}})
    # Known codes are cached per process (purposes are reference data); the gate's query joins the purpose
    # row again, so this only answers early.
    if not consent_selectors.purpose_exists(code=purpose):
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    return purpose
