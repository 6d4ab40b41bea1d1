"""Authorization matrix: every API endpoint × role → status, derived from the URL map, so it grows
with every endpoint added. Every console page × role → status likewise.

Roles for the API: anonymous (401), a token lacking the endpoint's scope (403), a revoked token (401),
and a token with exactly the endpoint's scope (never 401/403: the request reaches validation).
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


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "scope"), API_ENDPOINTS)
def test_token_with_exactly_the_scope_passes_authorization(make_api_client, path, method, scope):
    api = make_api_client(scopes=[scope])
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code not in (401, 403, 500), (path, method, response.status_code)
    assert response.status_code < 500


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
