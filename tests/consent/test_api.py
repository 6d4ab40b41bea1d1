"""Consent API: grant, withdraw, state, history, receipt, bulk import, purposes; errors are 4xx JSON."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.models import GovernanceEvent
from consent.models import ConsentEvent
from consent.services import consent_erase_subject
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db

GRANT = "/api/v1/consents/grant"
WITHDRAW = "/api/v1/consents/withdraw"
BULK = "/api/v1/consents/bulk"


def body(customer, **overrides):
    return {"customer": str(customer), "purpose": "automated_scoring", "source": "web", "channel": "web",
            **overrides}


def test_grant_endpoint_records_the_event_for_the_calling_system(api, customer):
    response = api.post(GRANT, body(customer, evidence={"form_id": "signup"}), format="json")
    assert response.status_code == 201
    event = ConsentEvent.objects.get(customer_id=customer)
    assert response.json() == {
        "event_id": event.id, "customer": str(customer), "purpose": "automated_scoring", "action": "grant",
        "notice_version": "v1", "notice_hash": event.notice.text_hash, "source": "web", "channel": "web",
        "occurred_at": response.json()["occurred_at"], "recorded_at": response.json()["recorded_at"],
    }
    assert event.actor == api.api_client.requester
    assert GovernanceEvent.objects.filter(kind="consent.granted", subject=customer,
                                          actor=api.api_client.requester).count() == 1


def test_withdraw_endpoint_takes_the_same_body_and_closes_the_gate_at_once(api, customer):
    from consent.selectors import processing_gate

    assert api.post(GRANT, body(customer), format="json").status_code == 201
    assert processing_gate(customer_id=customer, purpose="automated_scoring").allowed
    response = api.post(WITHDRAW, body(customer), format="json")
    assert (response.status_code, response.json()["action"]) == (201, "withdraw")
    assert processing_gate(customer_id=customer, purpose="automated_scoring").code == "no_consent"


def test_current_state_lists_every_purpose(api, customer):
    api.post(GRANT, body(customer), format="json")
    api.post(WITHDRAW, body(customer, purpose="marketing"), format="json")
    response = api.get(f"/api/v1/customers/{customer}/consents")
    assert response.status_code == 200
    states = {s["purpose"]: (s["granted"], s["status"]) for s in response.json()["consents"]}
    assert states == {"automated_scoring": (True, "granted"), "marketing": (False, "withdrawn"),
                      "service_prioritization": (False, "never_asked")}
    assert response.json()["processing_flags"] == []


def test_state_at_a_past_instant_via_query_parameter(api, customer):
    at = timezone.now() - timedelta(days=2)
    api.post(GRANT, body(customer, occurred_at=at.isoformat()), format="json")
    api.post(WITHDRAW, body(customer), format="json")
    past = api.get(f"/api/v1/customers/{customer}/consents", {"at": (at + timedelta(hours=1)).isoformat()})
    assert {s["purpose"]: s["status"] for s in past.json()["consents"]}["automated_scoring"] == "granted"
    assert api.get(f"/api/v1/customers/{customer}/consents", {"at": "yesterday"}).status_code == 400


def test_history_lists_events_in_order(api, customer):
    api.post(GRANT, body(customer), format="json")
    api.post(WITHDRAW, body(customer), format="json")
    response = api.get(f"/api/v1/customers/{customer}/consents/history")
    assert response.status_code == 200
    assert [(e["purpose"], e["action"]) for e in response.json()["events"]] == [
        ("automated_scoring", "grant"), ("automated_scoring", "withdraw")]


def test_receipt_endpoint_returns_the_signed_proof(api, customer):
    event_id = api.post(GRANT, body(customer), format="json").json()["event_id"]
    response = api.get(f"/api/v1/consents/{event_id}/receipt")
    assert response.status_code == 200
    assert (response.json()["event_id"], response.json()["customer"]) == (event_id, str(customer))
    assert len(response.json()["signature"]) == 64
    assert api.get("/api/v1/consents/999999/receipt").json()["code"] == "not_found"


def test_purposes_endpoint_shows_lawful_basis_retention_and_current_notice(api):
    response = api.get("/api/v1/purposes")
    assert response.status_code == 200
    by_code = {p["code"]: p for p in response.json()}
    assert sorted(by_code) == ["automated_scoring", "marketing", "service_prioritization"]
    assert by_code["automated_scoring"]["lawful_basis"] == "consent"
    assert by_code["automated_scoring"]["current_notice"]["version"] == "v1"


def test_unknown_purpose_is_400_invalid_and_writes_nothing(api, customer):
    response = api.post(GRANT, body(customer, purpose="astrology"), format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert ConsentEvent.objects.count() == 0


def test_unknown_customer_is_404(api):
    missing = uuid.uuid4()
    response = api.post(GRANT, body(missing), format="json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert api.get(f"/api/v1/customers/{missing}/consents").status_code == 404
    assert api.get(f"/api/v1/customers/{missing}/consents/history").status_code == 404


def test_erased_customer_is_404_everywhere(api, customer):
    from audit.models import GovernanceEvent
    from profiles.services import customer_erase

    api.post(GRANT, body(customer), format="json")
    consent_erase_subject(customer_id=customer, actor=ACTOR)
    customer_erase(customer_id=customer, actor=ACTOR)
    events_before = ConsentEvent.objects.count()
    governance_before = GovernanceEvent.objects.count()
    assert api.post(GRANT, body(customer), format="json").status_code == 404
    assert api.post(WITHDRAW, body(customer), format="json").status_code == 404
    assert ConsentEvent.objects.count() == events_before  # nothing was written for the erased customer
    assert not ConsentEvent.objects.filter(customer_id=customer).exists()
    assert GovernanceEvent.objects.count() == governance_before
    assert api.get(f"/api/v1/customers/{customer}/consents").status_code == 404
    assert api.get(f"/api/v1/customers/{customer}/consents/history").status_code == 404


@pytest.mark.parametrize("bad", [
    {"customer": "not-a-uuid"},
    {"channel": "pigeon"},
    {"source": "has spaces"},
    {"evidence": {"email": "ada@example.com"}},
    {"occurred_at": "2999-01-01T00:00:00Z"},
])
def test_bad_input_is_400_without_echoing_values_and_writes_nothing(api, customer, bad):
    response = api.post(GRANT, {**body(customer), **bad}, format="json")
    assert response.status_code == 400
    assert "ada@example.com" not in response.content.decode()
    assert set(response.json()) >= {"code", "detail", "correlation_id"}
    assert ConsentEvent.objects.count() == 0


@pytest.mark.parametrize(("method", "url", "scope"), [
    ("post", GRANT, "consent:write"),
    ("post", WITHDRAW, "consent:write"),
    ("post", BULK, "consent:write"),
    ("get", "/api/v1/customers/{c}/consents", "consent:read"),
    ("get", "/api/v1/customers/{c}/consents/history", "consent:read"),
    ("get", "/api/v1/purposes", "consent:read"),
])
def test_consent_endpoints_need_their_scope(make_api_client, customer, method, url, scope):
    from rest_framework.test import APIClient

    url = url.format(c=customer)
    payload = {"records": [body(customer, action="grant")]} if url == BULK else body(customer)
    other_scope = "consent:read" if scope == "consent:write" else "consent:write"
    wrong = make_api_client(scopes=[other_scope, "score:read"])
    right = make_api_client(scopes=[scope])
    assert getattr(APIClient(), method)(url, payload, format="json").status_code == 401
    assert getattr(wrong, method)(url, payload, format="json").status_code == 403
    assert getattr(right, method)(url, payload, format="json").status_code in (200, 201)


def test_bulk_import_reports_per_record_results_and_writes_only_good_records(api, new_customer):
    good, other = new_customer(), new_customer()
    at = (timezone.now() - timedelta(days=1)).isoformat()
    records = [
        body(good, action="grant", occurred_at=at),
        body(uuid.uuid4(), action="grant"),
        body(other, action="grant", purpose="astrology"),
        body(other, action="maybe"),
        {"customer": str(other)},
        "not an object",
        body(other, action="withdraw", channel="email", evidence={"ip": "198.51.100.4"}),
    ]
    response = api.post(BULK, {"records": records}, format="json")
    assert response.status_code == 200
    data = response.json()
    assert (data["created"], data["unchanged"], data["rejected"]) == (2, 0, 5)
    assert [(r["index"], r["status"], r["field"], r["code"]) for r in data["results"] if r["status"] == "rejected"] == [
        (1, "rejected", None, "not_found"),
        (2, "rejected", "purpose", "invalid_choice"),
        (3, "rejected", "action", "invalid_choice"),
        (4, "rejected", "purpose", "required"),
        (5, "rejected", "record", "invalid"),
    ]
    assert ConsentEvent.objects.count() == 2
    assert sorted(ConsentEvent.objects.values_list("action", flat=True)) == ["grant", "withdraw"]
    # Re-sending the same dated record changes nothing.
    again = api.post(BULK, {"records": records[:1]}, format="json").json()
    assert (again["created"], again["unchanged"], again["results"][0]["event_id"]) == (
        0, 1, data["results"][0]["event_id"])
    assert ConsentEvent.objects.count() == 2


@override_settings(CONSENT_BULK_MAX_RECORDS=3)
def test_bulk_import_over_the_limit_is_413_and_writes_nothing(api, customer):
    records = [body(customer, action="grant") for _ in range(4)]
    response = api.post(BULK, {"records": records}, format="json")
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert ConsentEvent.objects.count() == 0


def test_bulk_import_needs_a_list_of_records(api):
    assert api.post(BULK, {"records": "x"}, format="json").status_code == 400
    assert api.post(BULK, {}, format="json").status_code == 400
    assert api.post(BULK, b"{not json", content_type="application/json").status_code == 400
