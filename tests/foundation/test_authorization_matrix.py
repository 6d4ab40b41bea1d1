"""Authorization matrix: every API endpoint × role → status, derived from the URL map, so it grows
with every endpoint added. Every console page × role → status likewise.

Roles for the API: anonymous (401), a token lacking the endpoint's scope (403), a revoked token (401),
and a token with exactly the endpoint's scope (the exact status per endpoint: it reaches validation or
succeeds), with and without a purpose; purpose-bound endpoints with valid bodies for a purpose the client may
not use (403 ``purpose_not_allowed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from config.permissions import view_required_scope
from tests.conftest import ALL_SCOPES

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _fill(route: str) -> str:
    import re

    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"<uuid:[^>]+>", str(uuid.uuid4()), route)
    route = re.sub(r"<int:[^>]+>", "987654", route)
    route = re.sub(r"<(?:str|slug):[^>]+>", "unknown", route)
    route = re.sub(r"<[^>]+>", "unknown", route)
    return "/" + route


def _api_endpoints() -> list[tuple[str, str, str]]:
    rows = []
    for route, pattern in _walk(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        if not route.startswith("api/v1/") or view_class is None or not issubclass(view_class, APIView):
            continue
        view = view_class()
        for method in METHODS:
            if hasattr(view_class, method):
                scope = view_required_scope(view, method.upper())
                rows.append((_fill(route), method, scope or ""))
    return sorted(set(rows))


API_ENDPOINTS = _api_endpoints()


def test_every_api_endpoint_declares_a_scope():
    undeclared = [(path, method) for path, method, scope in API_ENDPOINTS if not scope]
    assert undeclared == []


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_anonymous_is_401(client, path, method, scope):
    response = getattr(client, method)(path, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_token_without_the_scope_is_403(make_api_client, path, method, scope):
    api = make_api_client(scopes=[s for s in ALL_SCOPES if s != scope])
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_revoked_token_is_401(make_api_client, path, method, scope):
    from audit.api_clients import api_client_revoke

    api = make_api_client(scopes=[scope])
    api_client_revoke(name=api.api_client.name)
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 401


#: (route with ids as <id>, method) -> (status, code) for a token with exactly the endpoint's scope and an
#: empty body: the request passes authorization and stops where the endpoint says (validation, an unknown
#: id, a method the endpoint does not allow), or succeeds. A new endpoint must be added here.
EXPECTED_WITH_THE_SCOPE: dict[tuple[str, str], tuple[int, str | None]] = {
    ("/api/v1/actions", "get"): (200, None),
    ("/api/v1/actions/<id>/claim", "post"): (404, "not_found"),
    ("/api/v1/actions/<id>/complete", "post"): (404, "not_found"),
    ("/api/v1/actions/<id>/dismiss", "post"): (404, "not_found"),
    ("/api/v1/consents/<id>/receipt", "get"): (404, "not_found"),
    ("/api/v1/consents/bulk", "post"): (400, "invalid"),
    ("/api/v1/consents/grant", "post"): (400, "invalid"),
    ("/api/v1/consents/withdraw", "post"): (400, "invalid"),
    ("/api/v1/customers/<id>/score", "get"): (400, "invalid"),
    ("/api/v1/customers/<id>/consents", "get"): (404, "not_found"),
    ("/api/v1/customers/<id>/consents/history", "get"): (404, "not_found"),
    ("/api/v1/customers/lookup", "get"): (405, "method_not_allowed"),
    ("/api/v1/customers/lookup", "post"): (400, "invalid"),
    ("/api/v1/ingest/unknown/", "post"): (404, "not_found"),
    ("/api/v1/kpis", "get"): (200, None),
    ("/api/v1/models/active", "get"): (200, None),
    ("/api/v1/outcomes", "post"): (400, "invalid"),
    ("/api/v1/purposes", "get"): (200, None),
    ("/api/v1/route", "post"): (400, "invalid"),
    ("/api/v1/score", "get"): (405, "method_not_allowed"),
    ("/api/v1/score", "post"): (400, "invalid"),
    ("/api/v1/subject-requests", "post"): (400, "invalid"),
    ("/api/v1/subject-requests/<id>/export", "get"): (404, "not_found"),
    ("/api/v1/subject-requests/<id>", "get"): (404, "not_found"),
    ("/api/v1/webhooks", "get"): (200, None),
    ("/api/v1/webhooks", "post"): (400, "invalid"),
    ("/api/v1/webhooks/<id>", "get"): (404, "not_found"),
    ("/api/v1/webhooks/<id>", "delete"): (404, "not_found"),
    ("/api/v1/webhooks/event-schema", "get"): (200, None),
}
#: The same token bound to no purpose: only the endpoints that are processing for a purpose before they
#: look at the body refuse it (a lookup finds a pseudonym for a purpose); the rest answer as above.
EXPECTED_WITHOUT_A_PURPOSE = {**EXPECTED_WITH_THE_SCOPE,
                              ("/api/v1/customers/lookup", "post"): (403, "purpose_not_allowed")}


def _route_key(path: str, method: str) -> tuple[str, str]:
    import re

    path = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|987654", "<id>", path)
    return path, method


def _status_and_code(response) -> tuple[int, str | None]:
    body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
    return response.status_code, body.get("code") if isinstance(body, dict) else None


def test_the_expected_status_table_covers_every_endpoint():
    assert {_route_key(path, method) for path, method, _ in API_ENDPOINTS} == set(EXPECTED_WITH_THE_SCOPE)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_token_with_exactly_the_scope_passes_authorization(make_api_client, path, method, scope):
    api = make_api_client(scopes=[scope])
    response = getattr(api, method)(path, {}, format="json")
    assert _status_and_code(response) == EXPECTED_WITH_THE_SCOPE[_route_key(path, method)], path


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_token_with_the_scope_but_no_purpose(make_api_client, path, method, scope):
    api = make_api_client(scopes=[scope], purposes=[])
    response = getattr(api, method)(path, {}, format="json")
    assert _status_and_code(response) == EXPECTED_WITHOUT_A_PURPOSE[_route_key(path, method)], path


@pytest.mark.django_db
def test_purpose_bound_endpoints_refuse_a_valid_request_for_a_purpose_the_client_may_not_use(make_api_client):
    """The purpose dimension with valid bodies: the scope alone is not enough; the same request for a purpose
    the client is bound to goes through."""
    from consent.models import ConsentEvent
    from tests.factories import make_customer

    customer = make_customer(email="purpose.matrix@example.com")
    other = make_api_client(scopes=["consent:write", "score:read"], purposes=["service_prioritization"])
    bound = make_api_client(scopes=["consent:write", "score:read"], purposes=["marketing"])
    grant = {"customer": str(customer), "purpose": "marketing", "source": "web", "channel": "web"}
    refused = other.post("/api/v1/consents/grant", grant, format="json")
    assert _status_and_code(refused) == (403, "purpose_not_allowed")
    assert not ConsentEvent.objects.filter(customer_id=customer).exists()
    assert bound.post("/api/v1/consents/grant", grant, format="json").status_code == 201
    score_path = f"/api/v1/customers/{customer}/score?purpose=marketing"
    assert _status_and_code(other.get(score_path)) == (403, "purpose_not_allowed")
    unbound = make_api_client(scopes=["score:read"], purposes=[])
    lookup = {"email": "nobody@example.com"}
    assert _status_and_code(unbound.post("/api/v1/customers/lookup", lookup, format="json")) == (
        403, "purpose_not_allowed")
    assert _status_and_code(bound.post("/api/v1/customers/lookup", lookup, format="json")) == (404, "not_found")


# ------------------------------------------------------------------------------------------------ console
#
# Every console route, with real ids of objects made by ``console_objects``, and every method it accepts:
# (url name, kwargs from the objects, method, POST body, status for the DPO). Anonymous visitors are sent to
# the login page, a signed-in user outside the "dpo" group gets 403 and neither writes anything; the DPO gets
# the exact status in the table. A console route missing from the table fails
# ``test_every_console_route_is_in_the_matrix``; any other method answers 405.

def _body(objects: dict) -> dict:
    return {"customer": {"q": str(objects["customer"])}, "email": {"email": "matrix.person@example.com"},
            "confirm": {"confirm_pseudonym": "not-the-pseudonym"}}


CONSOLE_ROUTES: list[tuple[str, tuple[str, ...], str, str, int]] = [
    # name, kwargs taken from the objects, method, body key (see _body) or "", DPO status
    ("home", (), "get", "", 200),
    ("customer-search", (), "get", "", 200),
    ("customer-search", (), "post", "customer", 302),
    ("customer", ("customer_id",), "get", "", 200),
    ("customer-reveal", ("customer_id",), "post", "", 200),
    ("decisions", (), "get", "", 200),
    ("decisions-email", (), "post", "email", 302),
    ("decisions-export", ("fmt",), "get", "", 200),
    ("decision-detail", ("pk",), "get", "", 200),
    ("access-log", (), "get", "", 200),
    ("access-export", ("fmt",), "get", "", 200),
    ("governance", (), "get", "", 200),
    ("consent-overview", (), "get", "", 200),
    ("model-overview", (), "get", "", 200),
    ("model-governance", (), "get", "", 200),
    ("rescore-runs", (), "get", "", 200),
    ("chain-status", (), "get", "", 200),
    ("chain-verify", (), "post", "", 302),
    ("ropa", (), "get", "", 200),
    ("ropa-export", ("fmt",), "get", "", 200),
    ("requests", (), "get", "", 200),
    ("request-detail", ("request_id",), "get", "", 200),
    ("request-verify", ("request_id",), "post", "", 302),
    ("request-start", ("request_id",), "post", "", 302),
    ("request-erase", ("request_id",), "get", "", 200),
    ("request-execute", ("request_id",), "post", "confirm", 302),
    ("request-complete", ("request_id",), "post", "", 302),
    ("request-reject", ("request_id",), "post", "", 302),
    ("request-extend", ("request_id",), "post", "", 302),
    ("request-lift", ("request_id",), "post", "", 302),
    ("request-legal-hold", ("request_id",), "post", "", 302),
    ("request-legal-hold-release", ("request_id",), "post", "", 302),
    ("reviews", (), "get", "", 200),
    ("review-detail", ("review_id",), "get", "", 200),
    ("review-detail", ("review_id",), "post", "", 400),
    ("breaches", (), "get", "", 200),
    ("breach-new", (), "get", "", 200),
    ("breach-new", (), "post", "", 400),
    ("breach-detail", ("incident_id",), "get", "", 200),
    ("breach-update-action", ("incident_id",), "post", "", 302),
    ("breach-notify-action", ("incident_id",), "post", "", 302),
    ("breach-close-action", ("incident_id",), "post", "", 302),
    ("webhooks", (), "get", "", 200),
    ("webhook-replay", ("delivery_id",), "post", "", 302),
    ("kpis", (), "get", "", 200),
    ("kpis-export", ("table",), "get", "", 200),
]
#: Outside ``dpo_required``: the sign-in page and sign-out. Status per role (anonymous, non-DPO, DPO).
CONSOLE_SESSION_ROUTES = [
    ("login", "get", (200, 302, 302)),
    ("login", "post", (200, 302, 302)),  # a wrong password for the anonymous visitor; signed in: redirected
    ("logout", "post", (302, 302, 302)),
]


def _console_route_names() -> set[str]:
    return {pattern.name for route, pattern in _walk(get_resolver().url_patterns) if route.startswith("console/")}


def test_every_console_route_is_in_the_matrix():
    covered = {name for name, *_ in CONSOLE_ROUTES} | {name for name, *_ in CONSOLE_SESSION_ROUTES}
    assert _console_route_names() == covered


@pytest.fixture
def console_objects(db, settings, tmp_path):
    """One real object of each kind a console route takes an id of."""
    import importlib

    from django.apps import apps
    from django.utils import timezone

    from audit import breach
    from audit.services import DECISION_DETAILS_LABEL, decision_record
    from events.models import OutboxEvent
    from profiles.services import customer_seal
    from subject_rights.models import ReviewTask
    from subject_rights.services import request_submit
    from tests.factories import make_customer
    from webhooks.models import Delivery, WebhookSubscription

    settings.ERASURE_LEDGER_DIR = str(tmp_path / "ledger")
    importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed(apps, None)
    customer = make_customer(email="matrix.person@example.com", orders=1, tickets=1)
    blob = customer_seal(customer_id=customer, label=DECISION_DETAILS_LABEL, payload={
        "features": {"orders_90d": 1}, "explanation": {}})
    decision = decision_record(customer=customer, decision_type="served_score", requester="api:crm",
                               purpose="automated_scoring", consent_event_id=None, notice_version=None,
                               model_versions={"clv": "m-1"}, features_hash="f" * 64, decision_key=None,
                               outputs={"tier": "Basic", "clv": 10.5}, sealed_details=blob)
    erasure = request_submit(type="erasure", channel="api", requester="api:crm", customer_id=customer).request
    contest = request_submit(type="contest", channel="api", requester="api:crm", customer_id=customer,
                             decision_id=decision.pk).request
    review = ReviewTask.objects.get(request=contest)
    incident = breach.breach_record(actor="user:dpo", nature=["confidentiality"], description="Bucket was public.",
                                    detected_at=timezone.now(), subjects_estimate=1, records_estimate=1,
                                    data_categories=["contact details"], consequences="Unlikely harm.", measures="Closed.",
                                    risk="risk")
    sub = WebhookSubscription.objects.create(url="https://hooks.example.net/in", events=["score.tier_changed"],
                                             purpose="automated_scoring", secret_sealed=b"x", secret_kek_id="k1",
                                             created_by="api:test")
    event = OutboxEvent.objects.create(type="score.tier_changed", customer_id=customer, purpose="automated_scoring",
                                       payload={})
    now = timezone.now()
    delivery = Delivery.objects.create(subscription=sub, event=event, seq=event.pk, customer_id=customer,
                                       event_type=event.type, state=Delivery.State.DEAD, next_attempt_at=now,
                                       window_started_at=now)
    return {"customer": customer, "customer_id": customer, "pk": decision.pk, "request_id": erasure.id,
            "review_id": review.pk, "incident_id": incident.pk, "delivery_id": delivery.pk, "fmt": "csv",
            "table": "funnel"}


def _state() -> tuple:
    """What a refused request must not change: the audit trail and the requests, reviews and breaches."""
    from audit.models import AccessRecord, BreachIncident, GovernanceEvent
    from subject_rights.models import ReviewTask, SubjectRequest
    from webhooks.models import Delivery

    return (AccessRecord.objects.count(), GovernanceEvent.objects.count(),
            sorted(SubjectRequest.objects.values_list("id", "status")),
            sorted(ReviewTask.objects.values_list("id", "state")),
            sorted(BreachIncident.objects.values_list("id", "status", "updated_at")),
            sorted(Delivery.objects.values_list("id", "state")))


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "keys", "method", "body", "dpo_status"), CONSOLE_ROUTES,
                         ids=[f"{r[0]}-{r[2]}" for r in CONSOLE_ROUTES])
def test_console_page_by_role(client, django_user_model, dpo_user, console_objects, name, keys, method, body,
                              dpo_status):
    """Anonymous -> the login page, a signed-in non-DPO -> 403, neither changing anything; the DPO -> the
    exact status of the page or action (an action redirects back to its page)."""
    from django.urls import reverse

    path = reverse(f"console:{name}", kwargs={k: console_objects[k] for k in keys})
    data = _body(console_objects)[body] if body else {}
    before = _state()
    anonymous = getattr(client, method)(path, data)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/console/login/?next=")

    clerk = django_user_model.objects.create_user(username="clerk", password="clerk-password-123", is_staff=True)
    client.force_login(clerk)
    refused = getattr(client, method)(path, data)
    assert refused.status_code == 403
    assert _state() == before

    client.force_login(dpo_user)
    assert getattr(client, method)(path, data).status_code == dpo_status


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "keys", "method", "body", "dpo_status"), CONSOLE_ROUTES,
                         ids=[f"{r[0]}-{r[2]}" for r in CONSOLE_ROUTES])
def test_console_route_refuses_other_methods(client, dpo_user, console_objects, name, keys, method, body,
                                             dpo_status):
    from django.urls import reverse

    allowed = {m for n, k, m, *_ in CONSOLE_ROUTES if n == name}
    path = reverse(f"console:{name}", kwargs={k: console_objects[k] for k in keys})
    client.force_login(dpo_user)
    before = _state()
    for other in sorted({"get", "post", "put", "patch", "delete"} - allowed):
        assert getattr(client, other)(path).status_code == 405, (name, other)
    assert _state() == before


#: Routes with an id: an id of nothing is 404 for the DPO (never a 500, never another object).
UNKNOWN_IDS = {"customer_id": "00000000-0000-4000-8000-000000000000", "request_id": "00000000-0000-4000-8000-000000000001",
               "pk": 987654, "review_id": 987654, "incident_id": 987654, "table": "no-such-table"}


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "keys", "method", "body", "dpo_status"),
                         [r for r in CONSOLE_ROUTES if set(r[1]) & set(UNKNOWN_IDS)],
                         ids=[f"{r[0]}-{r[2]}" for r in CONSOLE_ROUTES if set(r[1]) & set(UNKNOWN_IDS)])
def test_console_route_with_an_unknown_id_is_404(client, dpo_user, console_objects, name, keys, method, body,
                                                  dpo_status):
    from django.urls import reverse

    path = reverse(f"console:{name}", kwargs={k: UNKNOWN_IDS.get(k, console_objects[k]) for k in keys})
    client.force_login(dpo_user)
    before = _state()
    assert getattr(client, method)(path, _body(console_objects)[body] if body else {}).status_code == 404
    assert _state()[2:] == before[2:]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "statuses"), CONSOLE_SESSION_ROUTES)
def test_console_session_pages_by_role(client, django_user_model, dpo_user, name, method, statuses):
    from django.urls import reverse

    path = reverse(f"console:{name}")
    data = {"username": "dpo", "password": "wrong-password"} if name == "login" else {}
    got = [getattr(client, method)(path, data).status_code]
    clerk = django_user_model.objects.create_user(username="clerk", password="clerk-password-123")
    client.force_login(clerk)
    got.append(getattr(client, method)(path, data).status_code)
    client.force_login(dpo_user)
    got.append(getattr(client, method)(path, data).status_code)
    assert tuple(got) == statuses
