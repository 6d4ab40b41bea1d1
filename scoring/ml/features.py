"""Feature inventory and vectorized feature aggregation.

Every model in :mod:`scoring.ml` consumes a float matrix whose columns follow :data:`FEATURES`, followed
by the columns of the CRM attributes a customer import declared as features (:class:`AttributeEncoding`).
The Django side produces the same columns with set-based SQL; :func:`aggregate_from_events`
computes them from flat event arrays (tests, benchmark, CDNOW evaluation) with ``np.bincount``.

Declared CRM attributes (raw columns ``attr:<name>``, as ``scoring.features.aggregates.fact_aggregates`` returns
them) are encoded by :func:`fit_attribute_encoding` on the training population: a numeric attribute is one
column ``attr:<name>`` (missing values take the recorded fill, the training median); a categorical one is
up to :data:`ATTRIBUTE_MAX_CATEGORIES` one-hot 0/1 columns ``attr:<name>=<value>`` for its most frequent
values seen at least :data:`ATTRIBUTE_MIN_COUNT` times (any other value, or none, is all zeros). The
encoding is recorded with the trained models and :func:`build_matrix` applies it, in training and in
scoring alike. CRM attributes have no history: the current value is used at every training cutoff.

Day convention: events carry an integer ``day`` offset. Features "as of" day ``A`` use events with
``day <= A``; "last 90 days" means ``A - 90 < day <= A``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config.special_categories import special_category_match

SOURCES = ("orders", "tickets", "interactions", "reviews", "crm")

#: Codes of ``EventLog.interaction_kind`` (the value is the index in this tuple).
INTERACTION_KINDS = ("login", "email_open", "email_click", "feature_use", "cart_abandon", "nps", "referral")
KIND = {name: code for code, name in enumerate(INTERACTION_KINDS)}

WINDOW_DAYS = 90


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: where it comes from, what it means and why it is needed."""

    name: str
    source: str
    unit: str  # "days", "count", "currency", "ratio", "score"; CRM attributes: "value", "indicator" (0/1)
    label: str  # human label used in explanations
    purpose: str  # why the feature is needed (data minimisation record)
    missing: float = 0.0  # value used when the customer has no data for it
    missing_text: str | None = None  # rendering of ``missing`` in explanations (e.g. "no rating")

    def format_value(self, value: float) -> str:
        """Render a raw feature value for a human-readable explanation."""
        if self.missing_text is not None and value == self.missing:
            return self.missing_text
        if not np.isfinite(value):
            return "n/a"
        if self.unit == "indicator":
            return "yes" if value else "no"
        if self.unit == "currency":
            return f"{value:,.2f}"
        if self.unit == "ratio":
            return f"{100.0 * value:.0f} %"
        if self.unit in ("count", "days") or float(value).is_integer():
            return f"{value:,.0f}"
        return f"{value:.1f}"


def _f(name: str, source: str, unit: str, label: str, purpose: str, **kw: object) -> FeatureSpec:
    return FeatureSpec(name, source, unit, label, purpose, **kw)  # type: ignore[arg-type]


FEATURES: tuple[FeatureSpec, ...] = (
    _f(
        "recency_days",
        "orders",
        "days",
        "days since last order",
        "Recent buyers are more likely to buy again; core input of BTYD and RFM models.",
    ),
    _f(
        "frequency",
        "orders",
        "count",
        "orders to date",
        "Purchase frequency drives expected future transactions (BTYD 'x' input).",
    ),
    _f(
        "monetary_total",
        "orders",
        "currency",
        "revenue to date",
        "Past spend is the strongest predictor of future spend.",
    ),
    _f(
        "monetary_avg",
        "orders",
        "currency",
        "average order value",
        "Spend per order feeds the Gamma-Gamma spend model and CLV.",
    ),
    _f(
        "margin_total",
        "orders",
        "currency",
        "margin to date",
        "Distinguishes profitable customers from high-revenue low-margin ones.",
    ),
    _f(
        "tenure_days",
        "orders",
        "days",
        "days since first order",
        "Customer age; needed to turn counts into rates (BTYD 'T' input).",
    ),
    _f(
        "orders_90d",
        "orders",
        "count",
        "orders in last 90 days",
        "Short-term activity signals current engagement and churn risk.",
    ),
    _f(
        "revenue_90d",
        "orders",
        "currency",
        "revenue in last 90 days",
        "Recent spend level for upsell and CLV.",
    ),
    _f(
        "revenue_prev_90d",
        "orders",
        "currency",
        "revenue in the 90 days before",
        "Reference level to detect growing or shrinking spend.",
    ),
    _f(
        "revenue_trend",
        "orders",
        "ratio",
        "revenue trend (last 90 days vs the 90 before)",
        "Declining spend is an early churn signal, growth an upsell signal; (a-b)/(a+b) in [-1, 1].",
    ),
    _f(
        "return_rate",
        "orders",
        "ratio",
        "share of orders returned",
        "Returns reduce realised value and indicate dissatisfaction.",
    ),
    _f(
        "late_payment_rate",
        "orders",
        "ratio",
        "share of orders paid late",
        "Payment behaviour affects realised value and credit risk of offers.",
    ),
    _f(
        "avg_days_late",
        "orders",
        "days",
        "average days paid late",
        "Severity of late payment, complementing its frequency.",
    ),
    _f(
        "categories_ordered",
        "orders",
        "count",
        "product categories ordered from",
        "Breadth of purchases: customers who already buy across categories are likelier to try a new one "
        "(upsell).",
    ),
    _f(
        "tickets_total",
        "tickets",
        "count",
        "support tickets to date",
        "Service load and friction with the product.",
    ),
    _f(
        "tickets_90d",
        "tickets",
        "count",
        "support tickets in last 90 days",
        "Recent problems are a leading churn indicator.",
    ),
    _f(
        "escalations",
        "tickets",
        "count",
        "support escalations",
        "Escalated issues strongly signal dissatisfaction.",
    ),
    _f(
        "satisfaction_avg",
        "tickets",
        "score",
        "average ticket satisfaction (1-5)",
        "Service experience drives retention and advocacy.",
        missing_text="no rating",
    ),
    _f(
        "logins_90d",
        "interactions",
        "count",
        "logins in last 90 days",
        "Product usage is the main engagement signal for churn.",
    ),
    _f(
        "email_opens_90d",
        "interactions",
        "count",
        "emails opened in last 90 days",
        "Marketing engagement; disengagement precedes churn.",
    ),
    _f(
        "email_clicks_90d",
        "interactions",
        "count",
        "email clicks in last 90 days",
        "Active interest in offers; upsell propensity.",
    ),
    _f(
        "feature_uses_90d",
        "interactions",
        "count",
        "feature uses in last 90 days",
        "Depth of product adoption; upsell and retention signal.",
    ),
    _f(
        "cart_abandons_90d",
        "interactions",
        "count",
        "abandoned carts in last 90 days",
        "Unfulfilled purchase intent; upsell and win-back signal.",
    ),
    _f(
        "nps_last",
        "interactions",
        "score",
        "last NPS answer (0-10)",
        "Stated loyalty; promoters (9-10) become advocates.",
        missing=-1.0,
        missing_text="not answered",
    ),
    _f(
        "reviews_count",
        "reviews",
        "count",
        "reviews written",
        "Willingness to speak publicly about the brand (advocacy).",
    ),
    _f(
        "review_rating_avg",
        "reviews",
        "score",
        "average review rating (1-5)",
        "Public satisfaction; input for advocacy.",
        missing_text="no review",
    ),
    _f(
        "referrals_count",
        "interactions",
        "count",
        "referrals made",
        "Past referrals are the best predictor of future advocacy.",
    ),
    # Ticket sentiment (issue 18): computed at ingestion from the original text in memory; only the score is
    # stored. Tickets without a score (no text, or a language without a model) do not count.
    _f(
        "sentiment_avg",
        "tickets",
        "score",
        "average ticket sentiment (-1 to 1)",
        "How the customer sounds when they write in: unhappy tickets precede churn. 0 without a scored ticket.",
    ),
    _f(
        "sentiment_trend_90d",
        "tickets",
        "score",
        "ticket sentiment trend (last 90 days minus the 90 before)",
        "A souring mood is an early churn signal; 0 unless both windows have a scored ticket.",
    ),
    _f(
        "sentiment_tickets_90d",
        "tickets",
        "count",
        "tickets with a sentiment in last 90 days",
        "How much evidence the recent mood rests on.",
    ),
)

BY_NAME = {spec.name: spec for spec in FEATURES}

#: Not a model input: the explanation term that lifts a CLV the model put below zero to the 0 that is served
#: (its value is the model's own output), so a served CLV's explanation still adds up exactly.
CLV_FLOOR = FeatureSpec(
    "clv_floor",
    "model",
    "currency",
    "value below zero, served as 0 (model's value)",
    "A customer's expected revenue cannot be negative; the explanation shows the lift to zero.",
)
BY_NAME[CLV_FLOOR.name] = CLV_FLOOR


def validate_extra_features(names: Iterable[str]) -> None:
    """Raise ``ValueError`` if any declared CRM feature name looks like special-category data."""
    bad = [(n, frag) for n in names if (frag := special_category_match(str(n))) is not None]
    if bad:
        detail = ", ".join(f"{n!r} (matches {frag!r})" for n, frag in bad)
        raise ValueError(f"special-category data may not be used as a feature (GDPR Art. 9/22(4)): {detail}")


def feature_names() -> tuple[str, ...]:
    """Names of :data:`FEATURES` in matrix column order."""
    return tuple(spec.name for spec in FEATURES)


def feature_spec(name: str) -> FeatureSpec:
    """Spec for ``name``; CRM attribute columns (``attr:<name>``, one-hot ``attr:<name>=<value>``, or a bare
    attribute name) get a generic spec labelled by the attribute (``plan = gold``, rendered yes / no)."""
    spec = BY_NAME.get(name)
    if spec is not None:
        return spec
    attribute = name.removeprefix(ATTRIBUTE_PREFIX)
    if "=" in attribute:  # attribute names never hold "=" (``[a-z][a-z0-9_]*``)
        attribute, value = attribute.split("=", 1)
        label = f"{attribute.replace('_', ' ')} = {value}"
        return FeatureSpec(name, "crm", "indicator", label, ATTRIBUTE_PURPOSE)
    return FeatureSpec(name, "crm", "value", attribute.replace("_", " "), ATTRIBUTE_PURPOSE)


def build_matrix(
    columns: Mapping[str, np.ndarray],
    names: Iterable[str] | None = None,
    attributes: Sequence[AttributeEncoding] = (),
) -> np.ndarray:
    """Stack per-customer columns into a float64 matrix in inventory order.

    ``names`` defaults to :data:`FEATURES` followed by the columns of ``attributes``. Columns named by an
    attribute encoding are computed from the raw ``attr:<name>`` column (:func:`attribute_matrix`); another
    ``attr:`` name is an error. Missing columns and NaN entries are replaced by the feature's ``missing`` value.
    """
    order = tuple(names) if names is not None else feature_names() + attribute_feature_names(attributes)
    sources = {a.column for a in attributes}
    lengths = {len(np.asarray(v)) for k, v in columns.items() if k in order or k in sources}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths: {sorted(lengths)}")
    if not lengths:
        raise ValueError("none of the feature columns is present")
    n = lengths.pop()
    encoded = dict(zip(attribute_feature_names(attributes), attribute_matrix(columns, attributes, n).T, strict=True))
    unencoded = [name for name in order if name.startswith(ATTRIBUTE_PREFIX) and name not in encoded]
    if unencoded:  # never read raw attribute values as a column the models were not trained with
        raise ValueError(f"CRM attribute columns without an encoding (pass the bundle's attributes): {unencoded}")
    out = np.empty((n, len(order)), dtype=np.float64)
    for j, name in enumerate(order):
        if name in encoded:
            out[:, j] = encoded[name]
            continue
        fill = feature_spec(name).missing
        if name in columns:
            col = np.asarray(columns[name], dtype=np.float64)
            out[:, j] = np.where(np.isfinite(col), col, fill)
        else:
            out[:, j] = fill
    return out


# --------------------------------------------------------------------------- declared CRM attributes

#: Prefix of the raw CRM attribute columns (the same as ``scoring.features.aggregates.ATTRIBUTE_PREFIX``).
ATTRIBUTE_PREFIX = "attr:"
ATTRIBUTE_PURPOSE = "Declared as a feature by a customer import."
#: One-hot columns per categorical attribute at the most, and how many training customers a value needs.
ATTRIBUTE_MAX_CATEGORIES = 10
ATTRIBUTE_MIN_COUNT = 10
NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class AttributeEncoding:
    """How one declared CRM attribute (raw column ``column``, e.g. ``attr:plan``) becomes model columns."""

    column: str
    kind: str  # NUMERIC or CATEGORICAL
    categories: tuple[str, ...] = ()  # CATEGORICAL: one 0/1 column per value, most frequent first
    fill: float = 0.0  # NUMERIC: the value used when the customer has none (training median)

    @property
    def attribute(self) -> str:
        return self.column.removeprefix(ATTRIBUTE_PREFIX)

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.kind == NUMERIC:
            return (self.column,)
        return tuple(f"{self.column}={value}" for value in self.categories)

    def to_json(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "column": self.column, "kind": self.kind,
                "categories": list(self.categories), "fill": float(self.fill), "columns": list(self.feature_names)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttributeEncoding:
        return cls(str(data["column"]), str(data["kind"]), tuple(str(c) for c in data.get("categories") or ()),
                   float(data.get("fill") or 0.0))


def attribute_feature_names(attributes: Sequence[AttributeEncoding]) -> tuple[str, ...]:
    """The model columns of ``attributes``, in order."""
    return tuple(name for a in attributes for name in a.feature_names)


def _raw(columns: Mapping[str, np.ndarray], column: str, n: int) -> np.ndarray:
    col = columns.get(column)
    return np.full(n, None, dtype=object) if col is None else np.asarray(col)


def _number(value: object) -> float | None:
    """A raw value as a float (NaN when missing), or ``None`` when it is not a finite number."""
    if value is None or value == "":
        return np.nan
    if isinstance(value, float | np.floating) and np.isnan(value):
        return np.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _numbers(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Raw values as floats (missing, or not a finite number -> NaN) and whether every present value is a
    finite number."""
    if values.dtype.kind in "biuf":
        out = values.astype(np.float64)
        finite = np.isfinite(out) | np.isnan(out)
        return np.where(finite, out, np.nan), bool(finite.all())
    numbers = [_number(v) for v in values.tolist()]
    return np.array([np.nan if x is None else x for x in numbers], dtype=np.float64), None not in numbers


def _category(value: object) -> str | None:
    """The category key of a raw value (``3``, ``3.0`` and ``"3"`` are all ``"3"``); ``None`` if missing."""
    if value is None or value == "":
        return None
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(float(value))
    return str(value).strip() or None


def fit_attribute_encoding(
    columns: Mapping[str, np.ndarray],
    *,
    max_categories: int = ATTRIBUTE_MAX_CATEGORIES,
    min_count: int = ATTRIBUTE_MIN_COUNT,
) -> tuple[AttributeEncoding, ...]:
    """The encoding of the raw attribute columns (``attr:<name>``) of a training population, by column name.

    Numeric when every present value is a number (fill: the median); otherwise categorical with the
    ``max_categories`` most frequent values seen at least ``min_count`` times (ties by value). Attributes
    without any usable value are left out; special-category names are refused (``ValueError``).
    """
    names = sorted(k for k in columns if k.startswith(ATTRIBUTE_PREFIX))
    validate_extra_features(k.removeprefix(ATTRIBUTE_PREFIX) for k in names)
    out: list[AttributeEncoding] = []
    for column in names:
        values = np.asarray(columns[column])
        numbers, numeric = _numbers(values)
        if numeric:
            present = numbers[np.isfinite(numbers)]
            if len(present):
                out.append(AttributeEncoding(column, NUMERIC, fill=float(np.median(present))))
            continue
        counts: dict[str, int] = {}
        for v in values.tolist():
            key = _category(v)
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        frequent = sorted((k for k, c in counts.items() if c >= min_count), key=lambda k: (-counts[k], k))
        if frequent[:max_categories]:
            out.append(AttributeEncoding(column, CATEGORICAL, tuple(frequent[:max_categories])))
    return tuple(out)


def attribute_matrix(
    columns: Mapping[str, np.ndarray], attributes: Sequence[AttributeEncoding], n: int, *, fill: bool = True
) -> np.ndarray:
    """The ``(n, k)`` model columns of ``attributes`` from the raw ``attr:<name>`` columns (absent: missing).

    A missing numeric value takes the recorded fill (NaN with ``fill=False``: what is shown, not what the
    models read); a categorical value outside the recorded categories, or none, is all zeros.
    """
    blocks = [np.zeros((n, 0))]
    for a in attributes:
        raw = _raw(columns, a.column, n)
        if a.kind == NUMERIC:
            numbers, _ = _numbers(raw)  # a value that is not a number (any more) counts as missing
            col = np.where(np.isfinite(numbers), numbers, a.fill if fill else np.nan)
            blocks.append(col[:, None])
        else:
            keys = np.array([_category(v) for v in raw.tolist()], dtype=object)
            blocks.append(np.column_stack([keys == c for c in a.categories]).astype(np.float64))
    return np.hstack(blocks)


def _empty_i() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


def _empty_f() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class EventLog:
    """Flat event arrays for ``n_customers`` customers (customer = index in ``[0, n_customers)``).

    Orders: ``order_*`` (amount and margin in money, ``returned`` bool, ``days_late`` >= 0, optional
    ``category`` codes).
    Tickets: ``ticket_*`` (``satisfaction`` 1-5 or NaN). Interactions: ``interaction_kind`` codes of
    :data:`INTERACTION_KINDS`, ``interaction_value`` holds the NPS score for ``nps`` rows.
    Reviews: ``review_rating`` 1-5. ``signup_day`` (optional) is the day the customer became known.
    """

    n_customers: int
    order_customer: np.ndarray = field(default_factory=_empty_i)
    order_day: np.ndarray = field(default_factory=_empty_i)
    order_amount: np.ndarray = field(default_factory=_empty_f)
    order_margin: np.ndarray = field(default_factory=_empty_f)
    order_returned: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    order_days_late: np.ndarray = field(default_factory=_empty_f)
    #: Product category code per order (>= 0; -1 = none). ``None``: the source has no categories.
    order_category: np.ndarray | None = None
    ticket_customer: np.ndarray = field(default_factory=_empty_i)
    ticket_day: np.ndarray = field(default_factory=_empty_i)
    ticket_escalated: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    ticket_satisfaction: np.ndarray = field(default_factory=_empty_f)
    #: Sentiment score per ticket in [-1, 1]; NaN = not scored. Empty (the default): no ticket is scored.
    ticket_sentiment: np.ndarray = field(default_factory=_empty_f)
    interaction_customer: np.ndarray = field(default_factory=_empty_i)
    interaction_day: np.ndarray = field(default_factory=_empty_i)
    interaction_kind: np.ndarray = field(default_factory=_empty_i)
    interaction_value: np.ndarray = field(default_factory=_empty_f)
    review_customer: np.ndarray = field(default_factory=_empty_i)
    review_day: np.ndarray = field(default_factory=_empty_i)
    review_rating: np.ndarray = field(default_factory=_empty_f)
    signup_day: np.ndarray | None = None

    def first_day(self) -> int:
        """Earliest day present in any event array (0 if there are none)."""
        days = [
            a.min()
            for a in (self.order_day, self.ticket_day, self.interaction_day, self.review_day)
            if len(a)
        ]
        if self.signup_day is not None and len(self.signup_day):
            days.append(self.signup_day.min())
        return int(min(days)) if days else 0

    def last_day(self) -> int:
        """Latest day present in any event array (0 if there are none)."""
        days = [
            a.max()
            for a in (self.order_day, self.ticket_day, self.interaction_day, self.review_day)
            if len(a)
        ]
        return int(max(days)) if days else 0


def _count(idx: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(idx, weights=weights, minlength=n).astype(np.float64)


def _safe_div(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    out = np.full(num.shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _last_value(cust: np.ndarray, day: np.ndarray, value: np.ndarray, n: int, fill: float) -> np.ndarray:
    """Value of each customer's latest event (ties: the later row wins)."""
    out = np.full(n, fill, dtype=np.float64)
    if len(cust):
        order = np.lexsort((np.arange(len(cust)), day, cust))
        c = cust[order]
        last = np.ones(len(c), dtype=bool)
        last[:-1] = c[1:] != c[:-1]
        out[c[last]] = value[order][last]
    return out


def aggregate_from_events(log: EventLog, as_of: int, window: int = WINDOW_DAYS) -> dict[str, np.ndarray]:
    """Compute every :data:`FEATURES` column as of day ``as_of`` (events with ``day <= as_of``)."""
    n = log.n_customers
    a = int(as_of)
    cols: dict[str, np.ndarray] = {}

    m = log.order_day <= a
    oc, od = log.order_customer[m], log.order_day[m]
    kept = ~log.order_returned[m].astype(bool)
    net = log.order_amount[m] * kept
    margin = log.order_margin[m] * kept
    late = log.order_days_late[m].astype(np.float64)
    recent = od > a - window
    prev = (od > a - 2 * window) & ~recent

    freq = _count(oc, n)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(last, oc, od)
    np.minimum.at(first, oc, od)

    # "first seen": signup if known, else earliest event of any kind up to as_of
    seen = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    if log.signup_day is not None:
        seen = np.minimum(seen, np.asarray(log.signup_day, dtype=np.int64))
    for cust, day in (
        (log.ticket_customer, log.ticket_day),
        (log.interaction_customer, log.interaction_day),
        (log.review_customer, log.review_day),
        (oc, od),
    ):
        mm = day <= a
        np.minimum.at(seen, cust[mm], day[mm].astype(np.int64))
    has = freq > 0
    known = seen <= a
    tenure = np.where(has, a - first, np.where(known, a - np.minimum(seen, a), 0)).astype(np.float64)
    cols["recency_days"] = np.where(has, a - last, tenure).astype(np.float64)
    cols["frequency"] = freq
    cols["monetary_total"] = _count(oc, n, net)
    cols["monetary_avg"] = _safe_div(cols["monetary_total"], freq)
    cols["margin_total"] = _count(oc, n, margin)
    cols["tenure_days"] = tenure
    cols["orders_90d"] = _count(oc[recent], n)
    cols["revenue_90d"] = _count(oc[recent], n, net[recent])
    cols["revenue_prev_90d"] = _count(oc[prev], n, net[prev])
    tot = cols["revenue_90d"] + cols["revenue_prev_90d"]
    cols["revenue_trend"] = _safe_div(cols["revenue_90d"] - cols["revenue_prev_90d"], tot)
    cols["return_rate"] = _safe_div(_count(oc, n, (~kept).astype(np.float64)), freq)
    cols["late_payment_rate"] = _safe_div(_count(oc, n, (late > 0).astype(np.float64)), freq)
    cols["avg_days_late"] = _safe_div(_count(oc, n, late), freq)
    cols["categories_ordered"] = np.zeros(n)
    if log.order_category is not None:  # distinct (customer, category) pairs, returned orders included
        cat = np.asarray(log.order_category, dtype=np.int64)[m]
        pairs = np.unique(np.stack([oc[cat >= 0], cat[cat >= 0]]), axis=1)
        cols["categories_ordered"] = _count(pairs[0], n)

    m = log.ticket_day <= a
    tc, td = log.ticket_customer[m], log.ticket_day[m]
    sat = log.ticket_satisfaction[m].astype(np.float64)
    rated = np.isfinite(sat)
    cols["tickets_total"] = _count(tc, n)
    cols["tickets_90d"] = _count(tc[td > a - window], n)
    cols["escalations"] = _count(tc, n, log.ticket_escalated[m].astype(np.float64))
    cols["satisfaction_avg"] = _safe_div(_count(tc[rated], n, sat[rated]), _count(tc[rated], n), np.nan)
    cols.update(_sentiment_columns(log, m, tc, td, a, window, n))

    m = log.interaction_day <= a
    ic, iday, kind = log.interaction_customer[m], log.interaction_day[m], log.interaction_kind[m]
    ival = log.interaction_value[m]
    rec = iday > a - window
    for feat, k in (
        ("logins_90d", "login"),
        ("email_opens_90d", "email_open"),
        ("email_clicks_90d", "email_click"),
        ("feature_uses_90d", "feature_use"),
        ("cart_abandons_90d", "cart_abandon"),
    ):
        sel = rec & (kind == KIND[k])
        cols[feat] = _count(ic[sel], n)
    sel = kind == KIND["nps"]
    cols["nps_last"] = _last_value(ic[sel], iday[sel], ival[sel].astype(np.float64), n, np.nan)
    cols["referrals_count"] = _count(ic[kind == KIND["referral"]], n)

    m = log.review_day <= a
    rc, rating = log.review_customer[m], log.review_rating[m].astype(np.float64)
    cols["reviews_count"] = _count(rc, n)
    cols["review_rating_avg"] = _safe_div(_count(rc, n, rating), cols["reviews_count"], np.nan)
    return cols


def _sentiment_columns(log: EventLog, m: np.ndarray, tc: np.ndarray, td: np.ndarray, a: int, window: int,
                       n: int) -> dict[str, np.ndarray]:
    """Mean ticket sentiment, its 90-day trend (mean of the last 90 days minus the mean of the 90 before;
    0 unless both have a scored ticket) and the number of scored tickets in the last 90 days."""
    sent = np.asarray(log.ticket_sentiment, dtype=np.float64)
    if len(sent) != len(log.ticket_day):
        sent = np.full(len(log.ticket_day), np.nan)
    sent = sent[m]
    scored = np.isfinite(sent)
    recent = scored & (td > a - window)
    prev = scored & (td > a - 2 * window) & (td <= a - window)
    n_recent, n_prev = _count(tc[recent], n), _count(tc[prev], n)
    mean_recent = _safe_div(_count(tc[recent], n, sent[recent]), n_recent)
    mean_prev = _safe_div(_count(tc[prev], n, sent[prev]), n_prev)
    return {
        "sentiment_avg": _safe_div(_count(tc[scored], n, sent[scored]), _count(tc[scored], n)),
        "sentiment_trend_90d": np.where((n_recent > 0) & (n_prev > 0), mean_recent - mean_prev, 0.0),
        "sentiment_tickets_90d": n_recent,
    }


def feature_matrix(log: EventLog, as_of: int) -> np.ndarray:
    """``build_matrix(aggregate_from_events(log, as_of))``."""
    return build_matrix(aggregate_from_events(log, as_of))


@dataclass(frozen=True)
class WindowOutcomes:
    """What happened in the window ``(start, end]`` per customer (labels for training)."""

    revenue: np.ndarray
    orders: np.ndarray
    referrals: np.ndarray
    promoter: np.ndarray  # NPS >= 9 answered in the window
    good_review: np.ndarray  # review rating >= 4 written in the window
    # an order (not returned) in a category the customer had not ordered from before the window
    new_category: np.ndarray | None = None

    @property
    def advocacy(self) -> np.ndarray:
        """Referral, NPS >= 9 or review rating >= 4 in the window."""
        return (self.referrals > 0) | self.promoter | self.good_review


def window_outcomes(log: EventLog, start: int, end: int) -> WindowOutcomes:
    """Aggregate outcomes of events with ``start < day <= end``."""
    n = log.n_customers
    m = (log.order_day > start) & (log.order_day <= end)
    oc = log.order_customer[m]
    net = log.order_amount[m] * ~log.order_returned[m].astype(bool)
    mi = (log.interaction_day > start) & (log.interaction_day <= end)
    ic, kind, val = log.interaction_customer[mi], log.interaction_kind[mi], log.interaction_value[mi]
    mr = (log.review_day > start) & (log.review_day <= end)
    promoter = np.zeros(n, dtype=bool)
    promoter[ic[(kind == KIND["nps"]) & (val >= 9)]] = True
    good = np.zeros(n, dtype=bool)
    good[log.review_customer[mr][log.review_rating[mr] >= 4]] = True
    return WindowOutcomes(
        revenue=_count(oc, n, net),
        orders=_count(oc, n),
        referrals=_count(ic[kind == KIND["referral"]], n),
        promoter=promoter,
        good_review=good,
        new_category=_new_category(log, start, m),
    )


def _new_category(log: EventLog, start: int, in_window: np.ndarray) -> np.ndarray:
    """Customers with a kept order in the window in a category they had no order in on or before
    ``start`` (returned orders count as having tried the category). All False without categories."""
    n = log.n_customers
    out = np.zeros(n, dtype=bool)
    if log.order_category is None:
        return out
    cat = np.asarray(log.order_category, dtype=np.int64)
    width = int(cat.max()) + 1 if len(cat) else 1
    key = log.order_customer.astype(np.int64) * width + cat
    before = np.unique(key[(log.order_day <= start) & (cat >= 0)])
    fresh = in_window & (cat >= 0) & ~log.order_returned.astype(bool)
    fresh &= ~np.isin(key, before)
    out[log.order_customer[fresh]] = True
    return out


def known_at(log: EventLog, as_of: int) -> np.ndarray:
    """Customers that exist at ``as_of`` (signed up, or with any event, on or before it)."""
    n = log.n_customers
    out = np.zeros(n, dtype=bool)
    if log.signup_day is not None:
        out |= np.asarray(log.signup_day) <= as_of
    for cust, day in (
        (log.order_customer, log.order_day),
        (log.ticket_customer, log.ticket_day),
        (log.interaction_customer, log.interaction_day),
        (log.review_customer, log.review_day),
    ):
        out[cust[day <= as_of]] = True
    return out
