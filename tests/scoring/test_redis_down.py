"""Fault 1: while Redis (the shared cache) is down, authenticated API calls answered 500, even
GET /api/v1/purposes. Now the throttle counts locally, the audit seal request is deferred (beat seals), and the
score path keeps serving from the database. CACHE_URL points at a closed port."""

from __future__ import annotations

import logging

import pytest

from tests.scoring.helpers import SCORING, customer_with_history, decisions_for

pytestmark = pytest.mark.django_db

CLOSED_PORT_REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                 "LOCATION": "redis://127.0.0.1:1/10"}}


@pytest.fixture
def redis_down(settings):
    from config.throttling import local_counter

    local_counter.clear()
    settings.CACHES = CLOSED_PORT_REDIS
    from django.core.cache import cache

    with pytest.raises(Exception):  # noqa: B017, PT011 - the premise: the cache really is unreachable
        cache.get("probe")
    yield
    local_counter.clear()


def test_api_keeps_serving_scores_while_the_cache_is_down(api, active_model, redis_down, caplog,
                                                           django_capture_on_commit_callbacks):
    caplog.set_level(logging.WARNING)
    cid = customer_with_history()
    assert api.get("/api/v1/purposes").status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = api.get(f"/api/v1/customers/{cid}/score?purpose={SCORING}")
    assert callbacks  # the seal request ran on commit, and failed quietly
    assert first.status_code == 200, first.content
    second = api.get(f"/api/v1/customers/{cid}/score?purpose={SCORING}")
    assert second.status_code == 200
    assert len(decisions_for(cid)) == 2  # each decision written with its audit record, in the database
    ingest = api.post("/api/v1/ingest/customers/", {"records": [{"source": "crm", "external_id": "RD-1"}]},
                      format="json")
    assert ingest.status_code == 200 and ingest.json()["summary"]["created"] == 1
    events = {getattr(r, "event", None) for r in caplog.records}
    assert "throttle.cache_unavailable" in events
    assert "audit.seal_queue_failed" in events  # deferred: beat seals it when the cache is back


def test_the_limit_still_holds_per_process_while_the_cache_is_down(make_api_client, redis_down, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client": "3/min"}}
    client = make_api_client()
    statuses = [client.get("/api/v1/purposes").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
