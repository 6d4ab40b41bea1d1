"""Tree models: calibrated gradient-boosting classifiers (churn, upsell, advocacy), tree regressors, and the
churn model trained from a CRM table (with its table encoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import parallel_config
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestRegressor
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from ..explain import Contributions, calibrated_contributions
from ..features import (
    validate_extra_features,
)
from .data import ModelConfig
from .evaluation import auc_score, baseline_metrics, expected_calibration_error


@dataclass
class TableEncoder:
    """Numeric encoding of an arbitrary CRM table: categories -> ordinal codes, NaN -> median.

    One output column per input column, so contributions map 1:1 to the declared attributes.
    """

    feature_names: tuple[str, ...]
    categories: list[list[str] | None]  # per column: category list (ordinal code = index) or None
    fill: np.ndarray  # numeric fill value per column

    @classmethod
    def fit(cls, X: np.ndarray, names: Sequence[str]) -> TableEncoder:
        X = (
            np.asarray(X, dtype=object)
            if np.asarray(X).dtype.kind in "OUS"
            else np.asarray(X, dtype=np.float64)
        )
        cats: list[list[str] | None] = []
        fill = np.zeros(X.shape[1])
        for j in range(X.shape[1]):
            col = X[:, j]
            num = _as_float(col)
            if num is None:
                cats.append(sorted({str(v) for v in col if not _is_missing(v)}))
            else:
                cats.append(None)
                finite = num[np.isfinite(num)]
                fill[j] = float(np.median(finite)) if len(finite) else 0.0
        return cls(tuple(names), cats, fill)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = np.empty((len(X), len(self.categories)), dtype=np.float64)
        for j, cats in enumerate(self.categories):
            col = X[:, j]
            if cats is None:
                num = _as_float(col)
                if num is None:
                    raise ValueError(f"column {self.feature_names[j]!r} must be numeric")
                out[:, j] = np.where(np.isfinite(num), num, self.fill[j])
            else:
                lookup = {c: float(i) for i, c in enumerate(cats)}
                out[:, j] = [(-1.0 if _is_missing(v) else lookup.get(str(v), -1.0)) for v in col]
        return out


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float | np.floating) and np.isnan(v))


def _as_float(col: np.ndarray) -> np.ndarray | None:
    try:
        return (
            np.array([np.nan if _is_missing(v) else float(v) for v in col], dtype=np.float64)
            if col.dtype == object
            else col.astype(np.float64)
        )
    except (TypeError, ValueError):
        return None


@dataclass
class ClassifierModel:
    """Calibrated binary classifier (or a constant when the label has a single class)."""

    name: str
    feature_names: tuple[str, ...]
    calibrated: CalibratedClassifierCV | None = None
    constant: float = 0.0
    encoder: TableEncoder | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return self.encoder.transform(X) if self.encoder is not None else np.asarray(X, dtype=np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class, shape (n,)."""
        Z = self._encode(X)
        if self.calibrated is None:
            return np.full(len(Z), self.constant)
        return self.calibrated.predict_proba(Z)[:, 1]

    def contributions(self, X: np.ndarray) -> Contributions:
        """Exact contributions in points (0-100 probability scale); log-odds in ``.log_odds``."""
        Z = self._encode(X)
        display = np.asarray(X) if self.encoder is not None else Z
        if self.calibrated is None:
            n, f = len(Z), len(self.feature_names)
            zero = np.zeros((n, f))
            return Contributions(
                self.feature_names,
                display,
                np.full(n, 100 * self.constant),
                zero,
                np.full(n, 100 * self.constant),
                "points",
                zero,
                np.zeros(n),
            )
        return calibrated_contributions(self.calibrated, Z, self.feature_names, display=display)


# Training fits use every core (threads); a fitted model carries no parallelism into serving.
_TRAINING_JOBS = -1


def fit_regressor(kind: str, X: np.ndarray, y: np.ndarray, cfg: ModelConfig, seed: int) -> Any:
    if kind == "random_forest":
        est: Any = RandomForestRegressor(
            n_estimators=cfg.rf_trees,
            max_depth=cfg.rf_max_depth,
            min_samples_leaf=cfg.rf_min_samples_leaf,
            max_features=0.5,
            random_state=seed,
            n_jobs=_TRAINING_JOBS,  # trees are seeded up front: the same forest whatever the number of jobs
        )
    elif kind == "gradient_boosting":
        est = GradientBoostingRegressor(
            n_estimators=cfg.gb_trees,
            max_depth=cfg.gb_max_depth,
            learning_rate=cfg.gb_learning_rate,
            subsample=cfg.gb_subsample,
            min_samples_leaf=20,
            random_state=seed,
        )
    else:
        raise ValueError(kind)
    with parallel_config(backend="threading"):
        est.fit(X, y)
    if kind == "random_forest":
        est.set_params(n_jobs=None)  # served one customer at a time: no thread pool per prediction
    return est


def fit_classifier(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    cfg: ModelConfig,
    seed: int,
    encoder: TableEncoder | None = None,
) -> ClassifierModel:
    """Gradient boosting + sigmoid calibration (``ensemble=False``: one base model, one sigmoid)."""
    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < 2 * cfg.calibration_cv:
        return ClassifierModel(name, tuple(names), None, float(y.mean()) if len(y) else 0.0, encoder)
    base = GradientBoostingClassifier(
        n_estimators=cfg.clf_trees,
        max_depth=cfg.clf_max_depth,
        learning_rate=cfg.gb_learning_rate,
        subsample=cfg.clf_subsample,
        min_samples_leaf=20,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=cfg.calibration_cv, shuffle=True, random_state=seed)
    cal = CalibratedClassifierCV(base, method="sigmoid", cv=cv, ensemble=False, n_jobs=_TRAINING_JOBS)
    with parallel_config(backend="threading"):  # threads (the tree builder releases the GIL): safe in a worker
        cal.fit(X, y)
    cal.set_params(n_jobs=None)
    return ClassifierModel(name, tuple(names), cal, 0.0, encoder)


def classifier_metrics(model: ClassifierModel, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = model.predict_proba(X)
    y = np.asarray(y).astype(int)
    if len(y) == 0:
        return {"auc": float("nan"), "brier": float("nan"), "ece": float("nan")}
    return {
        "auc": auc_score(y, p),
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


def train_churn_from_table(
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    seed: int = 0,
    config: ModelConfig | None = None,
) -> ClassifierModel:
    """Churn model from a CRM table of arbitrary numeric/categorical attributes and a churned label.

    Attribute names are checked against the special-category denylist. Metrics come from a stratified
    25 % holdout; the served model is then refitted on all rows.
    """
    names = tuple(str(n) for n in feature_names)
    validate_extra_features(names)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(names):
        raise ValueError("X must be 2-D with one column per feature name")
    y_arr = np.asarray(y)
    if y_arr.dtype.kind in "OUS":
        y_arr = np.isin(np.char.lower(y_arr.astype(str)), ["1", "true", "yes", "y", "churned"])
    y_arr = y_arr.astype(int)
    cfg = config or ModelConfig()
    enc = TableEncoder.fit(X, names)
    Z = enc.transform(X)
    metrics: dict[str, float] = {}
    counts = np.bincount(y_arr, minlength=2)
    if counts.min() >= 4 * cfg.calibration_cv:
        rng = np.random.default_rng(seed)
        val = np.zeros(len(y_arr), dtype=bool)
        for cls in (0, 1):
            idx = np.nonzero(y_arr == cls)[0]
            val[rng.permutation(idx)[: max(1, int(round(0.25 * len(idx))))]] = True
        held = fit_classifier("churn", Z[~val], y_arr[~val], names, cfg, seed)
        metrics = {f"churn_{k}": v for k, v in classifier_metrics(held, Z[val], y_arr[val]).items()}
        # naive baseline on the same holdout: the prior rate (no order history, so no recency rank)
        base = baseline_metrics("prior", Z[val], y_arr[val], y_arr[~val], names)
        metrics["churn_baseline_auc"] = base["baseline_auc"]
        metrics["churn_prior_brier"] = base["prior_brier"]
    model = fit_classifier("churn", Z, y_arr, names, cfg, seed, encoder=enc)
    model.metrics = metrics
    return model
