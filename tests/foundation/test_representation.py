"""config.representation: the fast path answers exactly what the serializer answers, and falls back to it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from config.representation import Representation


class Item(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.FloatField()
    value = serializers.JSONField()


class Inner(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=10, decimal_places=2, coerce_to_string=True)
    items = Item(many=True)


class Outer(serializers.Serializer):
    id = serializers.UUIDField()
    count = serializers.IntegerField()
    at = serializers.DateTimeField()
    tags = serializers.DictField(child=serializers.CharField())
    inner = Inner()
    maybe = Inner(allow_null=True)
    secret = serializers.CharField(write_only=True)


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": uuid.UUID(int=7), "count": 3, "at": datetime(2026, 12, 4, 7, 30, 1, 250000, tzinfo=UTC),
        "tags": {"a": 1, "b": "x"}, "secret": "never shown",
        "inner": {"amount": Decimal("12.345"), "items": [{"name": "n", "weight": 2, "value": [1, {"k": None}]}]},
        "maybe": None,
    }
    payload.update(changes)
    return payload


def _same(fast: Representation, payload: Any) -> None:
    expected = Outer().to_representation(payload)
    got = fast(payload)
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # same keys in the same order, same types


def test_the_plan_covers_nested_lists_dicts_decimals_dates_and_nulls_like_the_serializer() -> None:
    fast = Representation(Outer)
    assert fast.plan is not None
    _same(fast, _payload())
    _same(fast, _payload(maybe={"amount": 1, "items": []}, count="4", tags={}))
    assert "secret" not in fast(_payload())
    assert fast(_payload())["inner"]["amount"] == "12.34" and fast(_payload())["id"] == str(uuid.UUID(int=7))


def test_what_the_plan_does_not_cover_is_answered_by_the_serializer_itself() -> None:
    fast = Representation(Outer)

    class Obj:  # attributes, not a mapping
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    obj = Obj(**_payload())
    assert fast(obj) == Outer().to_representation(obj)

    class Starred(serializers.Serializer):
        whole = Item(source="*")

    starred = Representation(Starred)
    assert starred.plan is None
    assert starred({"name": "n", "weight": 1.5, "value": 2}) == {"whole": {"name": "n", "weight": 1.5, "value": 2}}
