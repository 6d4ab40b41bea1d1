"""Info finding: consent, lookup and subject-request endpoints checked the scope but not the purpose. Now they
are bound to the client's purposes like scoring (see config.permissions for the rules)."""

from __future__ import annotations

import pytest

from consent.models import ConsentEvent

pytestmark = pytest.mark.django_db

SCOPES = ["consent:read", "consent:write", "score:read", "dsr:write", "dsr:read"]


def _body(customer, purpose):
    return {"customer": str(customer), "purpose": purpose, "source": "web", "channel": "web"}


def test_a_grant_for_a_purpose_the_client_may_not_use_is_refused_and_writes_nothing(make_api_client, customer):
    desk = make_api_client(scopes=SCOPES, purposes=["service_prioritization"])
    response = desk.post("/api/v1/consents/grant", _body(customer, "marketing"), format="json")
    assert response.status_code == 403 and response.json()["code"] == "purpose_not_allowed"
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 0
    allowed = desk.post("/api/v1/consents/grant", _body(customer, "service_prioritization"), format="json")
    assert allowed.status_code == 201


def test_a_withdrawal_is_always_recorded(make_api_client, customer, grant):
    grant(customer, "marketing")
    desk = make_api_client(scopes=SCOPES, purposes=["service_prioritization"])
    response = desk.post("/api/v1/consents/withdraw", _body(customer, "marketing"), format="json")
    assert response.status_code == 201
    assert ConsentEvent.objects.filter(customer_id=customer, action="withdraw").count() == 1


def test_bulk_grants_for_other_purposes_are_rejected_per_record(make_api_client, customer):
    desk = make_api_client(scopes=SCOPES, purposes=["automated_scoring"])
    records = [{**_body(customer, "automated_scoring"), "action": "grant"},
               {**_body(customer, "marketing"), "action": "grant"},
               {**_body(customer, "marketing"), "action": "withdraw"}]
    response = desk.post("/api/v1/consents/bulk", {"records": records}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(r["index"], r["status"]) for r in body["results"]] == [(0, "created"), (1, "rejected"), (2, "created")]
    assert body["results"][1]["code"] == "purpose_not_allowed"
    assert (body["created"], body["rejected"]) == (2, 1)
    assert not ConsentEvent.objects.filter(customer_id=customer, purpose__code="marketing", action="grant").exists()


def test_consent_reads_show_only_the_clients_purposes(make_api_client, customer, grant):
    event = grant(customer, "marketing")
    grant(customer, "automated_scoring")
    desk = make_api_client(scopes=SCOPES, purposes=["automated_scoring"])
    state = desk.get(f"/api/v1/customers/{customer}/consents").json()
    assert [c["purpose"] for c in state["consents"]] == ["automated_scoring"]
    history = desk.get(f"/api/v1/customers/{customer}/consents/history").json()
    assert {e["purpose"] for e in history["events"]} == {"automated_scoring"}
    event_id = getattr(event, "id", None) or ConsentEvent.objects.get(customer_id=customer, purpose__code="marketing").id
    assert desk.get(f"/api/v1/consents/{event_id}/receipt").status_code == 404
    full = make_api_client(scopes=SCOPES)
    assert full.get(f"/api/v1/consents/{event_id}/receipt").status_code == 200


def test_a_lookup_needs_a_client_bound_to_a_purpose(make_api_client):
    unbound = make_api_client(scopes=["score:read"], purposes=[])
    response = unbound.post("/api/v1/customers/lookup", {"email": "nobody@example.com"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "purpose_not_allowed"
    bound = make_api_client(scopes=["score:read"], purposes=["automated_scoring"])
    assert bound.post("/api/v1/customers/lookup", {"email": "nobody@example.com"}, format="json").status_code == 404
