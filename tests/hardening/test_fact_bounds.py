"""Info finding: facts had no plausibility bounds (an order of -1,000,000 or 10^12, a date in year 1).
Now configurable bounds with clear per-record errors; the other records of the batch are stored."""

from __future__ import annotations

import pytest

from profiles.models import Order

pytestmark = pytest.mark.django_db


def _order(n: int, **fields) -> dict:
    return {"source": "erp", "external_id": f"PB-{n}", "customer_external_id": "PB-C", "customer_source": "crm",
            "ordered_at": "2025-01-01T12:00:00Z", "amount": "10.00", **fields}


def _post(api, kind, records):
    response = api.post(f"/api/v1/ingest/{kind}/", {"records": records}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_implausible_amounts_and_dates_are_rejected_per_record(api):
    _post(api, "customers", [{"source": "crm", "external_id": "PB-C"}])
    body = _post(api, "orders", [
        _order(0), _order(1, amount="-1000000"), _order(2, amount="999999999999"),
        _order(3, ordered_at="0001-01-01T00:00:00Z"), _order(4, margin="50000000"), _order(5, amount="-20.00"),
        _order(6, ordered_at="1969-12-31T23:59:59Z"),
    ])
    assert body["summary"]["created"] == 2
    assert body["rejected"] == [
        {"index": 1, "errors": [{"field": "amount", "code": "min_value"}]},
        {"index": 2, "errors": [{"field": "amount", "code": "max_value"}]},
        {"index": 3, "errors": [{"field": "ordered_at", "code": "too_early"}]},
        {"index": 4, "errors": [{"field": "margin", "code": "max_value"}]},
        {"index": 6, "errors": [{"field": "ordered_at", "code": "too_early"}]},
    ]
    assert sorted(str(a) for a in Order.objects.values_list("amount", flat=True)) == ["-20.00", "10.00"]


def test_the_bounds_are_configurable(api, settings):
    settings.FACT_AMOUNT_MAX = 100
    settings.FACT_EARLIEST_DATE = "2020-01-01"
    _post(api, "customers", [{"source": "crm", "external_id": "PB-C"}])
    body = _post(api, "orders", [_order(0, amount="100.00"), _order(1, amount="100.01"),
                                 _order(2, ordered_at="2019-12-31T00:00:00Z")])
    assert body["summary"]["created"] == 1
    assert [r["errors"][0]["code"] for r in body["rejected"]] == ["max_value", "too_early"]


def test_ticket_and_interaction_dates_have_the_same_floor(api):
    _post(api, "customers", [{"source": "crm", "external_id": "PB-C"}])
    body = _post(api, "tickets", [{"source": "support", "external_id": "T-1", "customer_external_id": "PB-C",
                                   "customer_source": "crm", "opened_at": "0001-01-01T00:00:00Z"}])
    assert body["rejected"] == [{"index": 0, "errors": [{"field": "opened_at", "code": "too_early"}]}]


def test_the_csv_import_gives_the_same_codes():
    import io

    from profiles.imports import run_import

    run_import(stream=io.BytesIO(b"external_id\nPB-C\n"), source="crm", actor="cli")
    content = ("external_id,customer_external_id,customer_source,ordered_at,amount\n"
               "O-1,PB-C,crm,2025-01-01,10\nO-2,PB-C,crm,2025-01-01,-1000000\nO-3,PB-C,crm,0001-01-01,10\n")
    job = run_import(stream=io.BytesIO(content.encode()), source="erp", actor="cli")
    assert (job.created, job.rejected) == (1, 2)
    assert job.rejections == [{"line": 3, "column": "amount", "code": "min_value"},
                              {"line": 4, "column": "ordered_at", "code": "too_early"}]
