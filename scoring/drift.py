"""Feature drift: the population stability index (PSI) of each model feature, current population against the
training population (pure numpy; no Django).

At training (``scoring.training``) every feature of the training population's current matrix is summarised
as decile bins (``reference_distribution``: inner edges and the share of rows per bin, plus the share of
missing values) and stored in the model card (``card["feature_distribution"]``), together with each feature's
importance (``feature_importance``: mean absolute explanation contribution, as a share of the model's total,
averaged over the four models). A scheduled run (``scoring.schedule``) bins the current population's matrix on
the same edges and computes, per feature,

    PSI = sum over bins (actual share - expected share) * ln(actual share / expected share)

with shares floored at 1e-4 (an empty bin). Rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant
shift; a PSI above ``SCORING_DRIFT_PSI_THRESHOLD`` (0.2) on one of the ``SCORING_DRIFT_TOP_FEATURES`` (5) most
important features triggers a retrain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

BINS = 10
FLOOR = 1e-4
MAX_IMPORTANCE_ROWS = 1000


def _edges(values: np.ndarray, bins: int = BINS) -> list[float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return []
    inner = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return sorted({float(e) for e in inner})


def _shares(values: np.ndarray, edges: Sequence[float]) -> tuple[list[float], float]:
    """Share of the rows per bin ``(-inf, e1], (e1, e2], ..., (ek, inf)`` among the finite values, and the
    share of missing (non-finite) values among all rows."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    finite = v[np.isfinite(v)]
    missing = (n - len(finite)) / n if n else 0.0
    if len(finite) == 0:
        return [0.0] * (len(edges) + 1), missing
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), finite, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return [float(c) / len(finite) for c in counts], float(missing)


def reference_distribution(X: np.ndarray, names: Sequence[str], bins: int = BINS) -> dict[str, dict[str, Any]]:
    """Per feature: decile ``edges``, ``shares`` per bin and the ``missing`` share of the reference rows."""
    X = np.asarray(X, dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        col = X[:, j] if len(X) else np.zeros(0)
        edges = _edges(col, bins)
        shares, missing = _shares(col, edges)
        out[str(name)] = {"edges": [round(e, 6) for e in edges], "shares": [round(s, 6) for s in shares],
                          "missing": round(missing, 6)}
    return out


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: Mapping[str, Any], values: np.ndarray) -> float:
    """PSI of ``values`` against one feature's ``reference`` (its bins, plus a missing-value bin)."""
    edges = list(reference.get("edges") or [])
    actual, missing = _shares(np.asarray(values, dtype=np.float64), edges)
    exp_missing = float(reference.get("missing") or 0.0)
    expected = [s * (1.0 - exp_missing) for s in reference.get("shares") or [1.0]]
    actual_all = [s * (1.0 - missing) for s in actual]
    if exp_missing > 0 or missing > 0:
        expected, actual_all = [*expected, exp_missing], [*actual_all, missing]
    return psi_from_shares(expected, actual_all)


def feature_drift(reference: Mapping[str, Mapping[str, Any]], X: np.ndarray, names: Sequence[str]
                  ) -> dict[str, float]:
    """PSI per feature of ``X`` (columns ``names``) against the training ``reference``; features without a
    reference (new since training) are left out."""
    X = np.asarray(X, dtype=np.float64)
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        ref = reference.get(str(name))
        if ref is None or len(X) == 0:
            continue
        out[str(name)] = round(psi(ref, X[:, j]), 6)
    return out


def feature_importance(bundle: Any, X: np.ndarray, *, seed: int = 0, max_rows: int = MAX_IMPORTANCE_ROWS
                       ) -> dict[str, float]:
    """Importance of each feature: its mean |contribution| as a share of the model's total, averaged over the
    CLV, churn, upsell and advocacy models (exact explanation contributions on a sample of ``X``)."""
    X = np.asarray(X, dtype=np.float64)
    names = [str(n) for n in bundle.feature_names]
    if len(X) == 0:
        return dict.fromkeys(names, 0.0)
    if len(X) > max_rows:
        X = X[np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))]
    total = np.zeros(len(names))
    used = 0
    for model in (bundle.clv, bundle.churn, bundle.upsell, bundle.advocacy):
        values = np.abs(np.asarray(model.contributions(X).values, dtype=np.float64)).mean(axis=0)
        s = float(values.sum())
        if np.isfinite(s) and s > 0:
            total += values / s
            used += 1
    share = total / used if used else total
    return {n: round(float(v), 6) for n, v in zip(names, share, strict=True)}


def top_features(importance: Mapping[str, float], k: int) -> list[str]:
    """The ``k`` most important features (ties by name), leaving out features with no importance."""
    ranked = sorted(((float(v), n) for n, v in importance.items() if float(v) > 0), key=lambda t: (-t[0], t[1]))
    return [n for _, n in ranked[:k]]


def drift_summary(psi_by_feature: Mapping[str, float], top: Sequence[str], threshold: float) -> dict[str, Any]:
    """Max PSI overall and among the top features, and the top features above ``threshold``."""
    drifted = [f for f in top if psi_by_feature.get(f, 0.0) > threshold]
    top_values = [psi_by_feature[f] for f in top if f in psi_by_feature]
    return {
        "max_psi": max(psi_by_feature.values(), default=None),
        "max_top_psi": max(top_values, default=None),
        "drifted_top_features": drifted,
        "status": status_of(max(psi_by_feature.values(), default=None)),
    }


def status_of(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "stable" if value < 0.1 else "moderate" if value <= 0.2 else "significant"
