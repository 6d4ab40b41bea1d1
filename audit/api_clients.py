"""API clients: creation, token rotation, revocation and bearer-token authentication.

Tokens look like ``psk_<43 url-safe chars>``; only ``sha256(token)`` is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from audit.models import ApiClient
from config.compiled_queries import CompiledQuery
from config.throttling import invalid_token_refuse

KNOWN_SCOPES = (
    "ingest:write",
    "consent:read",
    "consent:write",
    "score:read",
    "outcome:write",
    "route:read",
    "dsr:read",
    "dsr:write",
    "webhooks:admin",
    # issue 17: next-best actions and KPIs
    "actions:read",
    "actions:write",
    "kpis:read",
)
TOKEN_PREFIX = "psk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreatedClient:
    client: ApiClient
    token: str


@transaction.atomic
def api_client_create(
    *, name: str, scopes: list[str], purposes: list[str], days_valid: int | None = None, actor: str = "system",
    token: str | None = None,
) -> CreatedClient:
    unknown = sorted(set(scopes) - set(KNOWN_SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    if token is not None and (not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + 32):
        raise ValueError("a given token must carry the token prefix and at least 32 random characters")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        name=name,
        token_hash=hash_token(token),
        token_prefix=token[:12],
        scopes=sorted(set(scopes)),
        purposes=sorted(set(purposes)),
        expires_at=timezone.now() + timedelta(days=days_valid or settings.API_TOKEN_DEFAULT_DAYS),
    )
    from audit.services import governance_record  # audit.services imports DRF, which loads this module

    governance_record(kind="api_client.created", actor=actor, details={"client": name, "scopes": client.scopes,
                                                                 "purposes": client.purposes})
    return CreatedClient(client=client, token=token)


@transaction.atomic
def api_client_revoke(*, name: str, actor: str = "system") -> ApiClient:
    client = ApiClient.objects.select_for_update().get(name=name)
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        from audit.services import governance_record  # audit.services imports DRF, which loads this module

        governance_record(kind="api_client.revoked", actor=actor, details={"client": name})
    return client


@transaction.atomic
def api_client_rotate(*, name: str, actor: str, days_valid: int | None = None,
                      token: str | None = None) -> CreatedClient:
    """Give the existing client ``name`` a new token (same client id, scopes and purposes) valid for
    ``days_valid`` days from now (default ``API_TOKEN_DEFAULT_DAYS``). ``token`` sets a given token (the demo's,
    derived from the checkout's own secret, so it is stable across runs); it must carry the token prefix and
    at least 32 characters of randomness after it. Only the new token's hash is stored,
    so the old token stops working at once. An expired client may be rotated; a revoked one may not
    (revocation is final: ``Conflict``). Unknown name: ``NotFound``."""
    from config.errors import Conflict, NotFound

    client = ApiClient.objects.select_for_update().filter(name=name).first()
    if client is None:
        raise NotFound("API client not found.")
    if client.revoked_at is not None:
        raise Conflict("The API client is revoked; create a new client instead.")
    days = days_valid or settings.API_TOKEN_DEFAULT_DAYS
    if token is not None and (not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + 32):
        raise ValueError("a given token must carry the token prefix and at least 32 random characters")
    token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    client.token_hash = hash_token(token)
    client.token_prefix = token[:12]
    client.expires_at = timezone.now() + timedelta(days=days)
    client.save(update_fields=["token_hash", "token_prefix", "expires_at"])
    from audit.services import governance_record  # audit.services imports DRF, which loads this module

    governance_record(kind="api_client.rotated", actor=actor, details={"client": name, "days_valid": days})
    return CreatedClient(client=client, token=token)


class ApiClientPrincipal:
    """``request.user`` for token-authenticated calls; ``request.auth`` is the ApiClient."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.pk = client.pk
        self.id = client.pk

    def __str__(self) -> str:
        return self.client.requester


# Every API request looks its client up by token hash: compiled once per thread (no ORM work per request).
_CLIENT_BY_TOKEN = CompiledQuery(
    lambda *, token_hash: ApiClient.objects.filter(token_hash=token_hash).values(
        *(f.attname for f in ApiClient._meta.concrete_fields)),
    token_hash="text",
)
_CLIENT_FIELDS = [f.attname for f in ApiClient._meta.concrete_fields]

# ---- token lookup cache (shared cache only) ------------------------------------------------------------
# With a shared cache (Redis, Memcached: every process sees the same entries), a client's row is kept there
# for ``API_TOKEN_CACHE_SECONDS`` under its token hash, so that a request costs one cache read instead of a
# database query. Revocation is immediate in every process: before a client's row changes (revoke, rotate,
# any save or delete), its key is overwritten with a HOLD marker in the same shared cache, and while a key
# holds the marker every process reads the database (which has the change once it commits). Entries are
# only ever added with ``cache.add`` (never over a HOLD), so a request that read the row just before the
# change cannot put the old row back. A HOLD outlives any request by far (``_HOLD_SECONDS``); after it the
# next read caches the row as it is then (revoked, rotated away, expired: refused as before). If the HOLD
# cannot be written the change is refused (``TokenCacheUnavailable``), never applied silently stale.
# A per-process cache (local memory, the default without CACHE_URL) is not shared: no caching then.
_KEY_PREFIX = "apitoken:v1:"
_HOLD = "hold"
_HOLD_SECONDS = 300


class TokenCacheUnavailable(RuntimeError):
    """The shared cache could not be told of a client change; the change was not applied."""


def token_cache_enabled() -> bool:
    seconds = int(getattr(settings, "API_TOKEN_CACHE_SECONDS", 0) or 0)
    if seconds <= 0:
        return False
    backend = str(settings.CACHES.get("default", {}).get("BACKEND", ""))
    return not backend.endswith(("LocMemCache", "DummyCache"))


def _cache_key(token_hash: str) -> str:
    return _KEY_PREFIX + token_hash


def token_cache_hold(*token_hashes: str) -> None:
    """Make every process read these clients from the database (see above). Raises TokenCacheUnavailable."""
    if not token_cache_enabled():
        return
    from django.core.cache import cache

    try:
        cache.set_many({_cache_key(h): _HOLD for h in token_hashes if h}, timeout=_HOLD_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any cache failure: refuse the change (it would not be immediate)
        raise TokenCacheUnavailable("The shared cache is unreachable: the API client was not changed.") from exc


def token_cache_hold_on_change(sender: Any, instance: ApiClient, **kwargs: Any) -> None:
    """``pre_save``/``pre_delete`` of ApiClient: hold the token hash the database has for it now (a new
    client's hash cannot be cached yet: only rows that exist are ever cached)."""
    if instance.pk is None or instance._state.adding:
        return
    stored = ApiClient.objects.filter(pk=instance.pk).values_list("token_hash", flat=True).first()
    if stored:
        token_cache_hold(stored)


def _client_row(token_hash: str) -> dict[str, Any] | None:
    if not token_cache_enabled():
        return _CLIENT_BY_TOKEN.first(token_hash=token_hash)
    from django.core.cache import cache

    key = _cache_key(token_hash)
    try:
        cached = cache.get(key)
    except Exception:  # noqa: BLE001 - cache down: the database answers
        return _CLIENT_BY_TOKEN.first(token_hash=token_hash)
    if isinstance(cached, tuple):
        return dict(zip(_CLIENT_FIELDS, cached, strict=True))
    row = _CLIENT_BY_TOKEN.first(token_hash=token_hash)
    if cached is None and row is not None:
        with contextlib.suppress(Exception):  # cache down: not cached this time
            cache.add(key, tuple(row[name] for name in _CLIENT_FIELDS),
                      timeout=int(settings.API_TOKEN_CACHE_SECONDS))
    return row


class ApiTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiClientPrincipal, ApiClient] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            invalid_token_refuse(request)
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            invalid_token_refuse(request)
        row = _client_row(hash_token(token))
        client = None if row is None else ApiClient.from_db("default", _CLIENT_FIELDS, [row[n] for n in _CLIENT_FIELDS])
        if client is None or not client.is_active:
            invalid_token_refuse(request)
        return ApiClientPrincipal(client), client

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
