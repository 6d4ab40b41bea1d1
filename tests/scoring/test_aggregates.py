"""scoring.features.aggregates.fact_aggregates: set-based SQL features equal the pure reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from tests.scoring.helpers import ACTOR, _bulk_facts


@pytest.mark.django_db
def test_sql_features_equal_the_reference_aggregation_of_the_same_events():
    from profiles.services import customer_ingest
    from scoring.features.aggregates import KNOWN_COLUMN, fact_aggregates
    from scoring.ml.features import aggregate_from_events, feature_names
    from scoring.ml.synthetic import generate_events

    events = generate_events(40, seed=5, days=600, categories=4)
    # Ticket sentiment (issue 18): a score in [-1, 1] per ticket, a quarter unscored (no text / no model).
    rng = np.random.default_rng(18)
    mood = np.round(rng.uniform(-1.0, 1.0, len(events.ticket_day)), 4)
    events.ticket_sentiment = np.where(rng.random(len(mood)) < 0.25, np.nan, mood)
    ids = [customer_ingest(source="crm", external_id=f"AGG-{i}", personal={}, actor=ACTOR).customer_id
           for i in range(40)]
    now = timezone.now()
    _bulk_facts(ids, events, now)

    sql = fact_aggregates(customer_ids=ids, as_of=now)
    reference = aggregate_from_events(events, events.last_day())
    # the sentiment columns are exercised, not vacuous
    assert (reference["sentiment_avg"] != 0).sum() > 10
    assert (reference["sentiment_trend_90d"] != 0).sum() >= 1
    assert reference["sentiment_tickets_90d"].sum() >= 1

    for name in feature_names():
        np.testing.assert_allclose(sql[name], reference[name], rtol=1e-9, atol=1e-6, equal_nan=True,
                                   err_msg=name)
    assert len(set(reference["categories_ordered"].tolist())) > 1  # the category column is exercised
    assert sql[KNOWN_COLUMN].tolist() == [1.0] * 40


@pytest.mark.django_db
def test_sql_window_outcomes_equal_the_reference_including_new_categories():
    from datetime import timedelta

    from profiles.services import customer_ingest
    from scoring.features.aggregates import window_outcomes as sql_window_outcomes
    from scoring.ml.features import window_outcomes
    from scoring.ml.synthetic import generate_events

    events = generate_events(40, seed=5, days=600, categories=4)
    ids = [customer_ingest(source="crm", external_id=f"WIN-{i}", personal={}, actor=ACTOR).customer_id
           for i in range(40)]
    now = timezone.now()
    _bulk_facts(ids, events, now)
    last = events.last_day()
    for start_day, end_day in ((300, 480), (100, 400)):
        sql = sql_window_outcomes(customer_ids=ids, start=now - timedelta(days=last - start_day),
                                  end=now - timedelta(days=last - end_day))
        ref = window_outcomes(events, start_day, end_day)
        np.testing.assert_allclose(sql["revenue"], ref.revenue, atol=1e-6)
        for key in ("orders", "referrals", "promoter", "good_review", "advocacy", "new_category"):
            assert sql[key].tolist() == getattr(ref, key).tolist(), key
        assert 0 < int(ref.new_category.sum()) < 40  # the case is exercised, not vacuous


@pytest.mark.django_db
def test_aggregates_run_a_fixed_number_of_queries_whatever_the_number_of_customers(django_assert_max_num_queries):
    from profiles.services import customer_ingest
    from scoring.features.aggregates import fact_aggregates
    from scoring.ml.synthetic import generate_events

    events = generate_events(60, seed=9, days=400)
    ids = [customer_ingest(source="crm", external_id=f"AGQ-{i}", personal={}, actor=ACTOR).customer_id
           for i in range(60)]
    _bulk_facts(ids, events, timezone.now())
    with django_assert_max_num_queries(7):
        fact_aggregates(customer_ids=ids, as_of=timezone.now())
    with django_assert_max_num_queries(7):
        fact_aggregates(customer_ids=ids[:1], as_of=timezone.now())


@pytest.mark.django_db
def test_facts_after_as_of_are_ignored_and_unknown_customers_get_empty_features():
    import uuid

    from scoring.features.aggregates import KNOWN_COLUMN, fact_aggregates
    from tests.factories import make_customer, make_order

    cid = make_customer()
    make_order(cid, amount="100.00", days_ago=10)
    make_order(cid, amount="50.00", days_ago=100, returned=True)
    make_order(cid, amount="70.00", days_ago=200, days_late=4)
    as_of = timezone.now() - timezone.timedelta(days=5)
    nobody = uuid.uuid4()
    cols = fact_aggregates(customer_ids=[cid, nobody], as_of=as_of)
    assert cols["frequency"].tolist() == [3.0, 0.0]
    assert cols["monetary_total"].tolist() == [170.0, 0.0]  # the returned order earns nothing
    assert cols["orders_90d"].tolist() == [1.0, 0.0]
    assert cols["revenue_90d"].tolist() == [100.0, 0.0]
    assert cols["revenue_prev_90d"].tolist() == [0.0, 0.0]
    assert cols["return_rate"][0] == pytest.approx(1 / 3)
    assert cols["late_payment_rate"][0] == pytest.approx(1 / 3)
    assert cols["recency_days"][0] == 5.0
    assert cols[KNOWN_COLUMN].tolist() == [1.0, 0.0]
    later = fact_aggregates(customer_ids=[cid], as_of=timezone.now() - timezone.timedelta(days=150))
    assert later["frequency"].tolist() == [1.0]


@pytest.mark.django_db
def test_declared_crm_attributes_become_features_and_special_categories_never_do():
    from scoring.features.aggregates import fact_aggregates
    from tests.factories import make_customer, set_attributes

    a = make_customer(attributes={"plan": "pro", "seats": 12, "churned": True},
                      feature_attributes=["plan", "seats"])
    b = make_customer(attributes={"plan": "basic"}, feature_attributes=["plan", "seats"])
    # A special-category attribute declared as a feature (bypassing ingest validation) is still never used.
    set_attributes(b, {"plan": "basic", "health_status": "x"}, feature_attributes=["plan", "seats", "health_status"])
    cols = fact_aggregates(customer_ids=[a, b], as_of=timezone.now())
    assert cols["attr:plan"].tolist() == ["pro", "basic"]
    assert cols["attr:seats"][0] == 12.0 and np.isnan(cols["attr:seats"][1])
    assert "attr:churned" not in cols  # not declared as a feature
    assert not any("health" in name for name in cols)


@pytest.mark.django_db
def test_column_reads_give_exactly_the_row_reads_on_a_random_population(monkeypatch):
    """PostgreSQL reads the facts as columns (``profiles.facts.fact_columns``, positions from the database);
    the row reads (every other database) are the reference: the same values, bit for bit, on a random
    population with facts before and after ``as_of``, unknown customers, sentiment and declared attributes."""
    import uuid
    from datetime import timedelta

    from django.db import connection

    from profiles import facts
    from profiles.services import customer_ingest
    from scoring.features.aggregates import fact_aggregates
    from scoring.ml.synthetic import generate_events
    from tests.factories import make_customer

    if connection.vendor != "postgresql":
        pytest.skip("the column reads are PostgreSQL's")
    events = generate_events(50, seed=21, days=500, categories=5)
    rng = np.random.default_rng(21)
    mood = np.round(rng.uniform(-1.0, 1.0, len(events.ticket_day)), 4)
    events.ticket_sentiment = np.where(rng.random(len(mood)) < 0.3, np.nan, mood)
    ids = [customer_ingest(source="crm", external_id=f"COL-{i}", personal={}, actor=ACTOR).customer_id
           for i in range(50)]
    now = timezone.now()
    _bulk_facts(ids, events, now)
    ids += [make_customer(attributes={"plan": "pro", "seats": 3}, feature_attributes=["plan", "seats"]),
            make_customer(attributes={"plan": "basic"}, feature_attributes=["plan"]), uuid.uuid4()]
    order = [ids[i] for i in rng.permutation(len(ids))]
    for as_of in (now, now - timedelta(days=120, seconds=37), now - timedelta(days=400)):
        columns = fact_aggregates(customer_ids=order, as_of=as_of)
        with monkeypatch.context() as m:
            m.setattr(facts, "fact_columns", lambda **kw: None)
            rows = fact_aggregates(customer_ids=order, as_of=as_of)
        assert sorted(columns) == sorted(rows)
        for name in rows:
            if rows[name].dtype == object:
                assert columns[name].tolist() == rows[name].tolist(), name
            else:
                np.testing.assert_array_equal(columns[name], rows[name], err_msg=name)
        assert rows["frequency"].sum() > 0 and np.isfinite(rows["nps_last"]).sum() > 0
