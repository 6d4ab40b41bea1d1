"""``config.instances.instance_new`` builds the same unsaved instance as ``Model(**values)``: every model of
the project, with random subsets of its fields given (the rest from their defaults), attribute by attribute,
the related-object cache included; unknown keywords are refused the same way."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import models

from config.instances import instance_new

PROJECT_APPS = ("audit", "consent", "profiles", "scoring", "subject_rights", "events", "webhooks", "kpis",
                "engagement", "console")


def _value(field: models.Field, rnd: random.Random):
    if isinstance(field, models.UUIDField):
        return uuid.UUID(int=rnd.getrandbits(128))
    if isinstance(field, models.DateTimeField):
        return datetime(2026, 1, 1, tzinfo=UTC).replace(microsecond=rnd.randrange(10**6))
    if isinstance(field, models.DateField):
        return datetime(2026, 1, 1 + rnd.randrange(27)).date()
    if isinstance(field, models.BooleanField):
        return rnd.random() < 0.5
    if isinstance(field, models.DecimalField):
        return Decimal(rnd.randrange(1000)) / 100
    if isinstance(field, models.FloatField):
        return rnd.random()
    if isinstance(field, models.IntegerField | models.BigIntegerField | models.AutoField):
        return rnd.randrange(1, 10**6)
    if isinstance(field, models.BinaryField):
        return rnd.randbytes(8)
    if isinstance(field, models.JSONField):
        return {"k": rnd.randrange(100)}
    if isinstance(field, models.CharField | models.TextField):
        return f"v{rnd.randrange(10**6)}"
    return None


def _models():
    return [m for m in apps.get_models() if m._meta.app_label in PROJECT_APPS and not m._meta.abstract]


def _comparable(obj: models.Model) -> dict:
    data = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    return {**data, "_adding": obj._state.adding, "_db": obj._state.db,
            "_cache": {k: id(v) for k, v in obj._state.fields_cache.items()}}


@pytest.mark.parametrize("model", _models(), ids=lambda m: m._meta.label)
def test_instance_new_equals_the_constructor(model) -> None:
    rnd = random.Random(model._meta.label)
    fields = [f for f in model._meta.concrete_fields if f.column is not None]
    callable_default = [f for f in fields if f.has_default() and callable(f.default)]
    for _ in range(20):
        values = {}
        for f in fields:
            # fields whose default is computed (now(), uuid4) are always given, so both builds agree
            if f in callable_default or rnd.random() < 0.5:
                if f.is_relation:
                    values[f.attname] = _value(f.target_field, rnd)
                else:
                    v = _value(f, rnd)
                    if v is None and not f.null:
                        continue
                    values[f.attname] = v
        assert _comparable(instance_new(model, **values)) == _comparable(model(**values))


def test_a_related_object_by_name_is_cached_like_the_constructor() -> None:
    from consent.models import ConsentEvent, ConsentNotice

    notice = ConsentNotice(id=7, version="v1")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    built, reference = instance_new(ConsentEvent, notice=notice, recorded_at=at), ConsentEvent(notice=notice, recorded_at=at)
    assert built.notice_id == reference.notice_id == 7
    assert built.notice is notice and reference.notice is notice
    assert _comparable(built) == _comparable(reference)


def test_unknown_keywords_are_refused() -> None:
    from consent.models import ConsentEvent

    with pytest.raises(TypeError, match="unexpected keyword arguments: 'nope'"):
        instance_new(ConsentEvent, nope=1)
    with pytest.raises(TypeError):
        ConsentEvent(nope=1)
