"""API throttling: a fixed-window request counter per API client, never keyed by anything personal.

DRF's ``SimpleRateThrottle`` keeps, per client, the list of every request time in the window and reads,
filters and rewrites that whole list (pickled) on each request: at the default 6,000 requests a minute
that is a 6,000-entry list on every call of a real-time path measured in milliseconds. Here a request costs one
counter increment in the cache (``API_THROTTLE_RATE`` requests per window, windows aligned to the clock).
A fixed window lets a client send up to twice its rate across a window boundary; that is the price of
constant cost.

Keys: ``throttle:client:<api client id>`` for authenticated requests (rate ``client``); requests without
a client (the OpenAPI schema and docs) are counted per keyed hash of the address (rate ``anon``), so no
IP address is ever a cache key.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache as default_cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.blind_index import blind_index


def increment(key: str, *, timeout: int, cache: Any = default_cache) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live); returns the new count."""
    try:
        return int(cache.incr(key))
    except ValueError:  # the window's first request
        if cache.add(key, 1, timeout):
            return 1
        return int(cache.incr(key))


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def __init__(self) -> None:  # the rate depends on the request (client or anonymous): see allow_request
        self._window_end = 0.0
        self.now = 0.0

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES  # read now: settings may change (tests, reloads)
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}.")
        rate = rates[self.scope]
        return None if rate is None else str(rate)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if self.scope == "client":
            return f"throttle:client:{request.auth.pk}"
        return f"throttle:anon:{blind_index('throttle-address', self.get_ident(request))}"

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.auth
        self.scope = "client" if client is not None and hasattr(client, "pk") else "anon"  # then get_cache_key
        self.rate = self.get_rate()
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // duration)
        self._window_end = float((window + 1) * duration)
        # Twice the window: a key never expires while its window is open, even with some clock skew.
        count = increment(f"{key}:{window}", timeout=2 * duration, cache=self.cache)
        return count <= limit

    def wait(self) -> float | None:
        return max(self._window_end - self.now, 0.0)
