"""Low finding: invalid bearer tokens were never throttled. Now: per client address, 429 with Retry-After."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from config.client_address import client_address

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean():
    cache.clear()
    yield
    cache.clear()


def _bad(address: str = "203.0.113.20", token: str = "psk_not-a-real-token"):
    c = APIClient(REMOTE_ADDR=address)
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return c.get("/api/v1/purposes")


def test_invalid_tokens_past_the_rate_are_429_with_retry_after(api, settings):
    settings.INVALID_TOKEN_THROTTLE_RATE = "3/min"
    assert [_bad().status_code for _ in range(3)] == [401, 401, 401]
    throttled = _bad()
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert _bad(token="x y z").status_code == 429  # malformed headers count and are refused alike
    assert _bad(address="203.0.113.21").status_code == 401  # another address has its own count
    # A valid token from the throttled address still works: only failures are counted.
    api.defaults["REMOTE_ADDR"] = "203.0.113.20"
    assert api.get("/api/v1/purposes").status_code == 200


def test_client_address_uses_forwarded_for_only_from_trusted_proxies(rf, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    request = rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9, 192.0.2.1, 10.0.0.7")
    assert client_address(request) == "203.0.113.9"
    assert client_address(rf.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.9")) == \
        "198.51.100.1"
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="junk, 203.0.113.9")) == \
        "203.0.113.9"
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9, junk")) == \
        "10.0.0.5"
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.5")) == "10.0.0.5"
    settings.TRUSTED_PROXIES = []
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")) == "10.0.0.5"
