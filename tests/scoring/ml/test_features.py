from __future__ import annotations

import numpy as np
import pytest

from scoring.ml.features import (
    FEATURES,
    KIND,
    SOURCES,
    EventLog,
    aggregate_from_events,
    build_matrix,
    feature_names,
    validate_extra_features,
    window_outcomes,
)
from scoring.ml.synthetic import generate_events

REQUIRED = {
    "sentiment_avg",  # issue 18: ticket sentiment
    "sentiment_trend_90d",
    "sentiment_tickets_90d",
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_avg",
    "margin_total",
    "tenure_days",
    "orders_90d",
    "revenue_90d",
    "revenue_prev_90d",
    "revenue_trend",
    "return_rate",
    "late_payment_rate",
    "avg_days_late",
    "categories_ordered",
    "tickets_total",
    "tickets_90d",
    "escalations",
    "satisfaction_avg",
    "logins_90d",
    "email_opens_90d",
    "email_clicks_90d",
    "feature_uses_90d",
    "cart_abandons_90d",
    "nps_last",
    "reviews_count",
    "review_rating_avg",
    "referrals_count",
}


def test_inventory_complete_and_documented() -> None:
    names = feature_names()
    assert set(names) == REQUIRED
    assert len(names) == len(set(names))
    for spec in FEATURES:
        assert spec.source in SOURCES
        assert spec.label and spec.purpose.endswith(".")
        assert spec.unit in {"days", "count", "currency", "ratio", "score"}


@pytest.mark.parametrize(
    "name",
    [
        "health_score",
        "Religion",
        "ethnicOrigin",
        "trade_union_member",
        "political_party",
        "sexual_orientation",
        "biometric_id",
        "genetic_risk",
        "race",
        "has_disability",
    ],
)
def test_special_category_names_refused(name: str) -> None:
    with pytest.raises(ValueError, match="special-category"):
        validate_extra_features(["plan_type", name])


def test_ordinary_crm_names_allowed() -> None:
    validate_extra_features(
        ["plan_type", "region", "incremental_sales", "contract_months", "trace_id", "seats"]
    )


def test_build_matrix_order_and_missing() -> None:
    cols = {
        "frequency": np.array([2.0, 0.0]),
        "nps_last": np.array([9.0, np.nan]),
        "unknown": np.array([1, 2]),
    }
    X = build_matrix(cols)
    names = feature_names()
    assert X.shape == (2, len(names))
    assert X[0, names.index("frequency")] == 2.0
    assert X[1, names.index("nps_last")] == -1.0  # missing NPS sentinel
    assert X[0, names.index("monetary_total")] == 0.0  # absent column -> fill


def test_aggregate_hand_computed() -> None:
    log = EventLog(
        n_customers=3,
        order_customer=np.array([0, 0, 0, 1]),
        order_day=np.array([10, 50, 95, 20]),
        order_amount=np.array([100.0, 50.0, 30.0, 10.0]),
        order_margin=np.array([30.0, 10.0, 5.0, 1.0]),
        order_returned=np.array([False, True, False, False]),
        order_days_late=np.array([0.0, 4.0, 0.0, 2.0]),
        ticket_customer=np.array([0, 0]),
        ticket_day=np.array([40, 90]),
        ticket_escalated=np.array([True, False]),
        ticket_satisfaction=np.array([2.0, np.nan]),
        interaction_customer=np.array([0, 0, 1, 1]),
        interaction_day=np.array([60, 80, 30, 70]),
        interaction_kind=np.array([KIND["login"], KIND["nps"], KIND["nps"], KIND["nps"]]),
        interaction_value=np.array([np.nan, 10.0, 3.0, 8.0]),
        review_customer=np.array([1]),
        review_day=np.array([25]),
        review_rating=np.array([4.0]),
        signup_day=np.array([5, 15, 60]),
    )
    c = aggregate_from_events(log, as_of=100)
    assert c["frequency"].tolist() == [3, 1, 0]
    assert c["monetary_total"].tolist() == [130.0, 10.0, 0.0]  # returned order excluded
    assert c["recency_days"].tolist() == [5, 80, 40]  # no orders -> tenure since signup
    assert c["tenure_days"].tolist() == [90, 80, 40]
    assert c["orders_90d"].tolist() == [2, 1, 0]  # days 50, 95 (> 10)
    assert c["return_rate"][0] == pytest.approx(1 / 3)
    assert c["late_payment_rate"].tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert c["escalations"].tolist() == [1, 0, 0]
    assert c["satisfaction_avg"][0] == 2.0 and np.isnan(c["satisfaction_avg"][1])
    assert c["nps_last"][:2].tolist() == [10.0, 8.0] and np.isnan(c["nps_last"][2])
    assert c["review_rating_avg"][1] == 4.0
    w = window_outcomes(log, 50, 100)
    assert w.revenue.tolist() == [30.0, 0.0, 0.0]
    assert w.advocacy.tolist() == [True, False, False]  # NPS 10 at day 80


def test_new_category_outcome() -> None:
    """A kept order in the window in a category the customer never ordered from on or before its start."""
    log = EventLog(
        n_customers=6,
        #                        0: new cat 1 | 1: same cat | 2: new but returned | 3: none | 4: tried (returned)
        order_customer=np.array([0, 0, 1, 1, 2, 2, 3, 4, 4, 5]),
        order_day=np.array([10, 60, 10, 60, 10, 60, 60, 10, 60, 120]),
        order_amount=np.full(10, 20.0),
        order_margin=np.zeros(10),
        order_returned=np.array([False, False, False, False, False, True, False, True, False, False]),
        order_days_late=np.zeros(10),
        order_category=np.array([0, 1, 0, 0, 0, 2, -1, 1, 1, 3]),
    )
    # categories ordered from on or before day 100: 0 -> {0, 1}; 1 -> {0}; 2 -> {0, 2}; 3 -> none; 4 -> {1}
    assert aggregate_from_events(log, 100)["categories_ordered"].tolist() == [2, 1, 2, 0, 1, 0]
    assert aggregate_from_events(log, 50)["categories_ordered"].tolist() == [1, 1, 1, 0, 1, 0]
    w = window_outcomes(log, 50, 100)
    # 5: a new category, but after the window
    assert w.new_category.tolist() == [True, False, False, False, False, False]
    assert window_outcomes(log, 100, 150).new_category.tolist() == [False] * 5 + [True]
    # without category data nobody has a new category
    log.order_category = None
    assert window_outcomes(log, 50, 100).new_category.tolist() == [False] * 6


def test_synthetic_categories_come_from_their_own_stream() -> None:
    plain = generate_events(300, seed=3, days=400)
    with_cats = generate_events(300, seed=3, days=400, categories=5)
    assert plain.order_category is None
    np.testing.assert_array_equal(with_cats.order_amount, plain.order_amount)  # nothing else changes
    np.testing.assert_array_equal(with_cats.order_day, plain.order_day)
    assert with_cats.order_category.shape == plain.order_day.shape
    assert set(np.unique(with_cats.order_category).tolist()) == {0, 1, 2, 3, 4}
    part = generate_events(100, seed=3, days=400, start=200, categories=5)
    np.testing.assert_array_equal(part.order_category, with_cats.order_category[with_cats.order_customer >= 200])


def test_synthetic_chunking_is_invariant() -> None:
    whole = generate_events(5000, seed=7, days=400)
    part = generate_events(1200, seed=7, days=400, start=3000)
    sel = (whole.order_customer >= 3000) & (whole.order_customer < 4200)
    np.testing.assert_array_equal(part.order_customer, whole.order_customer[sel] - 3000)
    np.testing.assert_array_equal(part.order_amount, whole.order_amount[sel])
    np.testing.assert_array_equal(part.signup_day, whole.signup_day[3000:4200])
    X_whole = build_matrix(aggregate_from_events(whole, 399))[3000:4200]
    np.testing.assert_array_equal(build_matrix(aggregate_from_events(part, 399)), X_whole)
