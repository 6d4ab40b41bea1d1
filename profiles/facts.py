"""Set-based reads of the customers' facts (a selector module of profiles): what scoring derives features from.

Each read is one ``GROUP BY customer`` query (or one ordered scan) over a whole chunk of customers, whatever
its size: never one query per customer. Only pseudonymized, non-personal columns are read (amounts, dates,
counts, flags, ratings, the tickets' sentiment scores): no personal field, no free text. The feature
derivation itself (windows, rates, the assembled columns) lives in ``scoring.features``.

Facts count when ``at <= as_of``; the windows passed in (``recent_from``, ``prev_from``) are half-open on the
left: ``recent_from < at <= as_of``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Count, DecimalField, Exists, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import Cast

from config.envelope import DecryptionError
from config.lookups import ids_in
from config.uuids import as_uuid
from profiles import attribute_sealing
from profiles.models import Customer, Interaction, NpsAnswer, Order, Referral, Review, Ticket

#: interaction feature name -> interaction kind (summed ``count`` per kind in the recent window)
INTERACTION_FEATURES = {
    "logins_90d": Interaction.Kind.LOGIN,
    "email_opens_90d": Interaction.Kind.EMAIL_OPEN,
    "email_clicks_90d": Interaction.Kind.EMAIL_CLICK,
    "feature_uses_90d": Interaction.Kind.FEATURE_USE,
    "cart_abandons_90d": Interaction.Kind.CART_ABANDON,
}


def is_special_category(name: str) -> bool:
    """True when ``name`` may not be a feature: Art. 9 data, or another protected characteristic (gender,
    age unless ``SCORING_ALLOW_AGE_FEATURE``); see ``profiles.protected``."""
    from .protected import is_protected_feature_name

    return is_protected_feature_name(name)


def order_fact_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime, recent_from: datetime,
                    prev_from: datetime) -> Iterable[dict[str, Any]]:
    """Per customer with orders at or before ``as_of``: counts, sums, first and last order (one query)."""
    kept = Q(returned=False)
    recent = Q(ordered_at__gt=recent_from)
    prev = Q(ordered_at__gt=prev_from, ordered_at__lte=recent_from)
    return (
        Order.objects.filter(ids_in("customer_id", customer_ids), ordered_at__lte=as_of)
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


def ticket_fact_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime, recent_from: datetime,
                     prev_from: datetime) -> Iterable[dict[str, Any]]:
    """Per customer with tickets: counts, satisfaction and sentiment sums and counts (all, recent window, the
    window before), first ticket (one query)."""
    scored = Q(sentiment_score__isnull=False)
    recent = scored & Q(opened_at__gt=recent_from)
    prev = scored & Q(opened_at__gt=prev_from, opened_at__lte=recent_from)
    # Sentiment scores are floats: summed as exact decimals (SENTIMENT_SUM_TYPE, here and in the column read),
    # so the sums do not depend on the order a query plan visits the rows in.
    sentiment = Cast("sentiment_score", output_field=DecimalField(max_digits=20, decimal_places=10))
    return (
        Ticket.objects.filter(ids_in("customer_id", customer_ids), opened_at__lte=as_of)
        .values("customer_id")
        .annotate(
            n=Count("id"),
            n_recent=Count("id", filter=Q(opened_at__gt=recent_from)),
            escalations=Count("id", filter=Q(escalated=True)),
            sat_sum=Sum("satisfaction", filter=Q(satisfaction__isnull=False)),
            sat_n=Count("id", filter=Q(satisfaction__isnull=False)),
            first=Min("opened_at"),
            sent_sum=Sum(sentiment, filter=scored), sent_n=Count("id", filter=scored),
            sent_recent_sum=Sum(sentiment, filter=recent), sent_recent_n=Count("id", filter=recent),
            sent_prev_sum=Sum(sentiment, filter=prev), sent_prev_n=Count("id", filter=prev),
        )
        .order_by()
    )


def interaction_fact_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime, recent_from: datetime
                          ) -> Iterable[dict[str, Any]]:
    """Per customer with interactions: first interaction and, per ``INTERACTION_FEATURES`` name, the summed
    counts of that kind in the recent window (one query)."""
    recent = Q(at__gt=recent_from)
    return (
        Interaction.objects.filter(ids_in("customer_id", customer_ids), at__lte=as_of)
        .values("customer_id")
        .annotate(first=Min("at"),
                  **{name: Sum("count", filter=recent & Q(kind=kind)) for name, kind in INTERACTION_FEATURES.items()})
        .order_by()
    )


def review_fact_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime) -> Iterable[dict[str, Any]]:
    """Per customer with reviews: count, rating sum, first review (one query)."""
    return (
        Review.objects.filter(ids_in("customer_id", customer_ids), at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), rating_sum=Sum("rating"), first=Min("at"))
        .order_by()
    )


def referral_fact_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime) -> Iterable[dict[str, Any]]:
    """Per customer with referrals: count, first referral (one query)."""
    return (
        Referral.objects.filter(ids_in("customer_id", customer_ids), at__lte=as_of)
        .values("customer_id")
        .annotate(n=Count("id"), first=Min("at"))
        .order_by()
    )


def nps_answer_rows(*, customer_ids: Sequence[uuid.UUID], as_of: datetime) -> Iterable[tuple[Any, datetime, int]]:
    """(customer, at, score) of every NPS answer at or before ``as_of``, by customer, time and row (one query)."""
    return (
        NpsAnswer.objects.filter(ids_in("customer_id", customer_ids), at__lte=as_of)
        .order_by("customer_id", "at", "id")
        .values_list("customer_id", "at", "score")
    )


def attributes_or_empty(customer_id: uuid.UUID, sealed: Sequence[Any]) -> dict[str, Any]:
    """Decrypted attributes from the ``attribute_sealing.KEY_COLUMNS`` values ({} when the key is gone: a
    customer erased while the batch ran has no attributes any more)."""
    try:
        return attribute_sealing.attributes_from_values(customer_id, *sealed)
    except DecryptionError:
        return {}


def customer_fact_rows(*, customer_ids: Sequence[uuid.UUID]
                       ) -> Iterable[tuple[Any, datetime, list[Any], dict[str, Any] | None]]:
    """(customer, created at, declared feature attribute names, decrypted attributes or None) per customer
    (one query). Only customers that declared feature attributes are decrypted."""
    for cid, created_at, declared, *sealed in Customer.objects.filter(ids_in("id", customer_ids)).values_list(
        "id", "created_at", "feature_attributes", *attribute_sealing.KEY_COLUMNS
    ):
        yield cid, created_at, declared, (attributes_or_empty(as_uuid(cid), sealed) if declared else None)


def customer_attribute_rows(*, customer_ids: Sequence[uuid.UUID]
                            ) -> Iterable[tuple[Any, list[Any], dict[str, Any]]]:
    """(customer, declared feature attribute names, decrypted attributes) per customer (one query)."""
    for cid, declared, *sealed in Customer.objects.filter(id__in=list(customer_ids)).values_list(
        "id", "feature_attributes", *attribute_sealing.KEY_COLUMNS
    ):
        yield cid, declared, attributes_or_empty(as_uuid(cid), sealed)


def declared_feature_attributes(*, customer_ids: Sequence[uuid.UUID | str] | None = None) -> list[str]:
    """Names declared as features by any customer import (sorted), special categories excluded."""
    qs = Customer.objects.exclude(feature_attributes=[])
    if customer_ids is not None:
        qs = qs.filter(id__in=[as_uuid(c) for c in customer_ids])
    names: set[str] = set()
    for declared in qs.values_list("feature_attributes", flat=True).distinct():
        names.update(str(x) for x in declared or [])
    return sorted(n for n in names if not is_special_category(n))


def window_order_rows(*, customer_ids: Sequence[uuid.UUID], start: datetime, end: datetime
                      ) -> Iterable[dict[str, Any]]:
    """Per customer: orders and kept revenue in ``(start, end]`` (one query)."""
    return (
        Order.objects.filter(customer_id__in=list(customer_ids), ordered_at__gt=start, ordered_at__lte=end)
        .values("customer_id")
        .annotate(n=Count("id"), revenue=Sum("amount", filter=Q(returned=False)))
        .order_by()
    )


def window_referral_counts(*, customer_ids: Sequence[uuid.UUID], start: datetime, end: datetime
                           ) -> Iterable[tuple[Any, int]]:
    """(customer, referrals in ``(start, end]``) (one query)."""
    return (Referral.objects.filter(customer_id__in=list(customer_ids), at__gt=start, at__lte=end)
            .values("customer_id").annotate(n=Count("id")).order_by().values_list("customer_id", "n"))


def window_promoters(*, customer_ids: Sequence[uuid.UUID], start: datetime, end: datetime) -> Iterable[Any]:
    """Customers with an NPS answer >= 9 in ``(start, end]`` (one query)."""
    return (NpsAnswer.objects.filter(customer_id__in=list(customer_ids), at__gt=start, at__lte=end, score__gte=9)
            .values_list("customer_id", flat=True).distinct())


def window_good_reviewers(*, customer_ids: Sequence[uuid.UUID], start: datetime, end: datetime) -> Iterable[Any]:
    """Customers with a review rated >= 4 in ``(start, end]`` (one query)."""
    return (Review.objects.filter(customer_id__in=list(customer_ids), at__gt=start, at__lte=end, rating__gte=4)
            .values_list("customer_id", flat=True).distinct())


def window_new_category_buyers(*, customer_ids: Sequence[uuid.UUID], start: datetime, end: datetime
                               ) -> Iterable[Any]:
    """Customers with a kept order in ``(start, end]`` in a category they had not ordered from by ``start``."""
    tried_before = Order.objects.filter(customer_id=OuterRef("customer_id"), category=OuterRef("category"),
                                        ordered_at__lte=start)
    return (Order.objects.filter(customer_id__in=list(customer_ids), ordered_at__gt=start, ordered_at__lte=end,
                                 returned=False)
            .exclude(category="").filter(~Exists(tried_before))
            .values_list("customer_id", flat=True).distinct().order_by())


def fact_time_range(*, customer_ids: Sequence[uuid.UUID | str] | None = None
                    ) -> tuple[datetime | None, datetime | None]:
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


# --- the same reads as columns (PostgreSQL): one statement per fact table, no Python object per row ----------

#: name -> (model, time column, SELECT expressions after the position). ``%(as_of)s``, ``%(recent)s`` and
#: ``%(prev)s`` are the window bounds; every sum is cast to float8 after it is summed exactly (numeric), and
#: ages are ``as_of - time`` in seconds (exact interval epoch, then float8), as Python's
#: ``timedelta.total_seconds()`` gives them.
#: The exact type the float sentiment scores are summed in (both reads; Django's Cast to DecimalField(20, 10)).
SENTIMENT_SUM_TYPE = "numeric(20, 10)"
_COLUMN_READS: dict[str, tuple[type, str, list[tuple[str, str]]]] = {
    "order": (Order, "ordered_at", [
        ("n", "count(*)"),
        ("revenue", "coalesce(sum(f.amount) filter (where not f.returned), 0)::float8"),
        ("margin", "coalesce(sum(f.margin) filter (where not f.returned), 0)::float8"),
        ("first_age", "extract(epoch from (%(as_of)s - min(f.ordered_at)))::float8"),
        ("last_age", "extract(epoch from (%(as_of)s - max(f.ordered_at)))::float8"),
        ("n_recent", "count(*) filter (where f.ordered_at > %(recent)s)"),
        ("revenue_recent", "coalesce(sum(f.amount) filter (where f.ordered_at > %(recent)s and not f.returned), 0)"
                           "::float8"),
        ("revenue_prev", "coalesce(sum(f.amount) filter (where f.ordered_at > %(prev)s and f.ordered_at <= "
                         "%(recent)s and not f.returned), 0)::float8"),
        ("n_returned", "count(*) filter (where f.returned)"),
        ("n_late", "count(*) filter (where f.days_late > 0)"),
        ("days_late", "coalesce(sum(f.days_late) filter (where f.days_late > 0), 0)::float8"),
        ("categories", "count(distinct f.category) filter (where f.category <> '')"),
    ]),
    "ticket": (Ticket, "opened_at", [
        ("n", "count(*)"),
        ("n_recent", "count(*) filter (where f.opened_at > %(recent)s)"),
        ("escalations", "count(*) filter (where f.escalated)"),
        ("sat_sum", "coalesce(sum(f.satisfaction), 0)::float8"),
        ("sat_n", "count(f.satisfaction)"),
        ("first_age", "extract(epoch from (%(as_of)s - min(f.opened_at)))::float8"),
        ("sent_sum", f"coalesce(sum(f.sentiment_score::{SENTIMENT_SUM_TYPE}), 0)::float8"),
        ("sent_n", "count(f.sentiment_score)"),
        ("sent_recent_sum", f"coalesce(sum(f.sentiment_score::{SENTIMENT_SUM_TYPE}) filter (where f.opened_at > "
                            "%(recent)s), 0)::float8"),
        ("sent_recent_n", "count(f.sentiment_score) filter (where f.opened_at > %(recent)s)"),
        ("sent_prev_sum", f"coalesce(sum(f.sentiment_score::{SENTIMENT_SUM_TYPE}) filter (where f.opened_at > "
                          "%(prev)s and f.opened_at <= %(recent)s), 0)::float8"),
        ("sent_prev_n", "count(f.sentiment_score) filter (where f.opened_at > %(prev)s and f.opened_at <= "
                        "%(recent)s)"),
    ]),
    "interaction": (Interaction, "at", [
        ("first_age", "extract(epoch from (%(as_of)s - min(f.at)))::float8"),
        *[(name, f"coalesce(sum(f.count) filter (where f.at > %(recent)s and f.kind = '{kind.value}'), 0)::float8")
          for name, kind in INTERACTION_FEATURES.items()],
    ]),
    "review": (Review, "at", [
        ("n", "count(*)"),
        ("rating_sum", "coalesce(sum(f.rating), 0)::float8"),
        ("first_age", "extract(epoch from (%(as_of)s - min(f.at)))::float8"),
    ]),
    "referral": (Referral, "at", [
        ("n", "count(*)"),
        ("first_age", "extract(epoch from (%(as_of)s - min(f.at)))::float8"),
    ]),
}


def fact_columns(*, customer_ids: Sequence[uuid.UUID], as_of: datetime, recent_from: datetime,
                 prev_from: datetime) -> dict[str, dict[str, np.ndarray]] | None:
    """The reads above as float columns aligned with ``customer_ids`` (PostgreSQL; ``None`` elsewhere or when
    the ids repeat): per table ``"present"`` (1.0 where the customer has a row) and one column per aggregate
    (0 where absent; ages NaN where absent). Also ``"nps"`` (``last`` score by time then row, ``first_age``)
    and ``"customer"`` (``created_age``; ``declared``: 1.0 where feature attributes are declared).
    One statement per table whatever the number of customers; the database returns each customer's position
    in ``customer_ids``, so no id is parsed or hashed in Python."""
    from django.db import connection

    ids = [as_uuid(c) for c in customer_ids]
    if connection.vendor != "postgresql" or len(set(ids)) != len(ids):
        return None
    n = len(ids)
    params = {"ids": "{" + ",".join(str(c) for c in ids) + "}", "as_of": as_of, "recent": recent_from,
              "prev": prev_from}
    with_ids = "with ids(id, pos) as (select * from unnest(%(ids)s::uuid[]) with ordinality) "
    out: dict[str, dict[str, np.ndarray]] = {}

    def read(sql: str, names: list[str], nan_names: set[str]) -> dict[str, np.ndarray]:
        with connection.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        cols = {name: np.full(n, np.nan if name in nan_names else 0.0) for name in names}
        present = np.zeros(n)
        if rows:
            table = np.array(rows, dtype=np.float64)
            pos = table[:, 0].astype(np.int64) - 1
            present[pos] = 1.0
            for k, name in enumerate(names, start=1):
                cols[name][pos] = table[:, k]
        cols["present"] = present
        return cols

    def per_customer(table: str, at: str, exprs: list[str]) -> str:
        # Each customer's aggregates by its own index lookup (a LATERAL aggregate cannot become a hash join):
        # with "join ids ... group by", PostgreSQL's estimate of rows per customer (from a sampled n_distinct,
        # ~10x too high at 1M customers) made it hash-join a FULL scan of the fact table for every chunk
        # (10M orders, ~15 s per 5,000-customer chunk). Same row sets, same aggregates; only customers with
        # at least one row come back, as from the join.
        inner = ", ".join(f"{expr} as c{k}" for k, expr in enumerate(exprs))
        outer = ", ".join(f"a.c{k}" for k in range(len(exprs)))
        return (f'{with_ids}select ids.pos, {outer} from ids cross join lateral (select count(*) as n_rows, {inner} '  # noqa: S608
                f'from "{table}" f where f.customer_id = ids.id and f.{at} <= %(as_of)s) a where a.n_rows > 0')

    for key, (model, at, exprs) in _COLUMN_READS.items():
        meta = model._meta
        sql = per_customer(meta.db_table, meta.get_field(at).column, [expr for _, expr in exprs])
        names = [name for name, _ in exprs]
        out[key] = read(sql, names, {"first_age", "last_age"})
    out["nps"] = read(per_customer(NpsAnswer._meta.db_table, "at", [
        "(array_agg(f.score order by f.at desc, f.id desc))[1]::float8",
        "extract(epoch from (%(as_of)s - min(f.at)))::float8",
    ]), ["last", "first_age"], {"last", "first_age"})
    customers = Customer._meta.db_table
    out["customer"] = read(
        f"{with_ids}select ids.pos, extract(epoch from (%(as_of)s - c.created_at))::float8, "  # noqa: S608
        f"(c.feature_attributes::jsonb <> '[]'::jsonb)::int::float8 "
        f'from "{customers}" c join ids on c.id = ids.id', ["created_age", "declared"], {"created_age"})
    return out
