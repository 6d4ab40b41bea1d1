"""Training, temporal validation and vectorized prediction of all scoring models.

Labels come from the history itself: features are computed as of a cutoff day ``c`` and targets
from the window ``(c, c + horizon]``. Temporal cross-validation: for fold j the validation cutoff is
``v_j = as_of - horizon - j * step`` and the models are trained on cutoffs ``<= v_j - horizon``, so no
training label overlaps a validation window. The served models are refitted on the most recent
labelled cutoffs; BTYD and the segments are fitted on the features as of ``as_of``.

Models: CLV (BTYD vs random forest vs gradient boosting vs a BTYD/ML blend, chosen by holdout RMSE),
churn / upsell / advocacy (gradient boosting + sigmoid calibration, ``ensemble=False``) and KMeans
segments. Every served model has an exact additive explanation (:mod:`scoring.ml.explain`).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import scipy
import sklearn
from joblib import parallel_config
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import KMeans
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestRegressor
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from .btyd import BTYDValue, fit_btyd_value
from .explain import Contributions, btyd_contributions, calibrated_contributions, tree_contributions
from .features import (
    FEATURES,
    AttributeEncoding,
    EventLog,
    aggregate_from_events,
    attribute_feature_names,
    attribute_matrix,
    build_matrix,
    feature_names,
    feature_spec,
    fit_attribute_encoding,
    known_at,
    validate_extra_features,
    window_outcomes,
)
from .quality import assess as assess_quality

CLV_CANDIDATES = ("btyd", "random_forest", "gradient_boosting", "blend")
SEGMENT_COLUMNS = ("recency_days", "frequency", "monetary_total", "tenure_days")
SEGMENT_NAMES = (
    "Champions",
    "Hibernating",
    "New",
    "At risk",
    "Loyal",
    "Potential loyalists",
    "Need attention",
    "About to sleep",
)


# --------------------------------------------------------------------------- configuration and data


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters and validation scheme (defaults sized for ~100k-1M customers)."""

    n_folds: int = 3
    fold_step_days: int | None = None  # default: max(30, horizon // 3)
    min_history_days: int = 90
    final_cutoffs: int = 2  # labelled cutoffs stacked for the served fit
    max_train_rows: int = 100_000  # deterministic subsample of stacked training rows per model
    rf_trees: int = 100
    rf_max_depth: int = 8
    rf_min_samples_leaf: int = 10
    gb_trees: int = 100
    gb_max_depth: int = 3
    gb_learning_rate: float = 0.1
    gb_subsample: float = 0.8
    clf_trees: int = 100
    clf_max_depth: int = 3
    clf_subsample: float = 0.5
    calibration_cv: int = 3
    upsell_margin: float = 0.25
    n_segments: int = 5
    blend_weight: float = 0.5  # BTYD weight of the "blend" candidate
    quality_floor_auc: float = 0.60  # scoring.ml.quality: a classifier below this AUC is never served


@dataclass
class Snapshot:
    """Features as of ``cutoff`` and what happened in ``(cutoff, cutoff + horizon]``."""

    cutoff: int
    X: np.ndarray
    future_revenue: np.ndarray
    future_orders: np.ndarray
    future_advocacy: np.ndarray
    eligible: np.ndarray | None = None  # customers that existed at the cutoff (default: all)
    # a first order in a category new to the customer in the horizon (None: no category data)
    future_new_category: np.ndarray | None = None

    def mask(self) -> np.ndarray:
        return (
            np.ones(len(self.X), dtype=bool)
            if self.eligible is None
            else np.asarray(self.eligible, dtype=bool)
        )


@dataclass
class TrainingData:
    """Either flat ``events`` (snapshots are derived) or precomputed labelled ``snapshots``.

    ``as_of`` is "now" (default: last event day). ``current_X`` are the features as of ``as_of``
    (derived from events; with snapshots only, the latest snapshot's features are used if absent).
    Snapshot and current matrices hold the :data:`FEATURES` columns.

    ``attribute_columns`` are the raw declared CRM attribute columns (``attr:<name>``, one value per
    customer in the same order). They have no history: their encoding (``attributes``, fitted here on
    these customers) is appended to every snapshot's and the current rows (:meth:`snapshot`,
    :meth:`current`), so every cutoff sees the current value.
    """

    events: EventLog | None = None
    as_of: int | None = None
    snapshots: Sequence[Snapshot] | None = None
    current_X: np.ndarray | None = None
    first_day: int | None = None
    attribute_columns: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.events is None and not self.snapshots:
            raise ValueError("TrainingData needs events or snapshots")
        self._cache: dict[tuple[int, int], Snapshot] = {}
        raw = self.attribute_columns or {}
        if any(len(col) != self.n_customers for col in raw.values()):
            raise ValueError("attribute columns need one value per customer")
        self.attributes = fit_attribute_encoding(raw)
        self._attribute_X = attribute_matrix(raw, self.attributes, self.n_customers)
        self._current: np.ndarray | None = None

    def feature_names(self) -> tuple[str, ...]:
        """Model columns: :data:`FEATURES`, then the columns of the encoded CRM attributes."""
        return feature_names() + attribute_feature_names(self.attributes)

    def _with_attributes(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return np.hstack([X, self._attribute_X]) if self.attributes else X

    @property
    def n_customers(self) -> int:
        if self.events is not None:
            return self.events.n_customers
        return len(self.snapshots[0].X)  # type: ignore[index]

    def now(self) -> int:
        if self.as_of is not None:
            return int(self.as_of)
        if self.events is not None:
            return self.events.last_day()
        return max(s.cutoff for s in self.snapshots)  # type: ignore[union-attr]

    def start(self) -> int:
        if self.first_day is not None:
            return int(self.first_day)
        if self.events is not None:
            return self.events.first_day()
        return min(s.cutoff for s in self.snapshots)  # type: ignore[union-attr]

    def snapshot(self, cutoff: int, horizon: int) -> Snapshot:
        """The labelled snapshot at ``cutoff`` with the attribute columns appended to its rows."""
        key = (int(cutoff), int(horizon))
        if key in self._cache:
            return self._cache[key]
        if self.events is None:
            given = next((s for s in self.snapshots or () if s.cutoff == cutoff), None)
            if given is None:
                raise KeyError(f"no snapshot for cutoff {cutoff}")
            snap = replace(given, X=self._with_attributes(given.X)) if self.attributes else given
        else:
            log = self.events
            X = self._with_attributes(build_matrix(aggregate_from_events(log, cutoff)))
            w = window_outcomes(log, cutoff, cutoff + horizon)
            snap = Snapshot(int(cutoff), X, w.revenue, w.orders, w.advocacy, known_at(log, cutoff), w.new_category)
        self._cache[key] = snap
        return snap

    def current(self) -> np.ndarray:
        """The features as of ``as_of`` with the attribute columns appended."""
        if self._current is None:
            if self.current_X is not None:
                X = self.current_X
            elif self.events is not None:
                X = build_matrix(aggregate_from_events(self.events, self.now()))
            else:
                X = max(self.snapshots, key=lambda s: s.cutoff).X  # type: ignore[arg-type]
            self._current = self._with_attributes(X)
        return self._current

    def labelled_cutoffs(self, horizon: int) -> list[int]:
        """Snapshot mode: available cutoffs, most recent first."""
        return sorted((s.cutoff for s in self.snapshots or ()), reverse=True)


@dataclass
class Outcomes:
    """Explicit outcomes per customer index (bool arrays, ``True`` = the event happened).

    They are taken as observed in the most recent labelled window and override the derived labels
    there: churned -> churn 1, renewed -> churn 0 (churned wins); upsell_accepted -> 1,
    upsell_declined -> 0 (accepted wins); referred -> advocacy 1.
    """

    churned: np.ndarray | None = None
    renewed: np.ndarray | None = None
    upsell_accepted: np.ndarray | None = None
    upsell_declined: np.ndarray | None = None
    referred: np.ndarray | None = None

    @staticmethod
    def _tri(pos: np.ndarray | None, neg: np.ndarray | None, n: int) -> np.ndarray:
        """-1 unknown, 0 negative, 1 positive (positive wins)."""
        out = np.full(n, -1, dtype=np.int8)
        if neg is not None:
            out[np.asarray(neg, dtype=bool)] = 0
        if pos is not None:
            out[np.asarray(pos, dtype=bool)] = 1
        return out

    def churn(self, n: int) -> np.ndarray:
        return self._tri(self.churned, self.renewed, n)

    def upsell(self, n: int) -> np.ndarray:
        return self._tri(self.upsell_accepted, self.upsell_declined, n)

    def advocacy(self, n: int) -> np.ndarray:
        return self._tri(self.referred, None, n)


# --------------------------------------------------------------------------- served model wrappers


@dataclass
class ValueModel:
    """Served CLV model: expected net revenue over ``horizon_days``.

    ``output = btyd_weight * btyd(X) + (1 - btyd_weight) * estimator(X)``; its explanation is the same
    combination of the components' exact decompositions, so it stays exact.
    """

    kind: str
    horizon_days: int
    feature_names: tuple[str, ...]
    estimator: Any | None = None
    btyd: BTYDValue | None = None
    btyd_weight: float = 0.0
    # CLV of customers with no purchase yet: a regressor of their next-horizon revenue on everything known about
    # them (engagement, tickets, reviews, tenure/cohort, CRM attributes), trained on the no-purchase rows of the
    # training cutoffs. Without it (too few such rows), they get the main model's value.
    prospect: Any | None = None

    def _no_purchase(self, X: np.ndarray) -> np.ndarray:
        if self.prospect is None:
            return np.zeros(len(X), dtype=bool)
        return np.asarray(X[:, list(self.feature_names).index("frequency")] <= 0, dtype=bool)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(len(X))
        if self.btyd is not None and self.btyd_weight > 0:
            out += self.btyd_weight * self.btyd.predict(X)
        if self.estimator is not None and self.btyd_weight < 1:
            out += (1.0 - self.btyd_weight) * self.estimator.predict(X)
        rows = self._no_purchase(X)
        if rows.any():
            out[rows] = self.prospect.predict(X[rows])
        return out

    def contributions(self, X: np.ndarray) -> Contributions:
        X = np.asarray(X, dtype=np.float64)
        out = self._main_contributions(X)
        rows = self._no_purchase(X)
        if rows.any():  # exact per row: the no-purchase rows are explained by the model that scores them
            p = tree_contributions(self.prospect, X[rows], self.feature_names).scaled(1.0, "currency")
            out.baseline = np.array(out.baseline, dtype=np.float64)
            out.values = np.array(out.values, dtype=np.float64)
            out.output = np.array(out.output, dtype=np.float64)
            out.baseline[rows], out.values[rows], out.output[rows] = p.baseline, p.values, p.output
        return out

    def _main_contributions(self, X: np.ndarray) -> Contributions:
        parts: list[tuple[float, Contributions]] = []
        if self.btyd is not None and self.btyd_weight > 0:
            parts.append((self.btyd_weight, btyd_contributions(self.btyd, X, self.feature_names)))
        if self.estimator is not None and self.btyd_weight < 1:
            parts.append((1.0 - self.btyd_weight, tree_contributions(self.estimator, X, self.feature_names)))
        w0, c0 = parts[0]
        out = c0.scaled(w0, "currency")
        for w, c in parts[1:]:
            out.baseline = out.baseline + w * c.baseline
            out.values = out.values + w * c.values
            out.output = out.output + w * c.output
        return out


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


@dataclass
class SegmentModel:
    """KMeans on standardized log1p(RFM + tenure) with rule-named clusters."""

    scaler: StandardScaler
    kmeans: KMeans
    names: tuple[str, ...]
    columns: tuple[int, ...]

    def _z(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.transform(
            np.log1p(np.maximum(np.asarray(X, dtype=np.float64)[:, list(self.columns)], 0))
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.kmeans.predict(self._z(X))

    def labels(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.names, dtype=object)[self.predict(X)]


@dataclass
class TrainedBundle:
    """All served models plus holdout metrics and the model card."""

    clv: ValueModel
    churn: ClassifierModel
    upsell: ClassifierModel
    advocacy: ClassifierModel
    segments: SegmentModel
    metrics: dict[str, float]
    model_card: dict[str, Any]
    feature_names: tuple[str, ...] = field(default_factory=feature_names)
    horizon_days: int = 365

    @cached_property
    def attributes(self) -> tuple[AttributeEncoding, ...]:
        """The encoding of the declared CRM attribute columns, as recorded in the model card (it travels in
        the artifact); none for a bundle trained before attributes were features."""
        return tuple(AttributeEncoding.from_json(a) for a in self.model_card.get("attribute_encoding") or ())


@dataclass
class Predictions:
    """Vectorized scores for a chunk of customers (row order of the input matrix)."""

    clv: np.ndarray
    churn_probability: np.ndarray
    upsell: np.ndarray
    advocacy: np.ndarray
    segment: np.ndarray  # segment names (object array)
    segment_code: np.ndarray
    contributions: dict[str, Contributions]  # "clv" (currency), "churn"/"upsell"/"advocacy" (points)


# --------------------------------------------------------------------------- metrics


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


def _auc(y: np.ndarray, p: np.ndarray) -> float:
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


# --------------------------------------------------------------------------- fitting helpers


def _subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


# Training fits use every core (threads); a fitted model carries no parallelism into serving.
_TRAINING_JOBS = -1


def _fit_regressor(kind: str, X: np.ndarray, y: np.ndarray, cfg: ModelConfig, seed: int) -> Any:
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


def _classifier_metrics(model: ClassifierModel, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = model.predict_proba(X)
    y = np.asarray(y).astype(int)
    if len(y) == 0:
        return {"auc": float("nan"), "brier": float("nan"), "ece": float("nan")}
    return {
        "auc": _auc(y, p),
        "brier": float(brier_score_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
    }


MIN_PROSPECT_ROWS = 30


def _fit_prospect(snaps: Sequence[Snapshot], names: Sequence[str], cfg: ModelConfig, seed: int) -> Any | None:
    """The CLV regressor of customers without a purchase (see ``ValueModel.prospect``): fitted on the rows of the
    final cutoffs whose customers existed but had not bought yet, when there are enough of them and some went
    on to spend; else None."""
    col = list(names).index("frequency")
    Xs, ys = [], []
    for snap in snaps:
        rows = snap.mask() & (np.asarray(snap.X[:, col]) <= 0)
        Xs.append(snap.X[rows])
        ys.append(np.asarray(snap.future_revenue, dtype=np.float64)[rows])
    X, y = np.vstack(Xs), np.concatenate(ys)
    if len(y) < MIN_PROSPECT_ROWS or not np.any(y > 0):
        return None
    keep = _subsample(len(X), cfg.max_train_rows, seed)
    return _fit_regressor("gradient_boosting", X[keep], y[keep], cfg, seed)


def _baseline_metrics(
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
        out["baseline_auc"] = _auc(y, np.asarray(X, dtype=np.float64)[:, list(names).index("recency_days")])
    return out


def _nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def fit_segments(X: np.ndarray, names: Sequence[str], k: int, seed: int) -> SegmentModel:
    """KMeans segments named from centroid ranks (deterministic rules)."""
    cols = tuple(list(names).index(c) for c in SEGMENT_COLUMNS)
    raw = np.log1p(np.maximum(np.asarray(X, dtype=np.float64)[:, list(cols)], 0))
    scaler = StandardScaler().fit(raw)
    z = scaler.transform(raw)
    k = max(1, min(k, len(np.unique(z, axis=0))))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    return SegmentModel(scaler, km, name_segments(km.cluster_centers_), cols)


def name_segments(centroids: np.ndarray) -> tuple[str, ...]:
    """Name clusters from standardized (recency, frequency, monetary, tenure) centroids.

    Priority: Champions = best value + freshness; Hibernating = worst; New = shortest tenure;
    At risk = high value but stale; Loyal = best remaining; then generic names. Ties -> lower index.
    """
    c = np.asarray(centroids, dtype=np.float64)
    value = c[:, 1] + c[:, 2]
    fresh = -c[:, 0]
    age = c[:, 3]
    rules = (value + fresh, -(value + fresh), -age, value - fresh, value + fresh)
    names = [""] * len(c)
    remaining = list(range(len(c)))
    for label, score in zip(SEGMENT_NAMES[:5], rules, strict=True):
        if not remaining:
            break
        best = min(remaining, key=lambda i: (-float(score[i]), i))
        names[best] = label
        remaining.remove(best)
    extras = list(SEGMENT_NAMES[5:])
    for i in sorted(remaining, key=lambda i: (-(value + fresh)[i], i)):
        names[i] = extras.pop(0) if extras else f"Segment {i + 1}"
    return tuple(names)


# --------------------------------------------------------------------------- labels and folds


def _labels(
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


def _plan(
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
    """The cutoffs the training plan (``_plan``, used by :func:`train_all`) reads for a history from day
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


def _stack(
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


# --------------------------------------------------------------------------- training


def train_all(
    data: TrainingData,
    *,
    horizon_days: int = 365,
    seed: int = 0,
    outcomes: Outcomes | None = None,
    config: ModelConfig | None = None,
) -> TrainedBundle:
    """Temporal CV, model selection and final fit of all models. Deterministic for a fixed seed."""
    t0 = time.perf_counter()
    cfg = config or ModelConfig()
    names = data.feature_names()
    h = int(horizon_days)
    folds, final_cutoffs, cv_kind = _plan(data, h, cfg, seed)
    override_cutoff = final_cutoffs[0]

    def snap_labels(c: int) -> tuple[Snapshot, dict[str, tuple[np.ndarray, np.ndarray]]]:
        s = data.snapshot(c, h)
        return s, _labels(s, names, cfg, h, outcomes if c == override_cutoff else None)

    clv_scores: dict[str, list[dict[str, float]]] = {k: [] for k in CLV_CANDIDATES}
    clf_scores: dict[str, list[dict[str, float]]] = {k: [] for k in ("churn", "upsell", "advocacy")}
    fold_cards = []
    clv_baselines: list[float] = []
    for fold in folds:
        pairs = [snap_labels(c) for c in fold.train]
        vsnap, vlab = snap_labels(fold.val)
        train_rows = [None if fold.split is None else ~fold.split for _ in pairs]
        Xtr, ytr = _stack([p[0] for p in pairs], [p[1] for p in pairs], None, train_rows)
        keep = _subsample(len(Xtr), cfg.max_train_rows, seed)
        vmask = vsnap.mask() if fold.split is None else vsnap.mask() & fold.split
        Xva, yva = vsnap.X[vmask], vsnap.future_revenue[vmask]
        preds: dict[str, np.ndarray] = {}
        for kind in ("random_forest", "gradient_boosting"):
            preds[kind] = _fit_regressor(kind, Xtr[keep], ytr[keep], cfg, seed).predict(Xva)
        btyd = fit_btyd_value(vsnap.X[vsnap.mask()], names, h, seed=seed)  # unsupervised, data up to v only
        preds["btyd"] = btyd.predict(Xva)
        best_ml = min(("random_forest", "gradient_boosting"), key=lambda k: rmse(yva, preds[k]))
        preds["blend"] = cfg.blend_weight * preds["btyd"] + (1 - cfg.blend_weight) * preds[best_ml]
        for kind, p in preds.items():
            clv_scores[kind].append(
                {"rmse": rmse(yva, p), "mae": mae(yva, p), "top_decile_share": top_share(yva, p)}
            )
        # naive baseline of the CLV ranking on the same validation rows: historical spend
        clv_baselines.append(top_share(yva, Xva[:, names.index("monetary_total")]))
        for key in clf_scores:
            Xc, yc = _stack([p[0] for p in pairs], [p[1] for p in pairs], key, train_rows)
            keep_c = _subsample(len(Xc), cfg.max_train_rows, seed)
            model = fit_classifier(key, Xc[keep_c], yc[keep_c], names, cfg, seed)
            m, y = vlab[key]
            m = m if fold.split is None else m & fold.split
            scores = _classifier_metrics(model, vsnap.X[m], y[m])
            scores.update(_baseline_metrics(key, vsnap.X[m], y[m], yc[keep_c], names))
            clf_scores[key].append(scores)
        fold_cards.append(
            {
                "train_cutoffs": fold.train,
                "validation_cutoff": fold.val,
                "validation_customers": int(vmask.sum()),
            }
        )

    def mean(rows: list[dict[str, float]], k: str) -> float:
        vals = [r[k] for r in rows if np.isfinite(r[k])]
        return float(np.mean(vals)) if vals else float("nan")

    clv_rmse = {k: mean(v, "rmse") for k, v in clv_scores.items()}
    served = min(
        CLV_CANDIDATES,
        key=lambda k: (clv_rmse[k] if np.isfinite(clv_rmse[k]) else np.inf, CLV_CANDIDATES.index(k)),
    )
    metrics: dict[str, float] = {
        "clv_rmse": clv_rmse[served],
        "clv_mae": mean(clv_scores[served], "mae"),
        "clv_top_decile_share": mean(clv_scores[served], "top_decile_share"),
        "churn_auc": mean(clf_scores["churn"], "auc"),
        "churn_brier": mean(clf_scores["churn"], "brier"),
        "churn_ece": mean(clf_scores["churn"], "ece"),
        "upsell_auc": mean(clf_scores["upsell"], "auc"),
        "advocacy_auc": mean(clf_scores["advocacy"], "auc"),
        # naive baselines on the same validation windows (scoring.ml.quality compares them)
        "clv_baseline_top_decile_share": _nanmean(clv_baselines),
        "churn_baseline_auc": mean(clf_scores["churn"], "baseline_auc"),
        "churn_prior_brier": mean(clf_scores["churn"], "prior_brier"),
        "upsell_brier": mean(clf_scores["upsell"], "brier"),
        "upsell_prior_brier": mean(clf_scores["upsell"], "prior_brier"),
        "advocacy_brier": mean(clf_scores["advocacy"], "brier"),
        "advocacy_prior_brier": mean(clf_scores["advocacy"], "prior_brier"),
    }
    for kind in CLV_CANDIDATES:
        metrics[f"clv_rmse_{kind}"] = clv_rmse[kind]

    # ---- final fit on the most recent labelled cutoffs (served models)
    pairs = [snap_labels(c) for c in final_cutoffs]
    current = data.current()
    Xtr, ytr = _stack([p[0] for p in pairs], [p[1] for p in pairs], None, [None] * len(pairs))
    keep = _subsample(len(Xtr), cfg.max_train_rows, seed)
    btyd_final = fit_btyd_value(current, names, h, seed=seed) if served in ("btyd", "blend") else None
    estimator = None
    weight = 1.0 if served == "btyd" else (cfg.blend_weight if served == "blend" else 0.0)
    if served != "btyd":
        ml_kind = (
            served
            if served != "blend"
            else min(("random_forest", "gradient_boosting"), key=lambda k: clv_rmse[k])
        )
        estimator = _fit_regressor(ml_kind, Xtr[keep], ytr[keep], cfg, seed)
    clv = ValueModel(served, h, names, estimator, btyd_final, weight,
                     _fit_prospect([p[0] for p in pairs], names, cfg, seed))
    classifiers = {}
    for key in ("churn", "upsell", "advocacy"):
        Xc, yc = _stack([p[0] for p in pairs], [p[1] for p in pairs], key, [None] * len(pairs))
        keep_c = _subsample(len(Xc), cfg.max_train_rows, seed)
        classifiers[key] = fit_classifier(key, Xc[keep_c], yc[keep_c], names, cfg, seed)
        classifiers[key].metrics = {k: mean(clf_scores[key], k) for k in ("auc", "brier", "ece")}
    segments = fit_segments(current, names, cfg.n_segments, seed)
    seconds = time.perf_counter() - t0
    card = _model_card(
        data,
        h,
        seed,
        cfg,
        cv_kind,
        fold_cards,
        final_cutoffs,
        served,
        clv_scores,
        metrics,
        seconds,
        len(Xtr),
        segments,
    )
    card["quality"] = assess_quality(metrics, floor=cfg.quality_floor_auc)
    return TrainedBundle(
        clv,
        classifiers["churn"],
        classifiers["upsell"],
        classifiers["advocacy"],
        segments,
        metrics,
        card,
        names,
        h,
    )


def _model_card(
    data: TrainingData,
    h: int,
    seed: int,
    cfg: ModelConfig,
    cv_kind: str,
    folds: list[dict[str, Any]],
    final_cutoffs: list[int],
    served: str,
    clv_scores: dict[str, list[dict[str, float]]],
    metrics: dict[str, float],
    seconds: float,
    n_rows: int,
    segments: SegmentModel,
) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    candidates = {
        k: {m: float(np.mean([r[m] for r in rows])) for m in ("rmse", "mae", "top_decile_share")}
        for k, rows in clv_scores.items()
    }
    return clean(
        {
            "name": "privacy-scoring customer models",
            "data_window": {
                "first_day": data.start(),
                "as_of": data.now(),
                "horizon_days": h,
                "cross_validation": cv_kind,
                "folds": folds,
                "final_training_cutoffs": final_cutoffs,
            },
            "n_customers": data.n_customers,
            "n_training_rows": n_rows,
            "features": [
                {"name": s.name, "source": s.source, "unit": s.unit, "label": s.label, "purpose": s.purpose}
                for s in (*FEATURES, *map(feature_spec, attribute_feature_names(data.attributes)))
            ],
            "attribute_encoding": [a.to_json() for a in data.attributes],
            "attribute_history": "CRM attributes have no history: the current value is used at every training "
            "cutoff (an attribute that changes over time, such as a contract status, can leak the outcome)",
            "special_category_data": "never used (GDPR Art. 9 / 22(4)); CRM attributes are checked against a denylist",
            "models": {
                "clv": {
                    "served": served,
                    "target": "net revenue (returns excluded) in (cutoff, cutoff + horizon]",
                    "candidates": candidates,
                    "selection": "lowest mean temporal-holdout RMSE",
                },
                "churn": {
                    "label": "no order in the horizon (explicit churned/renewed outcomes override)",
                    "model": "GradientBoostingClassifier + CalibratedClassifierCV(sigmoid, ensemble=False)",
                },
                "upsell": {
                    "label": f"horizon revenue > (1 + {cfg.upsell_margin}) x calibration-period average, or a "
                    "kept order in a product category the customer had not ordered from before "
                    "(explicit accepted/declined override)"
                },
                "advocacy": {
                    "label": "referral, NPS >= 9 or review rating >= 4 in the horizon (explicit referral overrides)"
                },
                "segments": {
                    "model": f"KMeans(k={segments.kmeans.n_clusters}) on standardized log1p {SEGMENT_COLUMNS}",
                    "names": list(segments.names),
                },
            },
            "explanations": {
                "clv": "exact additive contributions in currency (tree path decomposition; Shapley over BTYD inputs)",
                "classifiers": "shown in points of the 0-100 probability scale (exact allocation of p - p_base "
                "proportional to log-odds contributions); log-odds contributions kept as well",
            },
            "metrics": metrics,
            "training_seconds": seconds,
            "seed": seed,
            "config": asdict(cfg),
            "versions": {
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
        }
    )


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
        metrics = {f"churn_{k}": v for k, v in _classifier_metrics(held, Z[val], y_arr[val]).items()}
        # naive baseline on the same holdout: the prior rate (no order history, so no recency rank)
        base = _baseline_metrics("prior", Z[val], y_arr[val], y_arr[~val], names)
        metrics["churn_baseline_auc"] = base["baseline_auc"]
        metrics["churn_prior_brier"] = base["prior_brier"]
    model = fit_classifier("churn", Z, y_arr, names, cfg, seed, encoder=enc)
    model.metrics = metrics
    return model


# --------------------------------------------------------------------------- prediction


def predict_all(bundle: TrainedBundle, X: np.ndarray, *, explain: bool = True) -> Predictions:
    """Score a chunk of customers (rows of an inventory-ordered matrix), with exact contributions."""
    X = np.asarray(X, dtype=np.float64)
    contribs: dict[str, Contributions] = {}
    if explain:
        contribs["clv"] = bundle.clv.contributions(X)
        for key in ("churn", "upsell", "advocacy"):
            contribs[key] = getattr(bundle, key).contributions(X)
        clv = contribs["clv"].output
        churn, upsell, advocacy = (contribs[k].output / 100.0 for k in ("churn", "upsell", "advocacy"))
    else:
        clv = bundle.clv.predict(X)
        churn, upsell, advocacy = (
            getattr(bundle, k).predict_proba(X) for k in ("churn", "upsell", "advocacy")
        )
    codes = bundle.segments.predict(X)
    return Predictions(
        clv, churn, upsell, advocacy, np.asarray(bundle.segments.names, dtype=object)[codes], codes, contribs
    )
