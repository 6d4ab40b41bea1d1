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

When the shared cache is unreachable (Redis down), counting falls back to a local, per-process fixed-window
counter (``LocalCounter``) and the request goes on: the API keeps serving from PostgreSQL, its source of truth,
and a limit is then enforced per process instead of across processes until the cache is back.

Failed bearer tokens are counted per client address (``INVALID_TOKEN_THROTTLE_RATE``, keyed hash of the
address read through ``TRUSTED_PROXIES``): past the rate, each further invalid token from that address is
answered 429 with ``Retry-After`` instead of 401 (valid tokens are not counted and keep working).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, NoReturn

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.blind_index import blind_index
from config.client_address import client_address

logger = logging.getLogger("throttling")


class LocalCounter:
    """In-process counters with expiry: the fallback while the shared cache is unreachable."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    def incr(self, key: str, timeout: int) -> int:
        now = time.monotonic()
        with self._lock:
            count, expires = self._counts.get(key, (0, 0.0))
            if expires <= now:
                count, expires = 0, now + timeout
            count += 1
            if len(self._counts) >= self._max_keys:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._counts[key] = (count, expires)
            return count

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


local_counter = LocalCounter()
_last_warning = 0.0


def _cache_unavailable() -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:  # at most one line per 10 s per process while the cache is down
        _last_warning = now
        logger.warning("shared cache unavailable; counting locally", exc_info=True,
                       extra={"event": "throttle.cache_unavailable"})


def increment(key: str, *, timeout: int, cache: Any = default_cache) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live); returns the new count.

    Falls back to the process-local counter when the cache cannot be reached."""
    try:
        try:
            return int(cache.incr(key))
        except ValueError:  # the window's first request
            if cache.add(key, 1, timeout):
                return 1
            return int(cache.incr(key))
    except Exception:  # noqa: BLE001 - a cache outage (ConnectionError, TimeoutError, ...) must not fail requests
        _cache_unavailable()
        return local_counter.incr(key, timeout)


def invalid_token_refuse(request: Any) -> NoReturn:
    """Count an invalid bearer token for the client address; raise 401, or 429 once over the rate.

    Only failures are counted, so a valid token costs nothing extra and still works from that address."""
    rate = getattr(settings, "INVALID_TOKEN_THROTTLE_RATE", None)
    limit, duration = SimpleRateThrottle.parse_rate(None, rate) if rate else (None, None)  # type: ignore[arg-type]
    if limit is None or duration is None:
        raise AuthenticationFailed()
    now = time.time()
    window = int(now // duration)
    address = blind_index("throttle-bad-token", client_address(request) or "-")
    if increment(f"throttle:badtoken:{address}:{window}", timeout=2 * duration) > limit:
        raise Throttled(wait=max((window + 1) * duration - now, 1.0))
    raise AuthenticationFailed()


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
        return f"throttle:anon:{blind_index('throttle-address', client_address(request) or '-')}"

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
