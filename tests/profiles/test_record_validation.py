"""Differential test of the bulk ingest validator (issue 21 item 2): one bound serializer per request
(``records_validate``) against one serializer per record (``records_validate_reference``), on random valid
and invalid records of every kind covering every error code the record serializers give."""

from __future__ import annotations

import random
from typing import Any

import pytest

from profiles.api.record_validation import records_validate, records_validate_reference
from profiles.api.serializers import RECORD_SERIALIZERS

BASE: dict[str, dict[str, Any]] = {
    "customers": {"source": "crm", "external_id": "CRM1", "name": "Anna Nowak", "email": "anna@example.com",
                  "phone": "+447900000001", "address": "1 Station Road", "company": "Acme", "job_title": "CTO",
                  "preferred_language": "pl", "date_of_birth": "1980-02-03", "country": "GB",
                  "personal_attributes": {"nickname": "An"}, "attributes": {"segment": "retail", "plan": 2},
                  "feature_attributes": ["plan"], "audit_attributes": {"gender": "f"}},
    "orders": {"source": "erp", "external_id": "O1", "customer_external_id": "CRM1", "customer_source": "crm",
               "kind": "invoice", "ordered_at": "2024-03-01T10:00:00+00:00", "amount": "12.50", "margin": "3.75",
               "currency": "EUR", "returned": False, "days_late": 2, "category": "books"},
    "interactions": {"source": "web", "external_id": "I1", "customer_id": "8d5f2c1e-0a7b-4d2e-9c1f-3b6a5e4d2c10",
                     "kind": "page_view", "at": "2024-03-01T10:00:00Z", "count": 3},
    "tickets": {"source": "support", "external_id": "T1", "customer_email": "anna@example.com",
                "opened_at": "2024-03-01T10:00:00+01:00", "closed_at": "2024-03-02T10:00:00+01:00",
                "first_response_at": None, "channel": "email", "escalated": "true", "satisfaction": 4,
                "category": "billing", "text": "  Hello, my name is Anna.  "},
    "notes": {"source": "crm", "external_id": "N1", "customer_external_id": "CRM1", "kind": "call_transcript",
              "at": "2024-03-01 10:00", "text": "Called about the invoice."},
    "reviews": {"source": "web", "external_id": "R1", "customer_external_id": "CRM1", "at": "2024-03-01T10:00",
                "rating": "5", "text": "Great"},
    "nps": {"source": "web", "external_id": "P1", "customer_external_id": "CRM1", "at": "2024-03-01T10:00:00Z",
            "score": 9, "comment": ""},
    "referrals": {"source": "web", "external_id": "F1", "customer_external_id": "CRM1",
                  "at": "2024-03-01T10:00:00Z", "converted": 1},
}

NASTY: list[Any] = [
    None, "", " ", "  padded  ", "x" * 3, "x" * 64, "x" * 65, "x" * 201, "x" * 255, "x" * 501, "x" * 20_001,
    0, 1, -1, 5, 11, 3651, 10**20, 1.5, float("nan"), True, False, [], ["a"], [1, "b"], ["x" * 64], {},
    {"k": "v"}, {"k": None}, {"k": "x" * 501}, {"k": 1}, {"k": ["v"]}, "abc", "ab", "a", "EUR", "eur", "E1R",
    "GB", "gbr", "2024-13-01", "2024-02-30", "2024-03-01", "2024-03-01T10:00", "2024-03-01T25:00:00Z",
    "1980-02-03T00:00:00Z", "12.345", "123456789012.5", "1234567890123", "-0.01", "1e3", "NaN", "Infinity",
    "12,50", "0.0", "3.0", "3.5", " 7 ", "true", "no", "maybe", "crm", "erp", "web", "nosuch", "purchase",
    "order", "login", "note", "email", "chat", "a\x00b", "\ud800", "8d5f2c1e-0a7b-4d2e-9c1f-3b6a5e4d2c10",
    "not-a-uuid", "x" * 1001,
]

# Every code the record serializers can give; the random corpus must meet each of them at least once.
EXPECTED_CODES = {
    "required", "null", "blank", "max_length", "min_length", "invalid", "invalid_choice", "not_a_dict",
    "not_a_list", "max_digits", "max_decimal_places", "max_whole_digits", "max_string_length", "min_value",
    "max_value", "null_characters_not_allowed", "surrogate_characters_not_allowed",
}


def _corpus(kind: str, rng: random.Random, n: int) -> list[Any]:
    base = BASE[kind]
    names = [*RECORD_SERIALIZERS[kind]().fields]
    records: list[Any] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.02:
            records.append(rng.choice([None, "record", 3, ["a"]]))  # not an object
            continue
        record = dict(base, external_id=f"X{i}") if "external_id" in base else dict(base)
        if roll < 0.3:
            records.append(record)  # valid
            continue
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            name = rng.choice(names)
            if rng.random() < 0.2:
                record.pop(name, None)
            else:
                record[name] = rng.choice(NASTY)
        if rng.random() < 0.05:
            record["unknown_field"] = "ignored"
        records.append(record)
    return records


@pytest.mark.parametrize("kind", sorted(RECORD_SERIALIZERS))
def test_bound_validator_gives_the_reference_results(kind: str) -> None:
    rng = random.Random(f"record-validation-{kind}")
    records = _corpus(kind, rng, 1500)
    fast_valid, fast_rejected = records_validate(RECORD_SERIALIZERS[kind], records)
    ref_valid, ref_rejected = records_validate_reference(RECORD_SERIALIZERS[kind], records)
    assert [i for i, _ in fast_valid] == [i for i, _ in ref_valid]
    for (i, fast), (_, ref) in zip(fast_valid, ref_valid, strict=True):
        assert fast == ref, i
        assert [type(v) for v in fast.values()] == [type(v) for v in ref.values()], i
    assert fast_rejected == ref_rejected
    assert len(fast_valid) + len(fast_rejected) == len(records)  # nothing lost
    assert ref_valid and ref_rejected


def test_corpus_meets_every_error_code() -> None:
    codes: set[str] = set()
    for kind in sorted(RECORD_SERIALIZERS):
        rng = random.Random(f"record-validation-{kind}")
        _, rejected = records_validate(RECORD_SERIALIZERS[kind], _corpus(kind, rng, 1500))
        codes |= {code for pairs in rejected.values() for _, code in pairs}
    assert codes >= EXPECTED_CODES, EXPECTED_CODES - codes


def test_customer_reference_required_and_nested_errors() -> None:
    valid, rejected = records_validate(RECORD_SERIALIZERS["orders"], [
        {**BASE["orders"], "customer_external_id": None},  # validate(): no reference at all
        {**BASE["orders"], "amount": "x", "ordered_at": "nope"},  # two fields: one pair each, declared order
        "not an object",
    ])
    assert valid == []
    assert rejected == {0: [("customer_external_id", "required")],
                        1: [("ordered_at", "invalid"), ("amount", "invalid")], 2: [("record", "invalid")]}
    valid, rejected = records_validate(RECORD_SERIALIZERS["customers"], [
        {**BASE["customers"], "personal_attributes": {"a": "ok", "b": "x" * 501}},
        {**BASE["customers"], "feature_attributes": ["ok", "x" * 64]},
    ])
    assert valid == []
    assert rejected == {0: [("personal_attributes", "max_length")], 1: [("feature_attributes", "max_length")]}
