"""Finding M2: a non-finite number (1e400 parses to infinity) in an attribute made the whole ingest batch
answer 503 on PostgreSQL and lost its valid records. Now it is that record's `invalid` error; the rest is stored."""

from __future__ import annotations

import pytest

from profiles.attribute_sealing import attributes_of
from profiles.models import Customer

pytestmark = pytest.mark.django_db


def _record(n: int, value: str) -> str:
    return f'{{"source": "crm", "external_id": "NF-{n}", "attributes": {{"segment": "retail", "score_hint": {value}}}}}'


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1E+999"])
def test_a_non_finite_attribute_rejects_only_its_record(api, value):
    body = '{"records": [' + ",".join([_record(0, "1.5"), _record(1, value), _record(2, "7")]) + "]}"
    response = api.post("/api/v1/ingest/customers/", data=body, content_type="application/json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["summary"]["created"] == 2 and result["summary"]["rejected"] == 1
    assert result["rejected"] == [{"index": 1, "errors": [{"field": "attributes.score_hint", "code": "invalid"}]}]
    stored = [attributes_of(cid) for cid in Customer.objects.values_list("id", flat=True)]
    assert sorted(stored, key=lambda a: a["score_hint"]) == [
        {"segment": "retail", "score_hint": 1.5}, {"segment": "retail", "score_hint": 7}]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_literals_are_a_malformed_body_and_nothing_is_stored(api, literal):
    body = '{"records": [' + ",".join([_record(0, "1"), _record(1, literal)]) + "]}"
    response = api.post("/api/v1/ingest/customers/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed"
    assert Customer.objects.count() == 0
