"""Production settings refuse to start without secrets; check --deploy is clean; API tokens."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# Only what a process needs to run: never the developer's variables, never the clone's .env (ENV_FILE="").
_PROCESS_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PROCESS_VARIABLES if k in os.environ}
    env.update({
        "ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 60 + "-production-secret-key-with-enough-entropy-0123456789",
        "KEK_KEYS": f"k1:{_key()},k2:{_key()}",
        "BLIND_INDEX_KEY": _key(),
        "AUDIT_SIGNING_KEY": _key(),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "ALLOWED_HOSTS": "scoring.example.com",
        "SITE_URL": "https://scoring.example.com",
        "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    })
    env.update(overrides)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "KEK_KEYS", "BLIND_INDEX_KEY", "AUDIT_SIGNING_KEY"])
def test_production_refuses_to_start_without_each_secret(missing):
    env = _production_env()
    env.pop(missing)
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr


@pytest.mark.parametrize("site_url", ["", "http://scoring.example.com"])
def test_production_refuses_to_start_without_an_https_site_url(site_url):
    env = _production_env(SITE_URL=site_url)
    env.pop("PUBLIC_BASE_URL", None)
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "SITE_URL" in result.stderr


@pytest.mark.parametrize(("variable", "value"), [
    ("EMAIL_URL", None), ("EMAIL_URL", "consolemail://"), ("EMAIL_URL", "filemail:///tmp/mail"),
    ("EMAIL_URL", "memorymail://"), ("CACHE_URL", None), ("CACHE_URL", "locmemcache://scoring"),
    ("CACHE_URL", "dummycache://"), ("CELERY_BROKER_URL", None), ("CELERY_BROKER_URL", "memory://"),
])
def test_production_refuses_to_start_without_a_real_mail_server_shared_cache_and_broker(variable, value):
    env = _production_env()
    if value is None:
        env.pop(variable)
    else:
        env[variable] = value
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_create_api_client_prints_the_token_last_and_stores_only_its_hash():
    from audit.api_clients import hash_token
    from audit.models import ApiClient

    out = StringIO()
    call_command("create_api_client", "crm", "--scopes", "score:read", "consent:read",
                 "--purposes", "marketing", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    client = ApiClient.objects.get(name="crm")
    assert token.startswith("psk_") and len(token) > 40
    assert client.token_hash == hash_token(token)
    assert token not in str(ApiClient.objects.values().get(name="crm"))
    assert client.scopes == ["consent:read", "score:read"]
    assert client.purposes == ["marketing"]


@pytest.mark.django_db
def test_unknown_scope_is_refused_and_nothing_is_created():
    from django.core.management.base import CommandError

    from audit.models import ApiClient

    with pytest.raises(CommandError):
        call_command("create_api_client", "bad", "--scopes", "root:all", stdout=StringIO())
    assert ApiClient.objects.count() == 0


@pytest.mark.django_db
def test_revoked_and_expired_tokens_are_refused():
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from audit.api_clients import ApiTokenAuthentication, api_client_create, api_client_revoke
    from audit.models import ApiClient

    auth = ApiTokenAuthentication()
    created = api_client_create(name="desk", scopes=["score:read"], purposes=[])
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {created.token}")
    principal, client = auth.authenticate(request)
    assert client.pk == created.client.pk
    assert str(principal) == "api:desk"

    api_client_revoke(name="desk")
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {created.token}"))

    other = api_client_create(name="old", scopes=["score:read"], purposes=[])
    ApiClient.objects.filter(pk=other.client.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {other.token}"))


@pytest.mark.django_db
def test_rotated_token_replaces_the_old_one_at_once_and_keeps_the_clients_grants():
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from audit.api_clients import ApiTokenAuthentication, api_client_create, api_client_rotate, hash_token
    from audit.models import ApiClient, GovernanceEvent

    auth = ApiTokenAuthentication()
    created = api_client_create(name="desk", scopes=["score:read", "consent:read"], purposes=["marketing"],
                                days_valid=1)
    before = timezone.now()
    rotated = api_client_rotate(name="desk", actor="cli", days_valid=30)

    assert rotated.token != created.token and rotated.token.startswith("psk_")
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {created.token}"))
    principal, client = auth.authenticate(
        APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {rotated.token}"))
    assert client.pk == created.client.pk
    assert str(principal) == "api:desk"
    row = ApiClient.objects.get()
    assert row.pk == created.client.pk
    assert row.token_hash == hash_token(rotated.token)
    assert row.token_prefix == rotated.token[:12]
    assert row.scopes == ["consent:read", "score:read"]
    assert row.purposes == ["marketing"]
    assert row.revoked_at is None
    assert before + timedelta(days=30) <= row.expires_at <= timezone.now() + timedelta(days=30)
    event = GovernanceEvent.objects.get(kind="api_client.rotated")
    assert event.actor == "cli"
    assert event.details == {"client": "desk", "days_valid": 30}
    assert rotated.token not in str(event.details)


@pytest.mark.django_db
def test_rotation_renews_an_expired_client_for_the_default_validity(settings):
    from rest_framework.test import APIRequestFactory

    from audit.api_clients import ApiTokenAuthentication, api_client_create, api_client_rotate
    from audit.models import ApiClient

    created = api_client_create(name="desk", scopes=["score:read"], purposes=[])
    ApiClient.objects.filter(pk=created.client.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = timezone.now()
    rotated = api_client_rotate(name="desk", actor="cli")

    _, client = ApiTokenAuthentication().authenticate(
        APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {rotated.token}"))
    assert client.pk == created.client.pk
    days = settings.API_TOKEN_DEFAULT_DAYS
    assert before + timedelta(days=days) <= client.expires_at <= timezone.now() + timedelta(days=days)


@pytest.mark.django_db
def test_rotating_a_revoked_or_unknown_client_is_refused_and_changes_nothing():
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    from audit.api_clients import (
        ApiTokenAuthentication,
        api_client_create,
        api_client_revoke,
        api_client_rotate,
    )
    from audit.models import ApiClient, GovernanceEvent
    from config.errors import Conflict, NotFound

    created = api_client_create(name="desk", scopes=["score:read"], purposes=[])
    api_client_revoke(name="desk")
    token_hash = ApiClient.objects.get().token_hash

    with pytest.raises(Conflict):
        api_client_rotate(name="desk", actor="cli")
    with pytest.raises(NotFound):
        api_client_rotate(name="nobody", actor="cli")

    assert ApiClient.objects.count() == 1
    assert ApiClient.objects.get().token_hash == token_hash
    assert not GovernanceEvent.objects.filter(kind="api_client.rotated").exists()
    with pytest.raises(AuthenticationFailed):
        ApiTokenAuthentication().authenticate(
            APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {created.token}"))
