"""CLV of attribute-only data (a CRM table with a churn flag, no orders): an estimate from what is known.

With no order history there is no revenue to learn a CLV from. When the table has a monthly-charges column
the CLV over the horizon is estimated as

    CLV = monthly charges x horizon months x (1 - p / 2)

where ``p`` is the churn model's probability of leaving within the horizon and a leaver is assumed to leave,
on average, half-way through it (uniform leaving time). The estimate is exactly additive: a contribution of
``monthly charges x horizon months`` from the monthly charges and ``- monthly charges x horizon months x p/2``
from the churn probability, on a baseline of 0.

Without a monthly-charges column the CLV is unavailable (``model_unavailable``) and tiers rank customers by
historical spend: a total-charges column, else monthly charges x tenure, else the recorded orders' revenue.

Columns are recognised by their normalised name (lower case, letters and digits only), see the sets below.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .explain import Contributions
from .features import ATTRIBUTE_PURPOSE, BY_NAME, FeatureSpec

MONTHLY_NAMES = frozenset({
    "monthlycharges", "monthlycharge", "monthlyfee", "monthlyfees", "monthlyrevenue", "monthlyspend",
    "monthlyamount", "monthlybill", "monthlyprice", "monthlypayment", "mrr", "arpu",
})
TOTAL_NAMES = frozenset({"totalcharges", "totalspend", "totalrevenue", "totalamount", "totalpaid", "lifetimespend"})
TENURE_NAMES = frozenset({"tenure", "tenuremonths", "tenureinmonths", "monthsactive", "monthsascustomer"})
DAYS_PER_MONTH = 365.25 / 12
CHURN_TERM = "churn_probability"

BY_NAME.setdefault(CHURN_TERM, FeatureSpec(
    CHURN_TERM, "model", "ratio", "expected churn within the horizon (half the months lost)", ATTRIBUTE_PURPOSE))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_column(names: Sequence[str], wanted: frozenset[str]) -> str | None:
    """The first of ``names`` whose normalised form is in ``wanted`` (deterministic: names in order)."""
    return next((n for n in names if _norm(n) in wanted), None)


def horizon_months(horizon_days: int) -> float:
    return float(horizon_days) / DAYS_PER_MONTH


def _numbers(col: np.ndarray | None, n: int) -> np.ndarray:
    if col is None:
        return np.full(n, np.nan)
    try:
        return np.array([np.nan if v is None else float(v) for v in np.asarray(col, dtype=object)], dtype=np.float64)
    except (TypeError, ValueError):
        return np.full(n, np.nan)


def estimate(monthly_name: str, monthly: np.ndarray, churn: np.ndarray, horizon_days: int) -> Contributions:
    """Exact additive CLV estimate (currency) per customer; a missing monthly charge gives 0."""
    m_raw = _numbers(monthly, len(churn))
    m = np.where(np.isfinite(m_raw), np.maximum(m_raw, 0.0), 0.0)
    p = np.clip(np.asarray(churn, dtype=np.float64), 0.0, 1.0)
    full = m * horizon_months(horizon_days)
    values = np.column_stack([full, -full * p / 2.0])
    shown = np.empty((len(p), 2), dtype=object)
    shown[:, 0] = [None if not np.isfinite(v) else float(v) for v in m_raw]
    shown[:, 1] = p.tolist()
    n = len(p)
    return Contributions((monthly_name, CHURN_TERM), shown, np.zeros(n), values, values.sum(axis=1), "currency")


def naive_spend(names: Sequence[str], table: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Historical spend from the CRM table (total charges, else monthly charges x tenure), else ``fallback``."""
    n = len(fallback)
    total = find_column(names, TOTAL_NAMES)
    if total is not None:
        v = _numbers(table[:, list(names).index(total)], n)
        return np.where(np.isfinite(v), v, 0.0)
    monthly, tenure = find_column(names, MONTHLY_NAMES), find_column(names, TENURE_NAMES)
    if monthly is not None and tenure is not None:
        v = _numbers(table[:, list(names).index(monthly)], n) * _numbers(table[:, list(names).index(tenure)], n)
        return np.where(np.isfinite(v), v, 0.0)
    return np.asarray(fallback, dtype=np.float64)
