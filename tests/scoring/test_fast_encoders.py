"""Differential tests of the rescore fast path's encoders against the functions they replace.

- The ``%``-template arguments of ``scoring.engine`` (``_float_arg``, ``_value_arg``, ``_apply``) give the
  text of ``_json_floats`` / ``_json_values`` for every float: random magnitudes, subnormals, -0.0,
  integers as floats, 1e16, 1e-7, the largest and smallest doubles, NaN and infinities (cleaned: ``null``;
  not cleaned: ``NaN``/``Infinity`` as ``json.dumps``), and for values of other types.
- The score rows the fast path writes as ``COPY`` text (``scores.score_copy_template`` + ``score_lines_copy``)
  are stored exactly as the rows ``score_rows_upsert`` writes from the same values, on PostgreSQL, with
  text that needs escaping (backslashes, tabs, newlines, ``%``, non-ASCII) and JSON with escapes.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

SPECIAL = [0.0, -0.0, 1.0, -1.0, 3.0, 1e16, 1e-7, 1e15 + 0.5, 123456789012345678.0, 5e-324, -5e-324,
           2.2250738585072014e-308, 2.225073858507201e-308, sys.float_info.max, -sys.float_info.max,
           0.1, 0.2 + 0.1, 1 / 3, 100.0, 1e22, 1e21, 9007199254740993.0]
NON_FINITE = [math.nan, math.inf, -math.inf]


def _random_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    bits = rng.integers(0, 2**63, size=n, dtype=np.int64).view(np.float64)  # every exponent, subnormals
    scaled = rng.normal(size=n) * 10.0 ** rng.integers(-12, 20, size=n)
    ints = np.round(rng.normal(size=n) * 1000)
    out = np.concatenate([bits, -bits, scaled, ints, np.asarray(SPECIAL)])
    return out[np.isfinite(out)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("cleaned", [True, False])
def test_float_arguments_give_the_text_of_json_floats(seed, cleaned):
    from scoring import engine

    rng = np.random.default_rng(seed)
    finite = _random_floats(rng, 500)
    mixed = finite.copy()
    mixed[rng.choice(len(mixed), 9, replace=False)] = NON_FINITE * 3
    for values in (finite, mixed, np.asarray(NON_FINITE), np.zeros(0)):
        spec, columns = engine._float_arg(values, cleaned=cleaned)
        assert spec == ("%r" if np.isfinite(values).all() else "%s") and len(columns) == 1
        got = engine._apply(("[%d," + spec + "]", [list(range(len(values))), *columns]), len(values))
        expected = [f"[{i}," + text + "]" for i, text in enumerate(engine._json_floats(values, cleaned=cleaned))]
        assert got == expected
        if not cleaned and np.isfinite(values).all():  # and json.dumps itself agrees
            assert got == [f"[{i}," + json.dumps(v) + "]" for i, v in enumerate(values.tolist())]


def test_value_arguments_give_the_text_of_json_values():
    from scoring import engine

    objects = np.asarray(["Gold", "zł ü", None, 3, True, 1.5, math.nan, np.float64(2.25), np.int64(7), "50%",
                          'a "quote" \\ back'], dtype=object)
    for values in (objects, np.arange(-5, 5), np.asarray([True, False]),
                   np.asarray(SPECIAL + NON_FINITE), np.asarray([0.1, 1.5, -0.0, 3e38], dtype=np.float32)):
        spec, columns = engine._value_arg(values)
        got = engine._apply(("{" + spec + "}", columns), len(values))
        assert got == ["{" + text + "}" for text in engine._json_values(values)]


@pytest.mark.parametrize("value", [*SPECIAL, *NON_FINITE, 12.5])
@pytest.mark.parametrize("cleaned", [True, False])
def test_a_column_of_one_value_is_template_text(value, cleaned):
    from scoring import engine

    values = np.full(7, value)
    spec, columns = engine._float_arg(values, cleaned=cleaned)
    assert columns == []
    assert engine._apply(("[" + spec + "]", columns), 7) == ["[" + t + "]" for t in engine._json_floats(
        values, cleaned=cleaned)]
    mixed = np.asarray([0.0, -0.0, 0.0])  # equal but not the same text: not one value
    spec, columns = engine._float_arg(mixed, cleaned=cleaned)
    assert engine._apply(("[" + spec + "]", columns), 3) == ["[0.0]", "[-0.0]", "[0.0]"]


def test_a_template_without_arguments_gives_its_text_for_every_row():
    from scoring import engine

    assert engine._apply(("{}", []), 3) == ["{}", "{}", "{}"]
    assert engine._apply(('{"a":%r,"b":"50%%"}', [[0.5, -0.0]]), 2) == ['{"a":0.5,"b":"50%"}', '{"a":-0.0,"b":"50%"}']


def test_copy_text_escapes_what_text_copy_reads_as_escapes():
    from scoring.services.scores import copy_text

    assert copy_text('{"a":"z\\u0142"}') == '{"a":"z\\\\u0142"}'
    assert copy_text("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    plain = '{"a":[1.5,"x"]}'
    assert copy_text(plain) is plain


@pytest.mark.django_db(transaction=False)
def test_score_rows_copied_as_text_are_stored_as_the_upserted_rows(active_model, seed_population):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the COPY text path is PostgreSQL's")
    from scoring.models import CustomerScore
    from scoring.services.scores import (
        SCORE_COPY_VARYING,
        EncodedJson,
        copy_text,
        score_columns,
        score_copy_template,
        score_lines_copy,
        score_rows_upsert,
    )

    ids = seed_population(4, seed=11)
    now = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
    shared = {"purpose": "customer_scoring", "model_version_id": active_model.id, "churn_model_version_id": None,
              "currency": "EUR", "thresholds_ref": "ref 50% \\ tab\there", "as_of": now, "computed_at": now,
              "run_id": None, "decision_id": None, "stale": False}
    varying = [
        {"clv": 1234.5678, "clv_score": 87, "churn_probability": 0.1 + 0.2, "risk_level": "low", "upsell": 5e-324,
         "advocacy": -0.0, "segment": "Loyal", "tier": "VIP", "service_level": {"tier": "VIP", "extras": ["a\tb"]},
         "recommendation": {"code": "keep", "text": "Keep 100% \\ happy"},
         "explanation": {"clv": {"unit": "EUR", "name": "zł\n"}}, "features": {"f": 1e16, "g": None, "h": "x\\y"},
         "features_hash": "a" * 64},
        {"clv": 0.0, "clv_score": 0, "churn_probability": 1.0, "risk_level": "high", "upsell": 1e-7,
         "advocacy": 0.9999999999999999, "segment": "tab\tseg", "tier": "Bronze\\", "service_level": {},
         "recommendation": {"code": "x", "text": "\u00e9\u4e2d"}, "explanation": {}, "features": {},
         "features_hash": "b" * 64},
    ]

    def rows() -> dict:
        return {(s.customer_id, s.purpose): {f.attname: getattr(s, f.attname) for f in CustomerScore._meta.concrete_fields
                                             if f.attname != "id"}
                for s in CustomerScore.objects.filter(customer_id__in=ids)}

    dicts = [{"customer_id": cid, **shared, **values} for cid, values in zip(ids, varying * 2, strict=True)]
    score_rows_upsert(dicts)
    expected = rows()
    CustomerScore.objects.filter(customer_id__in=ids).delete()

    template = score_copy_template({attname: shared[attname] for attname, _, _ in score_columns()
                                    if attname in shared})
    assert template is not None
    lines = []
    for row in dicts:
        values = []
        for name, spec in SCORE_COPY_VARYING:
            value = row[name]
            if name in ("service_level", "recommendation", "explanation", "features"):
                value = copy_text(EncodedJson(json.dumps(value)))
            elif spec == "%s":
                value = copy_text(str(value))
            values.append(value)
        lines.append(template % tuple(values))
    score_lines_copy(lines)
    assert rows() == expected
    assert len(expected) == len(ids)
