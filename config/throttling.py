"""Throttling keyed by API client id (never by anything personal)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.auth
        if client is None or not hasattr(client, "pk"):
            return self.cache_format % {"scope": "anon", "ident": self.get_ident(request)}
        return self.cache_format % {"scope": self.scope, "ident": str(client.pk)}


class AnonThrottle(AnonRateThrottle):
    scope = "anon"


class OtpThrottle(SimpleRateThrottle):
    """Throttle for one-time-code endpoints, keyed by client address only."""

    scope = "otp"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
