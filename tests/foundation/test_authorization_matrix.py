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


def _console_pages() -> list[str]:
    pages = []
    for route, pattern in _walk(get_resolver().url_patterns):
        static = route.startswith("console/") and "<" not in route and "log" not in route.split("/")[1][:3]
        if static and pattern.name and not pattern.name.endswith("-action"):
            pages.append("/" + route)
    return sorted(set(pages))


CONSOLE_PAGES = _console_pages()


@pytest.mark.django_db
@pytest.mark.parametrize("path", CONSOLE_PAGES)
def test_console_page_by_role(client, django_user_model, dpo_user, path):
    """Anonymous → login redirect, a logged-in non-DPO → 403, the DPO → the page (or, for an action that
    only accepts POST, the action's redirect)."""
    method = "get" if client.get(path).status_code != 405 else "post"
    anonymous = getattr(client, method)(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/console/login/")

    clerk = django_user_model.objects.create_user(username="clerk", password="clerk-password-123")
    client.force_login(clerk)
    assert getattr(client, method)(path).status_code == 403

    client.force_login(dpo_user)
    assert getattr(client, method)(path).status_code == (200 if method == "get" else 302)
