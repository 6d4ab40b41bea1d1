"""Ticket sentiment as churn features (issue 18 §4): the reference aggregation by hand, the model card and the
explanations (still adding up when the features vary)."""

from __future__ import annotations

import numpy as np
import pytest

SENTIMENT_FEATURES = ("sentiment_avg", "sentiment_trend_90d", "sentiment_tickets_90d")


def _log(sentiment):
    from scoring.ml.features import EventLog

    # customer 0: days 10 (-0.5, prior window), 100 (unscored), 150 (+0.3), 170 (-0.9); customer 1: day 170 only
    return EventLog(
        n_customers=3,
        ticket_customer=np.array([0, 0, 0, 0, 1]),
        ticket_day=np.array([10, 100, 150, 170, 170]),
        ticket_escalated=np.zeros(5, dtype=bool),
        ticket_satisfaction=np.full(5, np.nan),
        ticket_sentiment=sentiment,
    )


def test_mean_trend_and_count_by_hand():
    from scoring.ml.features import aggregate_from_events

    cols = aggregate_from_events(_log(np.array([-0.5, np.nan, 0.3, -0.9, 0.8])), as_of=180)
    # window: last 90 days = (90, 180], the 90 before = (0, 90]
    assert cols["sentiment_avg"].tolist() == pytest.approx([(-0.5 + 0.3 - 0.9) / 3, 0.8, 0.0])
    assert cols["sentiment_trend_90d"].tolist() == pytest.approx([(0.3 - 0.9) / 2 - (-0.5), 0.0, 0.0])
    assert cols["sentiment_tickets_90d"].tolist() == [2.0, 1.0, 0.0]
    # as of day 120 the ticket of day 150 and 170 do not exist yet; the prior window is (-60, 30]
    early = aggregate_from_events(_log(np.array([-0.5, np.nan, 0.3, -0.9, 0.8])), as_of=120)
    assert early["sentiment_avg"].tolist() == pytest.approx([-0.5, 0.0, 0.0])
    assert early["sentiment_trend_90d"].tolist() == [0.0, 0.0, 0.0]  # no scored ticket in (30, 120]
    assert early["sentiment_tickets_90d"].tolist() == [0.0, 0.0, 0.0]


def test_without_sentiment_scores_the_features_are_zero():
    from scoring.ml.features import aggregate_from_events

    cols = aggregate_from_events(_log(np.zeros(0)), as_of=180)  # an older event log: no scores at all
    for name in SENTIMENT_FEATURES:
        assert cols[name].tolist() == [0.0, 0.0, 0.0]


def test_the_inventory_and_the_model_card_list_the_sentiment_features(synthetic_artifact):
    from scoring.ml.features import feature_names, feature_spec

    for name in SENTIMENT_FEATURES:
        assert name in feature_names()
        spec = feature_spec(name)
        assert spec.source == "tickets" and spec.purpose
    card = {f["name"]: f for f in synthetic_artifact.card["features"]}
    for name in SENTIMENT_FEATURES:
        assert card[name]["source"] == "tickets" and card[name]["label"] == feature_spec(name).label


def test_explanations_add_up_with_varying_sentiment():
    from scoring.ml.features import aggregate_from_events, build_matrix, feature_names
    from scoring.ml.models import TrainingData, train_all
    from scoring.ml.synthetic import generate_events
    from tests.scoring.helpers import small_config

    events = generate_events(300, seed=21, days=700)
    rng = np.random.default_rng(21)
    events.ticket_sentiment = np.clip(rng.normal(0.0, 0.5, len(events.ticket_day)), -1, 1)
    bundle = train_all(TrainingData(events=events), horizon_days=180, seed=0, config=small_config())
    X = build_matrix(aggregate_from_events(events, events.last_day()))
    j = feature_names().index("sentiment_avg")
    assert np.ptp(X[:, j]) > 0  # the feature varies
    for kind in ("clv", "churn", "upsell", "advocacy"):
        contrib = getattr(bundle, kind).contributions(X[:40])
        assert contrib.max_error() < 1e-6, kind
        assert "sentiment_avg" in contrib.feature_names
