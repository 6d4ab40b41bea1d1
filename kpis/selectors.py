"""The KPI report: per tier and calendar month (UTC), with small-cell suppression, and the holdout uplift.

Definitions are in docs/KPIS.md. In short, over customers with a current score for the scores' purpose
(``ENGAGEMENT_SCORE_PURPOSE``), grouped by their current effective tier (tickets: the tier in force when the
ticket opened, see ``_ticket_tier``):

- retention_rate / churn_rate: of the customers *live* at the start of the month (an order in the
  ``KPI_ACTIVE_MONTHS`` months before it), the share still live at its end (an order in the
  ``KPI_ACTIVE_MONTHS`` months ending with it); churn = 1 - retention;
- revenue: orders and invoices (not returned) in the month;
- clv_predicted / clv_realised per customer and month: the stored CLV spread evenly over its horizon
  (``clv * days_in_month / horizon_days``) against the month's revenue per customer; clv_calibration is
  realised / predicted;
- upsell_acceptance_rate: upsell offers completed in the month, accepted / (accepted + declined);
- referrals: referrals made in the month;
- sla_adherence: tickets opened in the month answered within the first-response time of the tier in force
  when they opened (open, unanswered and past it: a breach; not yet due, or closed without a recorded first
  response: not counted);
- first_response_median_hours / first_response_p90_hours: over the answered tickets;
- csat: share of rated tickets rated 4 or 5 (of 5), in %; nps: % promoters (9-10) - % detractors (0-6).

Every figure carries ``n``, the number of distinct customers it is computed over; ``kpis.stats.suppress``
withholds small cells.
"""

from __future__ import annotations

import bisect
import calendar
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from kpis import stats
from kpis.stats import TOTAL

TIER_ORDER = ("VIP", "Premium", "Standard", "Basic")
PROACTIVE_TYPES = ("retention_call", "upsell_offer", "advocacy_ask", "win_back")


def min_cell() -> int:
    return int(getattr(settings, "KPI_MIN_CELL", 10))


# --------------------------------------------------------------------------- months

def month_start(d: date | datetime) -> datetime:
    return datetime(d.year, d.month, 1, tzinfo=UTC)


def add_months(d: datetime, n: int) -> datetime:
    """The first of the month ``n`` months away, held inside the calendar's range (a window at year 1 or 9999
    looks back to year 1 and ends at the last instant of 9999, instead of failing)."""
    index = d.year * 12 + d.month - 1 + n
    if index < 12:
        return datetime(1, 1, 1, tzinfo=UTC)
    if index // 12 > 9999:
        return datetime.max.replace(tzinfo=UTC)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_key(d: date | datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def month_index(d: date | datetime) -> int:
    return d.year * 12 + d.month - 1


def _key_of_index(i: int) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


# --------------------------------------------------------------------------- cells

@dataclass
class Cell:
    customers: set[Any] = field(default_factory=set)
    num: float = 0.0
    den: float = 0.0
    values: list[float] = field(default_factory=list)
    count: int | None = None  # distinct customers, when computed in bulk (else len(customers))

    @property
    def n(self) -> int:
        return self.count if self.count is not None else len(self.customers)


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str
    value: Callable[[Cell], float | None]


def _ratio(scale: float = 1.0) -> Callable[[Cell], float | None]:
    return lambda c: round(scale * c.num / c.den, 4) if c.den else None


def _sum(c: Cell) -> float | None:
    return round(c.num, 2) if c.n else None


def _quantile(q: float) -> Callable[[Cell], float | None]:
    return lambda c: round(stats.quantile(c.values, q), 2) if c.values else None


def _nps(c: Cell) -> float | None:
    if not c.values:
        return None
    v = np.asarray(c.values)
    return round(100.0 * (float((v >= 9).mean()) - float((v <= 6).mean())), 2)


METRICS: tuple[Metric, ...] = (
    Metric("retention_rate", "share", "Customers live at the month's start still live at its end.", _ratio()),
    Metric("churn_rate", "share", "1 - retention_rate.", lambda c: round(1 - c.num / c.den, 4) if c.den else None),
    Metric("revenue", "currency", "Orders and invoices (not returned) in the month.", _sum),
    Metric("clv_predicted", "currency per customer", "Stored CLV spread over its horizon, per customer.",
           _ratio()),
    Metric("clv_realised", "currency per customer", "Revenue in the month per customer.", _ratio()),
    Metric("clv_calibration", "ratio", "clv_realised / clv_predicted (1 = calibrated).", _ratio()),
    Metric("upsell_acceptance_rate", "share", "Upsell offers completed: accepted / (accepted + declined).",
           _ratio()),
    Metric("referrals", "count", "Referrals made in the month.", _sum),
    Metric("sla_adherence", "share", "Tickets answered within the first-response time of their tier.", _ratio()),
    Metric("first_response_median_hours", "hours", "Median first-response time of answered tickets.",
           _quantile(0.5)),
    Metric("first_response_p90_hours", "hours", "90th percentile first-response time.", _quantile(0.9)),
    Metric("csat", "%", "Share of rated tickets rated 4 or 5 (of 5).", _ratio(100.0)),
    Metric("nps", "score", "% promoters (9-10) minus % detractors (0-6).", _nps),
)
METRIC_NAMES = tuple(m.name for m in METRICS)


# --------------------------------------------------------------------------- the report

def score_purpose() -> str:
    return str(getattr(settings, "ENGAGEMENT_SCORE_PURPOSE", "automated_scoring"))


def tiers_sorted(names: set[str]) -> list[str]:
    return [t for t in TIER_ORDER if t in names] + sorted(names - set(TIER_ORDER))


def _ticket_tier(history: dict[uuid.UUID, list[tuple[datetime, str]]], cid: uuid.UUID, at: datetime,
                 current: str) -> str:
    """The tier in force when the ticket opened: the tier of the customer's latest audited decision (score,
    routing) at or before ``at``; the current tier if none is that old."""
    rows = history.get(cid)
    if rows:
        i = bisect.bisect_right([r[0] for r in rows], at)
        if i > 0:
            return rows[i - 1][1]
    return current


def _sla_hours(tier: str) -> float:
    from scoring import selectors as scoring_selectors

    return scoring_selectors.first_response_hours(tier=tier)


def settings_fingerprint() -> str:
    """What the figures depend on besides the data (a rollup computed under other settings is not served)."""
    import hashlib
    import json

    from scoring import selectors as scoring_selectors

    known = sorted(set(getattr(settings, "TIER_SHARES", {}) or {}) | set(TIER_ORDER))
    facts = {"purpose": score_purpose(), "active": int(getattr(settings, "KPI_ACTIVE_MONTHS", 3)), "k": min_cell(),
             "need_n": int(getattr(settings, "KPI_UPLIFT_MIN_PER_GROUP", 30)),
             "need_days": int(getattr(settings, "KPI_UPLIFT_MIN_DAYS", 28)),
             "cost": float(getattr(settings, "KPI_COST_PER_ACTION", 5.0)),
             "sla": {t: scoring_selectors.first_response_hours(tier=t) for t in known}}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def report_months(start: date, end: date) -> list[datetime]:
    first, last = month_start(start), month_start(end)
    return [add_months(first, i) for i in range(month_index(last) - month_index(first) + 1)]


def population(*, purpose: str | None = None) -> tuple[dict[uuid.UUID, str], list[str]]:
    """The customers of the report (current effective tier) and the table's rows (tiers, then the total)."""
    from scoring import selectors as scoring_selectors

    tiers = scoring_selectors.tiers_current(purpose=purpose or score_purpose())
    return tiers, [*tiers_sorted(set(tiers.values())), TOTAL]


class CellGrid:
    """The report's cells ``{metric: {(month, row): Cell}}`` and the helpers that fill them (both paths)."""

    def __init__(self) -> None:
        self.cells: dict[str, dict[tuple[str, str], Cell]] = {m.name: {} for m in METRICS}

    def cell(self, metric: str, month: str, row: str) -> Cell:
        return self.cells[metric].setdefault((month, row), Cell())

    def add(self, metric: str, month: str, row: str, cid: Any, *, num: float = 0.0, den: float = 0.0,
            value: float | None = None) -> None:
        for r in (row, TOTAL):
            c = self.cell(metric, month, r)
            c.customers.add(cid)
            c.num += num
            c.den += den
            if value is not None:
                c.values.append(value)

    def put(self, metric: str, month: str, rows: list[str], counts: Any, num: Any, den: Any = None) -> None:
        for r, row in enumerate(rows):
            if counts[r]:
                self.cells[metric][(month, row)] = Cell(count=int(counts[r]), num=float(num[r]),
                                                        den=float(den[r]) if den is not None else 0.0)

    def figure(self, metric: Metric, month: str, row: str) -> tuple[int, float | None]:
        """``(n, unsuppressed value)`` of one cell (n = 0: no data)."""
        c = self.cells[metric.name].get((month, row))
        if c is None or not c.n:
            return 0, None
        return c.n, metric.value(c)


def event_cells(grid: CellGrid, *, first: datetime, window_end: datetime, tiers: dict[uuid.UUID, str],
                now: datetime, tickets: list[tuple[uuid.UUID, datetime, datetime | None, int | None,
                                                   datetime | None, str]]) -> None:
    """Upsell outcomes, referrals, NPS and tickets (``(customer, opened, first response, satisfaction, closed,
    tier in force when it opened)``) of the customers in ``tiers``, in ``[first, window_end)``: shared by the
    live report and the rollup, so that both compute these cells with the same arithmetic."""
    from engagement import selectors as engagement_selectors
    from profiles import selectors as profiles_selectors

    add = grid.add
    for a in engagement_selectors.actions_closed_between(start=first, end=window_end, type="upsell_offer"):
        if a["status"] == "completed" and a["outcome"] in ("accepted", "declined"):
            add("upsell_acceptance_rate", month_key(a["closed_at"]), a["tier"], a["customer_id"],
                num=float(a["outcome"] == "accepted"), den=1.0)
    for cid, at, _converted in profiles_selectors.referrals_between(start=first, end=window_end):
        if cid in tiers:
            add("referrals", month_key(at), tiers[cid], cid, num=1.0)
    for cid, at, score in profiles_selectors.nps_between(start=first, end=window_end):
        if cid in tiers:
            add("nps", month_key(at), tiers[cid], cid, value=float(score))
    sla_of: dict[str, timedelta] = {}
    for cid, opened, responded, satisfaction, closed, t in tickets:
        key = month_key(opened)
        sla = sla_of.get(t)
        if sla is None:
            sla = sla_of[t] = timedelta(hours=_sla_hours(t))
        if responded is not None:
            hours = max((responded - opened).total_seconds() / 3600.0, 0.0)
            add("sla_adherence", key, t, cid, num=float(responded - opened <= sla), den=1.0)
            add("first_response_median_hours", key, t, cid, value=hours)
            add("first_response_p90_hours", key, t, cid, value=hours)
        elif closed is None and now > opened + sla:  # still unanswered and past due: a breach
            add("sla_adherence", key, t, cid, num=0.0, den=1.0)
        # closed without a recorded first response (e.g. imported history): unknown, not counted
        if satisfaction is not None:
            add("csat", key, t, cid, num=float(satisfaction >= 4), den=1.0)


def render_metrics(figure: Callable[[Metric, str, str], tuple[int, float | None]], *, rows: list[str],
                   month_keys: list[str], shown_rows: list[str], k: int) -> list[dict[str, Any]]:
    """The metric tables, suppressed (``kpis.stats.suppress`` over each month's full column of n), from
    ``figure(metric, month, row) -> (n, value)``: the same for the live and the rollup path."""
    metrics_out = []
    for metric in METRICS:
        figures = {(key, row): figure(metric, key, row) for key in month_keys for row in rows}
        for row in shown_rows:
            for key in month_keys:
                if (key, row) not in figures:
                    figures[(key, row)] = figure(metric, key, row)
        grid = {key: {row: figures[(key, row)][0] for row in rows} for key in month_keys}
        marks = stats.suppress(grid, k=k)
        table = []
        for row in shown_rows:
            values = {}
            for key in month_keys:
                mark = marks.get(key, {}).get(row)
                n, value = figures[(key, row)]
                values[key] = ({"value": None, "n": None, "suppressed": True, "suppression": mark} if mark else
                               {"value": value if n else None, "n": n, "suppressed": False, "suppression": None})
            table.append({"tier": row, "months": values})
        metrics_out.append({"name": metric.name, "unit": metric.unit, "description": metric.description,
                            "rows": table})
    return metrics_out


TIER_BASIS = ("current effective tier of the stored score; tickets: the tier of the latest audited decision at or "
              "before the ticket opened (else the current tier)")


def report_frame(*, first: datetime, window_end: datetime, month_keys: list[str], shown_rows: list[str], k: int,
                 metrics: list[dict[str, Any]], uplift: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return {
        "from": first.date(), "to": (window_end - timedelta(days=1)).date(), "months": month_keys,
        "tiers": shown_rows, "k": k, "currency": str(getattr(settings, "SCORING_CURRENCY", "EUR")),
        "tier_basis": TIER_BASIS, "metrics": metrics, "uplift": uplift, "source": source,
    }


def live_cells(*, months: list[datetime], tiers: dict[uuid.UUID, str], rows: list[str], now: datetime
               ) -> tuple[CellGrid, dict[uuid.UUID, dict[int, int]]]:
    """Every cell of ``months`` computed from the raw tables (the live path), and the revenue per customer
    and month index (the uplift's input)."""
    from audit import selectors as audit_selectors
    from profiles import selectors as profiles_selectors
    from scoring import selectors as scoring_selectors

    first, last = months[0], months[-1]
    window_end = add_months(last, 1)
    active = max(int(getattr(settings, "KPI_ACTIVE_MONTHS", 3)), 1)
    purpose = score_purpose()
    month_keys = [month_key(m) for m in months]
    grid = CellGrid()

    # Orders, vectorized: customers x months (from ``active`` months before the first one to the last).
    ids = list(tiers)
    position = {cid: i for i, cid in enumerate(ids)}
    tier_index = np.asarray([rows.index(tiers[cid]) for cid in ids], dtype=np.int64)
    base = month_index(first) - active
    span = month_index(last) - base + 1
    revenue_m = np.zeros((len(ids), span))
    ordered_m = np.zeros((len(ids), span), dtype=bool)
    orders: dict[uuid.UUID, dict[int, int]] = {}
    for cid, month, revenue, _n in profiles_selectors.orders_by_customer_month(
            start=add_months(first, -active), end=window_end):
        i = position.get(cid)
        if i is None:
            continue
        j = month_index(month) - base
        cents = round(revenue * 100)  # amounts have two decimals: sums in cents are exact in any order
        revenue_m[i, j] += cents
        ordered_m[i, j] = True
        orders.setdefault(cid, {})[j + base] = orders.get(cid, {}).get(j + base, 0) + cents
    predictions = scoring_selectors.clv_predictions(purpose=purpose)
    horizons: dict[int | None, int] = {}

    def horizon(mv: int | None) -> int:
        if mv not in horizons:
            horizons[mv] = clv_horizon(mv)
        return horizons[mv]

    per_day = np.asarray([max(predictions.get(cid, (0.0, None))[0], 0.0) / horizon(predictions.get(cid, (0, None))[1])
                          for cid in ids], dtype=np.float64)
    n_rows = len(rows)
    per_day_tiers = tier_fsum(tier_index, per_day, n_rows)

    def by_tier(weights: np.ndarray) -> np.ndarray:
        out = np.bincount(tier_index, weights=weights, minlength=n_rows).astype(np.float64)
        out[rows.index(TOTAL)] = out[: rows.index(TOTAL)].sum()
        return out

    population_n = by_tier(np.ones(len(ids)))
    for m, key in zip(months, month_keys, strict=True):
        j = month_index(m) - base
        days = calendar.monthrange(m.year, m.month)[1]
        live_start = np.asarray(ordered_m[:, j - active:j].any(axis=1))
        live_end = np.asarray(ordered_m[:, j - active + 1:j + 1].any(axis=1))
        starts = by_tier(live_start.astype(np.float64))
        kept = by_tier((live_start & live_end).astype(np.float64))
        grid.put("retention_rate", key, rows, starts, kept, starts)
        grid.put("churn_rate", key, rows, starts, kept, starts)
        month_revenue = by_tier(revenue_m[:, j]) / 100.0
        grid.put("revenue", key, rows, by_tier(ordered_m[:, j].astype(np.float64)), month_revenue)
        predicted = with_total(per_day_tiers * days, rows)
        grid.put("clv_predicted", key, rows, population_n, predicted, population_n)
        grid.put("clv_realised", key, rows, population_n, month_revenue, population_n)
        grid.put("clv_calibration", key, rows, population_n, month_revenue, predicted)

    tickets = [t for t in profiles_selectors.tickets_between(start=first, end=window_end) if t[0] in tiers]
    history = audit_selectors.tier_history(customers=[t[0] for t in tickets], before=window_end) if tickets else {}
    event_cells(grid, first=first, window_end=window_end, tiers=tiers, now=now,
                tickets=[(cid, opened, responded, satisfaction, closed,
                          _ticket_tier(history, cid, opened, tiers[cid]))
                         for cid, opened, responded, satisfaction, closed in tickets])
    return grid, orders


def with_total(column: np.ndarray, rows: list[str]) -> np.ndarray:
    """A copy of a per-row column whose "All tiers" entry is the sum of the tiers' (both paths: same arithmetic)."""
    out = np.asarray(column, dtype=np.float64).copy()
    total = rows.index(TOTAL)
    out[total] = out[:total].sum()
    return out


def tier_fsum(tier_index: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, the correctly rounded sum (``math.fsum``) of ``values``: the same float whatever the order of
    the customers, so the live path and the rollup agree to the last bit."""
    import math

    out = np.zeros(n_rows)
    if len(values):
        order = np.argsort(tier_index, kind="stable")
        bounds = np.searchsorted(tier_index[order], np.arange(n_rows + 1))
        for r in range(n_rows):
            out[r] = math.fsum(values[order[bounds[r]:bounds[r + 1]]].tolist())
    return out


def clv_horizon(model_version_id: int | None) -> int:
    """Days a stored CLV covers (its model's horizon; a year when unknown, as the model card default)."""
    from scoring import selectors as scoring_selectors

    if not model_version_id:
        return 365
    try:
        return max(int(scoring_selectors.clv_horizon_days(model_version_id=model_version_id)), 1)
    except Exception:  # noqa: BLE001 - an unknown version: a year, as the model card default
        return 365


def kpi_report(*, start: date, end: date, tier: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """KPIs for the calendar months from ``start``'s to ``end``'s (inclusive), per tier, suppressed; and the
    uplift of treatment over holdout over the same window (up to now). Computed live from the raw tables."""
    now = now or timezone.now()
    months = report_months(start, end)
    first, window_end = months[0], add_months(months[-1], 1)
    tiers, rows = population()
    grid, orders = live_cells(months=months, tiers=tiers, rows=rows, now=now)
    k = min_cell()
    month_keys = [month_key(m) for m in months]
    shown_rows = [tier] if tier else rows
    return report_frame(
        first=first, window_end=window_end, month_keys=month_keys, shown_rows=shown_rows, k=k,
        metrics=render_metrics(grid.figure, rows=rows, month_keys=month_keys, shown_rows=shown_rows, k=k),
        uplift=uplift_report(start=first, end=min(window_end, now), tiers=tiers, tier=tier, orders=orders),
        source={"kind": "live", "as_of": now, "snapshot_id": None, "reason": None})


# --------------------------------------------------------------------------- uplift and ROI

@dataclass
class UpliftInputs:
    """What the uplift reads besides the orders, for ``[start, end)`` (read once, reused for every tier)."""

    groups: dict[uuid.UUID, bool]
    outcomes: list[tuple[uuid.UUID, str, Any]]
    actions: list[dict[str, Any]]

    @classmethod
    def read(cls, *, start: datetime, end: datetime) -> UpliftInputs:
        from engagement import selectors as engagement_selectors
        from scoring import selectors as scoring_selectors

        return cls(groups=engagement_selectors.holdout_groups(assigned_before=end),
                   outcomes=scoring_selectors.outcomes_between(start=start, end=end, kinds=["churned", "renewed"]),
                   actions=engagement_selectors.actions_between(start=start, end=end))


def uplift_report(*, start: datetime, end: datetime, tiers: dict[uuid.UUID, str], tier: str | None,
                  orders: dict[uuid.UUID, dict[int, int]], inputs: UpliftInputs | None = None) -> dict[str, Any]:
    """Treatment (assigned, not holdout) against holdout over ``[start, end)``: retention (an order or a
    renewal in the window and no churn outcome) and revenue per customer, each with a 95 % interval; ROI =
    revenue uplift per customer x treated customers - cost per proactive action x actions."""
    need_n = int(getattr(settings, "KPI_UPLIFT_MIN_PER_GROUP", 30))
    need_days = int(getattr(settings, "KPI_UPLIFT_MIN_DAYS", 28))
    k = min_cell()
    inputs = inputs or UpliftInputs.read(start=start, end=end)
    groups = inputs.groups
    if tier:
        groups = {cid: h for cid, h in groups.items() if tiers.get(cid) == tier}
    treated = [cid for cid, h in groups.items() if not h]
    held = [cid for cid, h in groups.items() if h]
    days = max((end - start).days, 0)
    have = {"treatment_customers": len(treated), "holdout_customers": len(held), "window_days": days}
    needed = {"treatment_customers": max(need_n, k), "holdout_customers": max(need_n, k), "window_days": need_days}
    base = {"window": {"from": start.date(), "to": end.date()}, "have": have, "needed": needed}
    if len(treated) < needed["treatment_customers"] or len(held) < needed["holdout_customers"] or days < need_days:
        return {"status": "insufficient_data", **base, "retention": None, "revenue_per_customer": None,
                "roi": None, "ci_method": None}
    first_i, last_i = month_index(start), month_index(end - timedelta(microseconds=1))
    churned: set[uuid.UUID] = set()
    renewed: set[uuid.UUID] = set()
    for cid, kind, _at in inputs.outcomes:
        (churned if kind == "churned" else renewed).add(cid)

    def retained(cid: uuid.UUID) -> float:
        by_month = orders.get(cid, {})
        ordered = any(first_i <= i <= last_i for i in by_month)
        return float((ordered or cid in renewed) and cid not in churned)

    def revenue(cid: uuid.UUID) -> float:
        return sum(v for i, v in orders.get(cid, {}).items() if first_i <= i <= last_i) / 100.0

    ret = stats.diff_ci([retained(c) for c in treated], [retained(c) for c in held], binary=True)
    rev = stats.diff_ci([revenue(c) for c in treated], [revenue(c) for c in held])
    treated_set = set(treated)
    n_actions = sum(1 for a in inputs.actions if a["type"] in PROACTIVE_TYPES and a["customer_id"] in treated_set)
    cost_each = float(getattr(settings, "KPI_COST_PER_ACTION", 5.0))
    cost = cost_each * n_actions
    value = rev.estimate * len(treated)

    def figure(i: stats.Interval, t: list[float], h: list[float]) -> dict[str, Any]:
        return {"treatment": round(float(np.mean(t)), 4), "holdout": round(float(np.mean(h)), 4),
                "uplift": round(i.estimate, 4), "ci95": [round(i.low, 4), round(i.high, 4)]}

    return {
        "status": "ok", **base,
        "retention": figure(ret, [retained(c) for c in treated], [retained(c) for c in held]),
        "revenue_per_customer": figure(rev, [revenue(c) for c in treated], [revenue(c) for c in held]),
        "ci_method": {"retention": ret.method, "revenue_per_customer": rev.method},
        "roi": {"value": round(value, 2), "cost": round(cost, 2), "actions": n_actions, "cost_per_action": cost_each,
                "net": round(value - cost, 2),
                "net_ci95": [round(rev.low * len(treated) - cost, 2), round(rev.high * len(treated) - cost, 2)],
                "ratio": round((value - cost) / cost, 4) if cost else None},
    }


MAX_MONTHS = 36


def _empty_report(*, start: date, end: date, tier: str | None) -> dict[str, Any]:
    """A window whose ``from`` lies after its ``to`` holds no months: the report's shape (tiers, metrics,
    suppression threshold) with no month in it, and an uplift with no days of data."""
    shape = kpi_report(start=end, end=end, tier=tier)
    return {
        **shape, "from": start, "to": end, "months": [], "next": None,
        "metrics": [{**m, "rows": [{**r, "months": {}} for r in m["rows"]]} for m in shape["metrics"]],
        "uplift": {**shape["uplift"], "status": "insufficient_data", "window": {"from": start, "to": end},
                   "have": {**shape["uplift"]["have"], "window_days": 0}, "retention": None,
                   "revenue_per_customer": None, "roi": None, "ci_method": None},
    }


def kpi_report_for(*, start: date | None, end: date | None, tier: str | None) -> dict[str, Any]:
    """The API's defaults and limits around ``kpi_report``: ``end`` today, ``start`` 11 months earlier. A window
    longer than ``MAX_MONTHS`` months is answered a page at a time: its first ``MAX_MONTHS`` months, with
    ``next`` naming the window that remains (``from``/``to`` to ask for next); ``next`` is null on the last page.
    (A limit on the distance between two parameters cannot be stated in an OpenAPI schema; paging can.)"""
    from config.errors import ValidationFailed

    today = timezone.now().date()
    end = end or today
    start = start or add_months(month_start(end), -11).date()
    known = set(getattr(settings, "TIER_SHARES", {}) or {}) | set(TIER_ORDER)
    if tier and tier not in known:
        raise ValidationFailed("Unknown tier.", extra={"errors": {"tier": [{"code": "invalid_choice"}]}})
    if start > end:
        return _empty_report(start=start, end=end, tier=tier or None)
    following: dict[str, date] | None = None
    if month_index(end) - month_index(start) + 1 > MAX_MONTHS:
        page_end = add_months(month_start(start), MAX_MONTHS) - timedelta(days=1)
        following = {"from": (page_end + timedelta(days=1)).date(), "to": end}
        end = page_end.date()
    served, reason = rollup_report(start=start, end=end, tier=tier or None)
    if served is not None:
        return {**served, "next": following}
    report = kpi_report(start=start, end=end, tier=tier or None)
    report["source"]["reason"] = reason
    return {**report, "next": following}


def rollup_max_age() -> float:
    return float(getattr(settings, "KPI_ROLLUP_MAX_AGE_SECONDS", 3600))


def rollup_report(*, start: date, end: date, tier: str | None, now: datetime | None = None
                  ) -> tuple[dict[str, Any] | None, str | None]:
    """The report from the newest rollup snapshot when it is fresh (younger than ``KPI_ROLLUP_MAX_AGE_SECONDS``,
    computed under the current settings) and covers the request (its months, and the uplift of its window and
    tier): exactly the live report as of the snapshot's time. Else ``(None, reason)``."""
    from kpis.models import KpiCell, KpiSnapshot, KpiUplift

    now = now or timezone.now()
    if rollup_max_age() <= 0:
        return None, "rollup_disabled"
    snap = KpiSnapshot.objects.order_by("-taken_at", "-id").first()
    if snap is None:
        return None, "no_snapshot"
    if (now - snap.taken_at).total_seconds() > rollup_max_age():
        return None, "snapshot_stale"
    if snap.fingerprint != settings_fingerprint():
        return None, "settings_changed"
    months = report_months(start, end)
    month_keys = [month_key(m) for m in months]
    if month_keys[0] < snap.first_month or month_keys[-1] > snap.last_month:
        return None, "months_not_in_snapshot"
    uplift = (KpiUplift.objects.filter(snapshot=snap, window_first=month_keys[0], window_last=month_keys[-1],
                                       tier=tier or "").values_list("report", flat=True).first())
    if uplift is None:
        return None, "window_not_in_snapshot"
    uplift["window"] = {k: date.fromisoformat(v) for k, v in uplift["window"].items()}
    figures = {(metric, month, row): (n, value) for metric, month, row, n, value in
               KpiCell.objects.filter(snapshot=snap, month__in=month_keys)
               .values_list("metric", "month", "tier", "n", "value")}

    def figure(metric: Metric, month: str, row: str) -> tuple[int, float | None]:
        return figures.get((metric.name, month, row), (0, None))

    rows = list(snap.rows)
    shown_rows = [tier] if tier else rows
    k = min_cell()
    return report_frame(
        first=months[0], window_end=add_months(months[-1], 1), month_keys=month_keys, shown_rows=shown_rows, k=k,
        metrics=render_metrics(figure, rows=rows, month_keys=month_keys, shown_rows=shown_rows, k=k),
        uplift=uplift, source={"kind": "rollup", "as_of": snap.taken_at, "snapshot_id": snap.pk, "reason": None},
    ), None
