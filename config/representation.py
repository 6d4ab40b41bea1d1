"""A DRF output serializer's representation of plain dict payloads, without DRF's per-field machinery.

``Serializer.to_representation`` walks its bound fields through a generator, resolves each source with
exception handling for defaults and skipped fields, and checks for primary-key-only objects, for every
field of every nested serializer: for the score answer (about 30 nested serializers, 150 fields) that
cost more than the rest of the view. ``Representation(ScoreOutput)`` walks the same fields in the same
order once, when it is built, and keeps for each its name, its key and either the field's own
``to_representation`` (leaves: strings, numbers, decimals, dates, UUIDs, dicts) or the plan of a nested
serializer or list. Calling it reads each key and applies those functions, so the output is the same as
the serializer's (a test compares them); anything the plan does not cover — a payload that is not a
mapping, a missing key, a dotted or ``*`` source — is handed to the serializer itself. The serializer
stays the schema's source (OpenAPI), so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rest_framework import serializers

_LEAF, _NESTED, _LIST = 0, 1, 2

#: Leaf fields whose own ``to_representation`` is nothing but a builtin's call (DRF's ``return str(value)``,
#: ``int(value)``, ``float(value)``): the plan calls the builtin itself, one Python frame fewer per value
#: (the score answer has ~150 such values). Only for a field class that does not override the method.
_BUILTIN_STEPS: dict[Any, Callable[[Any], Any]] = {
    serializers.CharField.to_representation: str,
    serializers.IntegerField.to_representation: int,
    serializers.FloatField.to_representation: float,
}

Plan = list[tuple[str, str, int, Any]]


class _Unsupported(Exception):
    pass


def _plan(serializer: serializers.Serializer) -> Plan:
    plan: Plan = []
    for field in serializer._readable_fields:
        if field.source == "*" or len(field.source_attrs) != 1 or field.field_name is None:
            raise _Unsupported(field.field_name)
        if isinstance(field, serializers.ListSerializer):
            if not isinstance(field.child, serializers.Serializer):
                raise _Unsupported(field.field_name)
            plan.append((field.field_name, field.source_attrs[0], _LIST, _plan(field.child)))
        elif isinstance(field, serializers.Serializer):
            plan.append((field.field_name, field.source_attrs[0], _NESTED, _plan(field)))
        else:
            step = _BUILTIN_STEPS.get(type(field).to_representation, field.to_representation)
            plan.append((field.field_name, field.source_attrs[0], _LEAF, step))
    return plan


def _run(plan: Plan, data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise _Unsupported
    out: dict[str, Any] = {}
    for name, key, kind, step in plan:
        try:
            value = data[key]
        except KeyError:
            raise _Unsupported(key) from None
        if value is None:
            out[name] = None
        elif kind == _LEAF:
            out[name] = step(value)
        elif kind == _NESTED:
            out[name] = _run(step, value)
        else:
            out[name] = [_run(step, item) for item in value]
    return out


class Representation:
    """``Representation(SerializerClass)(payload)`` == ``SerializerClass().to_representation(payload)``."""

    def __init__(self, serializer_class: Callable[[], serializers.Serializer]) -> None:
        self.serializer = serializer_class()
        try:
            self.plan: Plan | None = _plan(self.serializer)
        except _Unsupported:
            self.plan = None

    def __call__(self, payload: Any) -> dict[str, Any]:
        if self.plan is not None:
            try:
                return _run(self.plan, payload)
            except _Unsupported:
                pass
        return self.serializer.to_representation(payload)  # type: ignore[no-any-return]
