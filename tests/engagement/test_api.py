"""The actions API: scopes (exact statuses), filters, priority order, pagination, claim/complete/dismiss."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engagement.helpers import MARKETING, SCORING, SERVICE, customer, score_event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_holdout(settings: Any) -> None:
    settings.ENGAGEMENT_HOLDOUT_SHARE = 0.0


@pytest.fixture
def queue() -> dict[str, Any]:
    from engagement.models import Action

    vip = customer(SCORING, SERVICE, MARKETING)
    score_event(vip, churn=0.9, clv=5000.0, upsell=0.8)
    premium = customer(SCORING, SERVICE)
    score_event(premium, tier="Premium", churn=0.7, clv=500.0)
    return {a.type + ":" + a.tier: a for a in Action.objects.all()}


@pytest.mark.parametrize(("method", "path", "scopes", "expected"), [
    ("get", "/api/v1/actions", [], 403),
    ("get", "/api/v1/actions", ["actions:write"], 403),
    ("get", "/api/v1/actions", ["actions:read"], 200),
    ("post", "/api/v1/actions/{id}/claim", ["actions:read"], 403),
    ("post", "/api/v1/actions/{id}/claim", ["actions:write"], 200),
    ("post", "/api/v1/actions/{id}/dismiss", ["kpis:read"], 403),
    ("post", "/api/v1/actions/{id}/dismiss", ["actions:write"], 200),
    ("post", "/api/v1/actions/{id}/complete", ["actions:read"], 403),
    ("post", "/api/v1/actions/{id}/complete", ["actions:write"], 200),
    ("get", "/api/v1/kpis", ["actions:read"], 403),
])
def test_scope_matrix(make_api_client: Any, queue: dict[str, Any], method: str, path: str, scopes: list[str],
                      expected: int) -> None:
    client = make_api_client(scopes=scopes)
    url = path.format(id=queue["retention_call:VIP"].pk)
    response = getattr(client, method)(url, {"outcome": "retained"} if "complete" in url else None, format="json")
    assert response.status_code == expected
    if expected == 403:
        assert response.json()["code"] in ("forbidden", "permission_denied")


def test_without_a_token_the_answer_is_401_or_403(client: Any, queue: dict[str, Any]) -> None:
    response = client.get("/api/v1/actions")
    assert response.status_code in (401, 403)


def test_list_is_ordered_by_priority_and_filtered(api: Any, queue: dict[str, Any]) -> None:
    body = api.get("/api/v1/actions").json()
    priorities = [a["priority"] for a in body["results"]]
    assert priorities == sorted(priorities, reverse=True)
    assert [a["type"] for a in body["results"]] == ["retention_call", "retention_call", "upsell_offer"]
    first = body["results"][0]
    assert first["tier"] == "VIP" and first["value_at_stake"] == 4500.0 and first["decision_id"] == 42
    assert "customer" in first and "email" not in first
    only = api.get("/api/v1/actions", {"type": "retention_call", "tier": "Premium"}).json()["results"]
    assert [(a["type"], a["tier"]) for a in only] == [("retention_call", "Premium")]
    assert api.get("/api/v1/actions", {"status": "completed"}).json()["results"] == []
    bad = api.get("/api/v1/actions", {"status": "nonsense"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


def test_pagination_follows_the_cursor(api: Any, queue: dict[str, Any]) -> None:
    page1 = api.get("/api/v1/actions", {"page_size": 2}).json()
    assert len(page1["results"]) == 2 and page1["next"]
    page2 = api.get(page1["next"]).json()
    assert len(page2["results"]) == 1 and page2["next"] is None
    ids = [a["id"] for a in page1["results"] + page2["results"]]
    assert len(set(ids)) == 3


def test_claim_complete_dismiss_lifecycle_and_conflicts(api: Any, queue: dict[str, Any]) -> None:
    from scoring.models import Outcome

    action = queue["retention_call:VIP"]
    claimed = api.post(f"/api/v1/actions/{action.pk}/claim")
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    again = api.post(f"/api/v1/actions/{action.pk}/claim")
    assert again.status_code == 409 and again.json()["code"] == "action_not_open"
    bad = api.post(f"/api/v1/actions/{action.pk}/complete", {"outcome": "maybe"}, format="json")
    assert bad.status_code == 400
    done = api.post(f"/api/v1/actions/{action.pk}/complete", {"outcome": "retained"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "completed" and done.json()["outcome"] == "retained"
    assert list(Outcome.objects.filter(customer_id=action.customer_id).values_list("kind", flat=True)) == ["renewed"]
    closed = api.post(f"/api/v1/actions/{action.pk}/dismiss")
    assert closed.status_code == 409 and closed.json()["code"] == "action_closed"
    other = queue["upsell_offer:VIP"]
    dismissed = api.post(f"/api/v1/actions/{other.pk}/dismiss")
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert api.post("/api/v1/actions/999999/claim").status_code == 404


def test_schema_documents_the_endpoints_scopes_and_errors(api: Any) -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    listing = paths["/api/v1/actions"]["get"]
    assert {"200", "400", "401", "403"} <= set(listing["responses"])
    complete = paths["/api/v1/actions/{action_id}/complete"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} <= set(complete["responses"])
    assert {"200", "400", "401", "403"} <= set(paths["/api/v1/kpis"]["get"]["responses"])
    from audit.api_clients import KNOWN_SCOPES

    assert {"actions:read", "actions:write", "kpis:read"} <= set(KNOWN_SCOPES)


def test_an_erased_customers_cancelled_action_still_lists_without_its_snapshot(api: Any, queue: dict[str, Any]) -> None:
    from subject_rights.services import erasure_replay

    action = queue["retention_call:Premium"]
    erasure_replay(customer_id=action.customer_id, actor="job:test")
    [row] = api.get("/api/v1/actions", {"status": "cancelled"}).json()["results"]
    assert (row["id"], row["scores"], row["reason"], row["close_reason"]) == (action.pk, {}, "", "erasure")


def test_a_client_sees_and_works_only_actions_of_its_purposes(make_api_client: Any, queue: dict[str, Any]) -> None:
    service_only = make_api_client(scopes=["actions:read", "actions:write"], purposes=["service_prioritization"])
    listed = service_only.get("/api/v1/actions").json()["results"]
    assert sorted(a["type"] for a in listed) == ["retention_call", "retention_call"]
    upsell = queue["upsell_offer:VIP"]
    response = service_only.post(f"/api/v1/actions/{upsell.pk}/claim")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    upsell.refresh_from_db()
    assert upsell.status == "open"


def test_event_payloads_match_their_documented_serializer(queue: dict[str, Any]) -> None:
    from engagement.api.serializers import ActionEventPayload
    from events.models import OutboxEvent

    events = list(OutboxEvent.objects.filter(type__in=["action.created", "action.closed"]))
    assert events
    for event in events:
        checked = ActionEventPayload(data=event.payload)
        assert checked.is_valid(), checked.errors
        assert set(event.payload) == set(ActionEventPayload().fields)
