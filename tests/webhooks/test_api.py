"""The subscription API (scope ``webhooks:admin``) and URL safety."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.webhooks.conftest import SCORING

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"
ROOT = Path(__file__).resolve().parents[2]


def _body(url: str = "http://127.0.0.1:9/hook", **extra):
    return {"url": url, "events": ["consent.withdrawn", "customer.erased"], "purpose": SCORING, **extra}


@pytest.mark.parametrize(("scopes", "expected"), [
    (["webhooks:admin"], {"post": 201, "list": 200, "get": 200, "delete": 204}),
    (["score:read", "consent:write", "dsr:write"], {"post": 403, "list": 403, "get": 403, "delete": 403}),
    ([], {"post": 403, "list": 403, "get": 403, "delete": 403}),
])
def test_every_operation_needs_the_webhooks_admin_scope(make_api_client, subscribe, scopes, expected):
    from webhooks.models import WebhookSubscription

    client = make_api_client(scopes=scopes)
    existing, _ = subscribe("http://127.0.0.1:9/hook", ["consent.withdrawn"])
    before = WebhookSubscription.objects.count()
    assert client.post(URL, _body(), format="json").status_code == expected["post"]
    assert WebhookSubscription.objects.count() == before + (1 if expected["post"] == 201 else 0)
    assert client.get(URL).status_code == expected["list"]
    assert client.get(f"{URL}/{existing.id}").status_code == expected["get"]
    assert client.delete(f"{URL}/{existing.id}").status_code == expected["delete"]
    existing.refresh_from_db()
    assert (existing.deleted_at is not None) == (expected["delete"] == 204)


def test_anonymous_requests_are_refused(client):
    assert client.post(URL, _body(), content_type="application/json").status_code in (401, 403)
    assert client.get(URL).status_code in (401, 403)


def test_create_list_get_delete_round_trip_and_audit(make_api_client):
    from audit.models import GovernanceEvent

    admin = make_api_client(scopes=["webhooks:admin"])
    response = admin.post(URL, _body(), format="json")
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "url", "events", "purpose", "created_at", "secret"}
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["consent.withdrawn", "customer.erased"]
    listed = admin.get(URL).json()
    assert [row["id"] for row in listed] == [created["id"]]
    assert "secret" not in listed[0]
    detail = admin.get(f"{URL}/{created['id']}").json()
    assert detail == {k: v for k, v in created.items() if k != "secret"}
    assert admin.delete(f"{URL}/{created['id']}").status_code == 204
    assert admin.get(f"{URL}/{created['id']}").status_code == 404
    assert admin.delete(f"{URL}/{created['id']}").status_code == 404
    assert admin.get(URL).json() == []
    assert admin.get(f"{URL}/{uuid.uuid4()}").status_code == 404
    kinds = list(GovernanceEvent.objects.filter(kind__startswith="webhook.").values_list("kind", flat=True))
    assert kinds == ["webhook.subscribed", "webhook.unsubscribed"]
    assert created["secret"] not in str(list(GovernanceEvent.objects.values_list("details", flat=True)))


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"events": ["score.exploded"]}, "events", None),
    ({"events": []}, "events", None),
    ({"purpose": "no_such_purpose"}, "purpose", "invalid_choice"),
    ({"url": "ftp://127.0.0.1/hook"}, "url", "https_required"),
    ({"url": "not a url"}, "url", None),
    ({"url": "http://user:pw@127.0.0.1/hook"}, "url", "credentials_in_url"),
    ({"url": "http://127.0.0.1/hook#x"}, "url", "invalid_url"),
])
def test_bad_subscriptions_get_a_clear_400_and_nothing_is_stored(make_api_client, body, field, code):
    from webhooks.models import WebhookSubscription

    admin = make_api_client(scopes=["webhooks:admin"])
    response = admin.post(URL, {**_body(), **body}, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert field in payload.get("errors", {}), payload
    if code:
        assert payload["code"] == code
    assert WebhookSubscription.objects.count() == 0


PRODUCTION_RULES = {"WEBHOOK_ALLOW_HTTP": False, "WEBHOOK_ALLOWED_PRIVATE_HOSTS": []}


@pytest.mark.parametrize(("url", "code"), [
    ("http://93.184.216.34/hook", "https_required"),
    ("https://127.0.0.1/hook", "private_address"),
    ("https://localhost/hook", "private_address"),
    ("https://[::1]/hook", "private_address"),
    ("https://10.1.2.3/hook", "private_address"),
    ("https://192.168.0.10:8443/hook", "private_address"),
    ("https://172.16.5.4/hook", "private_address"),
    ("https://169.254.169.254/latest/meta-data", "private_address"),
    ("https://[fe80::1]/hook", "private_address"),
    ("https://[::ffff:127.0.0.1]/hook", "private_address"),
    ("https://0.0.0.0/hook", "private_address"),
    ("https://100.64.0.1/hook", "private_address"),
])
def test_production_rules_refuse_http_and_private_addresses(make_api_client, settings, url, code):
    from webhooks.models import WebhookSubscription

    for name, value in PRODUCTION_RULES.items():
        setattr(settings, name, value)
    admin = make_api_client(scopes=["webhooks:admin"])
    response = admin.post(URL, _body(url), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["errors"] == {"url": [{"code": code}]}
    assert WebhookSubscription.objects.count() == 0


def test_production_rules_accept_public_https_and_listed_private_hosts(make_api_client, settings):
    for name, value in PRODUCTION_RULES.items():
        setattr(settings, name, value)
    admin = make_api_client(scopes=["webhooks:admin"])
    assert admin.post(URL, _body("https://93.184.216.34/hook"), format="json").status_code == 201
    assert admin.post(URL, _body("https://10.1.2.3/hook"), format="json").status_code == 400
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["10.1.2.3"]
    assert admin.post(URL, _body("https://10.1.2.3/hook"), format="json").status_code == 201


def test_an_address_that_became_private_is_refused_at_send_time(subscribe, consented, settings):
    """Checked again before connecting: a subscription whose host is no longer allowed is not called."""
    from consent.services import consent_withdraw
    from tests.webhooks.conftest import relay_and_send
    from webhooks.models import Delivery

    subscribe("http://127.0.0.1:9/hook", ["consent.withdrawn"])
    cid = consented()
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    consent_withdraw(customer_id=cid, purpose=SCORING, source="web", channel="web", actor="job:test")
    relay_and_send()
    [d] = Delivery.objects.all()
    assert (d.state, d.last_error, d.last_status) == ("pending", "private_address", None)


def test_a_host_that_does_not_resolve_is_accepted_and_never_called_until_it_does(make_api_client, consented,
                                                                                   settings):
    """Registration cannot know the receiver's DNS (the API contract cannot state it either): the subscription
    is stored, and every delivery attempt resolves again and fails with ``unresolvable_host`` (nothing sent)."""
    from consent.services import consent_withdraw
    from tests.webhooks.conftest import relay_and_send
    from webhooks.models import Delivery, WebhookSubscription

    for name, value in PRODUCTION_RULES.items():
        setattr(settings, name, value)
    admin = make_api_client(scopes=["webhooks:admin"])
    response = admin.post(URL, _body("https://no-such-host.invalid/hook", events=["consent.withdrawn"]),
                          format="json")
    assert response.status_code == 201
    assert WebhookSubscription.objects.get().url == "https://no-such-host.invalid/hook"
    cid = consented()
    consent_withdraw(customer_id=cid, purpose=SCORING, source="web", channel="web", actor="job:test")
    relay_and_send()
    [d] = Delivery.objects.all()
    assert (d.state, d.last_error, d.last_status, d.attempts) == ("pending", "unresolvable_host", None, 1)


def test_production_settings_force_https_only(tmp_path):
    """The production settings module itself: http refused whatever the environment says, no private host
    allowed unless listed."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "x" * 60,
           "KEK_KEYS": "k1:" + "QUJD" * 10 + "QUI=", "BLIND_INDEX_KEY": "QUJD" * 11, "AUDIT_SIGNING_KEY": "QUJD" * 10 + "QUI=",
           "DATABASE_URL": "postgres://u@127.0.0.1:1/x", "ALLOWED_HOSTS": "example.com", "WEBHOOK_ALLOW_HTTP": "true",
           "SITE_URL": "https://example.com", "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
           "CACHE_URL": "redis://127.0.0.1:6379/1", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
           "PYTHONPATH": str(ROOT)}
    env.pop("WEBHOOK_ALLOWED_PRIVATE_HOSTS", None)
    code = ("from django.conf import settings; import django; django.setup(); "
            "print(settings.WEBHOOK_ALLOW_HTTP, settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False []"


def test_the_subscription_api_and_event_envelope_are_in_the_openapi_schema(api):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/webhooks"])
    assert {"get", "delete"} <= set(paths["/api/v1/webhooks/{subscription_id}"])
    assert "400" in paths["/api/v1/webhooks"]["post"]["responses"]
    components = schema["components"]["schemas"]
    assert {"EventEnvelope", "EventData", "SubscriptionCreatedOutput"} <= set(components)
    assert set(components["EventEnvelope"]["properties"]) == {"id", "type", "timestamp", "data"}
    assert {"decision_id", "tier", "previous_tier", "risk_level", "previous_risk_level", "reasons", "kind",
            "fields", "aliases", "customer", "purpose"} <= set(components["EventData"]["properties"])
