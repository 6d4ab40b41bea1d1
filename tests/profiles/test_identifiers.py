"""The plaintext-column guard: direct identifiers are refused where only non-personal labels belong, and
ordinary labels and codes are never refused."""

from __future__ import annotations

import io

import pytest

from profiles import services
from profiles.attribute_sealing import attributes_of
from profiles.identifiers import identifier_kind, is_direct_identifier_name
from profiles.imports import run_import
from profiles.models import BlindIndexEntry, Customer, Order, PersonalField, SourceIdentity

ACTOR = "job:test"


@pytest.mark.parametrize(("text", "kind"), [
    ("jan.kowalski@example.pl", "email"),
    ("write to Jan.Kowalski+shop@mail.example.co.uk please", "email"),
    ("+48 601 234 567", "phone"),
    ("call +44 20 7946 0958 after six", "phone"),
    ("+31 6 12345678", "phone"),
    ("NL91ABNA0417164300", "iban"),
    ("pay to DE89 3704 0044 0532 0130 00", "iban"),
    ("4111 1111 1111 1111", "payment_card"),
    ("card 5500-0000-0000-0004", "payment_card"),
])
def test_direct_identifiers_are_recognised_by_kind(text: str, kind: str) -> None:
    assert identifier_kind(text) == kind


@pytest.mark.parametrize("text", [
    "Garden & Outdoor", "Electronics/TV", "gold", "Tools @ Home", "@brand", "size 42+", "+ accessories",
    "+1 plan", "SKU-12345678", "2024-11-05 promo", "C-20241105-77", "v1.2.3.4", "DE123456789",
    "AB12CDEFGHIJK123", "Order 1234567890123", "1234 5678 9012 3456", "0612345678", "",
])
def test_ordinary_labels_and_codes_are_not_refused(text: str) -> None:
    assert identifier_kind(text) is None


def test_attribute_names_of_direct_identifiers() -> None:
    assert [n for n in ("email", "Phone", "date_of_birth", "iban", "plan", "seats", "preferred_language",
                        "lifecycle_stage", "company") if is_direct_identifier_name(n)] == [
        "email", "Phone", "date_of_birth", "iban"]


@pytest.mark.django_db
@pytest.mark.parametrize(("attributes", "field", "code"), [
    ({"plan": "gold", "backup_contact": "olga@example.pl"}, "attributes.backup_contact", "personal_data"),
    ({"plan": "gold", "hotline": "+48 601 000 001"}, "attributes.hotline", "personal_data"),
    ({"plan": "gold", "phone": "n/a"}, "attributes.phone", "personal_field"),
])
def test_a_customer_with_an_identifier_in_a_plain_attribute_is_refused_and_nothing_written(
    attributes: dict, field: str, code: str,
) -> None:
    with pytest.raises(services.RecordInvalid) as info:
        services.customer_ingest(source="crm", external_id="PLAIN-1", personal={"name": "Olga Kowalska"},
                                 attributes=attributes, actor=ACTOR)
    assert (info.value.field, info.value.field_code) == (field, code)
    assert "olga" not in str(info.value.detail).lower() and "601" not in str(info.value.detail)
    assert (Customer.objects.count(), PersonalField.objects.count(), BlindIndexEntry.objects.count(),
            SourceIdentity.objects.count()) == (0, 0, 0, 0)


@pytest.mark.django_db
def test_an_update_that_adds_an_identifier_to_a_plain_attribute_is_refused_and_the_customer_is_unchanged() -> None:
    cid = services.customer_ingest(source="crm", external_id="PLAIN-2", personal={}, attributes={"plan": "gold"},
                                   actor=ACTOR).customer_id
    with pytest.raises(services.RecordInvalid):
        services.customer_ingest(source="crm", external_id="PLAIN-2", personal={},
                                 attributes={"plan": "silver", "note": "olga@example.pl"}, actor=ACTOR)
    assert attributes_of(cid) == {"plan": "gold"}


@pytest.mark.django_db
def test_orders_with_an_identifier_in_the_category_are_rejected_per_record_and_the_others_stored(api) -> None:
    api.post("/api/v1/ingest/customers/", {"records": [{"source": "crm", "external_id": "C-1"}]}, format="json")
    base = {"source": "erp", "customer_external_id": "C-1", "customer_source": "crm",
            "ordered_at": "2025-06-01T10:00:00Z", "amount": "10.00"}
    records = [
        {**base, "external_id": "O-1", "category": "Garden & Outdoor"},
        {**base, "external_id": "O-2", "category": "for olga@example.pl"},
        {**base, "external_id": "O-3", "category": "+48 601 000 001"},
    ]
    response = api.post("/api/v1/ingest/orders/", {"records": records}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["rejected"] == [
        {"index": 1, "errors": [{"field": "category", "code": "personal_data"}]},
        {"index": 2, "errors": [{"field": "category", "code": "personal_data"}]},
    ]
    assert "olga" not in response.content.decode() and "601" not in response.content.decode()
    assert list(Order.objects.values_list("category", flat=True)) == ["Garden & Outdoor"]


def _import(text: str, source: str) -> tuple[int, int, list[dict]]:
    job = run_import(stream=io.BytesIO(text.encode()), source=source, actor="cli")
    return job.created, job.rejected, job.rejections


@pytest.mark.django_db
def test_csv_rows_with_an_identifier_in_a_plain_column_are_rejected_by_line_and_column() -> None:
    customers = ("external_id,attr_plan,feature_seats,attr_backup_contact\n"
                 "C-1,gold,3,\n"
                 "C-2,gold,4,olga@example.pl\n")
    assert _import(customers, "crm") == (
        1, 1, [{"line": 3, "column": "attributes.backup_contact", "code": "personal_data"}])
    tickets = ("external_id,customer_external_id,customer_source,opened_at,category,text\n"
               "T-1,C-1,crm,2025-06-01T10:00:00Z,billing,hello\n"
               "T-2,C-1,crm,2025-06-01T10:00:00Z,NL91ABNA0417164300,hello\n")
    assert _import(tickets, "support") == (1, 1, [{"line": 3, "column": "category", "code": "personal_data"}])
