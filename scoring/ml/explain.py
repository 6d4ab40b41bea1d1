"""Faithful, exactly additive explanations.

For every model and customer: ``baseline + sum(contributions) == output`` (up to float rounding).

* Tree ensembles (random forest, gradient boosting): path decomposition (Saabas / "treeinterpreter").
  Along a sample's root-to-leaf path, the change of node value at each split is credited to the split
  feature; summed over trees (x 1/n_trees for forests, x learning rate for boosting). Node values are
  recomputed bottom-up as sample-weighted means of their children, so the root value is the expected
  tree output on the training data (the baseline). Per-leaf contribution vectors are precomputed
  once (vectorized over all trees, one pass per depth level); scoring is then ``apply()`` + one
  sparse one-hot x dense table product - no Python loop per sample.
* Sigmoid-calibrated classifiers: p = sigmoid(-(a f(x) + b)). Log-odds contributions ``-a c_i`` add
  up to ``logit(p) - logit(p_base)``. The *shown* contributions are "points" on the 0-100 probability
  scale: ``100 (p - p_base)`` allocated proportionally to the log-odds contributions (exact sum,
  same signs and ranking). The log-odds contributions are kept in ``Contributions.log_odds``.
* BTYD value model: exact Shapley values over its 4 inputs (2^4 evaluations) against the population
  mean input; the efficiency property gives ``sum = f(x) - f(baseline)``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import factorial
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from .features import FEATURES, FeatureSpec, feature_spec

MINUS = "\u2212"


@dataclass
class Explanation:
    """One customer's explanation: ``baseline + sum(c for _, _, c in contributions) + remainder == output``."""

    baseline: float
    output: float
    contributions: list[
        tuple[str, Any, float]
    ]  # (feature name, feature value, contribution), by |contribution|
    unit: str = "value"  # "points" (0-100 probability scale), "currency", "log-odds", "value"
    remainder: float = 0.0  # sum of the contributions not listed (top_k truncation)

    def to_words(
        self, specs: Mapping[str, FeatureSpec] | Iterable[FeatureSpec] | None = None, top_k: int | None = None
    ) -> list[str]:
        """E.g. ``["orders in last 90 days: 7 (+18 points)", "support escalations: 3 (−9 points)"]``."""
        if specs is None:
            by_name = {s.name: s for s in FEATURES}
        elif isinstance(specs, Mapping):
            by_name = dict(specs)
        else:
            by_name = {s.name: s for s in specs}
        items = self.contributions if top_k is None else self.contributions[:top_k]
        out = []
        for name, value, contrib in items:
            spec = by_name.get(name) or feature_spec(name)
            shown = spec.format_value(float(value)) if _is_number(value) else str(value)
            out.append(f"{spec.label}: {shown} ({format_contribution(contrib, self.unit)})")
        return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def format_contribution(value: float, unit: str) -> str:
    """Signed contribution with a real minus sign, e.g. ``+18 points`` or ``−9 points``."""
    sign = "+" if value >= 0 else MINUS
    mag = abs(value)
    if unit == "points":
        num = f"{mag:.0f}" if mag >= 0.5 or mag == 0 else f"{mag:.1f}"
        return f"{sign}{num} points"
    if unit == "currency":
        return f"{sign}{mag:,.2f}"
    return f"{sign}{mag:.3g}" + (f" {unit}" if unit not in ("value",) else "")


@dataclass
class Contributions:
    """Vectorized explanation of one model on ``n`` rows."""

    feature_names: tuple[str, ...]
    X: np.ndarray  # feature values shown next to the contributions (n, F)
    baseline: np.ndarray  # (n,)
    values: np.ndarray  # (n, F) contributions in ``unit``
    output: np.ndarray  # (n,) model output in ``unit``
    unit: str = "value"
    log_odds: np.ndarray | None = None  # (n, F) for classifiers
    log_odds_baseline: np.ndarray | None = None  # (n,)

    def max_error(self) -> float:
        """max |baseline + sum(contributions) - output| (0 for an exact decomposition)."""
        if len(self.output) == 0:
            return 0.0
        return float(np.max(np.abs(self.baseline + self.values.sum(axis=1) - self.output)))

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices (n, k) and values (n, k) of the k largest |contributions| per row, sorted."""
        k = min(k, self.values.shape[1])
        absval = np.abs(self.values)
        idx = (
            np.argpartition(-absval, k - 1, axis=1)[:, :k]
            if k < absval.shape[1]
            else np.tile(np.arange(absval.shape[1]), (len(absval), 1))
        )
        order = np.argsort(-np.take_along_axis(absval, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        return idx, np.take_along_axis(self.values, idx, axis=1)

    def explanations(self, top_k: int | None = None) -> list[Explanation]:
        """Per-row :class:`Explanation` objects (all features when ``top_k`` is None)."""
        k = self.values.shape[1] if top_k is None else min(top_k, self.values.shape[1])
        idx, vals = self.top(k)
        remainder = self.values.sum(axis=1) - vals.sum(axis=1)
        names = self.feature_names
        out = []
        for i in range(len(self.output)):
            row = self.X[i]
            items = [(names[j], _py(row[j]), float(v)) for j, v in zip(idx[i], vals[i], strict=True)]
            rem = 0.0 if top_k is None or k == self.values.shape[1] else float(remainder[i])
            out.append(Explanation(float(self.baseline[i]), float(self.output[i]), items, self.unit, rem))
        return out

    def scaled(self, factor: float, unit: str | None = None) -> Contributions:
        return Contributions(
            self.feature_names,
            self.X,
            self.baseline * factor,
            self.values * factor,
            self.output * factor,
            unit or self.unit,
            self.log_odds,
            self.log_odds_baseline,
        )


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# --------------------------------------------------------------------------- tree ensembles


class TreeEnsembleExplainer:
    """Precomputed path decomposition of a fitted tree ensemble (raw output scale)."""

    def __init__(self, model: Any, n_features: int | None = None) -> None:
        if isinstance(model, RandomForestRegressor | RandomForestClassifier):
            if isinstance(model, RandomForestClassifier):
                raise TypeError("random forest classifiers are not supported; use gradient boosting")
            trees = [est.tree_ for est in model.estimators_]
            scales = np.full(len(trees), 1.0 / len(trees))
            self._apply: Callable[[np.ndarray], np.ndarray] = model.apply
        elif isinstance(model, GradientBoostingRegressor | GradientBoostingClassifier):
            if model.estimators_.shape[1] != 1:
                raise TypeError("only binary gradient boosting classifiers are supported")
            trees = [est.tree_ for est in model.estimators_[:, 0]]
            scales = np.full(len(trees), float(model.learning_rate))
            self._apply = lambda X: model.apply(X).reshape(len(X), -1)
        elif isinstance(model, DecisionTreeRegressor):
            trees = [model.tree_]
            scales = np.ones(1)
            self._apply = lambda X: model.apply(X)[:, None]
        else:
            raise TypeError(f"unsupported tree model {type(model).__name__}")
        self.n_features = int(n_features if n_features is not None else model.n_features_in_)
        self._build(trees, scales)
        x0 = np.zeros((1, self.n_features), dtype=np.float64)
        self.init = float(_raw_output(model, x0)[0] - self._leaf_sum(x0)[0, -1])
        self.bias = self.init + self.root_sum

    def _build(self, trees: Sequence[Any], scales: np.ndarray) -> None:
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        left = np.concatenate(
            [
                np.where(t.children_left >= 0, t.children_left + o, -1)
                for t, o in zip(trees, offsets, strict=True)
            ]
        )
        right = np.concatenate(
            [
                np.where(t.children_right >= 0, t.children_right + o, -1)
                for t, o in zip(trees, offsets, strict=True)
            ]
        )
        feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
        weight = np.concatenate([t.weighted_n_node_samples for t in trees]).astype(np.float64)
        value = np.concatenate([t.value[:, 0, 0] * s for t, s in zip(trees, scales, strict=True)]).astype(
            np.float64
        )
        n = len(left)
        internal = left >= 0
        parent = np.full(n, -1, dtype=np.int64)
        parent[left[internal]] = np.nonzero(internal)[0]
        parent[right[internal]] = np.nonzero(internal)[0]
        depth = np.zeros(n, dtype=np.int64)
        for d in range(1, 10_000):  # children ids > parent ids in sklearn trees; one pass per level
            lvl = np.isin(parent, np.nonzero(depth == d - 1)[0]) & (parent >= 0)
            if not lvl.any():
                break
            depth[lvl] = d
        # bottom-up: internal value = weighted mean of children (consistent expectations)
        for d in range(int(depth.max()) - 1, -1, -1):
            nodes = np.nonzero((depth == d) & internal)[0]
            wl, wr = weight[left[nodes]], weight[right[nodes]]
            tot = wl + wr
            ok = tot > 0
            value[nodes[ok]] = (wl[ok] * value[left[nodes[ok]]] + wr[ok] * value[right[nodes[ok]]]) / tot[ok]
        leaves = np.nonzero(~internal)[0]
        leaf_row = np.full(n, -1, dtype=np.int64)
        leaf_row[leaves] = np.arange(len(leaves))
        table = np.zeros((len(leaves), self.n_features + 1), dtype=np.float64)
        table[:, -1] = value[leaves]
        cur = leaves.copy()
        rows = np.arange(len(leaves))
        while len(cur):
            par = parent[cur]
            has = par >= 0
            cur, rows, par = cur[has], rows[has], par[has]
            np.add.at(table, (rows, feature[par]), value[cur] - value[par])
            cur = par
        roots = offsets
        self.root_sum = float(value[roots].sum())
        self._offsets = offsets
        self._leaf_row = leaf_row
        self._table = table
        self.n_trees = len(trees)

    def _leaf_sum(self, X: np.ndarray) -> np.ndarray:
        """Sum over trees of the leaf table rows reached by each sample: (n, F + 1)."""
        leaves = np.asarray(self._apply(np.asarray(X)), dtype=np.int64)
        n = leaves.shape[0]
        cols = self._leaf_row[leaves + self._offsets[None, :]].ravel()
        onehot = sparse.csr_matrix(
            (np.ones(cols.size), cols, np.arange(0, cols.size + 1, self.n_trees)),
            shape=(n, self._table.shape[0]),
        )
        return np.asarray(onehot @ self._table)

    def contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw output (n,), contributions (n, F)); ``bias + contributions.sum(1) == raw output``."""
        s = self._leaf_sum(X)
        return self.init + s[:, -1], s[:, :-1]


def _raw_output(model: Any, X: np.ndarray) -> np.ndarray:
    if isinstance(model, GradientBoostingClassifier):
        return np.asarray(model.decision_function(X), dtype=np.float64).ravel()
    return np.asarray(model.predict(X), dtype=np.float64).ravel()


_CACHE: weakref.WeakKeyDictionary[Any, TreeEnsembleExplainer] = weakref.WeakKeyDictionary()


def tree_explainer(model: Any) -> TreeEnsembleExplainer:
    """Cached :class:`TreeEnsembleExplainer` for a fitted ensemble."""
    exp = _CACHE.get(model)
    if exp is None:
        exp = TreeEnsembleExplainer(model)
        _CACHE[model] = exp
    return exp


def tree_contributions(
    model: Any,
    X: np.ndarray,
    feature_names: Sequence[str],
    unit: str = "value",
    display: np.ndarray | None = None,
) -> Contributions:
    """Exact path decomposition of a regressor's prediction (or a classifier's raw log-odds)."""
    exp = tree_explainer(model)
    out, contrib = exp.contributions(X)
    n = len(out)
    return Contributions(
        tuple(feature_names), X if display is None else display, np.full(n, exp.bias), contrib, out, unit
    )


# --------------------------------------------------------------------------- calibrated classifiers


def sigmoid_parameters(calibrated: CalibratedClassifierCV) -> list[tuple[Any, float, float]]:
    """(base estimator, a, b) for each calibrated member; p = sigmoid(-(a f + b))."""
    if getattr(calibrated, "method", None) != "sigmoid":
        raise TypeError("only method='sigmoid' calibration has an exact additive explanation")
    out = []
    for member in calibrated.calibrated_classifiers_:
        if len(member.calibrators) != 1:
            raise TypeError("only binary calibrated classifiers are supported")
        cal = member.calibrators[0]
        out.append((member.estimator, float(cal.a_), float(cal.b_)))
    return out


def calibrated_contributions(
    calibrated: CalibratedClassifierCV,
    X: np.ndarray,
    feature_names: Sequence[str],
    display: np.ndarray | None = None,
) -> Contributions:
    """Points (0-100) contributions of a sigmoid-calibrated tree classifier; log-odds kept too.

    With several calibrated members (``ensemble=True``) p is their mean; points are allocated per
    member and averaged, which keeps the sum exact (log-odds are then the members' mean).
    """
    members = sigmoid_parameters(calibrated)
    n, f = X.shape[0], len(feature_names)
    points = np.zeros((n, f))
    lo_c = np.zeros((n, f))
    p = np.zeros(n)
    p_base = 0.0
    lo_base = 0.0
    for est, a, b in members:
        exp = tree_explainer(est)
        _, c = exp.contributions(X)
        c_lo = -a * c
        base_lo = -(a * exp.bias + b)
        total = c_lo.sum(axis=1)
        pk = expit(base_lo + total)
        pb = float(expit(base_lo))
        diff = pk - pb
        tiny = np.abs(total) < 1e-12
        ratio = np.where(tiny, pb * (1 - pb), diff / np.where(tiny, 1.0, total))
        points += 100.0 * ratio[:, None] * c_lo
        lo_c += c_lo
        p += pk
        p_base += pb
        lo_base += base_lo
    m = len(members)
    out = 100.0 * p / m
    base = 100.0 * p_base / m
    return Contributions(
        tuple(feature_names),
        X if display is None else display,
        np.full(n, base),
        points / m,
        out,
        "points",
        lo_c / m,
        np.full(n, lo_base / m),
    )


# --------------------------------------------------------------------------- exact Shapley


def shapley_values(
    f: Callable[[np.ndarray], np.ndarray], z: np.ndarray, base: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Shapley values of ``f`` over the m columns of ``z`` (2^m evaluations, vectorized over rows).

    Players absent from a coalition take the ``base`` value. Returns (baseline (n,), phi (n, m), output (n,)).
    """
    n, m = z.shape
    if m > 12:
        raise ValueError("exact Shapley enumeration is limited to 12 inputs")
    values: dict[int, np.ndarray] = {}
    for mask in range(1 << m):
        mixed = np.where(np.array([(mask >> i) & 1 for i in range(m)], dtype=bool)[None, :], z, base[None, :])
        values[mask] = np.asarray(f(mixed), dtype=np.float64)
    phi = np.zeros((n, m))
    fm = factorial(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            w = factorial(size) * factorial(m - size - 1) / fm
            for subset in combinations(others, size):
                s = sum(1 << j for j in subset)
                phi[:, i] += w * (values[s | (1 << i)] - values[s])
    return values[0], phi, values[(1 << m) - 1]


def btyd_contributions(
    model: Any,
    X: np.ndarray,
    feature_names: Sequence[str],
    unit: str = "currency",
    display: np.ndarray | None = None,
) -> Contributions:
    """Exact Shapley decomposition of a :class:`~scoring.ml.btyd.BTYDValue` over its 4 inputs."""
    z = model.inputs(X)
    base, phi, out = shapley_values(
        model.value_from_inputs, z, np.asarray(model.baseline_inputs, dtype=np.float64)
    )
    values = np.zeros((X.shape[0], len(feature_names)))
    values[:, list(model.columns)] = phi
    return Contributions(tuple(feature_names), X if display is None else display, base, values, out, unit)


# --------------------------------------------------------------------------- dispatch


def contributions(model: Any, X: np.ndarray, feature_names: Sequence[str]) -> Contributions:
    """Vectorized exact contributions of any supported model."""
    X = np.asarray(X) if not hasattr(model, "contributions") else X
    if hasattr(model, "contributions"):
        return model.contributions(X)
    if isinstance(model, CalibratedClassifierCV):
        return calibrated_contributions(model, np.asarray(X, dtype=np.float64), feature_names)
    if isinstance(model, GradientBoostingClassifier):
        return tree_contributions(model, np.asarray(X, dtype=np.float64), feature_names, unit="log-odds")
    if isinstance(model, RandomForestRegressor | GradientBoostingRegressor | DecisionTreeRegressor):
        return tree_contributions(model, np.asarray(X, dtype=np.float64), feature_names)
    if hasattr(model, "value_from_inputs"):
        return btyd_contributions(model, np.asarray(X, dtype=np.float64), feature_names)
    raise TypeError(f"no faithful explainer for {type(model).__name__}")


def explain(
    model: Any, X: np.ndarray, feature_names: Sequence[str], top_k: int | None = 5
) -> list[Explanation]:
    """Per-customer explanations; ``baseline + sum(contributions) + remainder == output`` exactly."""
    return contributions(model, X, feature_names).explanations(top_k)
