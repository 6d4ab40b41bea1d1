"""REST: bulk ingestion (scope ingest:write) and pseudonym lookup (scope score:read)."""

from __future__ import annotations

import json

import pytest

from profiles import selectors
from profiles.models import Customer, Order, PersonalField

pytestmark = pytest.mark.django_db

CUSTOMERS = [
    {"source": "crm", "external_id": "API-1", "name": "Olga Kowalska", "email": "olga@example.pl",
     "phone": "+48 601 000 001", "country": "PL", "date_of_birth": "1990-05-01",
     "attributes": {"segment": "smb"}, "feature_attributes": ["segment"], "personal_attributes": {"nickname": "Ola"}},
    {"source": "crm", "external_id": "API-2", "email": "broken-email"},
    {"source": "fax", "external_id": "API-3"},
    "not an object",
    {"source": "erp", "external_id": "E-1", "email": "OLGA@example.pl"},
]


def post(api, kind: str, records) -> object:
    return api.post(f"/api/v1/ingest/{kind}/", {"records": records}, format="json")


def test_ingest_customers_returns_per_record_outcomes_and_field_codes_without_values(api, governance) -> None:
    response = post(api, "customers", CUSTOMERS)

    assert response.status_code == 200
    body = response.json()
    assert body["summary"] == {"total": 5, "created": 1, "updated": 0, "merged": 1, "unchanged": 0, "rejected": 3}
    cid = selectors.customer_find(email="olga@example.pl")
    assert body["results"] == [
        {"index": 0, "outcome": "created", "customer": str(cid)},
        {"index": 1, "outcome": "rejected", "customer": None},
        {"index": 2, "outcome": "rejected", "customer": None},
        {"index": 3, "outcome": "rejected", "customer": None},
        {"index": 4, "outcome": "merged", "customer": str(cid)},
    ]
    assert body["rejected"] == [
        {"index": 1, "errors": [{"field": "email", "code": "invalid"}]},
        {"index": 2, "errors": [{"field": "source", "code": "invalid_choice"}]},
        {"index": 3, "errors": [{"field": "record", "code": "invalid"}]},
    ]
    assert "broken-email" not in response.content.decode()
    data = selectors.customer_personal_data(customer_id=cid)
    assert (data["name"], data["nickname"], data["date_of_birth"]) == ("Olga Kowalska", "Ola", "1990-05-01")
    [event] = governance("import.completed")
    assert event.details["channel"] == "api" and event.details["rejected"] == 3 and event.details["total"] == 5

    again = post(api, "customers", CUSTOMERS[:1])
    assert again.json()["results"] == [{"index": 0, "outcome": "unchanged", "customer": str(cid)}]


def test_ingest_orders_and_tickets(api) -> None:
    post(api, "customers", CUSTOMERS[:1])
    orders = [{"source": "erp", "external_id": "O-1", "customer_external_id": "API-1", "customer_source": "crm",
               "ordered_at": "2025-01-01T12:00:00Z", "amount": "12.34"},
              {"source": "erp", "external_id": "O-2", "customer_external_id": "API-1", "customer_source": "crm",
               "ordered_at": "2025-01-01T12:00:00Z", "amount": "lots"}]
    body = post(api, "orders", orders).json()
    assert body["summary"]["created"] == 1
    assert body["rejected"] == [{"index": 1, "errors": [{"field": "amount", "code": "invalid"}]}]
    assert Order.objects.count() == 1
    tickets = [{"source": "support", "external_id": "T-1", "customer_email": "olga@example.pl",
                "opened_at": "2025-01-02T12:00:00Z", "text": "Olga Kowalska prosi o telefon 601 000 001"}]
    body = post(api, "tickets", tickets).json()
    assert body["summary"]["created"] == 1
    cid = selectors.customer_find(email="olga@example.pl")
    assert selectors.customer_facts(customer_id=cid)["tickets"][0]["text"] == "<PERSON_1> prosi o telefon <PHONE_1>"


def test_more_than_1000_records_is_413_too_many_records_and_nothing_written(api) -> None:
    records = [{"source": "crm", "external_id": f"X-{i}"} for i in range(1001)]
    response = post(api, "customers", records)
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_records"
    assert Customer.objects.count() == 0


def test_malformed_json_is_400_and_wrong_shape_is_400(api) -> None:
    response = api.post("/api/v1/ingest/customers/", data='{"records": [', content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "malformed"
    response = api.post("/api/v1/ingest/customers/", {"records": {"a": 1}}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert api.post("/api/v1/ingest/planets/", {"records": []}, format="json").status_code == 404


def test_oversized_body_is_413(api, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"records": [{"source": "crm", "external_id": "X", "name": "n" * 2000}]})
    response = api.post("/api/v1/ingest/customers/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path", "scopes", "expected"),
    [
        ("post", "/api/v1/ingest/customers/", ["ingest:write"], 200),
        ("post", "/api/v1/ingest/customers/", ["score:read"], 403),
        ("post", "/api/v1/ingest/customers/", None, 401),
        ("get", "/api/v1/customers/lookup?email=nobody@example.com", ["score:read"], 405),
        ("get", "/api/v1/customers/lookup?email=nobody@example.com", ["ingest:write"], 403),
        ("get", "/api/v1/customers/lookup?email=nobody@example.com", None, 401),
        ("post", "/api/v1/customers/lookup", ["score:read"], 404),
    ],
)
def test_authorization_matrix(make_api_client, client, method, path, scopes, expected) -> None:
    c = client if scopes is None else make_api_client(scopes=scopes)
    if method == "post":
        payload = {"records": []} if "ingest" in path else {"email": "nobody@example.com"}
        response = c.post(path, json.dumps(payload), content_type="application/json")
    else:
        response = c.get(path)
    assert response.status_code == expected


def test_lookup_finds_the_pseudonym_by_email_phone_or_source_id(make_api_client) -> None:
    writer = make_api_client(scopes=["ingest:write"])
    post(writer, "customers", CUSTOMERS[:1])
    cid = str(selectors.customer_find(source="crm", external_id="API-1"))
    reader = make_api_client(scopes=["score:read"])

    def lookup(body: dict):
        return reader.post("/api/v1/customers/lookup", body, format="json")

    assert lookup({"email": " Olga@Example.PL "}).json() == {"customer": cid}
    assert lookup({"phone": "601000001", "country": "PL"}).json() == {"customer": cid}
    assert lookup({"source": "crm", "external_id": "API-1"}).json() == {"customer": cid}
    missing = lookup({"email": "other@example.pl"})
    assert missing.status_code == 404 and "other@example.pl" not in missing.content.decode()
    assert lookup({"email": "olga@example.pl", "phone": "601000001"}).status_code == 400
    assert lookup({"external_id": "API-1"}).status_code == 400
    by_get = reader.get("/api/v1/customers/lookup", {"email": "olga@example.pl"})
    assert (by_get.status_code, by_get.json()["code"]) == (405, "method_not_allowed")
    assert "POST /api/v1/customers/lookup" in by_get.json()["detail"]
    assert "olga" not in by_get.content.decode().lower()


def test_rejected_ingest_writes_no_personal_field(api) -> None:
    post(api, "customers", [{"source": "crm", "external_id": "Z-1", "name": "Zed", "email": "nope"}])
    assert PersonalField.objects.count() == 0 and Customer.objects.count() == 0


def test_declaring_special_category_data_as_a_feature_is_rejected_per_record_and_nothing_of_it_written(api) -> None:
    from profiles.models import Customer

    records = [
        {"source": "crm", "external_id": "ART9-1", "attributes": {"plan": "gold", "health_status": "x"},
         "feature_attributes": ["plan", "health_status"]},
        {"source": "crm", "external_id": "ART9-2", "attributes": {"plan": "gold"}, "feature_attributes": ["plan"]},
    ]
    response = post(api, "customers", records)
    assert response.status_code == 200
    body = response.json()
    assert body["rejected"] == [
        {"index": 0, "errors": [{"field": "feature_attributes.health_status", "code": "special_category"}]}]
    assert [r["outcome"] for r in body["results"]] == ["rejected", "created"]
    assert list(Customer.objects.values_list("feature_attributes", flat=True)) == [["plan"]]
    from profiles.attribute_sealing import attributes_of

    assert [attributes_of(cid) for cid in Customer.objects.values_list("id", flat=True)] == [{"plan": "gold"}]
