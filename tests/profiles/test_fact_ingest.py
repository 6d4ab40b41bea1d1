"""One-record fact ingestion is one table-driven function (``fact_ingest``); the per-kind names are it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles import services
from profiles.models import Note, Order, Referral
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def test_per_kind_names_and_the_table_cover_every_fact_kind() -> None:
    assert set(services.ONE_RECORD_ARGUMENTS) == set(services.FACT_KINDS)
    names = {"orders": "order_ingest", "interactions": "interaction_ingest", "tickets": "ticket_ingest",
             "notes": "note_ingest", "reviews": "review_ingest", "nps": "nps_ingest", "referrals": "referral_ingest"}
    for kind, name in names.items():
        assert getattr(services, name).__name__ == name
        assert f"fact={kind!r}" in getattr(services, name).__doc__


def test_an_order_through_the_per_kind_name_and_through_fact_ingest_is_the_same_fact() -> None:
    cid = make_customer(email="fact.ingest@example.com")
    at = timezone.now() - timedelta(days=3)
    first = services.order_ingest(source="erp", external_id="ORD-1", ordered_at=at, amount="12.50", actor="t",
                                  customer_id=cid)
    again = services.fact_ingest(fact="orders", source="erp", external_id="ORD-1", ordered_at=at, amount="12.50",
                                 actor="t", customer_id=cid)
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert first.fact_id == again.fact_id
    order = Order.objects.get(pk=first.fact_id)
    assert (order.currency, order.kind, order.returned, order.category) == ("EUR", "order", False, "")


def test_missing_or_unknown_arguments_are_refused_before_anything_is_written() -> None:
    cid = make_customer(email="fact.refused@example.com")
    at = timezone.now() - timedelta(days=1)
    with pytest.raises(TypeError):
        services.note_ingest(source="crm", external_id="N-1", at=at, actor="t", customer_id=cid)  # no text
    with pytest.raises(TypeError):
        services.referral_ingest(source="crm", external_id="R-1", at=at, actor="t", customer_id=cid, rating=5)
    with pytest.raises(TypeError):
        services.order_ingest("erp", external_id="O-1", ordered_at=at, amount="1", actor="t", customer_id=cid)
    assert not Note.objects.exists() and not Referral.objects.exists() and not Order.objects.exists()


def test_a_rejected_record_raises_with_the_field_and_writes_nothing() -> None:
    cid = make_customer(email="fact.invalid@example.com")
    with pytest.raises(services.RecordInvalid) as info:
        services.review_ingest(source="web", external_id="REV-1", at=timezone.now(), rating=9, actor="t",
                               customer_id=cid)
    assert info.value.field == "rating"
