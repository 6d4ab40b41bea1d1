"""Vectorized scoring of a set of customers: aggregates -> features -> models -> tiers -> explanations.

No database writes here (the services write); one call runs profiles' set-based aggregate queries once
for all the given customers. Everything is computed from pseudonymized numbers only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
from django.conf import settings

from scoring.features.aggregates import ATTRIBUTE_PREFIX, KNOWN_COLUMN, fact_aggregates
from scoring.ml.explain import Contributions, format_contribution
from scoring.ml.features import (
    CLV_FLOOR,
    NUMERIC,
    AttributeEncoding,
    attribute_matrix,
    build_matrix,
    feature_spec,
)
from scoring.ml.tiers import SERVICE_LEVELS, recommend_action, risk_level
from scoring.population import Reference, tiebreak
from scoring.registry import LoadedModels

if TYPE_CHECKING:
    from scoring.ml.models import TrainedBundle

#: Contributions kept per model and score (sorted by magnitude); the rest is summed in "remainder", so
#: ``baseline + sum(contributions) + remainder == output`` still holds exactly.
TOP_CONTRIBUTIONS = 10
MODEL_KEYS = ("clv", "churn", "upsell", "advocacy")
MODEL_TITLES = {
    "clv": "Customer lifetime value",
    "churn": "Churn probability",
    "upsell": "Upsell propensity",
    "advocacy": "Advocacy propensity",
}


def risk_thresholds() -> tuple[float, float]:
    raw = settings.CHURN_RISK_THRESHOLDS
    return float(raw.get("medium", 0.3)), float(raw.get("high", 0.6))


def currency() -> str:
    return str(getattr(settings, "SCORING_CURRENCY", "EUR"))


def service_level_for(tier: str) -> dict[str, Any]:
    level = SERVICE_LEVELS.get(tier) or SERVICE_LEVELS["Standard"]
    return {
        "tier": tier,
        "response_time_hours": level.response_hours,
        "response_time": f"< {level.response_hours} h",
        "escalation": level.handler,
        "extras": level.perks,
    }


def recommendation_for(tier: str, churn: float, upsell: float, advocacy: float) -> dict[str, str]:
    code, text = recommend_action(tier, churn, upsell, advocacy, risk_thresholds=risk_thresholds())
    return {"code": code, "text": text}


@dataclass
class ScoreFields:
    """The fields of one customer's score: computed here (``ComputedScore``) and served with its decision
    (``scoring.services.serve.ScoreResult``). A kind not served (``scoring.quality``) is None when served."""

    customer_id: UUID
    clv: float
    clv_score: int
    churn_probability: float
    risk_level: str
    upsell: float
    advocacy: float
    segment: str
    tier: str
    service_level: dict[str, Any]
    recommendation: dict[str, str]
    explanation: dict[str, Any]


@dataclass
class ComputedScore(ScoreFields):
    """One customer's freshly computed score (not yet stored)."""

    features: dict[str, Any]
    features_hash: str
    rank_value: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def outputs(self) -> dict[str, Any]:
        """PII-free decision facts for the audit record (a kind not served, ``scoring.quality``: None)."""
        out = {
            "clv": round(self.clv, 2),
            "currency": currency(),
            "clv_score": int(self.clv_score),
            "churn_probability": round(self.churn_probability, 4),
            "risk_level": self.risk_level,
            "upsell": round(self.upsell, 4),
            "advocacy": round(self.advocacy, 4),
            "segment": self.segment,
            "tier": self.tier,
            "service_level": self.service_level,
            "recommendation": self.recommendation,
        }
        for key, field_name in UNAVAILABLE_FIELDS.items():
            if not (self.explanation or {}).get(key, True):
                for name in field_name:
                    out[name] = None
        return out


#: Output fields left empty (None) when a score kind is not served.
UNAVAILABLE_FIELDS = {"clv": ("clv", "clv_score"), "churn": ("churn_probability",), "upsell": ("upsell",),
                      "advocacy": ("advocacy",)}


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def features_hash(features: dict[str, Any], model_versions: dict[str, str]) -> str:
    blob = json.dumps({"features": features, "models": model_versions}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cleaned(values: np.ndarray) -> list[Any]:
    """``_clean`` over a 1-D array (a list) or a 2-D array (a list of rows), vectorized for float arrays."""
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all():
            return values.tolist()
        out = values.astype(object)
        out[~finite] = None
        return out.tolist()
    if values.ndim == 1:
        return [_clean(v) for v in values.tolist()]
    return [[_clean(v) for v in row] for row in values.tolist()]


def _explanation_rows(contrib: Contributions, top_k: int) -> list[dict[str, Any]]:
    """Per row ``{"unit", "baseline", "output", "remainder", "contributions": [[name, value, c], ...]}``:
    the top ``top_k`` contributions by magnitude (as ``Contributions.explanations``), built from whole
    arrays (one ``tolist`` per array, no per-row numpy indexing)."""
    n = len(contrib.output)
    if n == 0:
        return []
    width = contrib.values.shape[1]
    k = min(top_k, width)
    idx, vals = contrib.top(k)
    remainder = [0.0] * n if k == width else (contrib.values.sum(axis=1) - vals.sum(axis=1)).tolist()
    shown = _cleaned(np.take_along_axis(np.asarray(contrib.X), idx, axis=1))
    names = np.asarray(contrib.feature_names, dtype=object)[idx].tolist()
    values = vals.tolist()
    baseline = np.asarray(contrib.baseline, dtype=np.float64).tolist()
    output = np.asarray(contrib.output, dtype=np.float64).tolist()
    unit = contrib.unit
    return [
        {
            "unit": unit,
            "baseline": baseline[i],
            "output": output[i],
            "remainder": remainder[i],
            "contributions": list(map(list, zip(names[i], shown[i], values[i], strict=True))),
        }
        for i in range(n)
    ]


def _floor_at_zero(rows: list[dict[str, Any]], raw: np.ndarray) -> None:
    """A CLV below zero is served as 0: its explanation gets the lift as its first term (``clv_floor``, the
    model's value shown), and its output is the served 0, so the terms still add up to what is served."""
    for i in np.flatnonzero(raw < 0).tolist():
        row = rows[i]
        row["contributions"].insert(0, [CLV_FLOOR.name, float(raw[i]), -float(raw[i])])
        row["output"] = 0.0


def churn_table_matrix(columns: dict[str, np.ndarray], names: Sequence[str], n: int) -> np.ndarray:
    """The raw attribute table (object array) for a churn model trained from a CRM table."""
    table = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):
        col = columns.get(ATTRIBUTE_PREFIX + name)
        table[:, j] = [None] * n if col is None else [_clean(v) for v in col]
    return table


def bundle_matrix(bundle: TrainedBundle, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The model input of ``bundle`` from aggregate ``columns``: its feature columns, the declared CRM
    attributes encoded as recorded at training (none for a bundle trained before they were features)."""
    return build_matrix(columns, bundle.feature_names, bundle.attributes)


def rank_values(models: LoadedModels, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The value used to rank customers into tiers (same computation in both passes of a run): the CLV
    model's, else (CLV not served, ``scoring.quality``) the naive ranking by historical spend."""
    if models.bundle is None:
        return _table_scores(models, columns, len(columns[KNOWN_COLUMN]))[2]
    if "clv" in models.unavailable:
        return np.asarray(columns["monetary_total"], dtype=np.float64)
    X = bundle_matrix(models.bundle, columns)
    return np.asarray(models.bundle.clv.predict(X), dtype=np.float64)


def tier_basis(models: LoadedModels) -> dict[str, str]:
    """What the tiers rank by, in words (served in the response and in the explanation)."""
    from scoring import quality

    return quality.tier_basis(models.unavailable, table_only=models.bundle is None)


def _table_scores(models: LoadedModels, columns: dict[str, np.ndarray], n: int
                  ) -> tuple[dict[str, Contributions], dict[str, np.ndarray], np.ndarray]:
    """Attribute-only serving (no full bundle): churn from the CRM-table model, the CLV estimated from the
    monthly charges and that churn risk (``scoring.ml.attribute_clv``), else the naive historical spend as
    the rank. Returns the contributions, the shown feature columns and the rank values."""
    from scoring import registry
    from scoring.ml import attribute_clv

    assert models.churn is not None
    names = tuple(models.churn.feature_names)
    table = churn_table_matrix(columns, names, n)
    contribs = {"churn": models.churn.contributions(table)}
    shown = {ATTRIBUTE_PREFIX + name: table[:, j] for j, name in enumerate(names)}
    monthly = attribute_clv.find_column(names, attribute_clv.MONTHLY_NAMES)
    if monthly is not None and "clv" not in models.unavailable:
        churn = np.asarray(contribs["churn"].output, dtype=np.float64) / 100.0
        contribs["clv"] = attribute_clv.estimate(monthly, table[:, names.index(monthly)], churn,
                                                 registry.horizon_days(models.full.id))
        return contribs, shown, np.asarray(contribs["clv"].output, dtype=np.float64)
    fallback = np.asarray(columns.get("monetary_total", np.zeros(n)), dtype=np.float64)
    return contribs, shown, attribute_clv.naive_spend(names, table, fallback)


def _shown_attributes(X: np.ndarray, columns: dict[str, np.ndarray], names: Sequence[str],
                      attributes: Sequence[AttributeEncoding]) -> np.ndarray:
    """``X`` with NaN (shown as missing) where a numeric CRM attribute was missing and the models read the fill."""
    numeric = [a for a in attributes if a.kind == NUMERIC and a.column in names]
    if not numeric:
        return X
    shown = X.copy()
    raw = attribute_matrix(columns, numeric, len(X), fill=False)
    for j, a in enumerate(numeric):
        col = names.index(a.column)
        shown[:, col] = raw[:, j]
    return shown


@dataclass
class ScoredBatch:
    """The purpose-independent part of the scores of a set of customers (features, all model outputs,
    explanations): computed once per customer, then finished per purpose by :func:`finish_scores`."""

    customer_ids: list[UUID]
    clv: np.ndarray
    churn: np.ndarray
    upsell: np.ndarray
    advocacy: np.ndarray
    rank: np.ndarray
    segment: list[str]
    features: list[dict[str, Any]]
    explanation: list[dict[str, Any]]
    features_hash: list[str]
    tiebreak: np.ndarray  # population.tiebreak of each customer
    # ``features`` / ``explanation`` encoded once (sorted keys, compact: as sealed and as hashed)
    features_json: list[str] = field(default_factory=list)
    explanation_json: list[str] = field(default_factory=list)
    unavailable: frozenset[str] = frozenset()  # kinds not served (scoring.quality); their values are 0 here

    def __len__(self) -> int:
        return len(self.customer_ids)


def score_batch(
    customer_ids: Sequence[UUID], *, columns: dict[str, np.ndarray], models: LoadedModels,
    top_k: int = TOP_CONTRIBUTIONS, encoded: bool = False,
) -> ScoredBatch:
    """Features, predictions and exact explanations of all models for ``customer_ids`` (vectorized),
    from the aggregate ``columns`` (``scoring.features.aggregates.fact_aggregates``, aligned with the ids).

    ``encoded`` (the batch fast path): the features and explanations are built as their JSON text only,
    from whole arrays (``_encoded_batch``; the same text as ``_compact`` of the objects, which are decoded
    from it on demand)."""
    from scoring.ml.models import predict_all

    ids = list(customer_ids)
    n = len(ids)
    bundle = models.bundle
    unavailable = frozenset(models.unavailable)
    if bundle is None:  # attribute-only data: the CRM-table churn model serves alone
        contribs, feature_columns, rank = _table_scores(models, columns, n)
        segment = [""] * n
    else:
        names = tuple(bundle.feature_names)
        X = bundle_matrix(bundle, columns)
        pred = predict_all(bundle, X, explain=True)
        rank = (np.asarray(columns["monetary_total"], dtype=np.float64) if "clv" in unavailable
                else np.asarray(bundle.clv.predict(X), dtype=np.float64))
        # shown (stored, explained) values: a CRM attribute the customer has no value for is shown as such,
        # not as the fill the models read
        shown = _shown_attributes(X, columns, names, bundle.attributes)
        contribs = {key: replace(c, X=shown) for key, c in pred.contributions.items()}
        feature_columns = {name: shown[:, j] for j, name in enumerate(names)}
        segment = [str(s) for s in pred.segment]
        if models.churn is not None:
            table_names = tuple(models.churn.feature_names)
            table = churn_table_matrix(columns, table_names, n)
            contribs["churn"] = models.churn.contributions(table)
            for j, name in enumerate(table_names):
                feature_columns[ATTRIBUTE_PREFIX + name] = table[:, j]
    served = {key: key in contribs and key not in unavailable for key in MODEL_KEYS}
    if encoded:
        return _encoded_batch(ids, contribs=contribs, served=served, feature_columns=feature_columns, rank=rank,
                              segment=segment, versions=models.versions(), top_k=top_k)
    explanations = {key: _explanation_rows(contribs[key], top_k) if served[key] else [None] * n
                    for key in MODEL_KEYS}
    if served["clv"]:
        _floor_at_zero(explanations["clv"], np.asarray(contribs["clv"].output, dtype=np.float64))
    outputs = {key: np.asarray(contribs[key].output, dtype=np.float64) / (1.0 if key == "clv" else 100.0)
               if served[key] else np.zeros(n) for key in MODEL_KEYS}
    versions = models.versions()
    feature_names_all = list(feature_columns)
    features = [dict(zip(feature_names_all, row, strict=True))
                for row in zip(*(_cleaned(np.asarray(col)) for col in feature_columns.values()), strict=True)]
    if not feature_names_all:
        features = [{} for _ in ids]
    explanation = [{key: explanations[key][i] for key in MODEL_KEYS} for i in range(n)]
    features_json = [_compact(f) for f in features]
    models_json = _compact(versions)
    return ScoredBatch(
        customer_ids=ids,
        clv=np.maximum(outputs["clv"], 0.0),
        churn=np.clip(outputs["churn"], 0.0, 1.0),
        upsell=np.clip(outputs["upsell"], 0.0, 1.0),
        advocacy=np.clip(outputs["advocacy"], 0.0, 1.0),
        rank=np.asarray(rank, dtype=np.float64),
        segment=segment,
        features=features,
        explanation=explanation,
        # == features_hash(f, versions): the same bytes, composed from the encoded parts
        features_hash=[hashlib.sha256(('{"features":' + f + ',"models":' + models_json + "}").encode()).hexdigest()
                       for f in features_json],
        tiebreak=np.asarray([tiebreak(c) for c in ids]),
        features_json=features_json,
        explanation_json=[_compact(e) for e in explanation],
        unavailable=frozenset(k for k in MODEL_KEYS if not served[k]),
    )


def finish_scores(batch: ScoredBatch, *, reference: Reference, rows: Sequence[int] | None = None
                  ) -> list[ComputedScore]:
    """The scores of ``batch`` (or of its ``rows``) against a population ``reference``: tiers, CLV
    score, risk level, service level and recommendation."""
    sel = np.arange(len(batch)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(sel) == 0:
        return []
    ids = [batch.customer_ids[i] for i in sel.tolist()]
    rank = batch.rank[sel]
    churn, upsell, advocacy = batch.churn[sel], batch.upsell[sel], batch.advocacy[sel]
    tiers = reference.tiers_for_keys(rank, batch.tiebreak[sel])
    clv_scores = reference.clv_scores(rank).tolist()
    thresholds = risk_thresholds()
    risks = (["unavailable"] * len(sel) if "churn" in batch.unavailable
             else np.asarray(risk_level(churn, thresholds)).tolist())
    clv_l, churn_l, upsell_l, advocacy_l, rank_l = (a.tolist() for a in (batch.clv[sel], churn, upsell, advocacy, rank))
    levels: dict[str, dict[str, Any]] = {}
    actions: dict[tuple[Any, ...], dict[str, str]] = {}
    out = []
    for j, i in enumerate(sel.tolist()):
        tier = tiers[j]
        level = levels.get(tier)
        if level is None:
            level = levels[tier] = service_level_for(tier)
        u, a = upsell_l[j], advocacy_l[j]
        # recommend_action depends on the tier, the risk level and these comparisons only
        key = (tier, risks[j], u >= 0.5, a >= 0.5, u >= a)
        action = actions.get(key)
        if action is None:
            action = actions[key] = recommendation_for(tier, churn_l[j], u, a)
        out.append(ComputedScore(
            customer_id=ids[j],
            clv=clv_l[j],
            clv_score=int(clv_scores[j]),
            churn_probability=churn_l[j],
            risk_level=str(risks[j]),
            upsell=u,
            advocacy=a,
            segment=batch.segment[i],
            tier=tier,
            service_level=dict(level),
            recommendation=dict(action),
            explanation=batch.explanation[i],
            features=batch.features[i],
            features_hash=batch.features_hash[i],
            rank_value=rank_l[j],
        ))
    return out


# --------------------------------------------------------------------------- encoded (the batch fast path)
#
# The JSON text of the features and explanations built from whole arrays, without a dict or list per
# customer: each text is one ``%``-format template per chunk (the keys, units and punctuation, which every
# row shares) applied to each row's values, so that the formatting runs in C. A float column whose values
# are all finite goes in as floats under ``%r`` (``float.__repr__``, as ``json.dumps`` writes them); any
# other column goes in as its JSON text under ``%s``. The text is byte for byte what ``_compact`` gives for
# the objects the reference path builds (``json.dumps(..., sort_keys=True, separators=(",", ":"),
# default=str)``): non-finite floats ``NaN``/``Infinity`` where not cleaned, ``null`` where cleaned
# (``_clean``), other values as ``json.dumps`` encodes them cleaned. tests/scoring/test_rescore_fast.py
# compares both on random batches.


def _json_floats(values: np.ndarray, *, cleaned: bool) -> np.ndarray:
    """JSON text of each float (an object array of the same shape); non-finite: ``null`` when
    ``cleaned`` (as ``_clean``), else as ``json.dumps`` writes them."""
    a = np.asarray(values, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = list(map(float.__repr__, a.ravel().tolist())) if a.size else []
    bad = ~np.isfinite(a)
    if bad.any():
        out[bad] = ["null" if cleaned else json.dumps(v) for v in a[bad].tolist()]
    return out


def _json_values(values: np.ndarray) -> np.ndarray:
    """JSON text of each value as ``_cleaned`` cleans it (an object array of the same shape)."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return _json_floats(a, cleaned=True)
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [json.dumps(_clean(v), default=str) for v in a.ravel().tolist()] if a.size else []
    return out


#: a template and the argument columns it takes (one list per placeholder, one value per row)
_Template = tuple[str, list[list[Any]]]


def _literal(text: str) -> str:
    """``text`` as a literal part of a ``%``-format template."""
    return text.replace("%", "%%")


def _float_arg(values: np.ndarray, *, cleaned: bool) -> _Template:
    """The placeholder of a 1-D float array's JSON texts and its argument column (see above); a column of
    one value (the same bits in every row, e.g. a model's baseline) is its text in the template, no column."""
    a = np.asarray(values, dtype=np.float64)
    if len(a) > 1:
        bits = a.view(np.int64)
        if (bits == bits[0]).all():
            return _literal(_json_floats(a[:1], cleaned=cleaned)[0]), []
    if np.isfinite(a).all():
        return "%r", [a.tolist()]
    return "%s", [_json_floats(a, cleaned=cleaned).tolist()]


def _value_arg(values: np.ndarray) -> _Template:
    """``_float_arg`` for a column of shown values (``_json_values``: cleaned, any type)."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return _float_arg(a, cleaned=True)
    return "%s", [_json_values(a).tolist()]


def _apply(template: _Template, n: int) -> list[str]:
    """The template applied to each of ``n`` rows."""
    text, columns = template
    if not columns:
        return [text % ()] * n
    return list(map(text.__mod__, zip(*columns, strict=True)))


def _explanation_template(contrib: Contributions, top_k: int, *, floor_at_zero: bool) -> _Template:
    """The template of one model's explanation (``_explanation_rows``, with ``_floor_at_zero`` for the CLV)."""
    n = len(contrib.output)
    width = contrib.values.shape[1]
    k = min(top_k, width)
    idx, vals = contrib.top(k)
    names = np.asarray([json.dumps(name) for name in contrib.feature_names] or [""], dtype=object)
    shown = np.take_along_axis(np.asarray(contrib.X), idx, axis=1)
    raw = np.asarray(contrib.output, dtype=np.float64)
    spec, columns = _float_arg(contrib.baseline, cleaned=False)
    text = '{"baseline":' + spec + ',"contributions":['
    args = columns
    floored = np.flatnonzero(raw < 0).tolist() if floor_at_zero else []
    if floored:  # the lift as the first term (``_floor_at_zero``)
        lift = [""] * n
        head = "[" + json.dumps(CLV_FLOOR.name) + ","
        for i in floored:
            value = float(raw[i])
            lift[i] = head + json.dumps(value) + "," + json.dumps(-value) + "]" + ("," if k else "")
        text += "%s"
        args.append(lift)
    triples = []
    for j in range(k):
        shown_spec, shown_columns = _value_arg(shown[:, j])
        value_spec, value_columns = _float_arg(vals[:, j], cleaned=False)
        triples.append("[%s," + shown_spec + "," + value_spec + "]")
        args += [names[idx[:, j]].tolist(), *shown_columns, *value_columns]
    output = raw.copy()
    output[floored] = 0.0  # served as 0: repr ``0.0``
    spec, columns = _float_arg(output, cleaned=False)
    text += ",".join(triples) + '],"output":' + spec
    args += columns
    if k == width:
        text += ',"remainder":0.0'
    else:
        spec, columns = _float_arg(contrib.values.sum(axis=1) - vals.sum(axis=1), cleaned=False)
        text += ',"remainder":' + spec
        args += columns
    return text + _literal(',"unit":' + json.dumps(contrib.unit) + "}"), args


def _explanation_json(contrib: Contributions, top_k: int, *, floor_at_zero: bool) -> np.ndarray:
    """The JSON text of each row's explanation of one model (an object array)."""
    out = np.empty(len(contrib.output), dtype=object)
    out[:] = _apply(_explanation_template(contrib, top_k, floor_at_zero=floor_at_zero), len(out))
    return out


class _Decoded(Sequence[Any]):
    """The objects of JSON texts, decoded when read (the fast path reads a few: score events)."""

    def __init__(self, texts: list[str]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [json.loads(t) for t in self._texts[i]]
        return json.loads(self._texts[i])


def _encoded_batch(ids: list[UUID], *, contribs: dict[str, Contributions], served: dict[str, bool],
                   feature_columns: dict[str, np.ndarray], rank: np.ndarray, segment: list[str],
                   versions: dict[str, str], top_k: int) -> ScoredBatch:
    """``score_batch``'s result with the features and explanations built as JSON text (see above)."""
    n = len(ids)
    text, args = "{", []
    for j, key in enumerate(sorted(MODEL_KEYS)):
        text += _literal(("," if j else "") + json.dumps(key) + ":")
        if served[key]:
            part, columns = _explanation_template(contribs[key], top_k, floor_at_zero=key == "clv")
            text += part
            args += columns
        else:
            text += "null"
    explanation_json = _apply((text + "}", args), n)
    text, args = "{", []
    for j, name in enumerate(sorted(feature_columns)):
        spec, columns = _value_arg(np.asarray(feature_columns[name]))
        text += _literal(("," if j else "") + json.dumps(name) + ":") + spec
        args += columns
    features_json = _apply((text + "}", args), n)
    models_json = _compact(versions)
    outputs = {key: np.asarray(contribs[key].output, dtype=np.float64) / (1.0 if key == "clv" else 100.0)
               if served[key] else np.zeros(n) for key in MODEL_KEYS}
    return ScoredBatch(
        customer_ids=ids,
        clv=np.maximum(outputs["clv"], 0.0),
        churn=np.clip(outputs["churn"], 0.0, 1.0),
        upsell=np.clip(outputs["upsell"], 0.0, 1.0),
        advocacy=np.clip(outputs["advocacy"], 0.0, 1.0),
        rank=np.asarray(rank, dtype=np.float64),
        segment=segment,
        features=_Decoded(features_json),  # type: ignore[arg-type]
        explanation=_Decoded(explanation_json),  # type: ignore[arg-type]
        features_hash=[hashlib.sha256(('{"features":' + f + ',"models":' + models_json + "}").encode()).hexdigest()
                       for f in features_json],
        tiebreak=np.asarray([tiebreak(c) for c in ids]),
        features_json=features_json,
        explanation_json=explanation_json,
        unavailable=frozenset(k for k in MODEL_KEYS if not served[k]),
    )


def compute_scores(
    customer_ids: Sequence[UUID], *, as_of: datetime, models: LoadedModels, reference: Reference,
    top_k: int = TOP_CONTRIBUTIONS,
) -> list[ComputedScore]:
    """Score ``customer_ids`` (vectorized): one set of aggregate queries, one predict, exact explanations."""
    ids = list(customer_ids)
    if not ids:
        return []
    columns = fact_aggregates(customer_ids=ids, as_of=as_of)
    return finish_scores(score_batch(ids, columns=columns, models=models, top_k=top_k), reference=reference)


# --------------------------------------------------------------------------- explanations in words


def _label(name: str) -> tuple[str, Any]:
    """Label and spec of a feature; CRM attributes by their name (``seats``, one-hot ``plan = gold``)."""
    spec = feature_spec(name)
    return spec.label, spec


def contribution_text(name: str, value: Any, contribution: float, unit: str) -> str:
    label, spec = _label(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value is not None:
        shown = spec.format_value(float(value))
    else:
        shown = "not given" if value is None else str(value)
    return f"{label}: {shown} ({format_contribution(contribution, unit)})"


def explanation_in_words(explanation: dict[str, Any], top_k: int = 5) -> dict[str, Any]:
    """API form: per model the top contributions in words and numbers, baseline, output and the rest."""
    out: dict[str, Any] = dict.fromkeys(MODEL_KEYS)  # a kind not served (scoring.quality): None
    for key in MODEL_KEYS:
        exp = explanation.get(key)
        if not exp:
            continue
        items = [item for item in exp["contributions"] if item[2] != 0.0]
        shown = items[:top_k]
        hidden = sum(c for _, _, c in items[top_k:]) + float(exp.get("remainder", 0.0))
        out[key] = {
            "title": MODEL_TITLES[key],
            "unit": exp["unit"],
            "baseline": round(float(exp["baseline"]), 6),
            "output": round(float(exp["output"]), 6),
            "contributions": [
                {
                    "feature": name,
                    "label": _label(name)[0],
                    "value": value,
                    "contribution": round(float(c), 6),
                    "text": contribution_text(name, value, float(c), exp["unit"]),
                }
                for name, value, c in shown
            ],
            "other_features": round(hidden, 6),
        }
    return out
