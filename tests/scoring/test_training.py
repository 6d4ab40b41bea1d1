"""Training from the database, the model registry (activation, rollback), CRM-table churn models."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from tests.scoring.helpers import SCORING, SMALL_CONFIG_KW, decisions_for, register_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_models(settings):
    settings.SCORING_MODEL_CONFIG = SMALL_CONFIG_KW


def _predictions(version, ids):
    from scoring import registry
    from scoring.features.aggregates import fact_aggregates
    from scoring.ml.features import build_matrix
    from scoring.ml.models import predict_all

    bundle = registry.load(registry.ref_of(version))
    X = build_matrix(fact_aggregates(customer_ids=ids, as_of=timezone.now()), bundle.feature_names)
    p = predict_all(bundle, X, explain=False)
    return np.column_stack([p.clv, p.churn_probability, p.upsell, p.advocacy])


def test_training_is_reproducible_with_a_fixed_seed(seed_population, small_models):
    from scoring import services

    ids = seed_population(120, seed=21)
    as_of = timezone.now()
    a = services.model_train(actor="cli", seed=3, horizon_days=180, as_of=as_of)
    b = services.model_train(actor="cli", seed=3, horizon_days=180, as_of=as_of)
    assert a.version != b.version
    assert a.metrics == b.metrics
    assert a.population == b.population
    np.testing.assert_array_equal(_predictions(a, ids), _predictions(b, ids))
    assert a.card["training_population"]["customers"] == 120
    assert a.card["data_window"]["horizon_days"] == 180
    assert {f["name"] for f in a.card["features"]} >= {"recency_days", "frequency", "nps_last"}


def test_training_uses_only_customers_allowed_for_the_training_purpose(seed_population, small_models):
    from consent.services import processing_object
    from scoring import services

    ids = seed_population(60, seed=22)
    seed_population(15, seed=23, purposes=("marketing",))
    processing_object(customer_id=ids[0], actor="job:test", purpose=SCORING)
    version = services.model_train(actor="cli", seed=0, horizon_days=180)
    assert version.card["training_population"]["customers"] == 59
    assert version.card["training_population"]["purpose"] == SCORING


def test_training_with_too_little_data_is_refused_and_registers_nothing(seed_population, small_models):
    from config.errors import Unprocessable
    from scoring import services
    from scoring.models import ModelVersion

    seed_population(5, seed=24)
    with pytest.raises(Unprocessable):
        services.model_train(actor="cli", seed=0, horizon_days=180)
    assert not ModelVersion.objects.exists()


def test_first_model_is_activated_and_the_governance_record_written(seed_population, small_models):
    from django.core.management import call_command

    from audit.models import GovernanceEvent
    from scoring.models import ModelVersion

    seed_population(60, seed=25)
    call_command("train", "--seed", "0", "--horizon-days", "180")
    version = ModelVersion.objects.get()
    assert version.status == "active" and version.activated_at is not None
    assert GovernanceEvent.objects.filter(kind="model.activated").count() == 1
    call_command("train", "--if-none")
    assert ModelVersion.objects.count() == 1


def test_worse_model_is_not_activated_unless_forced_and_rollback_restores_the_previous(
        synthetic_artifact, db):
    from audit.models import GovernanceEvent
    from config.errors import Conflict
    from scoring import services
    from scoring.models import ModelVersion

    good = register_model(synthetic_artifact, version="good")
    worse = register_model(synthetic_artifact, version="worse", active=False)
    ModelVersion.objects.filter(pk=worse.pk).update(
        metrics={**synthetic_artifact.metrics, "clv_rmse": synthetic_artifact.metrics["clv_rmse"] * 2})
    with pytest.raises(Conflict) as caught:
        services.model_activate(version="worse", actor="cli")
    assert caught.value.code == "model_not_better"
    assert caught.value.detail.endswith(
        "worse than the active model's: clv_rmse.")
    assert ModelVersion.objects.get(version="good").status == "active"
    assert not GovernanceEvent.objects.filter(kind="model.activated").exists()

    services.model_activate(version="worse", force=True, actor="user:ml")
    assert ModelVersion.objects.get(version="worse").status == "active"
    assert ModelVersion.objects.get(version="good").status == "retired"
    event = GovernanceEvent.objects.get(kind="model.activated")
    assert event.details["forced"] is True and event.details["previous"] == "good"

    restored = services.model_rollback(actor="cli")
    assert restored.pk == good.pk
    assert ModelVersion.objects.get(version="good").status == "active"
    assert ModelVersion.objects.get(version="worse").status == "retired"
    assert GovernanceEvent.objects.get(kind="model.rolled_back").details["from"] == "worse"


def test_activating_a_tampered_version_is_refused(synthetic_artifact, db):
    from scoring import services
    from scoring.models import ModelArtifact, ModelVersion
    from scoring.registry import ModelUnavailable

    register_model(synthetic_artifact, version="good")
    candidate = register_model(synthetic_artifact, version="tampered", active=False)
    data = bytearray(synthetic_artifact.data)
    data[100] ^= 0x80
    ModelArtifact.objects.filter(model_version=candidate).update(data=bytes(data))
    with pytest.raises(ModelUnavailable):
        services.model_activate(version="tampered", force=True, actor="cli")
    assert ModelVersion.objects.get(version="good").status == "active"
    assert ModelVersion.objects.get(version="tampered").status == "candidate"


def test_model_commands_activate_and_roll_back(synthetic_artifact, db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from scoring.models import ModelVersion

    register_model(synthetic_artifact, version="v1")
    register_model(synthetic_artifact, version="v2", active=False)
    call_command("model_activate", "v2")
    assert ModelVersion.objects.get(status="active").version == "v2"
    call_command("model_rollback")
    assert ModelVersion.objects.get(status="active").version == "v1"
    with pytest.raises(CommandError):
        call_command("model_activate", "nope")


def _crm_customers(n, seed):
    """Customers from a CRM table only: plan and seats declared as features, a churned flag; no facts."""
    from profiles.services import customer_ingest
    from tests.scoring.helpers import ACTOR, grant

    rng = random.Random(seed)
    ids = []
    for i in range(n):
        plan = rng.choice(["basic", "pro", "enterprise"])
        seats = rng.randint(1, 50)
        risk = {"basic": 0.8, "pro": 0.4, "enterprise": 0.1}[plan] - seats / 250
        cid = customer_ingest(source="crm", external_id=f"CRMT-{seed}-{i}", personal={}, actor=ACTOR,
                              attributes={"plan": plan, "seats": seats, "churned": rng.random() < risk},
                              feature_attributes=["plan", "seats"]).customer_id
        grant(cid)
        ids.append(cid)
    return ids


def test_a_crm_table_with_a_churn_label_is_enough_to_train_and_serve_a_churn_model(
        active_model, small_models):
    from django.core.management import call_command

    from scoring import services
    from scoring.models import ModelVersion

    ids = _crm_customers(300, seed=5)
    call_command("train", "--from-attributes", "--label", "churned", "--seed", "1")
    churn = ModelVersion.objects.get(kind="churn_table")
    assert churn.status == "active"
    assert churn.card["label"] == "churned"
    assert [f["name"] for f in churn.card["features"]] == ["plan", "seats"]
    assert churn.card["training_population"]["customers"] == 300
    assert churn.metrics["churn_auc"] > 0.6

    result = services.score_serve(customer_id=ids[0], purpose=SCORING, requester="api:crm")
    assert result.model_versions["churn"] == churn.version
    assert result.model_versions["clv"] == "test-model-1"
    churn_exp = result.explanation["churn"]
    assert {name for name, _, _ in churn_exp["contributions"]} <= {"plan", "seats"}
    total = sum(c for _, _, c in churn_exp["contributions"]) + churn_exp["remainder"]
    assert total == pytest.approx(churn_exp["output"] - churn_exp["baseline"], abs=1e-9)
    assert churn_exp["output"] == pytest.approx(100 * result.churn_probability, abs=0.006)
    [decision] = decisions_for(ids[0])
    assert decision.model_versions["churn"] == churn.version


def test_explicit_outcomes_feed_the_training_labels(seed_population, small_models):
    from scoring import services

    ids = seed_population(60, seed=26)
    for cid in ids[:10]:
        services.outcome_record(customer_id=cid, kind="churned", at=timezone.now() - timedelta(days=3),
                                source="crm", actor="api:crm")
    version = services.model_train(actor="cli", seed=0, horizon_days=180)
    assert version.card["training_population"]["explicit_outcomes"]["churned"] == 10
