"""Brute-force protection for ``/console/login/`` and ``/admin/login/`` (django-axes, cache handler).

After ``LOGIN_FAILURE_LIMIT`` wrong passwords in a row for one account, or from one client address
(``config.client_address``, trusted proxies only), further attempts are refused with a 429 page that says
so, for ``LOGIN_LOCKOUT_MINUTES``. Account names and addresses reach django-axes only as keyed hashes
(``config.blind_index``), so neither is ever a cache key nor in a log line; each lockout is logged (event
``login.locked_out``, with the path only).
"""

from __future__ import annotations

import logging
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.handlers.cache import AxesCacheHandler
from axes.signals import user_locked_out
from django.dispatch import receiver
from django.http import HttpRequest

from config.blind_index import blind_index
from config.client_address import client_address

logger = logging.getLogger("security")


def lockout_address(request: HttpRequest) -> str:
    return blind_index("login-address", client_address(request) or "unknown")[:32]


def lockout_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    username = (credentials or {}).get("username")
    if username is None and request is not None and hasattr(request, "POST"):
        username = request.POST.get("username")
    if not username:
        return None
    return blind_index("login-account", str(username).strip().casefold())[:32]


class _FallbackCache:
    """The shared cache (looked up on every call), or while it is unreachable a process-local one: sign-in
    keeps working, and counting per process, during a Redis outage instead of answering 500."""

    def __init__(self) -> None:
        from django.core.cache.backends.locmem import LocMemCache

        self._local = LocMemCache("axes-fallback", {})

    def __getattr__(self, name: str) -> Any:
        from django.conf import settings
        from django.core.cache import caches

        shared = getattr(caches[getattr(settings, "AXES_CACHE", "default")], name)
        if not callable(shared):
            return shared

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return shared(*args, **kwargs)
            except Exception:  # noqa: BLE001 - a cache outage must not break sign-in
                logger.warning("shared cache unavailable; counting sign-in failures locally",
                               extra={"event": "lockout.cache_unavailable"})
                return getattr(self._local, name)(*args, **kwargs)

        return call


class LockoutCacheHandler(AxesCacheHandler):
    def __init__(self) -> None:
        super().__init__()
        self.cache = _FallbackCache()


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' check, for HTTP sign-ins. ``authenticate()`` without a request (management commands,
    the test client's ``login()``) has no address to count and is not a brute-force channel: skipped."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_locked_out, dispatch_uid="config.lockout.log_lockout")
def log_lockout(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    path = getattr(request, "path", "") if request is not None else ""
    logger.warning("login locked out", extra={"event": "login.locked_out", "path": path})
