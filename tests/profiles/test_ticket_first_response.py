"""Tickets carry the time of support's first response (``first_response_at``): stored when given, refused per
record when it is before the ticket was opened (nothing written for that record)."""

from __future__ import annotations

import pytest

from profiles import services
from profiles.models import Ticket
from tests.factories import make_customer

pytestmark = pytest.mark.django_db
ACTOR = "job:test"


def test_first_response_at_is_stored_and_one_before_opening_is_refused() -> None:
    make_customer(source="support", external_id="FR-1")
    base = {"source": "support", "customer_external_id": "FR-1", "opened_at": "2026-03-02T09:00:00Z"}
    results = services.facts_ingest_batch(kind="tickets", actor=ACTOR, records=[
        {**base, "external_id": "T-1", "first_response_at": "2026-03-02T10:30:00Z"},
        {**base, "external_id": "T-2"},
        {**base, "external_id": "T-3", "first_response_at": "2026-03-02T08:59:00Z"},
        {**base, "external_id": "T-4", "first_response_at": "not a time"},
    ])
    assert [r.outcome for r in results] == ["created", "created", "rejected", "rejected"]
    assert (results[2].field, results[2].code) == ("first_response_at", "before_opened")
    assert results[3].field == "first_response_at"
    assert Ticket.objects.count() == 2
    responses = sorted(str(v) for v in Ticket.objects.values_list("first_response_at", flat=True))
    assert responses == ["2026-03-02 10:30:00+00:00", "None"]
