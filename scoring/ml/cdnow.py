"""CDNOW benchmark: our served transactions model vs BG/NBD on the 2,357-customer sample.

Data: ``lifetimes/datasets/CDNOW_sample.txt`` from the ``lifetimes`` wheel (read by path; columns:
master id, sample id 1..2357, date YYYYMMDD, number of CDs, dollar value). Same-day purchases of a
customer are merged. Calibration = first 39 weeks (1997-01-01 .. 1997-09-30, days 0..272), holdout =
next 39 weeks (days 273..545). All holdout purchases are repeat purchases (the cohort's first purchases
are in 1997 Q1).

Our model never sees the holdout. It is trained on a temporal split *inside* the calibration period:
features as of cutoffs c in {118, 139, 160, 181} (inventory order features + our BG/NBD's per-week
forecast and P(alive) fitted on data up to c) -> target = repeat purchases per week in (c, 272].
At day 272 the forest predicts a weekly rate, which is stretched to 39 weeks with our BG/NBD's decay
curve (ratio of its per-week forecast over 39 weeks vs over the training horizon), and blended 50/50
with our BG/NBD forecast (the same fixed ``blend_weight`` as the production CLV blend; not tuned on
the holdout). Revenue ranking (top-decile capture) = predicted transactions x Gamma-Gamma spend.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from .btyd import BetaGeo, GammaGamma
from .features import EventLog, aggregate_from_events, build_matrix

CAL_END = 272  # 1997-09-30 as day offset from 1997-01-01
HOLDOUT_END = 545  # 1998-06-30
HORIZON_WEEKS = 39.0
TRAIN_CUTOFFS = (118, 139, 160, 181)
ORDER_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_avg",
    "tenure_days",
    "orders_90d",
    "revenue_90d",
    "revenue_prev_90d",
    "revenue_trend",
)
BLEND_WEIGHT = 0.5


@dataclass(frozen=True)
class CdnowData:
    """Merged (customer, day) purchases; customer = sample id - 1, day = offset from 1997-01-01."""

    customer: np.ndarray
    day: np.ndarray
    value: np.ndarray
    cds: np.ndarray
    n_customers: int


def cdnow_path() -> Path:
    """Path of ``CDNOW_sample.txt`` inside the installed ``lifetimes`` package."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the 'lifetimes' package (which ships the CDNOW sample) is not installed")
    return Path(spec.origin).parent / "datasets" / "CDNOW_sample.txt"


def load_cdnow(path: Path | None = None) -> CdnowData:
    """Parse the sample and merge same-day purchases per customer."""
    raw = np.loadtxt(path or cdnow_path(), dtype=np.float64)
    cust = raw[:, 1].astype(np.int64) - 1
    ymd = raw[:, 2].astype(np.int64)
    dates = np.array(
        [f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" for d in ymd], dtype="datetime64[D]"
    )
    day = (dates - np.datetime64("1997-01-01")).astype(np.int64)
    key = cust * 10_000 + day
    uniq, inv = np.unique(key, return_inverse=True)
    value = np.bincount(inv, raw[:, 4])
    cds = np.bincount(inv, raw[:, 3])
    return CdnowData(uniq // 10_000, uniq % 10_000, value, cds, int(cust.max()) + 1)


def event_log(data: CdnowData) -> EventLog:
    n = len(data.customer)
    return EventLog(
        n_customers=data.n_customers,
        order_customer=data.customer,
        order_day=data.day,
        order_amount=data.value,
        order_margin=np.zeros(n),
        order_returned=np.zeros(n, dtype=bool),
        order_days_late=np.zeros(n),
    )


def rfm(data: CdnowData, as_of: int) -> dict[str, np.ndarray]:
    """BTYD summary as of ``as_of`` (weeks): x repeat purchases, t_x, T, repeat-purchase mean spend."""
    n = data.n_customers
    m = data.day <= as_of
    c, d, v = data.customer[m], data.day[m], data.value[m]
    cnt = np.bincount(c, minlength=n).astype(np.float64)
    first = np.full(n, as_of, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, c, d)
    np.maximum.at(last, c, d)
    last = np.where(last < 0, first, last)
    is_first = d == first[c]
    rep_total = np.bincount(c, v * ~is_first, n)
    x = np.maximum(cnt - 1, 0)
    mon = np.divide(rep_total, x, out=np.zeros(n), where=x > 0)
    return {"x": x, "t_x": (last - first) / 7.0, "T": (as_of - first) / 7.0, "monetary": mon}


def _window(data: CdnowData, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    m = (data.day > start) & (data.day <= end)
    n = data.n_customers
    return np.bincount(data.customer[m], minlength=n).astype(np.float64), np.bincount(
        data.customer[m], data.value[m], n
    )


def _scores(
    pred: np.ndarray, rank_value: np.ndarray, actual: np.ndarray, revenue: np.ndarray
) -> dict[str, float]:
    k = int(round(0.10 * len(actual)))
    top = np.lexsort((np.arange(len(rank_value)), -rank_value))[:k]
    return {
        "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
        "mae": float(np.mean(np.abs(pred - actual))),
        "predicted_total": float(pred.sum()),
        "top10_revenue_share": float(revenue[top].sum() / revenue.sum()),
    }


def _features(
    data: CdnowData, log: EventLog, as_of: int, horizon_weeks: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inventory order features + our BG/NBD (fitted on data <= as_of) per-week forecast and P(alive)."""
    s = rfm(data, as_of)
    known = s["T"] > 0
    bg = BetaGeo().fit(s["x"][known], s["t_x"][known], s["T"][known])
    b = bg.conditional_expected_number_of_purchases_up_to_time(horizon_weeks, s["x"], s["t_x"], s["T"])
    pa = bg.conditional_probability_alive(s["x"], s["t_x"], s["T"])
    X = build_matrix(aggregate_from_events(log, as_of), ORDER_FEATURES)
    T = np.maximum(s["T"], 1.0 / 7.0)
    return np.column_stack([X, s["x"] / T, s["t_x"] / T, b / horizon_weeks, pa]), b


def served_model_predictions(data: CdnowData, seed: int = 0) -> dict[str, np.ndarray]:
    """Our served model's holdout forecast, using calibration-period data only."""
    log = event_log(data)
    Xs, ys, ws, hws = [], [], [], []
    for c in TRAIN_CUTOFFS:
        hw = (CAL_END - c) / 7.0
        X, _ = _features(data, log, c, hw)
        count, _ = _window(data, c, CAL_END)
        Xs.append(X)
        ys.append(count / hw)
        ws.append(np.full(len(X), hw))
        hws.append(hw)
    rf = RandomForestRegressor(n_estimators=300, min_samples_leaf=20, max_features=0.5, random_state=seed)
    rf.fit(np.vstack(Xs), np.concatenate(ys), sample_weight=np.concatenate(ws))

    s = rfm(data, CAL_END)
    train_h = float(np.mean(hws))
    X_now, b39 = _features(data, log, CAL_END, HORIZON_WEEKS)
    bg = BetaGeo().fit(s["x"], s["t_x"], s["T"])
    b_train = bg.conditional_expected_number_of_purchases_up_to_time(train_h, s["x"], s["t_x"], s["T"])
    decay = np.divide(b39 / HORIZON_WEEKS, b_train / train_h, out=np.ones_like(b39), where=b_train > 1e-12)
    ml = rf.predict(X_now) * HORIZON_WEEKS * decay
    pred = BLEND_WEIGHT * b39 + (1 - BLEND_WEIGHT) * ml
    gg = GammaGamma().fit(s["x"], s["monetary"])
    spend = gg.conditional_expected_average_profit(s["x"], np.where(s["x"] > 0, s["monetary"], 1.0))
    return {"transactions": pred, "ml": ml, "bgnbd": b39, "spend": spend}


def evaluate_cdnow(seed: int = 0) -> dict[str, Any]:
    """Holdout metrics of our served model, our own BG/NBD and (if installed) lifetimes' BG/NBD + GG."""
    data = load_cdnow()
    actual, revenue = _window(data, CAL_END, HOLDOUT_END)
    out: dict[str, Any] = {
        "n_customers": data.n_customers,
        "actual_total": float(actual.sum()),
        "actual_revenue": float(revenue.sum()),
    }
    t0 = time.perf_counter()
    ours = served_model_predictions(data, seed)
    fit = time.perf_counter() - t0
    out["ours"] = {
        **_scores(ours["transactions"], ours["transactions"] * ours["spend"], actual, revenue),
        "fit_seconds": fit,
    }
    out["ours_bgnbd"] = {**_scores(ours["bgnbd"], ours["bgnbd"] * ours["spend"], actual, revenue)}
    try:
        from lifetimes import BetaGeoFitter, GammaGammaFitter  # optional reference only
    except ImportError:
        return out
    s = rfm(data, CAL_END)
    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(s["x"], s["t_x"], s["T"])
    pred = np.asarray(
        bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS, s["x"], s["t_x"], s["T"])
    )
    rep = s["x"] > 0
    ggf = GammaGammaFitter().fit(s["x"][rep], s["monetary"][rep])
    spend = np.asarray(ggf.conditional_expected_average_profit(s["x"], np.where(rep, s["monetary"], 1.0)))
    fit = time.perf_counter() - t0
    out["lifetimes_bgnbd"] = {**_scores(pred, pred * spend, actual, revenue), "fit_seconds": fit}
    ref = out["lifetimes_bgnbd"]
    o = out["ours"]
    out["beats_bgnbd"] = {
        "rmse": o["rmse"] < ref["rmse"],
        "mae": o["mae"] < ref["mae"],
        "total": abs(o["predicted_total"] - out["actual_total"])
        < abs(ref["predicted_total"] - out["actual_total"]),
        "top10_revenue_share": o["top10_revenue_share"] > ref["top10_revenue_share"],
    }
    return out
