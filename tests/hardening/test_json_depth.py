"""Finding M1: JSON nested ~1,000 levels deep answered 500 (RecursionError). Now: 400 on every JSON POST."""

from __future__ import annotations

import pytest

from config.parsers import json_depth_exceeds

pytestmark = pytest.mark.django_db

JSON_POSTS = [
    "/api/v1/ingest/customers/", "/api/v1/ingest/orders/", "/api/v1/consents/grant", "/api/v1/consents/withdraw",
    "/api/v1/consents/bulk", "/api/v1/route", "/api/v1/outcomes", "/api/v1/subject-requests",
    "/api/v1/customers/lookup",
]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", JSON_POSTS)
@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deeply_nested_json_is_a_400_on_every_json_post(api, path, depth):
    response = api.post(path, data=_nested(depth), content_type="application/json")
    assert response.status_code == 400, (path, response.status_code)
    assert response.json()["code"] == "malformed"


@pytest.mark.parametrize("path", JSON_POSTS)
def test_nesting_just_past_the_configured_depth_is_refused(api, path, settings):
    settings.JSON_MAX_DEPTH = 20
    response = api.post(path, data='{"records": ' + _nested(20) + "}", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"


def test_a_normal_body_at_the_limit_is_not_refused_by_the_parser(api, settings):
    from profiles.models import Customer

    settings.JSON_MAX_DEPTH = 3  # {"records": [{"external_id": ...}]} is three levels
    body = '{"records": [{"source": "crm", "external_id": "c-1"}]}'
    response = api.post("/api/v1/ingest/customers/", data=body, content_type="application/json")
    assert response.status_code != 400 or response.json()["code"] != "malformed", response.json()
    settings.JSON_MAX_DEPTH = 2
    before = Customer.objects.count()
    response = api.post("/api/v1/ingest/customers/", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "malformed"
    assert Customer.objects.count() == before


def test_depth_walk_counts_containers_only():
    assert not json_depth_exceeds(5, 0)
    assert not json_depth_exceeds({"a": [1, 2]}, 2)
    assert json_depth_exceeds({"a": [1, {"b": 2}]}, 2)
    deep: list = []
    for _ in range(50_000):  # no recursion in the walk itself
        deep = [deep]
    assert json_depth_exceeds(deep, 20)
