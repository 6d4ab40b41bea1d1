"""Scoring API: response format, consent refusals, purposes, lookups, routing, outcomes, errors."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.scoring.helpers import SCORING, customer_with_history, decisions_for

pytestmark = pytest.mark.django_db


def _url(cid, purpose=SCORING):
    return f"/api/v1/customers/{cid}/score" + (f"?purpose={purpose}" if purpose is not None else "")


def test_the_clv_horizon_is_the_serving_models_on_the_warm_path_too(api, active_model, settings):
    from scoring import registry

    settings.SCORING_HORIZON_DAYS = 90  # what training would use next; the active model says 180
    cid = customer_with_history()
    assert api.get(_url(cid)).json()["clv"]["horizon_days"] == 180  # computed now
    registry.cache_clear()  # a fresh process: the bundle is not loaded, the stored score is warm
    warm = api.get(_url(cid)).json()
    assert warm["clv"]["horizon_days"] == 180
    assert warm["computed_at"] == api.get(_url(cid)).json()["computed_at"]  # still the stored score


def test_score_response_has_every_documented_field(api, active_model):
    cid = customer_with_history()
    response = api.get(_url(cid))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "customer", "purpose", "clv", "clv_score", "churn_probability", "risk_level", "upsell", "advocacy",
        "segment", "tier", "service_level", "recommendation", "explanation", "model_versions", "decision_id",
        "computed_at", "override", "unavailable", "tier_basis",
        "current_mood",  # issue 18
    }
    assert body["unavailable"] == []  # every kind of the test bundle passes its quality floor
    assert body["tier_basis"]["method"] == "clv_model"
    assert body["customer"] == str(cid)
    assert set(body["clv"]) == {"amount", "currency", "horizon_days"}
    # the horizon the serving model was trained for (the test bundle: 180 days), not the setting's 365
    assert body["clv"]["currency"] == "EUR" and body["clv"]["horizon_days"] == 180
    assert float(body["clv"]["amount"]) >= 0
    assert 0 <= body["clv_score"] <= 100
    assert body["risk_level"] in {"low", "medium", "high"}
    assert set(body["service_level"]) == {"response_time", "response_time_hours", "escalation", "extras"}
    assert set(body["recommendation"]) == {"code", "text"}
    assert set(body["explanation"]) == {"clv", "churn", "upsell", "advocacy", "tiers"}
    assert body["explanation"]["tiers"] == body["tier_basis"]
    churn = body["explanation"]["churn"]
    assert churn["unit"] == "points" and churn["contributions"]
    first = churn["contributions"][0]
    assert set(first) == {"feature", "label", "value", "contribution", "text"}
    assert first["text"].startswith(first["label"] + ": ") and "points)" in first["text"]
    assert body["model_versions"]["clv"] == "test-model-1"
    assert body["override"] is None
    assert body["current_mood"] == {"label": "unknown", "score": None, "tickets": 0, "window_days": 90}
    [decision] = decisions_for(cid)
    assert body["decision_id"] == decision.pk
    assert decision.requester == api.api_client.requester


def test_api_explanations_add_up_within_rounding(api, active_model):
    cid = customer_with_history(orders=6)
    body = api.get(_url(cid)).json()
    for key, exp in body["explanation"].items():
        if key == "tiers":  # what the tiers rank by, in words (no contributions)
            continue
        total = sum(c["contribution"] for c in exp["contributions"]) + exp["other_features"]
        assert total == pytest.approx(exp["output"] - exp["baseline"], abs=1e-4), key


def test_no_consent_is_403_with_code_and_no_decision(api, active_model, caplog):
    cid = customer_with_history(purposes=())
    with caplog.at_level(logging.INFO):
        response = api.get(_url(cid))
    assert response.status_code == 403
    assert response.json()["code"] == "no_consent"
    assert decisions_for(cid) == []
    refusals = [r for r in caplog.records if getattr(r, "event", "") == "scoring.serve.refused"]
    assert len(refusals) == 1 and refusals[0].code == "no_consent"


def test_restricted_is_403_restricted(api, active_model):
    from consent.services import processing_restrict

    cid = customer_with_history()
    processing_restrict(customer_id=cid, actor="job:test", reason="accuracy_contested")
    response = api.get(_url(cid))
    assert (response.status_code, response.json()["code"]) == (403, "restricted")
    assert decisions_for(cid) == []


def test_purpose_not_allowed_for_the_client_is_403(make_api_client, active_model):
    client = make_api_client(scopes=["score:read"], purposes=["marketing"])
    cid = customer_with_history()
    response = client.get(_url(cid))
    assert (response.status_code, response.json()["code"]) == (403, "purpose_not_allowed")
    assert decisions_for(cid) == []


@pytest.mark.parametrize("purpose", [None, "", "no_such_purpose"])
def test_missing_or_unknown_purpose_is_400(api, active_model, purpose):
    cid = customer_with_history()
    response = api.get(_url(cid, purpose))
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert decisions_for(cid) == []


def test_unknown_customer_is_404(api, active_model):
    response = api.get(_url(uuid.uuid4()))
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_malformed_pseudonym_is_404_not_500(api, active_model):
    response = api.get("/api/v1/customers/not-a-uuid/score?purpose=automated_scoring")
    assert response.status_code == 404


@pytest.mark.parametrize(("scopes", "status"), [([], 403), (["route:read"], 403), (["score:read"], 200)])
def test_score_endpoint_needs_the_score_read_scope(make_api_client, active_model, scopes, status):
    client = make_api_client(scopes=scopes)
    cid = customer_with_history()
    assert client.get(_url(cid)).status_code == status


def test_unauthenticated_is_401(client, active_model):
    assert client.get(_url(uuid.uuid4())).status_code == 401


def test_no_model_is_503_model_unavailable(api, db):
    cid = customer_with_history()
    response = api.get(_url(cid))
    assert (response.status_code, response.json()["code"]) == (503, "model_unavailable")
    assert decisions_for(cid) == []


def test_lookup_by_email_is_hashed_and_never_logged(api, active_model, caplog):
    email = f"lookup.{uuid.uuid4().hex[:8]}@example.com"
    cid = customer_with_history(email=email)
    with caplog.at_level(logging.DEBUG):
        response = api.post("/api/v1/score", {"purpose": SCORING, "email": email.upper()}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["customer"] == str(cid)
    assert email.split("@")[0] not in caplog.text.lower()
    assert email.split("@")[0] not in response.content.decode().lower()


def test_lookup_by_source_id(api, active_model):
    cid = customer_with_history(source="crm", external_id="CRM-LOOKUP-77")
    response = api.post("/api/v1/score", {"purpose": SCORING, "source": "crm", "external_id": "CRM-LOOKUP-77"},
                        format="json")
    assert response.status_code == 200 and response.json()["customer"] == str(cid)


@pytest.mark.parametrize("params", [
    {"purpose": SCORING},
    {"purpose": SCORING, "email": "a@example.com", "phone": "+447700900123"},
    {"purpose": SCORING, "source": "crm"},
])
def test_lookup_needs_exactly_one_identifier(api, active_model, params):
    response = api.post("/api/v1/score", params, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_lookup_of_unknown_email_is_404_and_records_nothing(api, active_model):
    from audit.models import DecisionRecord

    response = api.post("/api/v1/score", {"purpose": SCORING, "email": "nobody.here@example.com"}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert "nobody.here" not in response.content.decode()
    assert not DecisionRecord.objects.exists()


def test_identifier_lookup_by_get_is_405_with_a_pointer_to_post_and_records_nothing(api, active_model):
    from audit.models import DecisionRecord

    email = f"get.{uuid.uuid4().hex[:8]}@example.com"
    customer_with_history(email=email)
    response = api.get("/api/v1/score", {"purpose": SCORING, "email": email})
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert "POST /api/v1/score" in response.json()["detail"]
    assert email not in response.content.decode()
    assert not DecisionRecord.objects.exists()


def test_route_returns_queue_sla_escalation_and_records_a_routing_decision(api, active_model):
    cid = customer_with_history()
    response = api.post("/api/v1/route", {"customer": str(cid), "ticket_category": "cancellation",
                                          "purpose": SCORING}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"customer", "purpose", "ticket_category", "queue", "sla_hours", "escalation_level",
                         "handler", "personalised", "tier", "risk_level", "decision_id", "model_versions"}
    assert body["personalised"] is True
    assert body["queue"] in {"retention", "senior_advisor"}
    [decision] = decisions_for(cid)
    assert decision.decision_type == "routing" and decision.pk == body["decision_id"]


@pytest.mark.parametrize("payload", [
    {},
    {"customer": "nope", "ticket_category": "billing", "purpose": SCORING},
    {"customer": str(uuid.uuid4()), "purpose": SCORING},
    {"customer": str(uuid.uuid4()), "ticket_category": "billing", "purpose": "unknown_purpose"},
])
def test_route_with_bad_input_is_400(api, active_model, payload):
    response = api.post("/api/v1/route", payload, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_an_unknown_ticket_category_is_400_with_the_allowed_list_and_records_nothing(api, active_model):
    cid = customer_with_history()
    response = api.post("/api/v1/route", {"customer": str(cid), "ticket_category": "warranty", "purpose": SCORING},
                        format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert response.json()["errors"]["ticket_category"][0]["code"] == "invalid_choice"
    assert decisions_for(cid) == []


def test_a_mapped_ticket_category_routes_as_its_target(api, active_model, settings):
    settings.TICKET_CATEGORY_MAP = {"Refund": "billing"}
    cid = customer_with_history()
    response = api.post("/api/v1/route", {"customer": str(cid), "ticket_category": "REFUND", "purpose": SCORING},
                        format="json")
    assert response.status_code == 200, response.content
    assert response.json()["ticket_category"] == "billing"
    [decision] = decisions_for(cid)
    assert decision.outputs["ticket_category"] == "billing"


def test_route_without_consent_is_the_non_personalised_default_queue_with_no_decision(api, active_model):
    from scoring.models import CustomerScore

    cid = customer_with_history(purposes=())
    response = api.post("/api/v1/route", {"customer": str(cid), "ticket_category": "technical", "purpose": SCORING},
                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == {"customer": str(cid), "purpose": SCORING, "ticket_category": "technical",
                    "queue": "technical_support", "sla_hours": 24, "escalation_level": 0,
                    "handler": "standard support", "personalised": False, "tier": None, "risk_level": None,
                    "decision_id": None, "model_versions": {}}
    assert decisions_for(cid) == []
    assert not CustomerScore.objects.filter(customer_id=cid).exists()


def test_route_of_an_unknown_customer_is_404(api, active_model):
    response = api.post("/api/v1/route", {"customer": str(uuid.uuid4()), "ticket_category": "billing",
                                          "purpose": SCORING}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_route_needs_route_scope(make_api_client, active_model):
    client = make_api_client(scopes=["score:read"])
    cid = customer_with_history()
    response = client.post("/api/v1/route", {"customer": str(cid), "ticket_category": "billing",
                                             "purpose": SCORING}, format="json")
    assert response.status_code == 403
    assert decisions_for(cid) == []


def test_outcome_is_recorded_with_governance_record(api, active_model):
    from audit.models import GovernanceEvent
    from scoring.models import Outcome

    cid = customer_with_history()
    response = api.post("/api/v1/outcomes", {"customer": str(cid), "kind": "churned",
                                             "at": "2024-05-01T10:00:00Z"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "churned" and body["customer"] == str(cid)
    assert body["source"] == api.api_client.name
    outcome = Outcome.objects.get()
    assert outcome.customer_id == cid and outcome.at.year == 2024
    assert GovernanceEvent.objects.filter(kind="outcome.recorded", subject=cid).count() == 1


@pytest.mark.parametrize(("payload", "status"), [
    ({"kind": "churned"}, 400),
    ({"kind": "exploded"}, 400),
    ({"kind": "churned", "at": "2999-01-01T00:00:00Z"}, 400),
    ({"kind": "renewed", "source": "bad source!"}, 400),
    ({"kind": "renewed", "customer": "unknown"}, 404),
])
def test_bad_outcome_is_refused_and_nothing_is_written(api, active_model, payload, status):
    from scoring.models import Outcome

    cid = customer_with_history()
    body = {"customer": str(cid), **payload}
    if payload.get("customer") == "unknown":
        body["customer"] = str(uuid.uuid4())
    if "customer" not in payload and payload == {"kind": "churned"}:
        body.pop("customer")
    response = api.post("/api/v1/outcomes", body, format="json")
    assert response.status_code == status
    assert not Outcome.objects.exists()


def test_outcomes_need_outcome_write_scope(make_api_client, active_model):
    client = make_api_client(scopes=["score:read"])
    cid = customer_with_history()
    response = client.post("/api/v1/outcomes", {"customer": str(cid), "kind": "renewed"}, format="json")
    assert response.status_code == 403
