"""Per-customer feature columns for scoring, computed with set-based SQL (a selector module of profiles).

``fact_aggregates(customer_ids=..., as_of=...)`` returns one float array per feature column named in
``scoring.ml.features.FEATURES`` (plus the declared CRM feature attributes), aligned with
``customer_ids``. Per call it runs one ``GROUP BY customer`` query with conditional aggregates per fact
table (orders, tickets, interactions, reviews, referrals), one query for the NPS answers and one for the
customers themselves: seven queries whatever the number of customers. Never one query per customer.

Semantics follow ``scoring.ml.features.aggregate_from_events`` exactly (the pure reference
implementation): facts count when ``at <= as_of``; "last 90 days" is ``as_of - 90 days < at <= as_of``;
day differences are whole days (floored); returned orders count in frequency but not in revenue or
margin; "first seen" is the earliest of the customer's creation and of any fact.

Only pseudonymized, non-personal columns are read (amounts, dates, counts, flags, ratings): no personal
field, no free text. CRM attributes are used only when the import declared them as features, and names
that look like special-category data (GDPR Art. 9) are never used (Art. 22(4)).

CRM feature columns: a numeric (or boolean) attribute ``x`` becomes column ``attr:x``; a categorical
(string) attribute becomes one-hot columns ``attr:x=value``. Missing values are NaN.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, Max, Min, Q, Sum

from profiles.models import Customer, Interaction, NpsAnswer, Order, Referral, Review, Ticket

WINDOW_DAYS = 90
ATTRIBUTE_PREFIX = "attr:"
_DAY = 86400.0
_INTERACTION_FEATURES = {
    "logins_90d": Interaction.Kind.LOGIN,
    "email_opens_90d": Interaction.Kind.EMAIL_OPEN,
    "email_clicks_90d": Interaction.Kind.EMAIL_CLICK,
    "feature_uses_90d": Interaction.Kind.FEATURE_USE,
    "cart_abandons_90d": Interaction.Kind.CART_ABANDON,
}


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _num(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value) if not isinstance(value, Decimal) else float(value)


def _days_between(later: datetime, earlier: datetime) -> float:
    return float(math.floor((later - earlier).total_seconds() / _DAY))


def _special_category(name: str) -> bool:
    from scoring.ml.features import special_category_match  # pure module, no Django

    return special_category_match(name) is not None


def fact_aggregates(*, customer_ids: Sequence[uuid.UUID | str], as_of: datetime) -> dict[str, np.ndarray]:
    """Every feature column for ``customer_ids`` as of ``as_of`` (arrays aligned with the input order)."""
    ids = [_as_uuid(c) for c in customer_ids]
    n = len(ids)
    pos = {cid: i for i, cid in enumerate(ids)}
    recent_from = as_of - timedelta(days=WINDOW_DAYS)
    prev_from = as_of - timedelta(days=2 * WINDOW_DAYS)

    def zeros() -> np.ndarray:
        return np.zeros(n, dtype=np.float64)

    cols: dict[str, np.ndarray] = {}
    # age of the earliest sign of the customer, in seconds before as_of (negative: after as_of)
    seen_age = np.full(n, -np.inf)

    def see(i: int, at: datetime | None) -> None:
        if at is not None:
            seen_age[i] = max(seen_age[i], (as_of - at).total_seconds())

    # --- orders -------------------------------------------------------------------------------------
    kept = Q(returned=False)
    recent = Q(ordered_at__gt=recent_from)
    prev = Q(ordered_at__gt=prev_from, ordered_at__lte=recent_from)
    rows = (
        Order.objects.filter(customer_id__in=ids, ordered_at__lte=as_of)
        .values("customer_id")
        .annotate(
            n=Count("id"),
            revenue=Sum("amount", filter=kept),
            margin=Sum("margin", filter=kept),
            first=Min("ordered_at"),
            last=Max("ordered_at"),
            n_recent=Count("id", filter=recent),
            revenue_recent=Sum("amount", filter=recent & kept),
            revenue_prev=Sum("amount", filter=prev & kept),
            n_returned=Count("id", filter=Q(returned=True)),
            n_late=Count("id", filter=Q(days_late__gt=0)),
            days_late=Sum("days_late", filter=Q(days_late__gt=0)),
        )
        .order_by()
    )
    freq, revenue, margin = zeros(), zeros(), zeros()
    recency, first_age = np.full(n, np.nan), np.full(n, np.nan)
    n90, rev90, revprev, n_ret, n_late, late_sum = zeros(), zeros(), zeros(), zeros(), zeros(), zeros()
    for r in rows:
        i = pos[_as_uuid(r["customer_id"])]
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
        see(i, r["first"])

    # --- tickets ------------------------------------------------------------------------------------
    rows = (
        Ticket.objects.filter(customer_id__in=ids, opened_at__lte=as_of)
        .values("customer_id")
        .annotate(
            n=Count("id"),
            n_recent=Count("id", filter=Q(opened_at__gt=recent_from)),
            escalations=Count("id", filter=Q(escalated=True)),
            sat_sum=Sum("satisfaction", filter=Q(satisfaction__isnull=False)),
            sat_n=Count("id", filter=Q(satisfaction__isnull=False)),
            first=Min("opened_at"),
        )
        .order_by()
    )
    tickets, tickets90, escalations = zeros(), zeros(), zeros()
    satisfaction = np.full(n, np.nan)
    for r in rows:
        i = pos[_as_uuid(r["customer_id"])]
        tickets[i] = r["n"]
        tickets90[i] = r["n_recent"]
        escalations[i] = r["escalations"]
        if r["sat_n"]:
            satisfaction[i] = _num(r["sat_sum"]) / r["sat_n"]
        see(i, r["first"])

    # --- interactions (rows carry a count) ------------------------------------------------------------
    recent_i = Q(at__gt=recent_from)
    rows = (
        Interaction.objects.filter(customer_id__in=ids, at__lte=as_of)
        .values("customer_id")
        .annotate(
            first=Min("at"),
            **{name: Sum("count", filter=recent_i & Q(kind=kind)) for name, kind in _INTERACTION_FEATURES.items()},
        )
        .order_by()
    )
    interaction_cols = {name: zeros() for name in _INTERACTION_FEATURES}
    for r in rows:
        i = pos[_as_uuid(r["customer_id"])]
        for name in _INTERACTION_FEATURES:
            interaction_cols[name][i] = _num(r[name])
        see(i, r["first"])

    # --- reviews, referrals ---------------------------------------------------------------------------
    rows = (
        Review.objects.filter(customer_id__in=ids, at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), rating_sum=Sum("rating"), first=Min("at"))
        .order_by()
    )
    reviews, rating = zeros(), np.full(n, np.nan)
    for r in rows:
        i = pos[_as_uuid(r["customer_id"])]
        reviews[i] = r["n"]
        rating[i] = _num(r["rating_sum"]) / r["n"]
        see(i, r["first"])

    rows = (
        Referral.objects.filter(customer_id__in=ids, at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), first=Min("at"))
        .order_by()
    )
    referrals = zeros()
    for r in rows:
        i = pos[_as_uuid(r["customer_id"])]
        referrals[i] = r["n"]
        see(i, r["first"])

    # --- NPS: the latest answer per customer (ties: the later row wins) ------------------------------
    nps_last = np.full(n, np.nan)
    nps_first: dict[int, datetime] = {}
    for cid, at, score in (
        NpsAnswer.objects.filter(customer_id__in=ids, at__lte=as_of)
        .order_by("customer_id", "at", "id")
        .values_list("customer_id", "at", "score")
    ):
        i = pos[_as_uuid(cid)]
        nps_last[i] = float(score)
        nps_first.setdefault(i, at)
    for i, at in nps_first.items():
        see(i, at)

    # --- customers: creation time and declared CRM feature attributes --------------------------------
    attr_numeric: dict[str, np.ndarray] = {}
    attr_categorical: dict[str, dict[int, str]] = {}
    for cid, created_at, attributes, declared in Customer.objects.filter(id__in=ids).values_list(
        "id", "created_at", "attributes", "feature_attributes"
    ):
        i = pos[_as_uuid(cid)]
        see(i, created_at)
        attributes = attributes or {}
        for name in declared or []:
            name = str(name)
            if _special_category(name) or name not in attributes:
                continue
            value = attributes[name]
            if isinstance(value, bool):
                value = 1.0 if value else 0.0
            if isinstance(value, int | float) and math.isfinite(float(value)):
                attr_numeric.setdefault(name, np.full(n, np.nan))[i] = float(value)
            elif isinstance(value, str) and value.strip():
                try:
                    number = float(value)
                except ValueError:
                    attr_categorical.setdefault(name, {})[i] = value.strip().lower()
                else:
                    if math.isfinite(number):
                        attr_numeric.setdefault(name, np.full(n, np.nan))[i] = number

    # --- assemble, exactly as scoring.ml.features.aggregate_from_events ------------------------------
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
    cols["tickets_total"] = tickets
    cols["tickets_90d"] = tickets90
    cols["escalations"] = escalations
    cols["satisfaction_avg"] = satisfaction
    cols.update(interaction_cols)
    cols["nps_last"] = nps_last
    cols["reviews_count"] = reviews
    cols["review_rating_avg"] = rating
    cols["referrals_count"] = referrals

    for name, values in attr_numeric.items():
        cols[ATTRIBUTE_PREFIX + name] = values
    for name, by_row in attr_categorical.items():
        for level in sorted(set(by_row.values())):
            col = np.zeros(n, dtype=np.float64)
            col[[i for i, v in by_row.items() if v == level]] = 1.0
            cols[f"{ATTRIBUTE_PREFIX}{name}={level}"] = col
    return cols


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
