"""Shared training plumbing: the model configuration, the training data and its snapshots at cutoffs, explicit outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..features import (
    EventLog,
    aggregate_from_events,
    attribute_feature_names,
    attribute_matrix,
    build_matrix,
    feature_names,
    fit_attribute_encoding,
    known_at,
    window_outcomes,
)

CLV_CANDIDATES = ("btyd", "random_forest", "gradient_boosting", "blend")


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
