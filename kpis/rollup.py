"""The KPI rollup's computation: every cell of the report for a range of months, and the uplift of the standard
windows, as the live path (``kpis.selectors.kpi_report``) would compute them at the same moment.

Set-based where the volume is (PostgreSQL and SQLite):

- the population (current effective tier, CLV, model version) is one ``INSERT ... SELECT`` into a temporary
  table from ``scoring.selectors.tier_population_queryset``;
- orders: one query groups the customer-months with an order (revenue, and the gap to the customer's next
  order month, ``LEAD``) per (tier, month, gap); retention follows without a customer x month matrix:
  a customer is live at the start of month j iff they ordered in one of the ``a`` months before it, so with
  m their latest order month before j and g the gap to their next one, ``starts(j)`` counts the customer-months
  with ``m + 1 <= j <= m + min(g, a)``, and those who are not live at the end any more are exactly those with
  ``j = m + a`` and ``g > a`` (no order in ``m+1 .. j``): ``kept = starts - lost``;
- CLV predicted: per tier, the exact sum of ``max(clv, 0) / horizon`` times the month's days;
- the uplift's revenue per assigned customer over the window: one grouped query.

Tickets (with the tier in force when each opened: a correlated subquery on the audited decisions), NPS,
referrals and upsell outcomes are read for the whole range and accumulated by ``kpis.selectors.event_cells``,
the live path's own code (medians and p90 need the values). The uplift is ``kpis.selectors.uplift_report``
itself, on the same inputs. Sums are exact in any order (amounts in whole cents; CLV per day
with ``math.fsum``) and every other float is computed by the same expression on the same operands, so the
rollup's figures are the live report's to the last bit (``tests/kpis/test_rollup.py`` proves it on randomized
fixtures).

The SQL text holds only table names (from the models' meta) and the temporary table's name; every value is a
query parameter, so no identifier or personal data reaches SQL text or logs.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import OuterRef

from kpis import selectors as kpi

POP_TABLE = "kpi_rollup_population"


def rollup_months() -> int:
    return max(1, min(int(getattr(settings, "KPI_ROLLUP_MONTHS", kpi.MAX_MONTHS)), kpi.MAX_MONTHS))


def uplift_windows() -> list[int]:
    """Window lengths (months, ending with the snapshot's month) whose uplift is precomputed; 12 = the API's
    default window."""
    raw = getattr(settings, "KPI_ROLLUP_UPLIFT_WINDOWS", [12])
    return sorted({max(1, min(int(x), rollup_months())) for x in raw})


@dataclass
class Rollup:
    taken_at: datetime
    months: list[datetime]
    rows: list[str]
    grid: kpi.CellGrid
    uplifts: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    customers: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _table(app: str, model: str) -> str:
    return connection.ops.quote_name(apps.get_model(app, model)._meta.db_table)


def _month_index_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return (f"(EXTRACT(YEAR FROM {column} AT TIME ZONE 'UTC')::int * 12 "
                f"+ EXTRACT(MONTH FROM {column} AT TIME ZONE 'UTC')::int - 1)")
    return (f"(CAST(strftime('%%Y', {column}) AS INTEGER) * 12 "
            f"+ CAST(strftime('%%m', {column}) AS INTEGER) - 1)")


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _cents(value: Any) -> int:
    """An amount (Decimal on PostgreSQL, a number on SQLite) in whole cents: amounts have two decimals."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value * 100)
    return round(float(value or 0) * 100)


def _population_table(cursor: Any, purpose: str) -> dict[int | None, int]:
    """Fill the temporary population table; returns the CLV horizon (days) per model version."""
    from scoring import selectors as scoring_selectors

    cursor.execute(f"DROP TABLE IF EXISTS {POP_TABLE}")
    sql, params = scoring_selectors.tier_population_queryset(purpose=purpose).query.sql_with_params()
    cursor.execute(f"CREATE TEMPORARY TABLE {POP_TABLE} AS SELECT * FROM ({sql}) AS p", params)  # noqa: S608
    cursor.execute(f"SELECT DISTINCT model_version_id FROM {POP_TABLE}")  # noqa: S608
    horizons = {mv: kpi.clv_horizon(mv) for (mv,) in cursor.fetchall()}
    if connection.vendor == "postgresql":
        cursor.execute(f"ANALYZE {POP_TABLE}")
    return horizons


def _order_cells(cursor: Any, rollup: Rollup, *, horizons: dict[int | None, int]) -> None:
    months, rows, grid = rollup.months, rollup.rows, rollup.grid
    active = max(int(getattr(settings, "KPI_ACTIVE_MONTHS", 3)), 1)
    first, last = months[0], months[-1]
    base = kpi.month_index(first) - active
    span = kpi.month_index(last) - base + 1
    n_rows = len(rows)
    index = {t: i for i, t in enumerate(rows)}
    # Population and predicted CLV per day, per tier (summed exactly, as the live path does).
    cursor.execute(f"SELECT kpi_tier, clv, model_version_id FROM {POP_TABLE}")  # noqa: S608
    tier_of, per_day_of = [], []
    while batch := cursor.fetchmany(50_000):
        for tier, clv, mv in batch:
            tier_of.append(index[tier])
            per_day_of.append(max(float(clv or 0.0), 0.0) / horizons.get(mv, 365))
    tier_index = np.asarray(tier_of, dtype=np.int64)
    population_n = np.bincount(tier_index, minlength=n_rows).astype(np.float64)
    per_day = kpi.tier_fsum(tier_index, np.asarray(per_day_of, dtype=np.float64), n_rows)
    # Customer-months with an order, by (tier, month, gap to the next order month capped at active + 1).
    orders = _table("profiles", "Order")
    mi = _month_index_sql("o.ordered_at")
    cursor.execute(
        f"WITH cm AS (SELECT o.customer_id AS cid, {mi} AS m, SUM(o.amount) AS rev FROM {orders} o "  # noqa: S608
        f"JOIN {POP_TABLE} p ON p.customer_id = o.customer_id "
        f"WHERE NOT o.returned AND o.ordered_at >= %s AND o.ordered_at < %s GROUP BY o.customer_id, {mi}), "
        f"g AS (SELECT cid, m, rev, LEAD(m) OVER (PARTITION BY cid ORDER BY m) AS nxt FROM cm) "
        f"SELECT p.kpi_tier, g.m, CASE WHEN g.nxt IS NULL OR g.nxt - g.m > {active} THEN {active + 1} "
        f"ELSE g.nxt - g.m END AS gap, COUNT(*), SUM(g.rev) "
        f"FROM g JOIN {POP_TABLE} p ON p.customer_id = g.cid GROUP BY p.kpi_tier, g.m, gap",
        [_dt(kpi.add_months(first, -active)), _dt(kpi.add_months(last, 1))])
    starts = np.zeros((n_rows, span + active + 2))
    lost = np.zeros((n_rows, span + active + 2))
    ordered = np.zeros((n_rows, span))
    revenue = np.zeros((n_rows, span))
    for tier, m, gap, count, rev in cursor.fetchall():
        r, j = index[tier], int(m) - base
        ordered[r, j] += count
        revenue[r, j] += _cents(rev)
        reach = min(int(gap), active)
        starts[r, j + 1] += count  # difference array: live at the start of months j+1 .. j+reach
        starts[r, j + reach + 1] -= count
        if int(gap) > active:
            lost[r, j + active] += count
    starts = np.cumsum(starts, axis=1)

    def with_total(column: np.ndarray) -> np.ndarray:
        return kpi.with_total(column, rows)

    population_t = with_total(population_n)
    for m in months:
        key = kpi.month_key(m)
        j = kpi.month_index(m) - base
        days = calendar.monthrange(m.year, m.month)[1]
        s = with_total(starts[:, j])
        kept = with_total(starts[:, j] - lost[:, j])
        grid.put("retention_rate", key, rows, s, kept, s)
        grid.put("churn_rate", key, rows, s, kept, s)
        month_revenue = with_total(revenue[:, j]) / 100.0
        grid.put("revenue", key, rows, with_total(ordered[:, j]), month_revenue)
        predicted = with_total(per_day * days)
        grid.put("clv_predicted", key, rows, population_t, predicted, population_t)
        grid.put("clv_realised", key, rows, population_t, month_revenue, population_t)
        grid.put("clv_calibration", key, rows, population_t, month_revenue, predicted)


def _tickets(first: datetime, window_end: datetime, tiers: dict[uuid.UUID, str]) -> list[tuple]:
    from audit import selectors as audit_selectors
    from profiles import selectors as profiles_selectors

    qs = (profiles_selectors.tickets_between_queryset(start=first, end=window_end)
          .annotate(kpi_tier_at=audit_selectors.tier_in_force_expression(customer=OuterRef("customer_id"),
                                                                         at=OuterRef("opened_at")))
          .values_list("customer_id", "opened_at", "first_response_at", "satisfaction", "closed_at", "kpi_tier_at"))
    out = []
    for cid, opened, responded, satisfaction, closed, tier_at in qs.iterator(chunk_size=20_000):
        current = tiers.get(cid)
        if current is not None:
            out.append((cid, opened, responded, satisfaction, closed, tier_at or current))
    return out


def _uplift_orders(cursor: Any, start: datetime, end: datetime) -> dict[uuid.UUID, dict[int, int]]:
    """Revenue per assigned customer of the population over the months of ``[start, end)`` (the live path's
    ``orders`` restricted to the window, summed: one entry at the window's first month index)."""
    holdout = _table("engagement", "HoldoutAssignment")
    orders = _table("profiles", "Order")
    first_i = kpi.month_index(start)
    upto = kpi.add_months(kpi.month_start(end - timedelta(microseconds=1)), 1)
    cursor.execute(
        f"SELECT o.customer_id, SUM(o.amount) FROM {orders} o "  # noqa: S608
        f"JOIN {POP_TABLE} p ON p.customer_id = o.customer_id "
        f"JOIN {holdout} h ON h.customer_id = o.customer_id "
        f"WHERE NOT o.returned AND o.ordered_at >= %s AND o.ordered_at < %s GROUP BY o.customer_id",
        [_dt(start), _dt(upto)])
    field = apps.get_model("profiles", "Order")._meta.get_field("customer").target_field
    return {field.to_python(cid): {first_i: _cents(rev)} for cid, rev in cursor.fetchall()}


def compute(*, now: datetime) -> Rollup:
    """Every cell of the last ``KPI_ROLLUP_MONTHS`` months (ending with ``now``'s) and the uplift of each
    window of ``KPI_ROLLUP_UPLIFT_WINDOWS`` for every tier filter, as the live report at ``now``."""
    import time

    t0 = time.perf_counter()
    last = kpi.month_start(now)
    months = [kpi.add_months(last, -i) for i in range(rollup_months() - 1, -1, -1)]
    tiers, rows = kpi.population()
    rollup = Rollup(taken_at=now, months=months, rows=rows, grid=kpi.CellGrid(), customers=len(tiers))
    rollup.timings["population_s"] = time.perf_counter() - t0
    purpose = kpi.score_purpose()
    window_end = kpi.add_months(last, 1)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            cursor.execute("SET LOCAL work_mem = '256MB'")
        t = time.perf_counter()
        horizons = _population_table(cursor, purpose)
        rollup.timings["population_table_s"] = time.perf_counter() - t
        t = time.perf_counter()
        _order_cells(cursor, rollup, horizons=horizons)
        rollup.timings["orders_s"] = time.perf_counter() - t
        t = time.perf_counter()
        kpi.event_cells(rollup.grid, first=months[0], window_end=window_end, tiers=tiers, now=now,
                        tickets=_tickets(months[0], window_end, tiers))
        rollup.timings["events_s"] = time.perf_counter() - t
        t = time.perf_counter()
        known = kpi.tiers_sorted(set(getattr(settings, "TIER_SHARES", {}) or {}) | set(kpi.TIER_ORDER)
                                  | set(rows[:-1]))
        for length in uplift_windows():
            first = kpi.add_months(last, -(length - 1))
            end = min(window_end, now)
            orders = _uplift_orders(cursor, first, end) if end > first else {}
            inputs = kpi.UpliftInputs.read(start=first, end=end)
            for tier in [None, *known]:
                rollup.uplifts[(kpi.month_key(first), kpi.month_key(last), tier or "")] = kpi.uplift_report(
                    start=first, end=end, tiers=tiers, tier=tier, orders=orders, inputs=inputs)
        rollup.timings["uplift_s"] = time.perf_counter() - t
        cursor.execute(f"DROP TABLE IF EXISTS {POP_TABLE}")
    rollup.timings["total_s"] = time.perf_counter() - t0
    return rollup
