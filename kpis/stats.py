"""Statistics of the KPI report: small-cell suppression and the uplift confidence interval.

Suppression (as in official statistics, see docs/KPIS.md)
- primary: a cell computed over ``0 < n < k`` customers is suppressed (value and n withheld);
- complementary: in every column (a month: the tiers and their "All tiers" total), if exactly one interior
  cell is suppressed while the total is shown, the next-smallest shown cell with ``n > 0`` is suppressed too
  (if there is none, the total is); repeated until nothing changes. A total over ``0 < n < k`` is
  suppressed like any cell. There are no totals across months, so no second dimension can be differenced,
  and each month's pattern depends on that month only (the same whatever window is asked for).

Uplift CI: a percentile bootstrap of the difference of group means (treatment minus holdout), customers
resampled with replacement within each group, ``B`` resamples from a fixed seed (reproducible). For 0/1
outcomes the resampled mean is drawn as Binomial(n, p)/n, which is exactly its bootstrap distribution. For
more than ``BOOTSTRAP_MAX_N`` customers in a group the normal (Welch) interval is used instead, to which the
bootstrap converges; the answer names the method used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOTAL = "All tiers"
BOOTSTRAP_B = 2000
BOOTSTRAP_SEED = 17
BOOTSTRAP_MAX_N = 20_000
Z95 = 1.959963984540054


def suppress(columns: Mapping[Any, Mapping[str, int]], *, k: int) -> dict[Any, dict[str, str]]:
    """``columns[month][row] = n`` (rows include ``TOTAL``) -> ``{month: {row: "primary"|"complementary"}}``
    for the suppressed cells."""
    out: dict[Any, dict[str, str]] = {}
    for col, cells in columns.items():
        marks: dict[str, str] = {row: "primary" for row, n in cells.items() if 0 < n < k}
        interior = [row for row in cells if row != TOTAL]
        while True:
            hidden = [row for row in interior if row in marks]
            if TOTAL not in cells or TOTAL in marks or len(hidden) != 1:
                break
            shown = sorted((cells[row], row) for row in interior if row not in marks and cells[row] > 0)
            if shown:
                marks[shown[0][1]] = "complementary"
            else:
                marks[TOTAL] = "complementary"
        if marks:
            out[col] = marks
    return out


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    method: str


def _welch(a: np.ndarray, b: np.ndarray) -> Interval:
    d = float(a.mean() - b.mean())
    se = math.sqrt(float(a.var(ddof=1)) / len(a) + float(b.var(ddof=1)) / len(b))
    return Interval(d, d - Z95 * se, d + Z95 * se, "normal (Welch) interval, 95 %")


def diff_ci(treatment: Sequence[float], holdout: Sequence[float], *, binary: bool = False,
            seed: int = BOOTSTRAP_SEED, b: int = BOOTSTRAP_B, max_n: int = BOOTSTRAP_MAX_N) -> Interval:
    """95 % interval of ``mean(treatment) - mean(holdout)`` (see the module docstring)."""
    t = np.asarray(treatment, dtype=np.float64)
    h = np.asarray(holdout, dtype=np.float64)
    if len(t) < 2 or len(h) < 2:
        raise ValueError("each group needs at least two customers")
    if max(len(t), len(h)) > max_n and not binary:
        return _welch(t, h)
    rng = np.random.default_rng(seed)
    if binary:
        mt = rng.binomial(len(t), float(t.mean()), size=b) / len(t)
        mh = rng.binomial(len(h), float(h.mean()), size=b) / len(h)
    else:
        mt = np.array([t[rng.integers(0, len(t), len(t))].mean() for _ in range(b)])
        mh = np.array([h[rng.integers(0, len(h), len(h))].mean() for _ in range(b)])
    diffs = mt - mh
    low, high = np.quantile(diffs, [0.025, 0.975])
    return Interval(float(t.mean() - h.mean()), float(low), float(high),
                    f"percentile bootstrap, {b} resamples, seed {seed}, 95 %")


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation (numpy's default): hand-checkable."""
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))
