"""Shared fit/evaluate plumbing: metrics, the activation rule, the naive baselines, labels, temporal folds and cutoffs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

if TYPE_CHECKING:
    from .data import ModelConfig, Outcomes, Snapshot, TrainingData


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(p))))


def top_share(actual: np.ndarray, predicted: np.ndarray, share: float = 0.10) -> float:
    """Share of the actual total captured by the top ``share`` of customers ranked by prediction."""
    actual = np.asarray(actual, dtype=np.float64)
    total = actual.sum()
    if total <= 0 or len(actual) == 0:
        return float("nan")
    k = max(1, int(round(share * len(actual))))
    order = np.lexsort((np.arange(len(predicted)), -np.asarray(predicted)))
    return float(actual[order[:k]].sum() / total)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean prediction| over equal-width probability bins."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    dy = np.bincount(idx, y, bins) - np.bincount(idx, p, bins)
    return float(np.abs(dy).sum() / len(y))


def auc_score(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


#: Activation metrics: the headline metric of each served model and whether lower is better.
ACTIVATION_METRICS: tuple[tuple[str, bool], ...] = (
    ("clv_rmse", True),
    ("churn_auc", False),
    ("upsell_auc", False),
    ("advocacy_auc", False),
)


def worse_metrics(new_metrics: Mapping[str, float], active_metrics: Mapping[str, float] | None) -> list[str]:
    """The activation metrics on which the candidate is worse than the active version (none: it may be
    activated). Worse means worse: no tolerance beyond floating-point noise (relative 1e-9).

    A metric the active version lacks or has as NaN does not block (a CRM-table churn model has no CLV);
    one the active version has and the candidate lacks, or has as NaN, does.
    """
    if not active_metrics:
        return []

    def val(m: Mapping[str, float], k: str) -> float:
        v = m.get(k)
        return float("nan") if v is None else float(v)

    worse = []
    for key, lower_is_better in ACTIVATION_METRICS:
        old, new = val(active_metrics, key), val(new_metrics, key)
        if not np.isfinite(old):
            continue
        slack = 1e-9 * max(abs(old), 1.0)
        if not np.isfinite(new) or (new > old + slack if lower_is_better else new < old - slack):
            worse.append(key)
    return worse


def is_better(new_metrics: Mapping[str, float], active_metrics: Mapping[str, float] | None) -> bool:
    """Activation rule: not worse than the active version on any of :data:`ACTIVATION_METRICS`."""
    return not worse_metrics(new_metrics, active_metrics)


def subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def baseline_metrics(
    key: str, X: np.ndarray, y: np.ndarray, y_train: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """The naive baselines of a classifier on its validation rows: the prior rate of the training labels
    (a constant: AUC 0.5, judged by its Brier score) and, for churn, the recency rank (days since the last
    order: the longer, the likelier to churn)."""
    y = np.asarray(y).astype(int)
    if len(y) == 0:
        return {"baseline_auc": float("nan"), "prior_brier": float("nan")}
    prior = float(np.mean(y_train)) if len(y_train) else 0.0
    out = {"prior_brier": float(brier_score_loss(y, np.full(len(y), prior), labels=[0, 1])),
           "baseline_auc": 0.5 if len(np.unique(y)) == 2 else float("nan")}
    if key == "churn":
        out["baseline_auc"] = auc_score(y, np.asarray(X, dtype=np.float64)[:, list(names).index("recency_days")])
    return out


def nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def classifier_labels(
    snap: Snapshot, names: Sequence[str], cfg: ModelConfig, horizon: int, outcomes: Outcomes | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(row mask, label) per classifier for one snapshot."""
    X = snap.X
    known = snap.mask()
    fi = list(names).index
    bought = known & (X[:, fi("frequency")] > 0)
    n = len(X)
    churn = snap.future_orders == 0
    rate = X[:, fi("monetary_total")] / np.maximum(X[:, fi("tenure_days")], 30.0)
    upsell = (snap.future_revenue > (1.0 + cfg.upsell_margin) * rate * horizon) & (snap.future_revenue > 0)
    if snap.future_new_category is not None:  # ... or buys from a category new to them
        upsell |= np.asarray(snap.future_new_category, dtype=bool)
    adv = np.asarray(snap.future_advocacy, dtype=bool)
    out = {
        "churn": (bought.copy(), churn.copy()),
        "upsell": (bought.copy(), upsell.copy()),
        "advocacy": (known.copy(), adv.copy()),
    }
    if outcomes is not None:
        for key, tri in (
            ("churn", outcomes.churn(n)),
            ("upsell", outcomes.upsell(n)),
            ("advocacy", outcomes.advocacy(n)),
        ):
            given = tri >= 0
            mask, y = out[key]
            y[given] = tri[given] == 1
            mask[given & known] = True
    return out


@dataclass
class _Fold:
    train: list[int]
    val: int
    split: np.ndarray | None = None  # customer-holdout fallback: True = validation customer


def _history_candidates(*, now_day: int, start_day: int, horizon: int, cfg: ModelConfig) -> list[int]:
    """Cutoffs of a flat history, most recent first: ``now - horizon - j * step``, none earlier than
    ``start + min_history_days`` (empty when the history is too short)."""
    step = cfg.fold_step_days or max(30, horizon // 3)
    earliest = start_day + cfg.min_history_days
    latest = now_day - horizon
    candidates = [latest - j * step for j in range(max(cfg.n_folds, cfg.final_cutoffs) + 64)]
    return [c for c in candidates if c >= earliest]


def _temporal_folds(candidates: list[int], horizon: int, cfg: ModelConfig) -> list[_Fold]:
    """Fold j validates at ``candidates[j]`` and trains on the next ``final_cutoffs`` cutoffs whose label
    window ends by then (folds without such cutoffs are left out)."""
    folds: list[_Fold] = []
    for v in candidates[: cfg.n_folds]:
        train = [c for c in candidates if c <= v - horizon][: cfg.final_cutoffs]
        if train:
            folds.append(_Fold(train, v))
    return folds


def evaluation_plan(
    data: TrainingData, horizon: int, cfg: ModelConfig, seed: int
) -> tuple[list[_Fold], list[int], str]:
    earliest = data.start() + cfg.min_history_days
    if data.events is not None:
        candidates = _history_candidates(now_day=data.now(), start_day=data.start(), horizon=horizon, cfg=cfg)
    else:
        candidates = [c for c in data.labelled_cutoffs(horizon) if c >= earliest] or data.labelled_cutoffs(
            horizon
        )
    if not candidates:
        raise ValueError(f"not enough history: need at least {cfg.min_history_days + horizon} days of data")
    final = candidates[: cfg.final_cutoffs]
    folds = _temporal_folds(candidates, horizon, cfg)
    if folds:
        return folds, final, "temporal"
    n = data.n_customers
    split = np.zeros(n, dtype=bool)
    split[np.random.default_rng(seed).permutation(n)[: max(1, int(0.3 * n))]] = True
    return [_Fold([candidates[0]], candidates[0], split)], final, "customer_holdout"


def planned_cutoffs(*, now_day: int, first_day: int, horizon: int, cfg: ModelConfig) -> list[int]:
    """The cutoffs the training plan (``evaluation_plan``, used by :func:`train_all`) reads for a history from day
    ``first_day`` to day ``now_day``, most recent first: the first ``max(n_folds, final_cutoffs)`` candidates
    (validation and final cutoffs) and every temporal fold's training cutoffs.

    For callers that precompute labelled snapshots (``scoring.training``): snapshots at exactly these
    cutoffs, given as ``TrainingData(snapshots=..., as_of=now_day, first_day=first_day)``, make
    ``train_all`` plan the same folds and final cutoffs as it would from the flat history. Empty when the
    history is shorter than the horizon (no labels); a history shorter than ``min_history_days + horizon``
    falls back to the latest labelled cutoff.
    """
    latest = now_day - horizon
    if latest < first_day:
        return []
    candidates = _history_candidates(now_day=now_day, start_day=first_day, horizon=horizon, cfg=cfg) or [latest]
    needed = set(candidates[: max(cfg.n_folds, cfg.final_cutoffs)])
    for fold in _temporal_folds(candidates, horizon, cfg):
        needed.update(fold.train)
    return sorted(needed, reverse=True)


def folds_stack(
    snaps: list[Snapshot],
    labels: list[dict[str, tuple[np.ndarray, np.ndarray]]],
    key: str | None,
    rows: list[np.ndarray | None],
) -> tuple[np.ndarray, np.ndarray]:
    """Stack rows of several snapshots; ``key=None`` stacks the CLV target on known customers."""
    Xs, ys = [], []
    for snap, lab, sel in zip(snaps, labels, rows, strict=True):
        mask, y = (snap.mask(), snap.future_revenue) if key is None else lab[key]
        if sel is not None:
            mask = mask & sel
        Xs.append(snap.X[mask])
        ys.append(np.asarray(y, dtype=np.float64)[mask])
    return np.vstack(Xs), np.concatenate(ys)
