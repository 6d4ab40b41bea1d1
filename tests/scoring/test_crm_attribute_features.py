"""Declared CRM attributes as features of the full models (CLV, churn, upsell, advocacy): the encoding, training
from the database, scoring, explanations, the model card, bundles trained before, reproducibility."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from django.utils import timezone

from scoring.ml.features import EventLog
from tests.scoring.helpers import (
    ACTOR,
    SCORING,
    SMALL_CONFIG_KW,
    _bulk_facts,
    grant,
    register_model,
    small_config,
)

HORIZON = 60
PLANS = ("monthly", "annual", "team")
PURPOSE = "Declared as a feature by a customer import."
MODEL_KEYS = ("clv", "churn", "upsell", "advocacy")


def _plan_history(n: int, seed: int, days: int = 420) -> tuple[EventLog, np.ndarray, np.ndarray]:
    """Customers buying about every 8 days; only ``monthly`` ones stop, each at a random day: among customers
    still buying at a cutoff, the plan alone tells who is likely to churn. Also ``seats`` (no signal, 15 %
    missing as NaN)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(np.array(PLANS, dtype=object), size=n)
    signup = rng.integers(0, 60, n)
    stop = np.where(plan == "monthly", rng.uniform(150, days + 120, n), np.inf)
    cust, day = [], []
    for i in range(n):
        t = float(signup[i])
        while t < min(stop[i], days - 1):
            cust.append(i)
            day.append(int(t))
            t += rng.exponential(8.0)
    c, d = np.array(cust), np.array(day)
    amount = np.round(rng.lognormal(3.5, 0.5, len(c)), 2)
    log = EventLog(n_customers=n, order_customer=c, order_day=d, order_amount=amount,
                   order_margin=np.round(amount * 0.3, 2), order_returned=np.zeros(len(c), dtype=bool),
                   order_days_late=np.zeros(len(c)), signup_day=signup)
    seats = rng.integers(1, 40, n).astype(np.float64)
    seats[rng.random(n) < 0.15] = np.nan
    return log, plan, seats


@pytest.fixture
def small_models(settings):
    settings.SCORING_MODEL_CONFIG = SMALL_CONFIG_KW


@pytest.fixture
def plan_population(db):
    """``make(n, declared=...)`` -> (ids, plan, seats): customers imported with ``plan``, ``seats`` and a
    ``health_score`` that mirrors the plan (as predictive, but special-category data), the given attributes
    declared as features, their order histories, and consent for scoring."""

    def make(n: int = 300, *, seed: int = 0, declared: tuple[str, ...] = ("plan", "seats", "health_score")):
        from profiles.models import Customer
        from profiles.services import customer_ingest
        from scoring.features.aggregates import is_special_category

        allowed = [name for name in declared if not is_special_category(name)]
        log, plan, seats = _plan_history(n, seed)
        tag = uuid.uuid4().hex[:8]
        ids = []
        for i in range(n):
            attributes = {"plan": plan[i], "health_score": 1 if plan[i] == "monthly" else 0}
            if np.isfinite(seats[i]):
                attributes["seats"] = int(seats[i])
            ids.append(customer_ingest(source="crm", external_id=f"PLAN-{tag}-{i}", personal={}, actor=ACTOR,
                                       attributes=attributes, feature_attributes=allowed).customer_id)
        if allowed != list(declared):
            # Imports refuse special-category feature names (RecordInvalid "special_category"); declared
            # around them (older rows, direct writes), aggregation and training still never use them.
            Customer.objects.filter(id__in=ids).update(feature_attributes=list(declared))
        _bulk_facts(ids, log, timezone.now())
        for cid in ids:
            grant(cid)
        return ids, plan, seats

    return make


def _trained(version):
    from scoring import registry

    return registry.load(registry.ref_of(version))


# --------------------------------------------------------------------------- the encoding (no database)


def test_numeric_attributes_are_one_column_with_the_median_as_fill_and_categories_are_bounded_one_hot():
    from scoring.ml.features import attribute_matrix, fit_attribute_encoding

    counts = {**{f"c{k}": 40 - 2 * k for k in range(9)}, "b": 20, "a": 20, "once": 5}  # c0: 40 ... c8: 24
    colour = np.array([v for v, c in counts.items() for _ in range(c)] + [None] * 20, dtype=object)
    seats = np.array([3.0, np.nan, 5.0, 10.0] * (len(colour) // 4) + [5.0] * (len(colour) % 4))
    encoding = fit_attribute_encoding({"attr:seats": seats, "attr:colour": colour,
                                       "attr:empty": np.full(len(colour), np.nan)})

    assert [(a.column, a.kind) for a in encoding] == [("attr:colour", "categorical"), ("attr:seats", "numeric")]
    colour_enc, seats_enc = encoding
    assert seats_enc.fill == 5.0 and seats_enc.feature_names == ("attr:seats",)
    frequent = [f"c{k}" for k in range(9)] + ["a"]  # at most 10, most frequent first, ties by value; not "once"
    assert colour_enc.categories == tuple(frequent)
    assert colour_enc.feature_names == tuple(f"attr:colour={v}" for v in frequent)

    raw = {"attr:colour": np.array([frequent[0], "never-seen", None], dtype=object),
           "attr:seats": np.array([7, "n/a", None], dtype=object)}
    X = attribute_matrix(raw, encoding, 3)
    assert X.shape == (3, 11)
    np.testing.assert_array_equal(X[:, :10].sum(axis=1), [1.0, 0.0, 0.0])  # unknown or none: all zeros
    assert X[0, 0] == 1.0
    np.testing.assert_array_equal(X[:, 10], [7.0, 5.0, 5.0])  # missing or not a number: the recorded fill
    np.testing.assert_array_equal(attribute_matrix(raw, encoding, 3, fill=False)[:, 10], [7.0, np.nan, np.nan])
    np.testing.assert_array_equal(attribute_matrix({}, encoding, 2), [[0.0] * 10 + [5.0]] * 2)


def test_category_values_match_whatever_type_a_chunk_carries_them_in():
    from scoring.ml.features import attribute_matrix, fit_attribute_encoding

    [enc] = fit_attribute_encoding({"attr:tier": np.array(["1"] * 10 + [2] * 10 + ["gold"] * 10, dtype=object)})
    assert enc.kind == "categorical" and set(enc.categories) == {"1", "2", "gold"}
    as_numbers = attribute_matrix({"attr:tier": np.array([1.0, 2.0, np.nan])}, [enc], 3)
    assert as_numbers[:, enc.categories.index("1")].tolist() == [1.0, 0.0, 0.0]
    assert as_numbers[:, enc.categories.index("2")].tolist() == [0.0, 1.0, 0.0]


def test_attribute_columns_are_never_read_without_their_encoding():
    from scoring.ml.features import build_matrix, feature_names, fit_attribute_encoding

    raw = {"attr:seats": np.arange(12, dtype=np.float64)}
    columns = {**{name: np.zeros(12) for name in feature_names()}, **raw}
    names = (*feature_names(), "attr:seats")
    with pytest.raises(ValueError, match="without an encoding"):
        build_matrix(columns, names)
    X = build_matrix(columns, names, fit_attribute_encoding(raw))
    np.testing.assert_array_equal(X[:, -1], np.arange(12))
    np.testing.assert_array_equal(build_matrix(columns), np.zeros((12, len(feature_names()))))


def test_special_category_attributes_are_refused_by_the_encoding():
    from scoring.ml.features import fit_attribute_encoding

    with pytest.raises(ValueError, match="special-category"):
        fit_attribute_encoding({"attr:health_score": np.ones(30)})


def test_one_hot_columns_read_as_attribute_equals_value_yes_or_no():
    from scoring import engine
    from scoring.features.aggregates import ATTRIBUTE_PREFIX
    from scoring.ml.features import feature_spec

    assert ATTRIBUTE_PREFIX == "attr:"
    assert engine.contribution_text("attr:plan=gold", 1.0, 3.2, "points") == "plan = gold: yes (+3 points)"
    assert engine.contribution_text("attr:plan=gold", 0.0, -1.0, "points") == "plan = gold: no (\u22121 points)"
    assert engine.contribution_text("attr:contract_type", 12.0, 2.0, "points") == "contract type: 12 (+2 points)"
    assert engine.contribution_text("attr:seats", None, 2.0, "points") == "seats: not given (+2 points)"
    assert engine.contribution_text("attr:frequency", 4.0, 1.0, "points") == "frequency: 4 (+1 points)"
    assert feature_spec("attr:plan=gold").source == "crm" and feature_spec("attr:plan=gold").purpose == PURPOSE


def test_snapshots_get_the_static_attribute_columns_appended_in_customer_order():
    from scoring.ml.features import attribute_matrix, feature_names
    from scoring.ml.models import Snapshot, TrainingData

    n = 40
    rng = np.random.default_rng(1)
    raw = {"attr:plan": np.array(["a", "b"] * 20, dtype=object), "attr:seats": rng.integers(1, 9, n).astype(float)}
    fixed = [rng.random((n, len(feature_names()))) for _ in range(3)]
    snaps = [Snapshot(c, X, np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)) for c, X in zip((300, 200, 100), fixed,
                                                                                                strict=True)]
    data = TrainingData(snapshots=snaps, as_of=400, attribute_columns=raw)
    A = attribute_matrix(raw, data.attributes, n)
    assert data.feature_names()[len(feature_names()):] == ("attr:plan=a", "attr:plan=b", "attr:seats")
    for c, X in zip((300, 200, 100), fixed, strict=True):
        np.testing.assert_array_equal(data.snapshot(c, 60).X, np.hstack([X, A]))
    np.testing.assert_array_equal(data.current(), np.hstack([fixed[0], A]))
    assert snaps[0].X.shape[1] == len(feature_names())  # the given snapshots are left as they are


def test_every_model_of_a_bundle_with_attribute_columns_explains_exactly():
    from sklearn.ensemble import RandomForestRegressor

    from scoring.ml.btyd import fit_btyd_value
    from scoring.ml.features import build_matrix, feature_matrix, window_outcomes
    from scoring.ml.models import TrainingData, ValueModel, predict_all, train_all

    log, plan, seats = _plan_history(300, seed=4)
    raw = {"attr:plan": plan, "attr:seats": seats}
    bundle = train_all(TrainingData(events=log, attribute_columns=raw), horizon_days=HORIZON, seed=0,
                       config=small_config())
    names = bundle.feature_names
    assert {"attr:plan=monthly", "attr:plan=annual", "attr:plan=team", "attr:seats"} <= set(names)
    cols = {"attr:plan": plan, "attr:seats": seats}
    X = build_matrix({**_fixed_columns(log), **cols}, names, bundle.attributes)
    assert np.isfinite(X).all()  # never NaN into the trees
    pred = predict_all(bundle, X)
    assert set(pred.contributions) == set(MODEL_KEYS)
    for key, c in pred.contributions.items():
        assert c.values.shape == (300, len(names)), key
        assert c.max_error() < 1e-6, key
    # a BTYD / forest blend on the wide matrix is exact as well (BTYD credits only its four inputs)
    y = window_outcomes(log, log.last_day() - HORIZON, log.last_day()).revenue
    Xp = np.hstack([feature_matrix(log, log.last_day() - HORIZON), X[:, -4:]])
    rf = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(Xp, y)
    blend = ValueModel("blend", HORIZON, names, rf, fit_btyd_value(Xp, names, HORIZON), 0.5)
    c = blend.contributions(X)
    np.testing.assert_allclose(c.baseline + c.values.sum(axis=1), blend.predict(X), atol=1e-6)


def _fixed_columns(log: EventLog) -> dict:
    from scoring.ml.features import aggregate_from_events

    return aggregate_from_events(log, log.last_day())


# --------------------------------------------------------------------------- training and scoring from the database


@pytest.mark.django_db
def test_declared_attributes_are_features_of_the_full_models_and_listed_in_the_model_card(
        plan_population, small_models):
    from scoring import services
    from scoring.ml.features import feature_names

    ids, plan, seats = plan_population()
    version = services.model_train(actor="cli", seed=0, horizon_days=HORIZON)
    bundle = _trained(version)

    fixed = feature_names()
    names = bundle.feature_names
    assert names[:len(fixed)] == fixed  # the fixed inventory first, in order
    assert set(names[len(fixed):]) == {"attr:plan=monthly", "attr:plan=annual", "attr:plan=team", "attr:seats"}
    assert len(names) == len(fixed) + 4
    assert not any("health" in n for n in names)
    for key in MODEL_KEYS:
        assert getattr(bundle, key).feature_names == names
    assert bundle.churn.calibrated.calibrated_classifiers_[0].estimator.n_features_in_ == len(names)

    crm = {f["name"]: f for f in version.card["features"] if f["source"] == "crm"}
    assert set(crm) == set(names[len(fixed):])
    assert {f["purpose"] for f in crm.values()} == {PURPOSE}
    assert crm["attr:plan=monthly"]["label"] == "plan = monthly"
    assert crm["attr:seats"]["label"] == "seats"
    encoding = {a["attribute"]: a for a in version.card["attribute_encoding"]}
    assert set(encoding) == {"plan", "seats"}
    assert encoding["plan"]["kind"] == "categorical" and sorted(encoding["plan"]["categories"]) == sorted(PLANS)
    assert encoding["seats"]["kind"] == "numeric"
    assert encoding["seats"]["fill"] == float(np.median(seats[np.isfinite(seats)]))
    assert "at every training cutoff" in version.card["attribute_history"]
    assert "health_score" not in json.dumps(version.card)


@pytest.mark.django_db
def test_scoring_reads_the_attribute_columns_stores_them_and_explains_them_faithfully(plan_population, small_models):
    from scoring import engine, registry, services
    from scoring.features.aggregates import fact_aggregates
    from scoring.models import CustomerScore

    ids, plan, seats = plan_population()
    v = services.model_train(actor="cli", seed=0, horizon_days=HORIZON, activate=False)
    # This test is about the attribute columns' explanations, not about model quality (this small history is
    # weak on some kinds, varying with the random ids): every kind is marked as passing, so every kind is served.
    v.card = {**v.card, "quality": {k: {**e, "status": "ok"} for k, e in v.card["quality"].items()}}
    v.save(update_fields=["card"])
    services.model_activate(version=v.version, actor="cli")
    served = set(v.card["quality"])
    i = next(i for i in range(len(ids)) if plan[i] == "monthly" and np.isfinite(seats[i]))
    j = next(j for j in range(len(ids)) if plan[j] == "annual" and not np.isfinite(seats[j]))

    result = services.score_serve(customer_id=ids[i], purpose=SCORING, requester="api:crm")
    services.score_serve(customer_id=ids[j], purpose=SCORING, requester="api:crm")
    row = CustomerScore.objects.get(customer_id=ids[i], purpose=SCORING)
    assert row.features["attr:plan=monthly"] == 1.0
    assert row.features["attr:plan=annual"] == row.features["attr:plan=team"] == 0.0
    assert row.features["attr:seats"] == seats[i]
    other = CustomerScore.objects.get(customer_id=ids[j], purpose=SCORING)
    assert other.features["attr:plan=annual"] == 1.0
    assert other.features["attr:seats"] is None  # shown as not given (the models read the recorded fill)
    assert not any("health" in name for name in row.features)
    assert result.explanation == row.explanation
    for key in MODEL_KEYS:  # faithful: contributions (with the remainder) sum to output - baseline
        exp = row.explanation[key]
        if key not in served:  # a kind below its quality floor is not served, nor explained
            assert exp is None
            continue
        total = sum(c for _, _, c in exp["contributions"]) + exp["remainder"]
        assert total == pytest.approx(exp["output"] - exp["baseline"], abs=1e-6), key

    models = registry.active_models()
    names = models.bundle.feature_names
    columns = fact_aggregates(customer_ids=[ids[i]], as_of=timezone.now())
    batch = engine.score_batch([ids[i]], columns=columns, models=models, top_k=len(names))
    churn = batch.explanation[0]["churn"]
    contributions = {name: c for name, _, c in churn["contributions"]}
    assert set(contributions) == set(names)
    plan_columns = [n for n in names if n.startswith("attr:plan=")]
    assert sum(abs(contributions[n]) for n in plan_columns) > 0
    assert sum(contributions.values()) == pytest.approx(churn["output"] - churn["baseline"], abs=1e-6)
    words = engine.explanation_in_words(batch.explanation[0], top_k=len(names))["churn"]["contributions"]
    texts = [w["text"] for w in words if w["feature"] in plan_columns]
    assert texts and all(t.startswith("plan = ") and (": yes (" in t or ": no (" in t) for t in texts)
    np.testing.assert_allclose(engine.rank_values(models, columns), batch.rank)


@pytest.mark.django_db
def test_a_categorical_attribute_that_determines_churn_raises_the_validation_auc(plan_population, small_models):
    from profiles.models import Customer
    from scoring import services

    ids, _, _ = plan_population(declared=("plan",))
    as_of = timezone.now()
    with_plan = services.model_train(actor="cli", seed=0, horizon_days=HORIZON, as_of=as_of, activate=False)
    Customer.objects.filter(id__in=ids).update(feature_attributes=[])
    without = services.model_train(actor="cli", seed=0, horizon_days=HORIZON, as_of=as_of, activate=False)

    assert "attr:plan=monthly" in _trained(with_plan).feature_names
    assert not any(f["source"] == "crm" for f in without.card["features"])
    assert with_plan.metrics["churn_auc"] > without.metrics["churn_auc"]


@pytest.mark.django_db
def test_a_bundle_trained_before_attributes_were_features_still_scores(synthetic_artifact):
    import skops.io as sio

    from scoring import registry, services
    from scoring.ml.features import feature_names
    from scoring.ml.registry_io import bundle_to_dict, sha256
    from scoring.models import CustomerScore
    from tests.scoring.helpers import customer_with_history

    old = bundle_to_dict(synthetic_artifact.bundle)
    old["model_card"] = {k: v for k, v in old["model_card"].items() if not k.startswith("attribute_")}
    data = sio.dumps(old)
    register_model(SimpleNamespace(data=data, sha=sha256(data), card=synthetic_artifact.card,
                                   metrics=synthetic_artifact.metrics, population=synthetic_artifact.population))
    registry.cache_clear()
    cid = customer_with_history(attributes={"plan": "monthly", "seats": 4}, feature_attributes=["plan", "seats"])

    bundle = registry.active_models().bundle
    assert bundle.attributes == () and bundle.feature_names == feature_names()
    result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:crm")
    row = CustomerScore.objects.get(customer_id=cid, purpose=SCORING)
    assert set(row.features) == set(feature_names())
    assert 0.0 <= result.churn_probability <= 1.0
    registry.cache_clear()


@pytest.mark.django_db
def test_training_with_attributes_is_reproducible_with_a_fixed_seed(plan_population, small_models):
    from scoring import services
    from scoring.engine import bundle_matrix
    from scoring.features.aggregates import fact_aggregates
    from scoring.ml.models import predict_all

    ids, _, _ = plan_population(200, seed=7)
    as_of = timezone.now()
    a = services.model_train(actor="cli", seed=3, horizon_days=HORIZON, as_of=as_of)
    b = services.model_train(actor="cli", seed=3, horizon_days=HORIZON, as_of=as_of)
    assert a.metrics == b.metrics and a.population == b.population
    assert a.card["attribute_encoding"] == b.card["attribute_encoding"] != []
    columns = fact_aggregates(customer_ids=ids, as_of=as_of)
    pa, pb = (predict_all(_trained(v), bundle_matrix(_trained(v), columns), explain=False) for v in (a, b))
    for key in ("clv", "churn_probability", "upsell", "advocacy"):
        np.testing.assert_array_equal(getattr(pa, key), getattr(pb, key))

