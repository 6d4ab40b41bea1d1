"""Per-customer feature columns for scoring, derived from set-based fact reads (``profiles.facts``).

``fact_aggregates(customer_ids=..., as_of=...)`` returns one float array per feature column named in
``scoring.ml.features.FEATURES`` (plus the declared CRM feature attributes), aligned with
``customer_ids``. Per call it runs one ``GROUP BY customer`` query with conditional aggregates per fact
table (orders, tickets, interactions, reviews, referrals), one query for the NPS answers and one for the
customers themselves: seven queries whatever the number of customers. Never one query per customer.

Semantics follow ``scoring.ml.features.aggregate_from_events`` exactly (the pure reference
implementation): facts count when ``at <= as_of``; "last 90 days" is ``as_of - 90 days < at <= as_of``;
day differences are whole days (floored); returned orders count in frequency but not in revenue or
margin; "first seen" is the earliest of the customer's creation and of any fact.

Only pseudonymized, non-personal columns are read (amounts, dates, counts, flags, ratings, the tickets'
sentiment scores): no personal field, no free text. CRM attributes are used only when the import declared
them as features, and names that look like special-category data (GDPR Art. 9) are never used (Art. 22(4)).

CRM feature columns: a declared attribute ``x`` becomes column ``attr:x`` holding the raw values: a float
array when every present value is numeric (booleans as 0/1, missing as NaN), else an object array of
strings (missing as ``None``). The full models encode them as recorded at training
(``scoring.ml.features.AttributeEncoding``: a numeric column, or one-hot columns of frequent values); a churn
model trained from a CRM table turns them into category codes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from config.uuids import as_uuid
from profiles import facts
from profiles.facts import declared_feature_attributes, fact_time_range, is_special_category

__all__ = [
    "ATTRIBUTE_PREFIX", "KNOWN_COLUMN", "WINDOW_DAYS", "attribute_column", "customer_attribute_table",
    "declared_feature_attributes", "fact_aggregates", "fact_time_range", "is_special_category", "window_outcomes",
]

WINDOW_DAYS = 90
ATTRIBUTE_PREFIX = "attr:"
KNOWN_COLUMN = "_known"
_DAY = 86400.0


def _num(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value) if not isinstance(value, Decimal) else float(value)


def _days_between(later: datetime, earlier: datetime) -> float:
    return float(math.floor((later - earlier).total_seconds() / _DAY))


def fact_aggregates(*, customer_ids: Sequence[uuid.UUID | str], as_of: datetime) -> dict[str, np.ndarray]:
    """Every feature column for ``customer_ids`` as of ``as_of`` (arrays aligned with the input order)."""
    ids = [as_uuid(c) for c in customer_ids]
    n = len(ids)
    recent_from = as_of - timedelta(days=WINDOW_DAYS)
    prev_from = as_of - timedelta(days=2 * WINDOW_DAYS)
    columns = facts.fact_columns(customer_ids=ids, as_of=as_of, recent_from=recent_from, prev_from=prev_from)
    if columns is not None:
        return _from_columns(ids, columns)
    pos = {cid: i for i, cid in enumerate(ids)}

    def zeros() -> np.ndarray:
        return np.zeros(n, dtype=np.float64)

    # age of the earliest sign of the customer, in seconds before as_of (negative: after as_of)
    seen_age = np.full(n, -np.inf)

    def see(i: int, at: datetime | None) -> None:
        if at is not None:
            seen_age[i] = max(seen_age[i], (as_of - at).total_seconds())

    # --- orders -------------------------------------------------------------------------------------
    order_rows = facts.order_fact_rows(customer_ids=ids, as_of=as_of, recent_from=recent_from,
                                       prev_from=prev_from)
    freq, revenue, margin = zeros(), zeros(), zeros()
    recency, first_age = np.full(n, np.nan), np.full(n, np.nan)
    n90, rev90, revprev, n_ret, n_late, late_sum = zeros(), zeros(), zeros(), zeros(), zeros(), zeros()
    categories = zeros()
    for r in order_rows:
        i = pos[as_uuid(r["customer_id"])]
        freq[i] = r["n"]
        revenue[i] = _num(r["revenue"])
        margin[i] = _num(r["margin"])
        recency[i] = _days_between(as_of, r["last"])
        first_age[i] = _days_between(as_of, r["first"])
        n90[i] = r["n_recent"]
        rev90[i] = _num(r["revenue_recent"])
        revprev[i] = _num(r["revenue_prev"])
        n_ret[i] = r["n_returned"]
        n_late[i] = r["n_late"]
        late_sum[i] = _num(r["days_late"])
        categories[i] = r["categories"]
        see(i, r["first"])

    # --- tickets ------------------------------------------------------------------------------------
    ticket_rows = facts.ticket_fact_rows(customer_ids=ids, as_of=as_of, recent_from=recent_from,
                                         prev_from=prev_from)
    tickets, tickets90, escalations = zeros(), zeros(), zeros()
    sent_avg, sent_trend, sent_n90 = zeros(), zeros(), zeros()
    satisfaction = np.full(n, np.nan)
    for t in ticket_rows:
        i = pos[as_uuid(t["customer_id"])]
        tickets[i] = t["n"]
        tickets90[i] = t["n_recent"]
        escalations[i] = t["escalations"]
        if t["sat_n"]:
            satisfaction[i] = _num(t["sat_sum"]) / t["sat_n"]
        sent_avg[i], sent_trend[i], sent_n90[i] = _sentiment_values(t)
        see(i, t["first"])

    # --- interactions (rows carry a count) ------------------------------------------------------------
    interaction_rows = facts.interaction_fact_rows(customer_ids=ids, as_of=as_of, recent_from=recent_from)
    interaction_cols = {name: zeros() for name in facts.INTERACTION_FEATURES}
    for it in interaction_rows:
        i = pos[as_uuid(it["customer_id"])]
        for name in facts.INTERACTION_FEATURES:
            interaction_cols[name][i] = _num(it[name])  # type: ignore[literal-required]
        see(i, it["first"])

    # --- reviews, referrals ---------------------------------------------------------------------------
    review_rows = facts.review_fact_rows(customer_ids=ids, as_of=as_of)
    reviews, rating = zeros(), np.full(n, np.nan)
    for rv in review_rows:
        i = pos[as_uuid(rv["customer_id"])]
        reviews[i] = rv["n"]
        rating[i] = _num(rv["rating_sum"]) / rv["n"]
        see(i, rv["first"])

    referral_rows = facts.referral_fact_rows(customer_ids=ids, as_of=as_of)
    referrals = zeros()
    for rf in referral_rows:
        i = pos[as_uuid(rf["customer_id"])]
        referrals[i] = rf["n"]
        see(i, rf["first"])

    # --- NPS: the latest answer per customer (ties: the later row wins) ------------------------------
    nps_last = np.full(n, np.nan)
    nps_first: dict[int, datetime] = {}
    for cid, at, score in facts.nps_answer_rows(customer_ids=ids, as_of=as_of):
        i = pos[as_uuid(cid)]
        nps_last[i] = float(score)
        nps_first.setdefault(i, at)
    for i, at in nps_first.items():
        see(i, at)

    # --- customers: creation time and declared CRM feature attributes --------------------------------
    # The attributes are encrypted per customer (profiles.attribute_sealing): the key columns come with the
    # same query, and only customers that declared feature attributes are decrypted.
    customer_rows = list(facts.customer_fact_rows(customer_ids=ids))
    for cid, created_at, _declared, _attributes in customer_rows:
        see(pos[as_uuid(cid)], created_at)
    attrs = _feature_attributes(customer_rows, pos, n)

    raw = {"freq": freq, "revenue": revenue, "margin": margin, "recency": recency, "first_age": first_age,
           "n90": n90, "rev90": rev90, "revprev": revprev, "n_ret": n_ret, "n_late": n_late, "late_sum": late_sum,
           "categories": categories, "tickets": tickets, "tickets90": tickets90, "escalations": escalations,
           "satisfaction": satisfaction, "sent_avg": sent_avg, "sent_trend": sent_trend, "sent_n90": sent_n90,
           "nps_last": nps_last, "reviews": reviews, "rating": rating, "referrals": referrals}
    cols = _assemble(raw, interaction_cols, seen_age)
    for name, values in attrs.items():
        cols[ATTRIBUTE_PREFIX + name] = attribute_column(values)
    return cols


def _feature_attributes(rows: Iterable[tuple[Any, Any, Any, Any]], position: Mapping[uuid.UUID, int], n: int
                        ) -> dict[str, list[Any]]:
    """The declared CRM feature attributes of ``customer_fact_rows``, by name: a column of ``n`` values at each
    customer's position (None where a customer has none). A special-category name is never a feature (decided
    once per name, not per customer)."""
    attrs: dict[str, list[Any]] = {}
    usable: dict[str, bool] = {}
    for cid, _created, declared, attributes in rows:
        if not declared or attributes is None:
            continue
        i = position[as_uuid(cid)]
        for name in declared:
            name = str(name)
            if name not in attributes:
                continue
            if name not in usable:
                usable[name] = not is_special_category(name)
            if usable[name]:
                attrs.setdefault(name, [None] * n)[i] = attributes[name]
    return attrs


def _assemble(raw: dict[str, np.ndarray], interaction_cols: dict[str, np.ndarray], seen_age: np.ndarray
              ) -> dict[str, np.ndarray]:
    """The feature columns from the per-table values, exactly as scoring.ml.features.aggregate_from_events."""
    freq, revenue, margin, recency, first_age = (raw[k] for k in ("freq", "revenue", "margin", "recency", "first_age"))
    n90, rev90, revprev, n_ret, n_late, late_sum = (raw[k] for k in ("n90", "rev90", "revprev", "n_ret", "n_late",
                                                                     "late_sum"))
    categories, tickets, tickets90, escalations, satisfaction = (
        raw[k] for k in ("categories", "tickets", "tickets90", "escalations", "satisfaction"))
    sent_avg, sent_trend, sent_n90, nps_last, reviews, rating, referrals = (
        raw[k] for k in ("sent_avg", "sent_trend", "sent_n90", "nps_last", "reviews", "rating", "referrals"))
    cols: dict[str, np.ndarray] = {}
    has = freq > 0
    known = seen_age >= 0
    seen_days = np.floor(np.where(known, seen_age, 0.0) / _DAY)
    tenure = np.where(has, first_age, np.where(known, seen_days, 0.0))
    tenure = np.nan_to_num(tenure, nan=0.0, posinf=0.0, neginf=0.0)
    cols["recency_days"] = np.where(has, np.nan_to_num(recency, nan=0.0), tenure)
    cols["frequency"] = freq
    cols["monetary_total"] = revenue
    cols["monetary_avg"] = _safe_div(revenue, freq)
    cols["margin_total"] = margin
    cols["tenure_days"] = tenure
    cols["orders_90d"] = n90
    cols["revenue_90d"] = rev90
    cols["revenue_prev_90d"] = revprev
    cols["revenue_trend"] = _safe_div(rev90 - revprev, rev90 + revprev)
    cols["return_rate"] = _safe_div(n_ret, freq)
    cols["late_payment_rate"] = _safe_div(n_late, freq)
    cols["avg_days_late"] = _safe_div(late_sum, freq)
    cols["categories_ordered"] = categories
    cols["tickets_total"] = tickets
    cols["tickets_90d"] = tickets90
    cols["escalations"] = escalations
    cols["satisfaction_avg"] = satisfaction
    cols["sentiment_avg"] = sent_avg
    cols["sentiment_trend_90d"] = sent_trend
    cols["sentiment_tickets_90d"] = sent_n90
    cols.update(interaction_cols)
    cols["nps_last"] = nps_last
    cols["reviews_count"] = reviews
    cols["review_rating_avg"] = rating
    cols["referrals_count"] = referrals
    # not a feature: 1.0 when the customer existed at as_of (created, or any fact, on or before it)
    cols[KNOWN_COLUMN] = known.astype(np.float64)

    return cols


def _from_columns(ids: list[uuid.UUID], columns: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``fact_aggregates`` from ``profiles.facts.fact_columns`` (PostgreSQL): the same values, by column."""
    n = len(ids)
    o, t, it, rv, rf, nps, cu = (columns[k] for k in ("order", "ticket", "interaction", "review", "referral", "nps",
                                                       "customer"))

    def days(age: np.ndarray) -> np.ndarray:
        return np.floor(age / _DAY)

    def ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
        out = np.full(n, empty)
        np.divide(num, den, out=out, where=den > 0)
        return out

    has_sent_trend = (t["sent_recent_n"] > 0) & (t["sent_prev_n"] > 0)
    raw = {
        "freq": o["n"], "revenue": o["revenue"], "margin": o["margin"], "recency": days(o["last_age"]),
        "first_age": days(o["first_age"]), "n90": o["n_recent"], "rev90": o["revenue_recent"],
        "revprev": o["revenue_prev"], "n_ret": o["n_returned"], "n_late": o["n_late"], "late_sum": o["days_late"],
        "categories": o["categories"], "tickets": t["n"], "tickets90": t["n_recent"],
        "escalations": t["escalations"], "satisfaction": ratio(t["sat_sum"], t["sat_n"], np.nan),
        "sent_avg": ratio(t["sent_sum"], t["sent_n"], 0.0),
        "sent_trend": np.where(has_sent_trend, ratio(t["sent_recent_sum"], t["sent_recent_n"], 0.0)
                               - ratio(t["sent_prev_sum"], t["sent_prev_n"], 0.0), 0.0),
        "sent_n90": t["sent_recent_n"], "nps_last": nps["last"], "reviews": rv["n"],
        "rating": ratio(rv["rating_sum"], rv["n"], np.nan), "referrals": rf["n"],
    }
    interaction_cols = {name: it[name] for name in facts.INTERACTION_FEATURES}
    # the earliest sign of the customer: its creation or any fact (ages in seconds before as_of)
    seen_age = np.full(n, -np.inf)
    for age in (o["first_age"], t["first_age"], it["first_age"], rv["first_age"], rf["first_age"],
                nps["first_age"], cu["created_age"]):
        seen_age = np.where(np.isnan(age), seen_age, np.maximum(seen_age, age))
    cols = _assemble(raw, interaction_cols, seen_age)
    declared = np.flatnonzero(cu["declared"] > 0)
    if declared.size:
        where = {ids[i]: int(i) for i in declared}
        attrs = _feature_attributes(facts.customer_fact_rows(customer_ids=list(where)), where, n)
        for name, values in attrs.items():
            cols[ATTRIBUTE_PREFIX + name] = attribute_column(values)
    return cols


def _sentiment_values(t: dict[str, Any]) -> tuple[float, float, float]:
    """(mean sentiment, 90-day trend, scored tickets in 90 days) as ``scoring.ml.features`` defines them."""
    mean = _num(t["sent_sum"]) / t["sent_n"] if t["sent_n"] else 0.0
    trend = 0.0
    if t["sent_recent_n"] and t["sent_prev_n"]:
        trend = _num(t["sent_recent_sum"]) / t["sent_recent_n"] - _num(t["sent_prev_sum"]) / t["sent_prev_n"]
    return mean, trend, float(t["sent_recent_n"])


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def attribute_column(values: Sequence[Any]) -> np.ndarray:
    """Float array if every present value is numeric (bool -> 0/1, missing -> NaN), else strings/None."""
    numeric = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            numeric[i] = 1.0 if value else 0.0
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            break
        if not math.isfinite(number):
            break
        numeric[i] = number
    else:
        return numeric
    return np.array([None if v is None or v == "" else str(v).strip() for v in values], dtype=object)


def customer_attribute_table(
    *, customer_ids: Sequence[uuid.UUID | str], names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Raw CRM attributes of ``customer_ids`` (one query): declared feature attributes, or ``names``.

    With ``names`` given (e.g. a label column plus the features of a table-trained model), those
    attributes are read whether declared or not; special-category names are never returned.
    """
    ids = [as_uuid(c) for c in customer_ids]
    pos = {cid: i for i, cid in enumerate(ids)}
    wanted = None if names is None else [str(x) for x in names]
    table: dict[str, list[Any]] = {name: [None] * len(ids) for name in wanted or []}
    for cid, declared, attributes in facts.customer_attribute_rows(customer_ids=ids):
        i = pos[as_uuid(cid)]
        for name in wanted if wanted is not None else [str(x) for x in declared or []]:
            if name in attributes:
                table.setdefault(name, [None] * len(ids))[i] = attributes[name]
    return {name: attribute_column(values) for name, values in table.items() if not is_special_category(name)}


def window_outcomes(
    *, customer_ids: Sequence[uuid.UUID | str], start: datetime, end: datetime
) -> dict[str, np.ndarray]:
    """What happened in ``(start, end]`` per customer (training labels), as
    ``scoring.ml.features.window_outcomes``: net revenue and orders, referrals, an NPS answer >= 9, a review
    rating >= 4, a kept order in a category the customer had not ordered from before. Five set-based
    queries."""
    ids = [as_uuid(c) for c in customer_ids]
    n = len(ids)
    pos = {cid: i for i, cid in enumerate(ids)}
    revenue, orders, referrals = np.zeros(n), np.zeros(n), np.zeros(n)
    promoter, good_review = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for r in facts.window_order_rows(customer_ids=ids, start=start, end=end):
        i = pos[as_uuid(r["customer_id"])]
        orders[i] = r["n"]
        revenue[i] = _num(r["revenue"])
    for cid, count in facts.window_referral_counts(customer_ids=ids, start=start, end=end):
        referrals[pos[as_uuid(cid)]] = count
    for cid in facts.window_promoters(customer_ids=ids, start=start, end=end):
        promoter[pos[as_uuid(cid)]] = True
    for cid in facts.window_good_reviewers(customer_ids=ids, start=start, end=end):
        good_review[pos[as_uuid(cid)]] = True
    new_category = np.zeros(n, dtype=bool)
    for cid in facts.window_new_category_buyers(customer_ids=ids, start=start, end=end):
        new_category[pos[as_uuid(cid)]] = True
    return {"revenue": revenue, "orders": orders, "referrals": referrals, "promoter": promoter,
            "good_review": good_review, "advocacy": (referrals > 0) | promoter | good_review,
            "new_category": new_category}
