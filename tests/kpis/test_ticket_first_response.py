"""Tickets carry ``first_response_at`` through the REST ingest and the CSV import; bad values are refused."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.django_db


def _customer() -> None:
    from profiles.services import customer_ingest

    customer_ingest(source="crm", external_id="FR-1", personal={"name": None}, actor="cli")


def test_rest_ingest_accepts_first_response_at_and_refuses_one_before_opening(api) -> None:
    from profiles.models import Ticket

    _customer()
    records = [
        {"source": "support", "external_id": "T-1", "customer_external_id": "FR-1", "customer_source": "crm",
         "opened_at": "2026-03-01T10:00:00Z", "first_response_at": "2026-03-01T11:30:00Z"},
        {"source": "support", "external_id": "T-2", "customer_external_id": "FR-1", "customer_source": "crm",
         "opened_at": "2026-03-01T10:00:00Z", "first_response_at": "2026-03-01T09:00:00Z"},
    ]
    body = api.post("/api/v1/ingest/tickets/", {"records": records}, format="json").json()
    assert body["summary"]["created"] == 1
    assert body["rejected"] == [{"index": 1, "errors": [{"field": "first_response_at", "code": "before_opened"}]}]
    assert list(Ticket.objects.values_list("first_response_at", flat=True)) == [
        datetime(2026, 3, 1, 11, 30, tzinfo=UTC)]


def test_csv_import_accepts_first_response_at() -> None:
    from profiles.imports import run_import
    from profiles.models import Ticket

    _customer()
    csv = ("external_id,customer_external_id,customer_source,opened_at,first_response_at\n"
           "T-9,FR-1,crm,2026-03-02T08:00:00Z,2026-03-02T08:45:00Z\n"
           "T-10,FR-1,crm,2026-03-02T08:00:00Z,\n")
    job = run_import(stream=io.BytesIO(csv.encode()), source="support", actor="cli")
    assert (job.created, job.rejected) == (2, 0)
    assert dict(Ticket.objects.values_list("external_digest", "first_response_at")).values().__len__() == 2
    assert sorted(Ticket.objects.values_list("first_response_at", flat=True), key=lambda v: v is None) == [
        datetime(2026, 3, 2, 8, 45, tzinfo=UTC), None]
