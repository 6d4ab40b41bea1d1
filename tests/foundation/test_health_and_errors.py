"""Health probes, the JSON error vocabulary and request correlation ids."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def test_liveness_answers_ok_without_touching_backends(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_checks_the_database(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True}}


def test_readiness_checks_the_broker_when_one_is_configured(client, settings):
    if not settings.CELERY_BROKER_URL:
        pytest.skip("no broker configured (embedded mode); CI runs this against Redis")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": True, "broker": True}}


def test_readiness_answers_503_when_the_database_is_down(client, monkeypatch, settings):
    from config import health

    settings.CELERY_TASK_ALWAYS_EAGER = True  # embedded mode: only the database is checked

    def broken_cursor():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable"
    assert body["checks"] == {"database": False}
    assert body["correlation_id"] == response["X-Request-ID"]


def test_readiness_answers_503_when_the_configured_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "broker": False}


def test_unknown_api_path_is_json_404_with_correlation_id(client):
    response = client.get("/api/v1/does-not-exist/", HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "correlation_id": "req-12345678"}
    assert response["X-Request-ID"] == "req-12345678"


def test_unsafe_incoming_request_id_is_replaced(client):
    response = client.get("/health/live", HTTP_X_REQUEST_ID="bad id with spaces <script>")
    assert response["X-Request-ID"] != "bad id with spaces <script>"
    assert len(response["X-Request-ID"]) == 32


def test_api_without_credentials_is_401_json(client):
    response = client.get("/api/v1/purposes")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert set(body) == {"code", "detail", "correlation_id"}


def test_malformed_bearer_header_is_401(client):
    response = client.get("/api/v1/purposes", HTTP_AUTHORIZATION="Bearer")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_validation_errors_never_echo_the_submitted_value():
    from rest_framework import serializers

    from config.errors import api_exception_handler

    class S(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["a", "b"])
        email = serializers.EmailField()

    s = S(data={"kind": "canary-kind-value", "email": "canary person at example"})
    assert not s.is_valid()
    response = api_exception_handler(serializers.ValidationError(s.errors), {})
    text = json.dumps(response.data)
    assert response.status_code == 400
    assert "canary" not in text
    assert response.data["errors"] == {
        "kind": [{"code": "invalid_choice", "message": "Not one of the allowed values."}],
        "email": [{"code": "invalid", "message": "Invalid value."}],
    }


def test_application_errors_map_to_their_status_and_code():
    from config.errors import (
        Conflict,
        NoConsent,
        PayloadTooLarge,
        Restricted,
        Unprocessable,
        api_exception_handler,
    )

    for exc, status, code in [
        (NoConsent(), 403, "no_consent"),
        (Restricted(), 403, "restricted"),
        (Conflict(), 409, "conflict"),
        (PayloadTooLarge(), 413, "payload_too_large"),
        (Unprocessable(), 422, "unprocessable"),
    ]:
        response = api_exception_handler(exc, {})
        assert (response.status_code, response.data["code"]) == (status, code)


def test_database_integrity_errors_become_409_without_database_detail():
    from django.db import IntegrityError

    from config.errors import api_exception_handler

    response = api_exception_handler(
        IntegrityError('duplicate key value violates unique constraint DETAIL: Key (email)=(x@y.z)'), {}
    )
    assert response.status_code == 409
    assert "x@y.z" not in json.dumps(response.data)


@pytest.mark.django_db
def test_the_root_is_a_landing_page_linking_every_door(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    for href in ('href="/console/"', 'href="/me/"', 'href="/api/docs/"', 'href="/api/schema/"', 'href="/health/ready"'):
        assert href in body
    assert "<script" not in body and "style=" not in body
    assert client.post("/").status_code == 405
