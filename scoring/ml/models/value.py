"""The CLV model family: BTYD (BG/NBD + Gamma-Gamma), tree regressors, or a BTYD/ML blend, chosen by
holdout RMSE; a no-purchase (prospect) regressor for customers without orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..btyd import BTYDValue
from ..explain import Contributions, btyd_contributions, tree_contributions
from .evaluation import subsample
from .trees import fit_regressor

if TYPE_CHECKING:
    from .data import ModelConfig, Snapshot


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


MIN_PROSPECT_ROWS = 30


def fit_prospect(snaps: Sequence[Snapshot], names: Sequence[str], cfg: ModelConfig, seed: int) -> Any | None:
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
    keep = subsample(len(X), cfg.max_train_rows, seed)
    return fit_regressor("gradient_boosting", X[keep], y[keep], cfg, seed)
