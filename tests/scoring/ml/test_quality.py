"""Quality floors and naive baselines (scoring.ml.quality), and the CLV of customers with no purchase."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from scoring.ml.features import KIND, EventLog
from scoring.ml.models import ModelConfig, Snapshot, TrainingData, train_all
from scoring.ml.quality import assess
from scoring.ml.synthetic import generate_events

SMALL = ModelConfig(n_folds=2, min_history_days=60, final_cutoffs=1, rf_trees=12, rf_max_depth=5, gb_trees=12,
                    clf_trees=12, calibration_cv=2, n_segments=4)


def test_every_kind_is_compared_with_its_naive_baseline_on_the_same_validation_windows():
    bundle = train_all(TrainingData(events=generate_events(600, seed=11, days=800)), horizon_days=180, seed=0,
                       config=SMALL)
    q = bundle.model_card["quality"]
    assert set(q) == {"clv", "churn", "upsell", "advocacy"}
    for entry in q.values():
        assert set(entry) == {"metric", "value", "baseline", "baseline_method", "floor", "status", "reason"}
    m = bundle.metrics
    assert q["churn"]["value"] == m["churn_auc"] and q["churn"]["baseline"] == m["churn_baseline_auc"]
    assert q["churn"]["baseline_method"].startswith("recency rank")
    assert q["clv"]["metric"] == "top_decile_share" and q["clv"]["baseline"] == m["clv_baseline_top_decile_share"]
    assert q["clv"]["floor"] is None and q["churn"]["floor"] == 0.60
    assert q["upsell"]["baseline"] == 0.5 and m["upsell_prior_brier"] > 0
    # the synthetic histories carry signal: every kind beats its baseline and the floor
    assert {k: e["status"] for k, e in q.items()} == dict.fromkeys(q, "ok")
    assert m["churn_auc"] > m["churn_baseline_auc"] and m["clv_top_decile_share"] >= m["clv_baseline_top_decile_share"]


def test_the_floor_and_the_baselines_decide_each_status():
    good = {"clv_top_decile_share": 0.5, "clv_baseline_top_decile_share": 0.4, "churn_auc": 0.8,
            "churn_baseline_auc": 0.7, "churn_brier": 0.1, "churn_prior_brier": 0.2, "upsell_auc": 0.7,
            "upsell_brier": 0.1, "upsell_prior_brier": 0.12, "advocacy_auc": 0.65, "advocacy_brier": 0.1,
            "advocacy_prior_brier": 0.11}
    assert {k: e["status"] for k, e in assess(good).items()} == dict.fromkeys(("clv", "churn", "upsell", "advocacy"), "ok")
    bad = {**good, "clv_top_decile_share": 0.3, "churn_auc": 0.65, "upsell_auc": 0.5, "advocacy_brier": 0.2,
           "advocacy_auc": 0.9}
    q = assess(bad)
    assert q["clv"]["status"] == "below_baseline"  # historical spend ranks better
    assert q["churn"]["status"] == "below_baseline"  # the recency rank (0.7) beats 0.65
    assert q["upsell"]["status"] == "below_floor"
    assert q["advocacy"]["status"] == "below_baseline"  # ranks well but its probabilities are worse than the prior's
    weak = {**good, "churn_auc": 0.59, "churn_baseline_auc": 0.55}
    assert assess(weak)["churn"]["status"] == "below_floor"
    assert assess(weak, floor=0.55)["churn"]["status"] == "ok"  # the floor is configurable
    assert assess({})["churn"]["status"] == "not_trained"


def test_noise_labels_give_a_churn_model_below_the_floor():
    data = TrainingData(events=generate_events(600, seed=11, days=800))
    rng = np.random.default_rng(0)
    snaps = [data.snapshot(c, 180) for c in sorted({*_cutoffs(data)})]
    noisy = [replace(s, future_orders=rng.integers(0, 2, len(s.X)).astype(float)) for s in snaps]
    bundle = train_all(TrainingData(snapshots=noisy, as_of=data.now(), current_X=data.current(),
                                    first_day=data.start()), horizon_days=180, seed=0, config=SMALL)
    q = bundle.model_card["quality"]["churn"]
    assert q["status"] in {"below_floor", "below_baseline"} and q["value"] < 0.6


def _cutoffs(data: TrainingData) -> list[int]:
    from scoring.ml.models import planned_cutoffs

    return planned_cutoffs(now_day=data.now(), first_day=data.start(), horizon=180, cfg=SMALL)


def prospects_log(n: int = 900, days: int = 900, seed: int = 4) -> tuple[EventLog, np.ndarray]:
    """Customers who sign up and engage (logins, e-mail clicks) before their first purchase; the more engaged
    buy sooner and more. Returns the log and each customer's engagement."""
    rng = np.random.default_rng(seed)
    signup = rng.integers(0, days - 60, n)
    engagement = rng.uniform(0.0, 1.0, n)
    oc, od, oa, ic, iday, ik = [], [], [], [], [], []
    for i in range(n):
        first = signup[i] + int(rng.exponential(60 / (0.05 + engagement[i] ** 2)))
        for d in range(signup[i], days):
            if rng.random() < 0.02 + 0.2 * engagement[i]:
                ic.append(i)
                iday.append(d)
                ik.append(KIND["login"] if rng.random() < 0.7 else KIND["email_click"])
            if d >= first and rng.random() < 0.004 + 0.03 * engagement[i]:
                oc.append(i)
                od.append(d)
                oa.append(float(rng.gamma(2.0, 20 + 60 * engagement[i])))
    log = EventLog(
        n_customers=n, order_customer=np.array(oc), order_day=np.array(od), order_amount=np.array(oa),
        order_margin=0.3 * np.array(oa), order_returned=np.zeros(len(oa), dtype=bool),
        order_days_late=np.zeros(len(oa)), interaction_customer=np.array(ic), interaction_day=np.array(iday),
        interaction_kind=np.array(ik), interaction_value=np.zeros(len(ic)), signup_day=signup,
    )
    return log, engagement


def test_customers_without_purchases_get_a_clv_from_what_is_known_about_them():
    from scoring.population import reference_from_population

    log, engagement = prospects_log()
    data = TrainingData(events=log, as_of=899)
    bundle = train_all(data, horizon_days=180, seed=0, config=SMALL)
    assert bundle.clv.prospect is not None
    X = data.current()
    names = list(bundle.feature_names)
    none = np.flatnonzero(X[:, names.index("frequency")] <= 0)
    assert len(none) >= 20
    clv = bundle.clv.predict(X)
    low, high = none[np.argmin(engagement[none])], none[np.argmax(engagement[none])]
    assert clv[high] > clv[low]  # the more engaged non-buyer is worth more
    assert len(np.unique(np.round(clv[none], 6))) >= 10  # not one shared constant
    # exact explanation for these rows too
    contrib = bundle.clv.contributions(X)
    assert contrib.max_error() < 1e-6
    assert np.allclose(contrib.output, clv)
    # tiers among them follow the CLV, not the tie-break: a higher CLV never has a lower tier
    ids = [f"c-{i}" for i in range(len(X))]
    ref = reference_from_population(clv, ids, source="model:test")
    tiers = ref.tiers_for(clv[none], [ids[i] for i in none])
    rank = np.array([list(ref.tiers).index(t) for t in tiers])  # 0 = best tier
    values = clv[none]
    higher = values[:, None] > values[None, :] + 1e-9
    assert not np.any(higher & (rank[:, None] > rank[None, :]))  # a higher CLV never gets a lower tier
    _, counts = np.unique(np.round(values, 6), return_counts=True)
    assert counts.max() < 0.25 * len(none)  # the tie-break decides only among few equal values
    assert len({tiers[j] for j in range(len(none))}) >= 2


@pytest.mark.parametrize("horizon", [180])
def test_a_snapshot_without_prospects_keeps_the_main_model(horizon):
    data = TrainingData(events=generate_events(300, seed=2, days=700))
    bundle = train_all(data, horizon_days=horizon, seed=0, config=SMALL)
    assert bundle.clv.prospect is None  # every known customer has bought: nothing to learn, nothing changes
    assert isinstance(data.snapshot(_cutoffs(data)[0], horizon), Snapshot)
