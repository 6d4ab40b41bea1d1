"""Protected characteristics are never features (issue 16 §5): refused as feature declarations through the
REST API and CSV (nothing written), accepted audit-only (stored as ciphertext only, never a feature)."""

from __future__ import annotations

import io

import pytest

from profiles import selectors, services
from profiles.attribute_sealing import attributes_of
from profiles.imports import run_import
from profiles.models import Customer, PersonalField
from profiles.protected import feature_refusal, protected_category

ACTOR = "test"


@pytest.mark.parametrize(("name", "category"), [
    ("gender", "gender"), ("Sex", "gender"), ("GESLACHT", "gender"), ("kön", "gender"), ("płeć", "gender"),
    ("Geschlecht", "gender"), ("sukupuoli", "gender"), ("customer-gender", "gender"), ("is_female", "gender"),
    ("ethnicity", "ethnicity"), ("race", "ethnicity"), ("ethnic_origin", "ethnicity"),
    ("religion", "religion"), ("religiousAffiliation", "religion"), ("geloof", "religion"),
    ("sexual_orientation", "sexual_orientation"), ("orientation", "sexual_orientation"),
    ("health_status", "health"), ("Gesundheit", "health"),
    ("age", "age"), ("customerAge", "age"), ("birth_year", "age"), ("YearOfBirth", "age"), ("dob", "age"),
    ("age_band", "age"), ("SeniorCitizen", "age"), ("leeftijd", "age"), ("ålder", "age"), ("wiek", "age"),
    ("trade_union_member", "special_category"), ("political_party", "special_category"),
])
def test_protected_names_are_recognised_across_case_separators_and_languages(name, category) -> None:
    assert protected_category(name) == category


@pytest.mark.parametrize("name", ["usage", "page_views", "average_order", "message_count", "plan", "tenure",
                                  "MonthlyCharges", "Contract", "Partner", "Dependents", "grace_days", "manager",
                                  "storage_gb", "percentage", "voltage", "languages", "sussex_region", "trace_id"])
def test_ordinary_attribute_names_are_not_protected(name) -> None:
    assert protected_category(name) is None
    assert feature_refusal(name) is None


def test_age_is_a_feature_only_when_the_setting_permits_it(settings) -> None:
    assert feature_refusal("age") == "protected_characteristic"
    settings.SCORING_ALLOW_AGE_FEATURE = True
    assert feature_refusal("age") is None and feature_refusal("birth_year") is None
    assert feature_refusal("gender") == "protected_characteristic"  # gender never
    assert feature_refusal("ethnicity") == "special_category"


def _post(api, records):
    return api.post("/api/v1/ingest/customers/", {"records": records}, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "code"), [("gender", "protected_characteristic"), ("age", "protected_characteristic"),
                                            ("ethnicity", "special_category"), ("religion", "special_category")])
def test_rest_refuses_a_protected_feature_per_record_naming_the_field_and_writes_nothing_of_it(api, name, code):
    records = [
        {"source": "crm", "external_id": "P-1", "attributes": {"plan": "gold", name: "x"},
         "feature_attributes": ["plan", name]},
        {"source": "crm", "external_id": "P-2", "attributes": {"plan": "basic"}, "feature_attributes": ["plan"]},
    ]
    response = _post(api, records)
    assert response.status_code == 200
    body = response.json()
    assert body["rejected"] == [{"index": 0, "errors": [{"field": f"feature_attributes.{name}", "code": code}]}]
    assert [r["outcome"] for r in body["results"]] == ["rejected", "created"]
    assert [(attributes_of(c.id), c.feature_attributes) for c in Customer.objects.all()] == [({"plan": "basic"}, ["plan"])]
    assert not PersonalField.objects.exists()


@pytest.mark.django_db
def test_rest_audit_only_characteristic_is_stored_as_ciphertext_only_and_is_never_a_feature(api) -> None:
    response = _post(api, [{"source": "crm", "external_id": "A-1", "attributes": {"plan": "gold"},
                            "feature_attributes": ["plan"], "audit_attributes": {"gender": "Female"}}])
    assert response.status_code == 200 and response.json()["summary"]["created"] == 1
    customer = Customer.objects.get()
    assert customer.feature_attributes == ["plan"] and "gender" not in attributes_of(customer.id)
    row = PersonalField.objects.get(customer=customer)
    assert row.field == "audit_gender"
    assert b"Female" not in bytes(row.ciphertext) and b"female" not in bytes(row.ciphertext).lower()
    assert selectors.audit_characteristics(customer_ids=[customer.id]) == {"gender": ["Female"]}


@pytest.mark.django_db
def test_an_audit_only_name_may_not_also_be_a_plain_attribute_and_nothing_is_written() -> None:
    with pytest.raises(services.RecordInvalid) as info:
        services.customer_ingest(source="crm", external_id="A-2", personal={}, actor=ACTOR,
                                 attributes={"gender": "f"}, audit_attributes={"gender": "f"})
    assert (info.value.field, info.value.field_code) == ("attributes.gender", "audit_only")
    assert not Customer.objects.exists() and not PersonalField.objects.exists()


def _import(text: str) -> tuple[int, int, list[dict]]:
    job = run_import(stream=io.BytesIO(text.encode()), source="crm", actor="cli")
    return job.created, job.rejected, job.rejections


@pytest.mark.django_db
def test_csv_refuses_a_protected_feature_column_by_line_and_column_and_writes_nothing_of_the_row() -> None:
    text = ("external_id,feature_plan,feature_gender\n"
            "C-1,gold,\n"  # an empty value is not a declaration
            "C-2,gold,female\n")
    assert _import(text) == (1, 1, [{"line": 3, "column": "feature_attributes.gender",
                                     "code": "protected_characteristic"}])
    assert [attributes_of(cid) for cid in Customer.objects.values_list("id", flat=True)] == [{"plan": "gold"}]


@pytest.mark.django_db
def test_csv_audit_only_column_is_stored_encrypted_and_never_a_feature() -> None:
    text = ("external_id,feature_plan,audit_gender,audit_birth_year\n"
            "C-1,gold,male,1980\n"
            "C-2,basic,female,\n")
    assert _import(text) == (2, 0, [])
    customers = list(Customer.objects.order_by("created_at"))
    assert all(c.feature_attributes == ["plan"] for c in customers)
    assert all(set(attributes_of(c.id)) == {"plan"} for c in customers)
    assert sorted(PersonalField.objects.values_list("field", flat=True)) == [
        "audit_birth_year", "audit_gender", "audit_gender"]
    assert not any(b"male" in bytes(r.ciphertext) for r in PersonalField.objects.all())
    values = selectors.audit_characteristics(customer_ids=[c.id for c in customers])
    assert values == {"gender": ["male", "female"], "birth_year": ["1980", None]}
