"""Vectorized scoring of a set of customers: aggregates -> features -> models -> tiers -> explanations.

No database writes here (the services write); one call runs profiles' set-based aggregate queries once
for all the given customers. Everything is computed from pseudonymized numbers only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from django.conf import settings

from profiles.aggregates import ATTRIBUTE_PREFIX, fact_aggregates
from scoring.ml.explain import Contributions, format_contribution
from scoring.ml.features import build_matrix, feature_spec
from scoring.ml.tiers import SERVICE_LEVELS, recommend_action, risk_level
from scoring.population import Reference
from scoring.registry import LoadedModels

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
class ComputedScore:
    """One customer's freshly computed score (not yet stored)."""

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
    features: dict[str, Any]
    features_hash: str
    rank_value: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def outputs(self) -> dict[str, Any]:
        """PII-free decision facts for the audit record."""
        return {
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


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def features_hash(features: dict[str, Any], model_versions: dict[str, str]) -> str:
    blob = json.dumps({"features": features, "models": model_versions}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _explanation_rows(contrib: Contributions, top_k: int) -> list[dict[str, Any]]:
    out = []
    for exp in contrib.explanations(top_k):
        out.append({
            "unit": exp.unit,
            "baseline": float(exp.baseline),
            "output": float(exp.output),
            "remainder": float(exp.remainder),
            "contributions": [[name, _clean(value), float(c)] for name, value, c in exp.contributions],
        })
    return out


def churn_table_matrix(columns: dict[str, np.ndarray], names: Sequence[str], n: int) -> np.ndarray:
    """The raw attribute table (object array) for a churn model trained from a CRM table."""
    table = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):
        col = columns.get(ATTRIBUTE_PREFIX + name)
        table[:, j] = [None] * n if col is None else [_clean(v) for v in col]
    return table


def rank_values(models: LoadedModels, columns: dict[str, np.ndarray]) -> np.ndarray:
    """The CLV used to rank customers into tiers (same computation in both passes of a run)."""
    X = build_matrix(columns, models.bundle.feature_names)
    return np.asarray(models.bundle.clv.predict(X), dtype=np.float64)


def compute_scores(
    customer_ids: Sequence[UUID], *, as_of: datetime, models: LoadedModels, reference: Reference,
    top_k: int = TOP_CONTRIBUTIONS,
) -> list[ComputedScore]:
    """Score ``customer_ids`` (vectorized): one set of aggregate queries, one predict, exact explanations."""
    from scoring.ml.models import predict_all

    ids = list(customer_ids)
    if not ids:
        return []
    columns = fact_aggregates(customer_ids=ids, as_of=as_of)
    bundle = models.bundle
    names = tuple(bundle.feature_names)
    X = build_matrix(columns, names)
    pred = predict_all(bundle, X, explain=True)
    rank = np.asarray(bundle.clv.predict(X), dtype=np.float64)
    contribs: dict[str, Contributions] = dict(pred.contributions)
    churn = np.asarray(pred.churn_probability, dtype=np.float64)
    feature_columns: dict[str, np.ndarray] = {name: X[:, j] for j, name in enumerate(names)}
    if models.churn is not None:
        table_names = tuple(models.churn.feature_names)
        table = churn_table_matrix(columns, table_names, len(ids))
        contribs["churn"] = models.churn.contributions(table)
        churn = np.asarray(contribs["churn"].output, dtype=np.float64) / 100.0
        for j, name in enumerate(table_names):
            feature_columns[ATTRIBUTE_PREFIX + name] = table[:, j]
    churn = np.clip(churn, 0.0, 1.0)
    clv = np.maximum(np.asarray(pred.clv, dtype=np.float64), 0.0)
    upsell = np.clip(np.asarray(pred.upsell, dtype=np.float64), 0.0, 1.0)
    advocacy = np.clip(np.asarray(pred.advocacy, dtype=np.float64), 0.0, 1.0)
    str_ids = [str(c) for c in ids]
    tiers = reference.tiers_for(rank, str_ids)
    clv_scores = reference.clv_scores(rank)
    risks = risk_level(churn, risk_thresholds())
    explanations = {key: _explanation_rows(contribs[key], top_k) for key in MODEL_KEYS}
    versions = models.versions()
    out = []
    for i, cid in enumerate(ids):
        features = {name: _clean(col[i]) for name, col in feature_columns.items()}
        tier = tiers[i]
        out.append(ComputedScore(
            customer_id=cid,
            clv=float(clv[i]),
            clv_score=int(clv_scores[i]),
            churn_probability=float(churn[i]),
            risk_level=str(risks[i]),
            upsell=float(upsell[i]),
            advocacy=float(advocacy[i]),
            segment=str(pred.segment[i]),
            tier=tier,
            service_level=service_level_for(tier),
            recommendation=recommendation_for(tier, float(churn[i]), float(upsell[i]), float(advocacy[i])),
            explanation={key: explanations[key][i] for key in MODEL_KEYS},
            features=features,
            features_hash=features_hash(features, versions),
            rank_value=float(rank[i]),
        ))
    return out


# --------------------------------------------------------------------------- explanations in words


def _label(name: str) -> tuple[str, Any]:
    if name.startswith(ATTRIBUTE_PREFIX):
        spec = feature_spec(name[len(ATTRIBUTE_PREFIX):])
    else:
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
    out: dict[str, Any] = {}
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
