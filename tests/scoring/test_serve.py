"""Real-time scoring service: the consent gate, decision records, freshness, overrides, tampering."""

from __future__ import annotations

import pytest

from tests.scoring.helpers import SCORING, customer_with_history, decisions_for, grant, withdraw

pytestmark = pytest.mark.django_db


def _serve(cid, purpose=SCORING):
    from scoring import services

    return services.score_serve(customer_id=cid, purpose=purpose, requester="api:support-desk")


def test_served_score_is_a_decision_recorded_with_sealed_features_and_explanation(active_model):
    from audit.services import DECISION_DETAILS_LABEL
    from profiles.selectors import customer_unseal
    from scoring.models import CustomerScore

    cid = customer_with_history()
    result = _serve(cid)

    [decision] = decisions_for(cid)
    assert decision.pk == result.decision_id
    assert decision.decision_type == "served_score"
    assert decision.purpose == SCORING
    assert decision.requester == "api:support-desk"
    assert decision.consent_event_id is not None
    assert decision.model_versions == result.model_versions == {
        "clv": "test-model-1", "churn": "test-model-1", "upsell": "test-model-1", "advocacy": "test-model-1",
        "segments": "test-model-1"}
    assert decision.outputs["tier"] == result.tier
    assert decision.outputs["clv"] == result.clv
    assert decision.outputs["churn_probability"] == result.churn_probability
    row = CustomerScore.objects.get(customer_id=cid, purpose=SCORING)
    assert decision.features_hash == row.features_hash
    details = customer_unseal(customer_id=cid, label=DECISION_DETAILS_LABEL, blob=bytes(decision.sealed_details))
    assert details["features"] == row.features
    assert details["explanation"] == row.explanation
    assert row.features["frequency"] == 4.0
    assert 0 <= result.clv_score <= 100
    assert 0.0 <= result.churn_probability <= 1.0
    assert result.tier in {"VIP", "Premium", "Standard", "Basic"}
    assert result.service_level["response_time_hours"] in {2, 8, 24, 48}


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        ("never", "NoConsent", "no_consent"),
        ("withdrawn", "NoConsent", "no_consent"),
        ("restricted", "Restricted", "restricted"),
        ("objected", "Objected", "objected"),
        ("other_purpose", "NoConsent", "no_consent"),
    ],
)
def test_refused_gate_raises_its_code_and_writes_nothing(active_model, setup, error, code):
    from config import errors
    from consent.services import processing_object, processing_restrict
    from scoring.models import CustomerScore

    cid = customer_with_history(purposes=() if setup in ("never", "other_purpose") else (SCORING,))
    if setup == "withdrawn":
        withdraw(cid)
    elif setup == "restricted":
        processing_restrict(customer_id=cid, actor="job:test", reason="accuracy_contested")
    elif setup == "objected":
        processing_object(customer_id=cid, actor="job:test", purpose=SCORING)
    elif setup == "other_purpose":
        grant(cid, "marketing")
    with pytest.raises(getattr(errors, error)) as caught:
        _serve(cid)
    assert caught.value.code == code
    assert decisions_for(cid) == []
    assert not CustomerScore.objects.filter(customer_id=cid).exists()


def test_erased_or_unknown_customer_is_not_found_and_nothing_is_written(active_model):
    import uuid

    from config.errors import NotFound
    from profiles.services import customer_erase
    from scoring import services
    from scoring.models import CustomerScore

    cid = customer_with_history()
    _serve(cid)
    services.scores_erase_customer(customer_id=cid)
    customer_erase(customer_id=cid, actor="job:test")
    before = len(decisions_for(cid))
    with pytest.raises(NotFound):
        _serve(cid)
    with pytest.raises(NotFound):
        _serve(uuid.uuid4())
    assert len(decisions_for(cid)) == before == 1
    assert not CustomerScore.objects.filter(customer_id=cid).exists()


def test_withdrawn_consent_stops_serving_the_stored_score(active_model):
    from config.errors import NoConsent

    cid = customer_with_history()
    _serve(cid)
    withdraw(cid)
    with pytest.raises(NoConsent):
        _serve(cid)
    assert len(decisions_for(cid)) == 1


def test_fresh_stored_score_is_served_without_recomputation_and_each_answer_is_a_decision(active_model):
    from scoring.models import CustomerScore

    cid = customer_with_history()
    first = _serve(cid)
    computed_at = CustomerScore.objects.get(customer_id=cid).computed_at
    second = _serve(cid)
    assert CustomerScore.objects.get(customer_id=cid).computed_at == computed_at
    assert second.tier == first.tier and second.clv == first.clv
    assert [d.pk for d in decisions_for(cid)] == [first.decision_id, second.decision_id]


def test_new_facts_mark_the_score_stale_and_queue_a_rescore_on_commit(active_model,
                                                                        django_capture_on_commit_callbacks):
    from scoring.models import CustomerScore
    from tests.factories import make_order

    cid = customer_with_history()
    _serve(cid)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        make_order(cid, amount="999.00", days_ago=1)
    assert len(callbacks) >= 1
    row = CustomerScore.objects.get(customer_id=cid)
    assert row.stale is False  # rescored by the queued task (eager)
    assert row.features["frequency"] == 5.0
    types = [d.decision_type for d in decisions_for(cid)]
    assert types[0] == "served_score"
    assert types[1] in {"batch_rescore", "tier_change"}
    assert len(types) == 2


def test_stale_score_is_recomputed_when_served(active_model):
    from scoring.models import CustomerScore

    cid = customer_with_history()
    _serve(cid)
    CustomerScore.objects.filter(customer_id=cid).update(stale=True, features={"frequency": -1})
    _serve(cid)
    row = CustomerScore.objects.get(customer_id=cid)
    assert row.stale is False and row.features["frequency"] == 4.0


def test_human_override_becomes_the_effective_outcome_and_the_review_is_recorded(active_model):
    from audit.models import HumanReview
    from scoring import selectors, services

    cid = customer_with_history()
    first = _serve(cid)
    new_tier = "Basic" if first.tier != "Basic" else "VIP"
    services.score_override_apply(customer_id=cid, purpose=SCORING, decision_id=first.decision_id, tier=new_tier,
                                  service_level={"response_time_hours": 4}, rationale="Contest upheld.",
                                  reviewer="user:dpo")
    [review] = HumanReview.objects.filter(decision_id=first.decision_id)
    assert review.outcome == "overridden" and review.override["tier"] == new_tier

    second = _serve(cid)
    assert second.tier == new_tier
    assert second.automated_tier == first.tier
    assert second.service_level["response_time_hours"] == 4
    assert second.override["review_of_decision"] == first.decision_id
    decision = decisions_for(cid)[-1]
    assert decision.outputs["tier"] == new_tier and decision.outputs["automated_tier"] == first.tier
    assert selectors.score_current(customer_id=cid, purpose=SCORING)["tier"] == new_tier


def test_override_to_an_unknown_tier_is_refused_and_nothing_changes(active_model):
    from audit.models import HumanReview
    from config.errors import ValidationFailed
    from scoring import services
    from scoring.models import ScoreOverride

    cid = customer_with_history()
    first = _serve(cid)
    with pytest.raises(ValidationFailed):
        services.score_override_apply(customer_id=cid, purpose=SCORING, decision_id=first.decision_id,
                                      tier="Platinum", service_level=None, rationale="x", reviewer="user:dpo")
    assert not ScoreOverride.objects.exists()
    assert not HumanReview.objects.exists()


def test_explanations_add_up_to_each_model_output_minus_its_baseline(active_model):
    from scoring import engine

    for cid in [customer_with_history(orders=n) for n in (1, 3, 7)]:
        result = _serve(cid)
        stored = result.explanation
        words = engine.explanation_in_words(stored)
        assert set(words) == {"clv", "churn", "upsell", "advocacy"}
        for key, exp in stored.items():
            total = sum(c for _, _, c in exp["contributions"]) + exp["remainder"]
            # stored (full precision): exact up to float rounding
            assert total == pytest.approx(exp["output"] - exp["baseline"], abs=1e-9), key
            shown = words[key]
            shown_total = sum(c["contribution"] for c in shown["contributions"]) + shown["other_features"]
            # API form: values rounded to 6 decimals -> tolerance 1e-4
            assert shown_total == pytest.approx(shown["output"] - shown["baseline"], abs=1e-4), key
        assert stored["clv"]["output"] == pytest.approx(result.clv, abs=0.006)
        assert stored["churn"]["output"] == pytest.approx(100 * result.churn_probability, abs=0.006)
        assert stored["upsell"]["output"] == pytest.approx(100 * result.upsell, abs=0.006)
        assert stored["advocacy"]["output"] == pytest.approx(100 * result.advocacy, abs=0.006)
        # Not circular: each output is what the stored model itself predicts for this customer's features
        # (as ml/test_explain.py checks against predict_proba), not only what the explanation says.
        for key, expected in _stored_model_outputs(cid).items():
            assert stored[key]["output"] == pytest.approx(expected, abs=1e-6), key


def _stored_model_outputs(cid) -> dict[str, float]:
    """The active stored model's own predictions for ``cid``: scikit-learn's ``predict_proba`` of the
    calibrated classifiers (x 100, points) and the CLV regressor's prediction, from the customer's features
    recomputed independently of the serving path. A table churn model, when active, predicts churn."""
    import numpy as np
    from django.utils import timezone

    from scoring import engine, registry
    from scoring.features.aggregates import fact_aggregates

    models = registry.active_models()
    columns = fact_aggregates(customer_ids=[cid], as_of=timezone.now())
    out: dict[str, float] = {}
    if models.bundle is not None:
        X = engine.bundle_matrix(models.bundle, columns)
        for key in ("churn", "upsell", "advocacy"):
            model = getattr(models.bundle, key)
            out[key] = 100 * (float(model.calibrated.predict_proba(X)[0, 1]) if model.calibrated is not None
                              else float(model.constant))
        out["clv"] = max(0.0, float(models.bundle.clv.predict(X)[0]))
    if models.churn is not None:
        table = engine.churn_table_matrix(columns, models.churn.feature_names, 1)
        Z = models.churn.encoder.transform(table) if models.churn.encoder is not None else table
        out["churn"] = 100 * float(models.churn.calibrated.predict_proba(np.asarray(Z, dtype=np.float64))[0, 1])
    assert out, "no stored model is active"
    return out


def test_a_clv_below_zero_is_served_as_zero_and_its_explanation_adds_up_to_the_zero(synthetic_artifact):
    """A regressor can put a customer's CLV below zero; the service serves 0, and the explanation carries
    the lift to zero as its first term, so its terms still add up to what is served."""
    from dataclasses import replace
    from types import SimpleNamespace

    from sklearn.ensemble import GradientBoostingRegressor

    from scoring import engine, registry
    from scoring.ml.features import aggregate_from_events, build_matrix
    from scoring.ml.models import ValueModel
    from scoring.ml.registry_io import dump_bundle
    from scoring.ml.synthetic import generate_events
    from scoring.population import reference_from_population
    from tests.scoring.helpers import register_model

    bundle = synthetic_artifact.bundle
    names = bundle.feature_names
    events = generate_events(300, seed=12, days=800)
    X = build_matrix(aggregate_from_events(events, events.last_day()), names)
    y = 50.0 - 40.0 * X[:, names.index("frequency")]  # below zero from the second order on
    estimator = GradientBoostingRegressor(n_estimators=40, max_depth=2, random_state=0).fit(X, y)
    negative = replace(bundle, clv=ValueModel("gradient_boosting", bundle.clv.horizon_days, names, estimator))
    data, sha = dump_bundle(negative)
    population = reference_from_population(negative.clv.predict(X), [f"n-{i}" for i in range(len(X))],
                                           source="model:training").to_json()
    registry.cache_clear()
    register_model(SimpleNamespace(data=data, sha=sha, card=synthetic_artifact.card,
                                   metrics=synthetic_artifact.metrics, population=population), version="negative")

    result = _serve(customer_with_history(orders=7))
    assert result.clv == 0.0
    exp = result.explanation["clv"]
    assert exp["output"] == 0.0
    name, value, lift = exp["contributions"][0]
    assert name == "clv_floor" and value < 0 and lift == -value
    assert sum(c for _, _, c in exp["contributions"]) + exp["remainder"] == pytest.approx(
        0.0 - exp["baseline"], abs=1e-9)
    words = engine.explanation_in_words(result.explanation)["clv"]
    first = words["contributions"][0]
    assert first["feature"] == "clv_floor" and first["contribution"] == pytest.approx(-value, abs=1e-6)
    assert first["text"].startswith("value below zero, served as 0 (model's value): -")
    shown = sum(c["contribution"] for c in words["contributions"]) + words["other_features"]
    assert shown == pytest.approx(words["output"] - words["baseline"], abs=1e-4)
    registry.cache_clear()


def test_tampered_artifact_is_refused_and_nothing_is_served(active_model):
    from scoring import registry
    from scoring.models import CustomerScore, ModelArtifact
    from scoring.registry import ModelUnavailable

    cid = customer_with_history()
    artifact = ModelArtifact.objects.get(model_version=active_model)
    data = bytearray(artifact.data)
    data[len(data) // 2] ^= 0x01
    ModelArtifact.objects.filter(pk=artifact.pk).update(data=bytes(data))
    registry.cache_clear()  # a fresh process
    with pytest.raises(ModelUnavailable) as caught:
        _serve(cid)
    assert caught.value.status_code == 503 and caught.value.code == "model_unavailable"
    assert decisions_for(cid) == []
    assert not CustomerScore.objects.exists()


def test_tampered_artifact_also_blocks_serving_stored_scores(active_model):
    from scoring import registry
    from scoring.models import ModelArtifact
    from scoring.registry import ModelUnavailable

    cid = customer_with_history()
    _serve(cid)
    artifact = ModelArtifact.objects.get(model_version=active_model)
    ModelArtifact.objects.filter(pk=artifact.pk).update(data=bytes(artifact.data)[:-1] + bytes([artifact.data[-1] ^ 0xFF]))
    registry.cache_clear()
    with pytest.raises(ModelUnavailable):
        _serve(cid)
    assert len(decisions_for(cid)) == 1


def test_no_active_model_means_model_unavailable(db):
    from scoring.registry import ModelUnavailable

    cid = customer_with_history()
    with pytest.raises(ModelUnavailable):
        _serve(cid)
    assert decisions_for(cid) == []


def test_routing_is_a_recorded_decision_and_high_value_at_risk_goes_to_a_senior_advisor(active_model):
    from scoring import services
    from scoring.models import CustomerScore

    cid = customer_with_history()
    _serve(cid)
    CustomerScore.objects.filter(customer_id=cid).update(tier="Premium", risk_level="high")
    routed = services.route_ticket(customer_id=cid, category="billing", purpose=SCORING, requester="api:desk")
    assert (routed.queue, routed.sla_hours, routed.escalation_level) == ("senior_advisor", 2, 2)
    decision = decisions_for(cid)[-1]
    assert decision.pk == routed.decision_id
    assert decision.decision_type == "routing"
    assert decision.outputs["queue"] == "senior_advisor"
    assert decision.outputs["ticket_category"] == "billing"

    CustomerScore.objects.filter(customer_id=cid).update(tier="Standard", risk_level="low")
    routed = services.route_ticket(customer_id=cid, category="billing", purpose=SCORING, requester="api:desk")
    assert (routed.queue, routed.sla_hours, routed.escalation_level) == ("billing", 24, 0)


@pytest.mark.parametrize("refusal", ["no_consent", "restricted", "objected"])
def test_routing_a_customer_who_may_not_be_profiled_is_the_default_queue_without_a_decision(active_model,
                                                                                            refusal):
    from consent import services as consent_services
    from scoring import services

    cid = customer_with_history(purposes=() if refusal == "no_consent" else (SCORING,))
    if refusal == "restricted":
        consent_services.processing_restrict(customer_id=cid, actor="user:dpo", reason="accuracy_contested")
    elif refusal == "objected":
        consent_services.processing_object(customer_id=cid, actor="user:dpo")
    routed = services.route_ticket(customer_id=cid, category="cancellation", purpose=SCORING, requester="api:desk")
    assert (routed.personalised, routed.queue, routed.sla_hours, routed.escalation_level, routed.tier,
            routed.risk_level, routed.decision_id) == (False, "retention", 24, 0, None, None, None)
    assert decisions_for(cid) == []


def test_scores_erase_customer_deletes_scores_overrides_and_outcomes(active_model):
    from django.utils import timezone

    from scoring import services
    from scoring.models import CustomerScore, Outcome, ScoreOverride

    cid = customer_with_history()
    other = customer_with_history()
    first = _serve(cid)
    _serve(other)
    services.score_override_apply(customer_id=cid, purpose=SCORING, decision_id=first.decision_id, tier="VIP",
                                  service_level=None, rationale="ok", reviewer="user:dpo")
    services.outcome_record(customer_id=cid, kind="renewed", at=timezone.now(), source="crm", actor="api:crm")
    assert services.scores_erase_customer(customer_id=cid) == 3
    assert not CustomerScore.objects.filter(customer_id=cid).exists()
    assert not ScoreOverride.objects.filter(customer_id=cid).exists()
    assert not Outcome.objects.filter(customer_id=cid).exists()
    assert CustomerScore.objects.filter(customer_id=other).count() == 1


def test_subject_explanation_is_in_plain_words_with_how_to_contest(active_model):
    from scoring import selectors

    cid = customer_with_history()
    assert selectors.score_explanation_for_subject(customer_id=cid)["scored"] is False
    result = _serve(cid)
    text = selectors.score_explanation_for_subject(customer_id=cid)
    assert text["scored"] is True
    [item] = text["items"]
    assert item["tier"] == result.tier
    assert f"the {result.tier} tier" in item["summary"]
    assert item["main_reasons"] and all("(" in r for r in item["main_reasons"])
    assert "contest" in text["how_to_contest"].lower()


def test_refresh_is_idempotent_under_a_redelivered_task(active_model):
    from scoring import services

    cid = customer_with_history()
    assert services.score_refresh(customer_id=cid, purpose=SCORING, decision_key="refresh:task-1:x") == "scored"
    assert services.score_refresh(customer_id=cid, purpose=SCORING, decision_key="refresh:task-1:x") == "scored"
    assert len(decisions_for(cid)) == 1
    assert services.score_refresh(customer_id=cid, purpose=SCORING) == "scored"
    assert len(decisions_for(cid)) == 2


def test_refresh_without_consent_deletes_the_stored_score_and_decides_nothing(active_model):
    from scoring import services
    from scoring.models import CustomerScore

    cid = customer_with_history()
    _serve(cid)
    withdraw(cid)
    assert services.score_refresh(customer_id=cid, purpose=SCORING) == "no_consent"
    assert not CustomerScore.objects.filter(customer_id=cid).exists()
    assert len(decisions_for(cid)) == 1
