"""Low findings: self-service 429s carry Retry-After; the per-address one-time-code limit reads the client
address through TRUSTED_PROXIES only (behind a proxy every client had shared one bucket)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from subject_rights.models import SubjectRequest


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def _otp_rate(settings: Any, rate: str) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                          "otp": rate}}


def _submit(email: str, token: str, **meta: str) -> Any:
    client = Client(**meta)
    client.get("/me/")
    return client.post("/me/", {"type": "access", "email": email, "token": token}, follow=True)


@pytest.mark.django_db(transaction=True)
def test_a_throttled_code_request_says_when_to_come_back(purposes: None, mailoutbox: Any, settings: Any) -> None:
    _otp_rate(settings, "1/min")
    assert _submit("retry.after@example.org", "t1").status_code == 200
    response = _submit("retry.after@example.org", "t2")
    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    _otp_rate(settings, "1/hour")
    cache.clear()
    _submit("retry.after@example.org", "t3")
    assert _submit("retry.after@example.org", "t4")["Retry-After"] == "3600"


@pytest.mark.django_db(transaction=True)
def test_clients_behind_a_trusted_proxy_have_their_own_buckets(purposes: None, mailoutbox: Any,
                                                                settings: Any) -> None:
    _otp_rate(settings, "1/min")  # per address: 4 a minute
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    first = [_submit(f"a{i}@example.org", f"a{i}", HTTP_X_FORWARDED_FOR="203.0.113.1", **proxy).status_code
             for i in range(5)]
    assert first == [200, 200, 200, 200, 429]
    other = _submit("b0@example.org", "b0", HTTP_X_FORWARDED_FOR="203.0.113.2", **proxy)
    assert other.status_code == 200
    assert SubjectRequest.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(purposes: None, mailoutbox: Any,
                                                                settings: Any) -> None:
    _otp_rate(settings, "1/min")
    settings.TRUSTED_PROXIES = []
    statuses = [_submit(f"c{i}@example.org", f"c{i}", REMOTE_ADDR="198.51.100.4",
                        HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 429]  # a forged header does not buy a fresh bucket
