"""Scope-based permissions for API clients.

A view declares ``required_scopes = {"GET": "score:read", "POST": "score:read"}`` (or a single
``required_scope``). Views without a declaration are closed to API clients: explicit is safer.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def view_required_scope(view: Any, method: str) -> str | None:
    scopes = getattr(view, "required_scopes", None)
    if isinstance(scopes, dict):
        return scopes.get(method) or (scopes.get("GET") if method in ("HEAD", "OPTIONS") else None)
    return getattr(view, "required_scope", None)


class HasScope(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        client = request.auth
        if client is None or not hasattr(client, "scopes"):
            return False
        scope = view_required_scope(view, request.method or "GET")
        return scope is not None and scope in client.scopes


def client_may_use_purpose(client: Any, purpose: str) -> bool:
    return client is not None and purpose in getattr(client, "purposes", ())


# --- Purpose binding (issue 20) ------------------------------------------------------------------------
# Consent, lookup and subject-request endpoints check the scope AND the client's purposes, like scoring:
# - a consent grant (single or bulk) for a purpose the client may not use is refused (purpose_not_allowed);
#   a withdrawal is always recorded (withdrawing must be as easy as giving, GDPR Art. 7(3));
# - consent reads show only the client's purposes (flags for "all purposes" are shown to everyone);
# - a lookup needs a client bound to at least one purpose (finding a pseudonym is processing for one);
# - subject requests are never refused for a purpose: the data subject's rights come first. A purpose named
#   in a restriction or objection is checked against the catalogue by the service, not against the client.


def client_purposes(client: Any) -> frozenset[str]:
    return frozenset(getattr(client, "purposes", None) or ())


def require_purpose(client: Any, purpose: str) -> None:
    from config.errors import PurposeNotAllowed

    if not client_may_use_purpose(client, purpose):
        raise PurposeNotAllowed()


def require_any_purpose(client: Any) -> None:
    from config.errors import PurposeNotAllowed

    if not client_purposes(client):
        raise PurposeNotAllowed("This API client is bound to no purpose.")


def visible_to_client(client: Any, purpose: str | None) -> bool:
    """A purpose-scoped item is shown when the client may use its purpose; items for all purposes always."""
    return purpose is None or purpose in client_purposes(client)


class DocsAccess(BasePermission):
    """The OpenAPI schema and docs: everyone when ``API_DOCS_PUBLIC``, else an API client with a valid token
    or a signed-in staff member of the console."""

    def has_permission(self, request: Request, view: Any) -> bool:
        from django.conf import settings

        if settings.API_DOCS_PUBLIC:
            return True
        if request.auth is not None and hasattr(request.auth, "scopes"):
            return True
        user = getattr(request._request, "user", None)
        return bool(user is not None and user.is_authenticated and user.is_active)
