"""Set-based fact ingestion: a batch costs a fixed number of queries, sends one signal, and gives the same
outcomes as writing record by record (duplicates inside a batch, aliases, rejections, the fallback path)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from profiles import selectors, services
from profiles.models import Customer, Interaction, Order, PlaceholderState, Ticket
from profiles.services import chunking, facts
from tests.factories import make_customer

pytestmark = pytest.mark.django_db
ACTOR = "job:test"


def _orders(prefix: str, customers: list[str], n: int, amount: str = "10.00") -> list[dict]:
    return [{"source": "erp", "external_id": f"{prefix}-{i}", "customer_external_id": customers[i % len(customers)],
             "ordered_at": "2025-01-03T10:00:00Z", "amount": amount} for i in range(n)]


def _query_count(kind: str, records: list[dict]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        results = services.facts_ingest_batch(kind=kind, records=records, actor=ACTOR)
    assert all(r.outcome != "rejected" for r in results)
    return len(ctx.captured_queries)


def test_batch_query_count_does_not_grow_with_the_number_of_records() -> None:
    refs = [f"QC-{i}" for i in range(4)]
    for ref in refs:
        make_customer(source="erp", external_id=ref)

    small_create = _query_count("orders", _orders("S", refs, 4))
    large_create = _query_count("orders", _orders("L", refs, 80))
    small_update = _query_count("orders", _orders("S", refs, 4, amount="11.00"))
    large_update = _query_count("orders", _orders("L", refs, 80, amount="11.00"))
    large_unchanged = _query_count("orders", _orders("L", refs, 80, amount="11.00"))

    assert large_create == small_create
    assert large_update == small_update
    assert large_unchanged < large_update
    assert Order.objects.count() == 84
    assert set(Order.objects.values_list("amount", flat=True)) == {Decimal("11.00")}


def test_text_batch_query_count_does_not_grow_with_customers_or_texts(settings) -> None:
    settings.KEEP_ORIGINAL_TEXT = {"support": True}
    refs = [f"QT-{i}" for i in range(6)]
    for ref in refs:
        make_customer(source="support", external_id=ref)

    def tickets(prefix: str, n: int) -> list[dict]:
        return [{"source": "support", "external_id": f"{prefix}-{i}", "customer_external_id": refs[i % len(refs)],
                 "opened_at": "2025-03-01T10:00:00Z", "text": f"Parcel {i} is late"} for i in range(n)]

    first = _query_count("tickets", tickets("TA", 2))  # 2 customers, no placeholder state yet
    second = _query_count("tickets", tickets("TB", 12))  # 6 customers, 2 of them with a stored state

    assert second == first
    assert Ticket.objects.count() == 14
    assert PlaceholderState.objects.count() == 6  # one numbering state per customer


def test_batch_marks_all_customers_stale_with_one_signal(facts_changed) -> None:
    refs = [f"SIG-{i}" for i in range(3)]
    ids = [make_customer(source="erp", external_id=ref) for ref in refs]
    services.customer_mark_fresh(customer_ids=ids)
    facts_changed.clear()

    results = services.facts_ingest_batch(kind="orders", records=_orders("SIG", refs, 9), actor=ACTOR)

    assert [r.outcome for r in results] == ["created"] * 9
    assert facts_changed == [sorted(ids, key=str)]
    assert sorted(selectors.stale_customer_ids(limit=10), key=str) == sorted(ids, key=str)
    services.customer_mark_fresh(customer_ids=ids)
    facts_changed.clear()
    again = services.facts_ingest_batch(kind="orders", records=_orders("SIG", refs, 9), actor=ACTOR)
    assert [r.outcome for r in again] == ["unchanged"] * 9
    assert facts_changed == []
    assert selectors.stale_customer_ids(limit=10) == []


def test_same_external_id_twice_in_one_batch_is_created_then_updated_then_unchanged() -> None:
    cid = make_customer(source="erp", external_id="DUP-C")
    base = {"source": "erp", "external_id": "DUP-1", "customer_external_id": "DUP-C",
            "ordered_at": "2025-01-05T10:00:00Z"}
    records = [{**base, "amount": "5.00"}, {**base, "amount": "7.50"}, {**base, "amount": "7.50"}]

    results = services.facts_ingest_batch(kind="orders", records=records, actor=ACTOR)

    assert [r.outcome for r in results] == ["created", "updated", "unchanged"]
    order = Order.objects.get()
    assert (order.amount, order.customer_id) == (Decimal("7.50"), cid)
    assert {r.fact_id for r in results} == {order.pk}


def test_interactions_without_external_id_are_keyed_by_customer_kind_and_time_within_a_batch() -> None:
    cid = make_customer(source="web", external_id="NAT-1")
    at = "2025-04-01T08:00:00Z"
    records = [
        {"source": "web", "customer_external_id": "NAT-1", "kind": "login", "at": at},
        {"source": "web", "customer_external_id": "NAT-1", "kind": "login", "at": at, "count": 3},
        {"source": "web", "customer_external_id": "NAT-1", "kind": "page_view", "at": at},
    ]

    results = services.facts_ingest_batch(kind="interactions", records=records, actor=ACTOR)

    assert [r.outcome for r in results] == ["created", "updated", "created"]
    assert sorted(Interaction.objects.filter(customer_id=cid).values_list("kind", "count")) == [
        ("login", 3), ("page_view", 1)]


def test_every_kind_of_customer_reference_resolves_in_one_batch_and_aliases_reach_the_survivor() -> None:
    older = services.customer_ingest(source="crm", external_id="AL-1", personal={"email": "al@example.com"},
                                     actor=ACTOR).customer_id
    Customer.objects.filter(id=older).update(created_at=timezone.now() - timedelta(days=1))
    newer = services.customer_ingest(source="erp", external_id="AL-2", personal={"phone": "+447700900123"},
                                     actor=ACTOR).customer_id
    services.customer_ingest(source="web", external_id="AL-3",
                             personal={"email": "al@example.com", "phone": "+447700900123"}, actor=ACTOR)
    assert Customer.objects.get(id=newer).merged_into_id == older
    at = "2025-02-02T10:00:00Z"
    records = [
        {"source": "erp", "external_id": "R-1", "customer_id": str(newer), "ordered_at": at, "amount": "1"},
        {"source": "erp", "external_id": "R-2", "customer_external_id": "AL-2", "ordered_at": at, "amount": "2"},
        {"source": "erp", "external_id": "R-3", "customer_email": "AL@example.com", "ordered_at": at, "amount": "3"},
        {"source": "erp", "external_id": "R-4", "customer_external_id": "AL-1", "customer_source": "crm",
         "ordered_at": at, "amount": "4"},
    ]

    results = services.facts_ingest_batch(kind="orders", records=records, actor=ACTOR)

    assert [(r.outcome, r.customer_id) for r in results] == [("created", older)] * 4
    assert set(Order.objects.values_list("customer_id", flat=True)) == {older}


def test_bad_records_are_rejected_individually_with_the_same_field_precedence_and_nothing_written() -> None:
    cid = make_customer(source="erp", external_id="BAD-C")
    at = "2025-01-05T10:00:00Z"
    good = {"source": "erp", "customer_external_id": "BAD-C", "ordered_at": at, "amount": "3.00"}
    records = [
        {**good, "external_id": "B-1"},
        {**good, "external_id": "B-2", "customer_external_id": "NOBODY", "amount": "x"},  # unknown before amount
        {**good, "external_id": "B-3", "amount": "x"},
        {**good, "external_id": "", "amount": "x"},  # the kind's fields before external_id
        {**good, "external_id": "B-5", "customer_id": "not-a-uuid"},
        {**good, "external_id": "B-6", "customer_email": "nobody@example.com", "customer_external_id": None},
        "not a record",
        {**good, "external_id": "B-8", "source": "fax", "amount": "x"},
        {**good, "external_id": "B-9"},
    ]

    results = services.facts_ingest_batch(kind="orders", records=records, actor=ACTOR)

    assert [(r.outcome, r.field, r.code) for r in results] == [
        ("created", None, None),
        ("rejected", "customer_external_id", "unknown_customer"),
        ("rejected", "amount", "invalid"),
        ("rejected", "amount", "invalid"),
        ("rejected", "customer_id", "invalid"),
        ("rejected", "customer_email", "unknown_customer"),
        ("rejected", "record", "invalid"),
        ("rejected", "source", "invalid_choice"),
        ("created", None, None),
    ]
    assert sorted(Order.objects.filter(customer_id=cid).values_list("amount", flat=True)) == [Decimal("3.00")] * 2
    assert Order.objects.count() == 2


def test_failed_bulk_write_is_rolled_back_and_the_batch_written_record_by_record(monkeypatch, facts_changed) -> None:
    refs = ["FB-1", "FB-2"]
    ids = [make_customer(source="erp", external_id=ref) for ref in refs]
    old = {"source": "erp", "external_id": "FB-OLD", "customer_external_id": "FB-1",
           "ordered_at": "2025-01-01T10:00:00Z", "amount": "1.00"}
    services.facts_ingest_batch(kind="orders", records=[old], actor=ACTOR)
    facts_changed.clear()
    real = facts._write_facts_bulk
    attempts: list[int] = []

    def failing(*args, **kwargs):
        attempts.append(len(real(*args, **kwargs)[0]))  # the rows are written, then the write fails
        raise IntegrityError("simulated concurrent insert")

    monkeypatch.setattr(facts, "_write_facts_bulk", failing)
    records = [*_orders("FBN", refs, 3), old, {**old, "amount": "2.00"}]

    results = services.facts_ingest_batch(kind="orders", records=records, actor=ACTOR)

    assert attempts == [5]
    assert [r.outcome for r in results] == ["created", "created", "created", "unchanged", "updated"]
    assert Order.objects.count() == 4
    assert results[3].fact_id == results[4].fact_id
    assert Order.objects.get(pk=results[4].fact_id).amount == Decimal("2.00")
    assert facts_changed == [sorted(ids, key=str)]


def test_ticket_batch_for_several_customers_keeps_placeholders_and_originals_per_customer(settings) -> None:
    settings.KEEP_ORIGINAL_TEXT = {"support": True}
    anna = make_customer(name="Anna Berg", email="anna@example.se", source="support", external_id="TX-A")
    jan = make_customer(name="Jan Kowalski", email="jan@example.pl", source="support", external_id="TX-J")
    make_customer_ticket = {"source": "support", "opened_at": "2025-03-03T09:00:00Z"}
    records = [
        {**make_customer_ticket, "external_id": "TX-1", "customer_id": str(anna), "text": "Anna Berg, anna@example.se"},
        {**make_customer_ticket, "external_id": "TX-2", "customer_id": str(jan), "text": "Jan Kowalski here"},
        {**make_customer_ticket, "external_id": "TX-3", "customer_id": str(anna), "text": "Again Anna Berg"},
    ]

    first = services.facts_ingest_batch(kind="tickets", records=records, actor=ACTOR)
    states = {s.customer_id: bytes(s.ciphertext) for s in PlaceholderState.objects.all()}
    again = services.facts_ingest_batch(kind="tickets", records=records, actor=ACTOR)
    changed = services.facts_ingest_batch(
        kind="tickets", records=[{**records[1], "text": "Jan Kowalski, jan@example.pl"}], actor=ACTOR)

    assert [r.outcome for r in first] == ["created"] * 3
    assert [r.outcome for r in again] == ["unchanged"] * 3
    assert [r.outcome for r in changed] == ["updated"]
    by_id = {t.external_digest: t for t in Ticket.objects.all()}
    texts = sorted(t.text_pseudonymized for t in by_id.values())
    assert texts == ["<PERSON_1>, <EMAIL_1>", "<PERSON_1>, <EMAIL_1>", "Again <PERSON_1>"]
    assert set(states) == {anna, jan}
    assert bytes(PlaceholderState.objects.get(customer_id=anna).ciphertext) == states[anna]
    assert bytes(PlaceholderState.objects.get(customer_id=jan).ciphertext) != states[jan]  # EMAIL_1 added
    originals = sorted(t["text_original"] for t in selectors.customer_facts(customer_id=anna)["tickets"])
    assert originals == ["Again Anna Berg", "Anna Berg, anna@example.se"]
    assert selectors.customer_facts(customer_id=jan)["tickets"][0]["text_original"] == "Jan Kowalski, jan@example.pl"


def test_lookups_split_into_bounded_in_queries_give_the_same_outcomes(monkeypatch) -> None:
    monkeypatch.setattr(chunking, "_IN_CHUNK", 3)
    refs = [f"CH-{i}" for i in range(5)]
    ids = {ref: make_customer(source="erp", external_id=ref) for ref in refs}
    records = _orders("CHK", refs, 11)

    first = services.facts_ingest_batch(kind="orders", records=records, actor=ACTOR)
    second = services.facts_ingest_batch(kind="orders", records=[*records[:4], *_orders("CHK", refs, 11)[4:7],
                                                                  *_orders("CHK", refs, 11, amount="9.99")[7:]],
                                         actor=ACTOR)

    assert [r.outcome for r in first] == ["created"] * 11
    assert [r.customer_id for r in first] == [ids[refs[i % 5]] for i in range(11)]
    assert [r.outcome for r in second] == ["unchanged"] * 7 + ["updated"] * 4
    assert [r.fact_id for r in second] == [r.fact_id for r in first]
    assert sorted(Order.objects.values_list("amount", flat=True)) == [Decimal("9.99")] * 4 + [Decimal("10.00")] * 7
