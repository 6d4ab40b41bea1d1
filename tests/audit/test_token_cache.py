"""Token lookups through the shared cache (issue 21 §3): a warm request reads the client from the shared cache,
not the database; a revocation or rotation made by ANOTHER process stops the old token at once in every
process, and a lookup that read the row just before the change cannot put it back. Needs a real Redis (the
shared cache of production; CI gives one in CACHE_URL): marked ``integration``, so CI fails if it is skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("CACHE_URL", "")

_CHILD = textwrap.dedent("""
    import json, sys
    import django
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings
    url, action, arg = sys.argv[1:4]
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    with override_settings(CACHES=caches, API_TOKEN_CACHE_SECONDS=60):
        if action == "auth":
            from rest_framework.exceptions import AuthenticationFailed
            from rest_framework.test import APIRequestFactory
            from audit.api_clients import ApiTokenAuthentication
            with CaptureQueriesContext(connection) as ctx:
                try:
                    ApiTokenAuthentication().authenticate(
                        APIRequestFactory().get("/", HTTP_AUTHORIZATION="Bearer " + arg))
                    status = 200
                except AuthenticationFailed:
                    status = 401
            print(json.dumps({"status": status, "queries": len(ctx.captured_queries)}))
        elif action == "revoke":
            from audit.api_clients import api_client_revoke
            api_client_revoke(name=arg, actor="cli")
            print(json.dumps({"revoked": arg}))
""")


def _database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s.get('USER') or 'postgres'}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _other_process(action: str, arg: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": _database_url()}
    out = subprocess.run([sys.executable, "-c", _CHILD, REDIS_URL, action, arg], cwd=ROOT, env=env,  # noqa: S603
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def shared_cache(settings):
    if not REDIS_URL.startswith("redis://"):
        pytest.skip("needs a shared Redis cache: set CACHE_URL=redis://... (CI does)")
    from django.core.cache import cache

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    settings.API_TOKEN_CACHE_SECONDS = 60
    cache.clear()
    yield cache
    cache.clear()


def _auth(token: str) -> tuple[int, int]:
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from audit.api_clients import ApiTokenAuthentication

    with CaptureQueriesContext(connection) as ctx:
        try:
            ApiTokenAuthentication().authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
            status = 200
        except AuthenticationFailed:
            status = 401
    return status, len(ctx.captured_queries)


def test_a_warm_lookup_reads_the_shared_cache_and_another_processes_revocation_stops_it_at_once(shared_cache):
    from audit.api_clients import api_client_create, hash_token, token_cache_enabled

    assert token_cache_enabled()
    created = api_client_create(name="desk", scopes=["score:read"], purposes=["automated_scoring"])
    assert _auth(created.token) == (200, 1)  # first lookup: the database, then cached
    cached = shared_cache.get("apitoken:v1:" + hash_token(created.token))
    assert isinstance(cached, tuple) and created.token not in repr(cached)
    assert _auth(created.token) == (200, 0)  # warm: no query
    assert _other_process("auth", created.token) == {"status": 200, "queries": 0}  # shared across processes

    _other_process("revoke", "desk")

    assert _auth(created.token)[0] == 401  # the very next request, in this process
    assert _other_process("auth", created.token)["status"] == 401  # and in any other


def test_a_lookup_that_read_the_row_before_a_revocation_cannot_cache_it_back(shared_cache):
    from audit.api_clients import (
        _CLIENT_BY_TOKEN,
        _CLIENT_FIELDS,
        api_client_create,
        api_client_revoke,
        hash_token,
    )

    created = api_client_create(name="racer", scopes=["score:read"], purposes=[])
    key = "apitoken:v1:" + hash_token(created.token)
    stale = _CLIENT_BY_TOKEN.first(token_hash=hash_token(created.token))  # a request reads the row ...
    api_client_revoke(name="racer", actor="cli")  # ... the client is revoked ...
    assert shared_cache.add(key, tuple(stale[n] for n in _CLIENT_FIELDS), timeout=60) is False  # ... its add fails
    assert _auth(created.token)[0] == 401


def test_rotation_refuses_the_old_token_at_once_everywhere_and_serves_the_new_one(shared_cache):
    from audit.api_clients import api_client_create, api_client_rotate

    created = api_client_create(name="rot", scopes=["score:read"], purposes=[])
    assert _auth(created.token)[0] == 200 and _auth(created.token) == (200, 0)
    rotated = api_client_rotate(name="rot", actor="cli")
    assert _auth(created.token)[0] == 401
    assert _other_process("auth", created.token)["status"] == 401
    assert _auth(rotated.token)[0] == 200
    assert _other_process("auth", rotated.token)["status"] == 200


def test_a_change_is_refused_when_the_shared_cache_cannot_be_told(shared_cache, settings):
    from audit.api_clients import TokenCacheUnavailable, api_client_create, api_client_revoke
    from audit.models import ApiClient

    created = api_client_create(name="down", scopes=["score:read"], purposes=[])
    assert _auth(created.token) == (200, 1)
    shared = settings.CACHES
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}  # nothing listens there
    with pytest.raises(TokenCacheUnavailable):
        api_client_revoke(name="down", actor="cli")
    settings.CACHES = shared
    assert ApiClient.objects.get(name="down").revoked_at is None  # not applied silently stale


def test_a_per_process_cache_is_never_used_for_tokens(settings):
    from django.core.cache import cache

    from audit.api_clients import api_client_create, hash_token, token_cache_enabled

    settings.API_TOKEN_CACHE_SECONDS = 60  # the test settings keep the local-memory cache
    assert not token_cache_enabled()
    created = api_client_create(name="local", scopes=["score:read"], purposes=[])
    assert _auth(created.token) == (200, 1)
    assert _auth(created.token) == (200, 1)  # every lookup reads the database
    assert cache.get("apitoken:v1:" + hash_token(created.token)) is None
