"""Validation of the records of one bulk ingest request (``/api/v1/ingest/<kind>/``).

The reference is one DRF record serializer per record (``Serializer(data=record).is_valid()``, then
``to_service()``). Most of that cost is not validation: each instantiation deep-copies every declared field
(~0.5 ms per record for a customer or an order record). :func:`records_validate` binds ONE serializer of the
kind per request and runs the serializer's own algorithm (``Serializer.run_validation``: every writable
field's ``get_value`` and ``run_validation`` in declared order, errors keyed by field, ``SkipField`` honoured,
then the serializer's validators and ``validate()``) with those bound fields for every record. The fields, and
so every conversion, limit and error code, are the serializers' own: the OpenAPI schema, built from the same
classes, stays true. ``tests/profiles/test_record_validation.py`` checks it against
:func:`records_validate_reference` (accepted records, service dicts and per-record (field, code) pairs) over
valid and invalid records of every error kind.

Error bodies carry field names and codes only, never values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import SkipField, get_error_detail

Rejection = list[tuple[str, str]]


def first_codes(errors: Any, prefix: str = "") -> Rejection:
    """Flatten DRF errors into (field, code) pairs, one per field; values are never echoed."""
    out: Rejection = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = "record" if key == "non_field_errors" else f"{prefix}{key}"
            codes = first_codes(value, f"{name}.")
            if codes:
                out.append((name, codes[0][1]))
    elif isinstance(errors, list):
        for item in errors:
            out.extend(first_codes(item, prefix))
            if out:
                break
    else:
        out.append((prefix.rstrip("."), getattr(errors, "code", None) or "invalid"))
    return out


def records_validate_reference(serializer_class: type[serializers.Serializer], records: Sequence[Any]
                               ) -> tuple[list[tuple[int, dict]], dict[int, Rejection]]:
    """The reference: one serializer per record. Returns ``[(index, service record)]`` and the rejected
    records' (field, code) pairs by index."""
    valid: list[tuple[int, dict]] = []
    rejected: dict[int, Rejection] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            rejected[index] = [("record", "invalid")]
            continue
        serializer = serializer_class(data=record)
        if serializer.is_valid():
            valid.append((index, serializer.to_service()))  # type: ignore[attr-defined]
        else:
            rejected[index] = first_codes(serializer.errors) or [("record", "invalid")]
    return valid, rejected


def records_validate(serializer_class: type[serializers.Serializer], records: Sequence[Any]
                     ) -> tuple[list[tuple[int, dict]], dict[int, Rejection]]:
    """Same result as :func:`records_validate_reference`, with one bound serializer for all records."""
    bound = serializer_class()
    fields = [(f, str(f.field_name), f.source_attrs, getattr(bound, f"validate_{f.field_name}", None))
              for f in bound._writable_fields]
    service = serializer_class.service_record  # type: ignore[attr-defined]
    valid: list[tuple[int, dict]] = []
    rejected: dict[int, Rejection] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            rejected[index] = [("record", "invalid")]
            continue
        ret: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for field, name, source_attrs, validate_method in fields:  # Serializer.to_internal_value
            try:
                value = field.run_validation(field.get_value(record))
                if validate_method is not None:
                    value = validate_method(value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except DjangoValidationError as exc:
                errors[name] = get_error_detail(exc)
            except SkipField:
                pass
            else:
                bound.set_value(ret, source_attrs, value)
        if not errors:
            try:  # Serializer.run_validation, after to_internal_value
                bound.run_validators(ret)
                ret = bound.validate(ret)
            except (serializers.ValidationError, DjangoValidationError) as exc:
                errors = serializers.as_serializer_error(exc)
        if errors:
            rejected[index] = first_codes(errors) or [("record", "invalid")]
        else:
            valid.append((index, service(ret)))
    return valid, rejected
