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
