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

Only pseudonymized, non-personal columns are read (amounts, dates, counts, flags, ratings, the tickets'
sentiment scores): no personal field, no free text. CRM attributes are used only when the import declared them as features, and names
that look like special-category data (GDPR Art. 9) are never used (Art. 22(4)).

CRM feature columns: a declared attribute ``x`` becomes column ``attr:x`` holding the raw values: a float
array when every present value is numeric (booleans as 0/1, missing as NaN), else an object array of
strings (missing as ``None``). The full models encode them as recorded at training
(``scoring.ml.features.AttributeEncoding``: a numeric column, or one-hot columns of frequent values); a churn
model trained from a CRM table turns them into category codes.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, Exists, F, Lookup, Max, Min, OuterRef, Q, Sum

from config.envelope import DecryptionError
from config.uuids import as_uuid
from profiles import attribute_sealing
from profiles.models import Customer, Interaction, NpsAnswer, Order, Referral, Review, Ticket

WINDOW_DAYS = 90
ATTRIBUTE_PREFIX = "attr:"
KNOWN_COLUMN = "_known"
_DAY = 86400.0
_INTERACTION_FEATURES = {
    "logins_90d": Interaction.Kind.LOGIN,
    "email_opens_90d": Interaction.Kind.EMAIL_OPEN,
    "email_clicks_90d": Interaction.Kind.EMAIL_CLICK,
    "feature_uses_90d": Interaction.Kind.FEATURE_USE,
    "cart_abandons_90d": Interaction.Kind.CART_ABANDON,
}


class _InArray(Lookup):
    """``column IN (ids)`` with the ids as ONE array parameter on PostgreSQL (``= ANY(%s)``): no SQL text and
    no per-value work proportional to the number of ids (a 5,000-id chunk is one parameter)."""

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":  # one text parameter, cast once by the server
            return f"{lhs} = ANY(%s::uuid[])", [*lhs_params, "{" + ",".join(str(v) for v in values) + "}"]
        if not values:
            return "1 = 0", list(lhs_params)
        field = self.lhs.output_field
        prepared = [field.get_db_prep_value(v, connection, prepared=False) for v in values]
        return f"{lhs} IN ({', '.join(['%s'] * len(prepared))})", [*lhs_params, *prepared]


def ids_in(column: str, ids: Sequence[uuid.UUID]) -> Lookup:
    """A filter expression: ``column`` is one of ``ids`` (UUIDs), e.g.
    ``Order.objects.filter(ids_in("customer_id", ids))``. Set-based reads of a whole chunk use it."""
    return _InArray(F(column), [as_uuid(c) for c in ids])


def _num(value: Any) -> float:
    if value is None:
        return 0.0
    return float(value) if not isinstance(value, Decimal) else float(value)


def _days_between(later: datetime, earlier: datetime) -> float:
    return float(math.floor((later - earlier).total_seconds() / _DAY))


def is_special_category(name: str) -> bool:
    """True when ``name`` may not be a feature: Art. 9 data, or another protected characteristic (gender,
    age unless ``SCORING_ALLOW_AGE_FEATURE``); see ``profiles.protected``."""
    from .protected import is_protected_feature_name

    return is_protected_feature_name(name)


def fact_aggregates(*, customer_ids: Sequence[uuid.UUID | str], as_of: datetime) -> dict[str, np.ndarray]:
    """Every feature column for ``customer_ids`` as of ``as_of`` (arrays aligned with the input order)."""
    ids = [as_uuid(c) for c in customer_ids]
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
    order_rows = (
        Order.objects.filter(ids_in("customer_id", ids), ordered_at__lte=as_of)
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
            categories=Count("category", distinct=True, filter=~Q(category="")),
        )
        .order_by()
    )
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
    ticket_rows = (
        Ticket.objects.filter(ids_in("customer_id", ids), opened_at__lte=as_of)
        .values("customer_id")
        .annotate(
            n=Count("id"),
            n_recent=Count("id", filter=Q(opened_at__gt=recent_from)),
            escalations=Count("id", filter=Q(escalated=True)),
            sat_sum=Sum("satisfaction", filter=Q(satisfaction__isnull=False)),
            sat_n=Count("id", filter=Q(satisfaction__isnull=False)),
            first=Min("opened_at"),
            **_sentiment_annotations(recent_from, prev_from),
        )
        .order_by()
    )
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
    recent_i = Q(at__gt=recent_from)
    interaction_rows = (
        Interaction.objects.filter(ids_in("customer_id", ids), at__lte=as_of)
        .values("customer_id")
        .annotate(
            first=Min("at"),
            **{name: Sum("count", filter=recent_i & Q(kind=kind)) for name, kind in _INTERACTION_FEATURES.items()},
        )
        .order_by()
    )
    interaction_cols = {name: zeros() for name in _INTERACTION_FEATURES}
    for it in interaction_rows:
        i = pos[as_uuid(it["customer_id"])]
        for name in _INTERACTION_FEATURES:
            interaction_cols[name][i] = _num(it[name])  # type: ignore[literal-required]
        see(i, it["first"])

    # --- reviews, referrals ---------------------------------------------------------------------------
    review_rows = (
        Review.objects.filter(ids_in("customer_id", ids), at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), rating_sum=Sum("rating"), first=Min("at"))
        .order_by()
    )
    reviews, rating = zeros(), np.full(n, np.nan)
    for rv in review_rows:
        i = pos[as_uuid(rv["customer_id"])]
        reviews[i] = rv["n"]
        rating[i] = _num(rv["rating_sum"]) / rv["n"]
        see(i, rv["first"])

    referral_rows = (
        Referral.objects.filter(ids_in("customer_id", ids), at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), first=Min("at"))
        .order_by()
    )
    referrals = zeros()
    for rf in referral_rows:
        i = pos[as_uuid(rf["customer_id"])]
        referrals[i] = rf["n"]
        see(i, rf["first"])

    # --- NPS: the latest answer per customer (ties: the later row wins) ------------------------------
    nps_last = np.full(n, np.nan)
    nps_first: dict[int, datetime] = {}
    for cid, at, score in (
        NpsAnswer.objects.filter(ids_in("customer_id", ids), at__lte=as_of)
        .order_by("customer_id", "at", "id")
        .values_list("customer_id", "at", "score")
    ):
        i = pos[as_uuid(cid)]
        nps_last[i] = float(score)
        nps_first.setdefault(i, at)
    for i, at in nps_first.items():
        see(i, at)

    # --- customers: creation time and declared CRM feature attributes --------------------------------
    # The attributes are encrypted per customer (profiles.attribute_sealing): the key columns come with the
    # same query, and only customers that declared feature attributes are decrypted.
    attrs: dict[str, list[Any]] = {}
    usable: dict[str, bool] = {}  # name -> may be a feature (decided once per name, not per customer)
    for cid, created_at, declared, *sealed in Customer.objects.filter(ids_in("id", ids)).values_list(
        "id", "created_at", "feature_attributes", *attribute_sealing.KEY_COLUMNS
    ):
        i = pos[as_uuid(cid)]
        see(i, created_at)
        if not declared:
            continue
        attributes = _attributes_or_empty(as_uuid(cid), sealed)
        for name in declared:
            name = str(name)
            if name not in attributes:
                continue
            if name not in usable:
                usable[name] = not is_special_category(name)
            if usable[name]:
                attrs.setdefault(name, [None] * n)[i] = attributes[name]

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

    for name, values in attrs.items():
        cols[ATTRIBUTE_PREFIX + name] = attribute_column(values)
    return cols


def _sentiment_annotations(recent_from: datetime, prev_from: datetime) -> dict[str, Any]:
    """Ticket sentiment sums and counts (all, last 90 days, the 90 before), in the tickets' one GROUP BY."""
    scored = Q(sentiment_score__isnull=False)
    recent = scored & Q(opened_at__gt=recent_from)
    prev = scored & Q(opened_at__gt=prev_from, opened_at__lte=recent_from)
    return {
        "sent_sum": Sum("sentiment_score", filter=scored), "sent_n": Count("id", filter=scored),
        "sent_recent_sum": Sum("sentiment_score", filter=recent), "sent_recent_n": Count("id", filter=recent),
        "sent_prev_sum": Sum("sentiment_score", filter=prev), "sent_prev_n": Count("id", filter=prev),
    }


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


def _attributes_or_empty(customer_id: uuid.UUID, sealed: Sequence[Any]) -> dict[str, Any]:
    """Decrypted attributes from the ``attribute_sealing.KEY_COLUMNS`` values ({} when the key is gone: a
    customer erased while the batch ran has no attributes any more)."""
    try:
        return attribute_sealing.attributes_from_values(customer_id, *sealed)
    except DecryptionError:
        return {}


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
    for cid, declared, *sealed in Customer.objects.filter(id__in=ids).values_list(
        "id", "feature_attributes", *attribute_sealing.KEY_COLUMNS
    ):
        i = pos[as_uuid(cid)]
        attributes = _attributes_or_empty(as_uuid(cid), sealed)
        for name in wanted if wanted is not None else [str(x) for x in declared or []]:
            if name in attributes:
                table.setdefault(name, [None] * len(ids))[i] = attributes[name]
    return {name: attribute_column(values) for name, values in table.items() if not is_special_category(name)}


def declared_feature_attributes(*, customer_ids: Sequence[uuid.UUID | str] | None = None) -> list[str]:
    """Names declared as features by any customer import (sorted), special categories excluded."""
    qs = Customer.objects.exclude(feature_attributes=[])
    if customer_ids is not None:
        qs = qs.filter(id__in=[as_uuid(c) for c in customer_ids])
    names: set[str] = set()
    for declared in qs.values_list("feature_attributes", flat=True).distinct():
        names.update(str(x) for x in declared or [])
    return sorted(n for n in names if not is_special_category(n))


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
    for r in (
        Order.objects.filter(customer_id__in=ids, ordered_at__gt=start, ordered_at__lte=end)
        .values("customer_id")
        .annotate(n=Count("id"), revenue=Sum("amount", filter=Q(returned=False)))
        .order_by()
    ):
        i = pos[as_uuid(r["customer_id"])]
        orders[i] = r["n"]
        revenue[i] = _num(r["revenue"])
    for cid, count in (
        Referral.objects.filter(customer_id__in=ids, at__gt=start, at__lte=end)
        .values("customer_id").annotate(n=Count("id")).order_by().values_list("customer_id", "n")
    ):
        referrals[pos[as_uuid(cid)]] = count
    for cid in (
        NpsAnswer.objects.filter(customer_id__in=ids, at__gt=start, at__lte=end, score__gte=9)
        .values_list("customer_id", flat=True).distinct()
    ):
        promoter[pos[as_uuid(cid)]] = True
    for cid in (
        Review.objects.filter(customer_id__in=ids, at__gt=start, at__lte=end, rating__gte=4)
        .values_list("customer_id", flat=True).distinct()
    ):
        good_review[pos[as_uuid(cid)]] = True
    new_category = np.zeros(n, dtype=bool)
    tried_before = Order.objects.filter(customer_id=OuterRef("customer_id"), category=OuterRef("category"),
                                        ordered_at__lte=start)
    for cid in (
        Order.objects.filter(customer_id__in=ids, ordered_at__gt=start, ordered_at__lte=end, returned=False)
        .exclude(category="").filter(~Exists(tried_before))
        .values_list("customer_id", flat=True).distinct().order_by()
    ):
        new_category[pos[as_uuid(cid)]] = True
    return {"revenue": revenue, "orders": orders, "referrals": referrals, "promoter": promoter,
            "good_review": good_review, "advocacy": (referrals > 0) | promoter | good_review,
            "new_category": new_category}


def fact_time_range(*, customer_ids: Sequence[uuid.UUID | str] | None = None) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest fact time (orders, tickets, interactions, reviews, NPS, referrals)."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for model, column in ((Order, "ordered_at"), (Ticket, "opened_at"), (Interaction, "at"), (Review, "at"),
                          (NpsAnswer, "at"), (Referral, "at")):
        qs = model.objects.all()
        if customer_ids is not None:
            qs = qs.filter(customer_id__in=[as_uuid(c) for c in customer_ids])
        agg = qs.aggregate(lo=Min(column), hi=Max(column))
        if agg["lo"] is not None:
            lows.append(agg["lo"])
            highs.append(agg["hi"])
    return (min(lows) if lows else None, max(highs) if highs else None)
