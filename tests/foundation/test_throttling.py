"""API throttling: one counter per client and window, 429 with Retry-After, no address in any cache key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from config.blind_index import blind_index
from config.throttling import ClientRateThrottle
from tests.factories import make_customer

WINDOW = 29_000_000  # a minute number far from the real clock: keys of other tests never collide
START = WINDOW * 60 + 15.0  # 15 s into that minute


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    now = {"t": START}
    monkeypatch.setattr(ClientRateThrottle, "timer", lambda self: now["t"])
    return now


@pytest.fixture
def rates(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "throttle-tests"}}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "client": "3/min", "anon": "2/min"}}
    cache.clear()


def _consents(client: Any, customer: Any) -> int:
    return int(client.get(f"/api/v1/customers/{customer}/consents").status_code)


@pytest.mark.django_db
def test_a_client_gets_its_rate_per_window_then_429_with_retry_after_and_other_clients_are_unaffected(
        make_api_client: Any, clock: dict[str, float], rates: None) -> None:
    customer = make_customer()
    first, second = make_api_client(), make_api_client()
    assert [_consents(first, customer) for _ in range(3)] == [200, 200, 200]
    refused = first.get(f"/api/v1/customers/{customer}/consents")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and refused.json()["retry_after"] == 45
    assert refused["Retry-After"] == "45"  # the rest of the minute
    assert _consents(second, customer) == 200
    clock["t"] = START + 44.9
    assert _consents(first, customer) == 429
    clock["t"] = START + 45.0  # the next window
    assert _consents(first, customer) == 200


@pytest.mark.django_db
def test_the_state_per_client_is_one_integer_per_window(make_api_client: Any, clock: dict[str, float], rates: None) -> None:
    customer = make_customer()
    client = make_api_client()
    for _ in range(5):
        _consents(client, customer)
    pk = client.api_client.pk
    assert cache.get(f"throttle:client:{pk}:{WINDOW}") == 5  # refused requests are counted too
    assert cache.get(f"throttle:client:{pk}:{WINDOW + 1}") is None


@pytest.mark.django_db
def test_requests_without_a_client_are_counted_by_a_keyed_hash_of_the_address_never_the_address(
        client: Any, clock: dict[str, float], rates: None) -> None:
    address = "203.0.113.7"
    statuses = [client.get("/api/schema/", REMOTE_ADDR=address).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.get("/api/schema/", REMOTE_ADDR="203.0.113.8").status_code == 200
    keys = [str(k) for k in cache._cache]  # type: ignore[attr-defined]  # locmem
    assert keys and not any(address in k or "203.0.113" in k for k in keys)
    assert cache.get(f"throttle:anon:{blind_index('throttle-address', address)}:{WINDOW}") == 3


def test_a_counter_is_created_once_and_then_only_incremented(rates: None) -> None:
    from config.throttling import increment

    assert [increment("throttle:test:counter", timeout=60) for _ in range(4)] == [1, 2, 3, 4]
    assert cache.get("throttle:test:counter") == 4
