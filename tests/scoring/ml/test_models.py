from __future__ import annotations

import numpy as np
import pytest

from scoring.ml.features import build_matrix, feature_names
from scoring.ml.models import (
    CLV_CANDIDATES,
    Outcomes,
    Snapshot,
    TrainingData,
    classifier_labels,
    expected_calibration_error,
    is_better,
    name_segments,
    predict_all,
    top_share,
    train_all,
    train_churn_from_table,
    worse_metrics,
)

from .conftest import HORIZON, SMALL

METRICS = (
    "clv_rmse",
    "clv_mae",
    "clv_top_decile_share",
    "churn_auc",
    "churn_brier",
    "churn_ece",
    "upsell_auc",
    "advocacy_auc",
)


def test_train_all_metrics_and_card(small_bundle) -> None:
    m = small_bundle.metrics
    for key in METRICS:
        assert np.isfinite(m[key]), key
    assert 0.5 < m["churn_auc"] <= 1.0 and 0 <= m["churn_ece"] <= 1
    assert small_bundle.clv.kind in CLV_CANDIDATES
    assert m["clv_rmse"] == min(m[f"clv_rmse_{k}"] for k in CLV_CANDIDATES)
    card = small_bundle.model_card
    assert card["data_window"]["cross_validation"] == "temporal"
    assert len(card["data_window"]["folds"]) == 2
    for fold in card["data_window"]["folds"]:  # no training label window overlaps the validation window
        assert max(fold["train_cutoffs"]) + HORIZON <= fold["validation_cutoff"]
    assert {"sklearn", "numpy"} <= set(card["versions"]) and card["seed"] == 0
    assert card["training_seconds"] > 0 and len(card["features"]) == len(feature_names())


def test_predict_all_shapes_ranges_and_exact_contributions(small_bundle, current_X) -> None:
    p = predict_all(small_bundle, current_X)
    n = len(current_X)
    for arr in (p.clv, p.churn_probability, p.upsell, p.advocacy, p.segment, p.segment_code):
        assert arr.shape == (n,)
    for arr in (p.churn_probability, p.upsell, p.advocacy):
        assert np.all((arr >= 0) & (arr <= 1))
    for key, c in p.contributions.items():
        assert c.max_error() < 1e-6, key
    np.testing.assert_allclose(p.clv, small_bundle.clv.predict(current_X), atol=1e-6)
    np.testing.assert_allclose(p.churn_probability, small_bundle.churn.predict_proba(current_X), atol=1e-9)
    fast = predict_all(small_bundle, current_X, explain=False)
    np.testing.assert_allclose(fast.clv, p.clv, atol=1e-6)
    assert set(p.segment) <= set(small_bundle.segments.names)


def test_training_is_deterministic(small_log, small_bundle, current_X) -> None:
    again = train_all(TrainingData(events=small_log), horizon_days=HORIZON, seed=0, config=SMALL)
    assert again.metrics == small_bundle.metrics
    a, b = predict_all(small_bundle, current_X), predict_all(again, current_X)
    for field in ("clv", "churn_probability", "upsell", "advocacy", "segment_code"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    card_a = {k: v for k, v in small_bundle.model_card.items() if k != "training_seconds"}
    card_b = {k: v for k, v in again.model_card.items() if k != "training_seconds"}
    assert card_a == card_b


def test_all_served_clv_kinds_explain_exactly(small_bundle, current_X) -> None:
    import dataclasses

    from scoring.ml.btyd import fit_btyd_value
    from scoring.ml.models import ValueModel
    from scoring.ml.models.trees import fit_regressor

    names = feature_names()
    btyd = fit_btyd_value(current_X, names, HORIZON)
    y = np.random.default_rng(0).gamma(1.0, 50.0, len(current_X))
    for kind, weight in (("btyd", 1.0), ("random_forest", 0.0), ("gradient_boosting", 0.0), ("blend", 0.5)):
        est = (
            None
            if kind == "btyd"
            else fit_regressor(
                "gradient_boosting" if kind == "gradient_boosting" else "random_forest",
                current_X,
                y,
                SMALL,
                0,
            )
        )
        vm = ValueModel(kind, HORIZON, names, est, btyd, weight)
        bundle = dataclasses.replace(small_bundle, clv=vm)
        c = predict_all(bundle, current_X[:200]).contributions["clv"]
        assert c.max_error() < 1e-6
        np.testing.assert_allclose(c.output, vm.predict(current_X[:200]), atol=1e-6)


def test_upsell_label_is_spending_more_or_buying_a_new_category() -> None:
    from scoring.ml.models import ModelConfig

    names = feature_names()
    X = build_matrix({"frequency": np.array([2, 2, 2, 2.0]), "monetary_total": np.full(4, 100.0),
                      "tenure_days": np.full(4, 365.0)})
    spend = np.array([500, 50, 50, 500.0])  # 0 and 3 spend well above their usual 100 a year
    new_category = np.array([False, True, False, True])
    snap = Snapshot(100, X, future_revenue=spend, future_orders=np.ones(4), future_advocacy=np.zeros(4, bool),
                    future_new_category=new_category)
    assert classifier_labels(snap, names, ModelConfig(), 365, None)["upsell"][1].tolist() == [True, True, False, True]
    no_categories = Snapshot(100, X, future_revenue=spend, future_orders=np.ones(4),
                             future_advocacy=np.zeros(4, bool))
    assert classifier_labels(no_categories, names, ModelConfig(), 365, None)["upsell"][1].tolist() == [
        True, False, False, True]
    # an explicit decline still overrides the derived label
    out = Outcomes(upsell_declined=np.array([0, 1, 0, 0], bool))
    assert classifier_labels(snap, names, ModelConfig(), 365, out)["upsell"][1].tolist() == [True, False, False, True]


def test_explicit_outcomes_override_labels() -> None:
    names = feature_names()
    n = 6
    X = build_matrix(
        {
            "frequency": np.array([2, 2, 2, 0, 3, 1.0]),
            "monetary_total": np.full(n, 100.0),
            "tenure_days": np.full(n, 365.0),
        }
    )
    snap = Snapshot(
        100,
        X,
        future_revenue=np.array([0, 500, 10, 0, 0, 0.0]),
        future_orders=np.array([0, 3, 1, 0, 0, 0.0]),
        future_advocacy=np.zeros(n, dtype=bool),
    )
    from scoring.ml.models import ModelConfig

    derived = classifier_labels(snap, names, ModelConfig(), 365, None)
    assert derived["churn"][1].tolist() == [True, False, False, True, True, True]
    assert derived["churn"][0].tolist() == [True, True, True, False, True, True]  # no orders -> not eligible
    out = Outcomes(
        churned=np.array([0, 1, 0, 0, 0, 0], bool),
        renewed=np.array([1, 0, 0, 1, 0, 0], bool),
        upsell_accepted=np.array([0, 0, 1, 0, 0, 0], bool),
        upsell_declined=np.array([0, 1, 0, 0, 0, 0], bool),
        referred=np.array([0, 0, 0, 0, 1, 0], bool),
    )
    lab = classifier_labels(snap, names, ModelConfig(), 365, out)
    assert lab["churn"][1].tolist() == [False, True, False, False, True, True]
    assert lab["churn"][0][3]  # explicit outcome makes the customer eligible
    assert lab["upsell"][1][:3].tolist() == [False, False, True]
    assert lab["advocacy"][1].tolist() == [False, False, False, False, True, False]


def test_snapshot_mode_with_customer_holdout_fallback(small_log) -> None:
    data = TrainingData(events=small_log)
    snaps = [data.snapshot(c, HORIZON) for c in (500, 600)]  # too close together for a temporal fold
    bundle = train_all(TrainingData(snapshots=snaps, first_day=0), horizon_days=HORIZON, seed=1, config=SMALL)
    assert bundle.model_card["data_window"]["cross_validation"] == "customer_holdout"
    assert np.isfinite(bundle.metrics["clv_rmse"])


def test_not_enough_history_raises(small_log) -> None:
    with pytest.raises(ValueError, match="not enough history"):
        train_all(TrainingData(events=small_log, as_of=200), horizon_days=365, config=SMALL)


def test_is_better_rule() -> None:
    active = {"clv_rmse": 100.0, "churn_auc": 0.80, "upsell_auc": 0.70, "advocacy_auc": 0.60, "clv_mae": 50.0}
    same = dict(active)
    assert is_better(same, active) and worse_metrics(same, active) == []  # equal is not worse
    assert is_better({**active, "clv_rmse": 99.0, "churn_auc": 0.81, "clv_mae": 60.0}, active)  # MAE not gated
    # worse means worse: a slightly worse headline metric blocks, and each model's metric counts
    assert worse_metrics({**active, "clv_rmse": 100.5}, active) == ["clv_rmse"]
    assert worse_metrics({**active, "churn_auc": 0.799}, active) == ["churn_auc"]
    assert worse_metrics({**active, "upsell_auc": 0.69, "advocacy_auc": 0.59}, active) == [
        "upsell_auc", "advocacy_auc"]
    assert worse_metrics({**active, "clv_rmse": 90.0, "churn_auc": 0.785}, active) == ["churn_auc"]
    # floating-point noise is not "worse"
    assert is_better({**active, "clv_rmse": 100.0 * (1 + 1e-12)}, active)
    # a metric the active version has and the candidate lacks blocks; one the active version lacks does not
    assert worse_metrics({**active, "clv_rmse": float("nan")}, active) == ["clv_rmse"]
    assert worse_metrics({"churn_auc": 0.9}, active) == ["clv_rmse", "upsell_auc", "advocacy_auc"]
    assert is_better({"clv_rmse": 1.0, "churn_auc": 0.5}, {"churn_auc": 0.5, "clv_rmse": float("nan")})
    assert is_better({"clv_rmse": 1.0, "churn_auc": 0.5}, None)


def test_metric_helpers() -> None:
    assert top_share(np.array([10.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), np.arange(10.0)[::-1]) == 1.0
    assert expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.0


def test_segment_names_from_centroids() -> None:
    # columns: recency, frequency, monetary, tenure (standardized)
    c = np.array([[-1.0, 2, 2, 1], [2, -1, -1, 1], [-1, -1, -1, -2], [1.5, 1.5, 1.5, 1], [0, 0.5, 0.5, 0]])
    assert name_segments(c) == ("Champions", "Hibernating", "New", "At risk", "Loyal")
    assert len(set(name_segments(np.random.default_rng(0).normal(size=(8, 4))))) == 8


def test_churn_from_crm_table() -> None:
    rng = np.random.default_rng(0)
    n = 600
    plan = rng.choice(["basic", "pro", "enterprise"], n)
    seats = rng.integers(1, 50, n).astype(float)
    seats[::17] = np.nan
    logit = -1.0 + 1.5 * (plan == "basic") - 0.04 * np.nan_to_num(seats, nan=10)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    X = np.column_stack([plan, seats]).astype(object)
    X[:, 1] = seats
    model = train_churn_from_table(X, y, ["plan", "seats"], seed=0)
    assert model.metrics["churn_auc"] > 0.6
    p = model.predict_proba(X)
    c = model.contributions(X[:200])
    assert c.max_error() < 1e-6
    np.testing.assert_allclose(c.output, 100 * p[:200], atol=1e-6)
    words = c.explanations(top_k=2)[0].to_words()
    assert any(w.startswith("plan: ") for w in words) or any(w.startswith("seats: ") for w in words)
    unseen = np.array([["platinum", 3.0]], dtype=object)  # unknown category still scores
    assert 0 <= model.predict_proba(unseen)[0] <= 1
    with pytest.raises(ValueError, match="special-category"):
        train_churn_from_table(X, y, ["plan", "health_status"], seed=0)
