"""Facts: upsert by source id, pseudonymized free text, staleness, retention and erasure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.envelope import DecryptionError
from profiles import selectors, services
from profiles.models import (
    BlindIndexEntry,
    Customer,
    CustomerKey,
    Interaction,
    Note,
    NpsAnswer,
    Order,
    PersonalField,
    PlaceholderState,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
    Tombstone,
)
from tests.factories import (
    make_customer,
    make_interaction,
    make_nps,
    make_order,
    make_referral,
    make_review,
    make_ticket,
)

pytestmark = pytest.mark.django_db
ACTOR = "job:test"


def test_order_upsert_by_source_id_is_idempotent_and_updates_changes(facts_changed) -> None:
    cid = make_customer(source="erp", external_id="CUST-1")
    services.customer_mark_fresh(customer_ids=[cid])
    at = timezone.now() - timedelta(days=5)
    kwargs = {"source": "erp", "external_id": "INV-1", "customer_external_id": "CUST-1", "ordered_at": at,
              "amount": "99.90", "margin": "20.00", "currency": "eur", "days_late": 3, "kind": "invoice",
              "actor": ACTOR}

    first = services.order_ingest(**kwargs)
    again = services.order_ingest(**kwargs)
    changed = services.order_ingest(**{**kwargs, "returned": True})

    assert (first.outcome, again.outcome, changed.outcome) == ("created", "unchanged", "updated")
    order = Order.objects.get()
    assert (order.customer_id, order.amount, order.margin, order.currency, order.kind, order.days_late,
            order.returned) == (cid, Decimal("99.90"), Decimal("20.00"), "EUR", "invoice", 3, True)
    assert facts_changed == [[cid], [cid], [cid]]  # customer created, order created, order updated
    assert selectors.stale_customer_ids(limit=5) == [cid]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"amount": "abc"}, "amount", "invalid"),
        ({"amount": None}, "amount", "required"),
        ({"ordered_at": "yesterday"}, "ordered_at", "datetime"),
        ({"ordered_at": (timezone.now() + timedelta(days=30)).isoformat()}, "ordered_at", "in_future"),
        ({"currency": "euro"}, "currency", "invalid"),
        ({"days_late": -1}, "days_late", "min_value"),
        ({"customer_external_id": "NOPE"}, "customer_external_id", "unknown_customer"),
        ({"customer_external_id": None}, "customer_external_id", "required"),
        ({"source": "fax"}, "source", "invalid_choice"),
        ({"external_id": ""}, "external_id", "required"),
        ({"kind": "quote"}, "kind", "invalid_choice"),
    ],
)
def test_each_kind_of_bad_order_is_rejected_with_field_and_code_and_nothing_written(overrides, field, code) -> None:
    make_customer(source="erp", external_id="CUST-2")
    record = {"source": "erp", "external_id": "INV-2", "customer_external_id": "CUST-2",
              "ordered_at": "2024-01-02T10:00:00Z", "amount": "10.00", **overrides}
    [result] = services.facts_ingest_batch(kind="orders", records=[record], actor=ACTOR)
    assert (result.outcome, result.field, result.code) == ("rejected", field, code)
    assert Order.objects.count() == 0


def test_batch_commits_good_records_and_rejects_bad_ones() -> None:
    cid = make_customer(source="web", external_id="U-1")
    now = timezone.now()
    records = [
        {"source": "web", "customer_external_id": "U-1", "kind": "login", "at": now.isoformat()},
        {"source": "web", "customer_external_id": "U-1", "kind": "teleport", "at": now.isoformat()},
        {"source": "web", "customer_external_id": "U-1", "kind": "page_view", "at": now.isoformat(), "count": 7},
    ]
    results = services.facts_ingest_batch(kind="interactions", records=records, actor=ACTOR)
    assert [r.outcome for r in results] == ["created", "rejected", "created"]
    assert (results[1].field, results[1].code) == ("kind", "invalid_choice")
    assert sorted(Interaction.objects.filter(customer_id=cid).values_list("kind", "count")) == [
        ("login", 1), ("page_view", 7)]
    again = services.facts_ingest_batch(kind="interactions", records=records, actor=ACTOR)
    assert [r.outcome for r in again] == ["unchanged", "rejected", "unchanged"]
    assert Interaction.objects.count() == 2


def test_ticket_text_is_pseudonymized_and_original_kept_only_where_configured(settings) -> None:
    settings.KEEP_ORIGINAL_TEXT = {"support": True, "crm": False}
    cid = make_customer(name="Katarzyna Wójcik", email="k.wojcik@example.pl", phone="+48 601 234 567",
                        locale="pl_PL", source="support", external_id="SUP-1")
    text = "Dzień dobry, tu Katarzyna Wójcik, proszę o kontakt: k.wojcik@example.pl lub 601 234 567."
    make_ticket(cid, text=text, source="support", external_id="T-1")
    services.note_ingest(source="crm", external_id="N-1", customer_id=cid, at=timezone.now(), actor=ACTOR,
                         text="Call with Katarzyna Wójcik about renewal", kind="call_transcript")

    ticket = Ticket.objects.get()
    assert "Katarzyna" not in ticket.text_pseudonymized
    assert "Wójcik" not in ticket.text_pseudonymized
    assert "k.wojcik@example.pl" not in ticket.text_pseudonymized
    assert "601 234 567" not in ticket.text_pseudonymized
    assert "<PERSON_1>" in ticket.text_pseudonymized
    assert "<EMAIL_1>" in ticket.text_pseudonymized
    assert "<PHONE_1>" in ticket.text_pseudonymized
    assert ticket.text_original_encrypted is not None
    assert b"Katarzyna" not in bytes(ticket.text_original_encrypted)
    note = Note.objects.get()
    assert note.text_pseudonymized == "Call with <PERSON_1> about renewal"  # same placeholder: same person
    assert note.text_original_encrypted is None

    facts = selectors.customer_facts(customer_id=cid)
    assert facts["tickets"][0]["text_original"] == text
    assert facts["notes"][0] == {"source": "crm", "kind": "call_transcript", "at": note.at,
                                 "text": "Call with <PERSON_1> about renewal", "text_original": None}
    state = PlaceholderState.objects.get(customer_id=cid)
    assert b"Katarzyna" not in bytes(state.ciphertext)


def test_reimported_ticket_is_unchanged_and_keeps_its_placeholders() -> None:
    cid = make_customer(name="Lars Berg", email="lars@example.se", source="support", external_id="SUP-2")
    record = {"source": "support", "external_id": "T-2", "customer_external_id": "SUP-2",
              "opened_at": "2025-01-01T09:00:00Z", "text": "Lars Berg here, mail lars@example.se"}
    first = services.facts_ingest_batch(kind="tickets", records=[record], actor=ACTOR)
    state_before = bytes(PlaceholderState.objects.get(customer_id=cid).ciphertext)
    again = services.facts_ingest_batch(kind="tickets", records=[record], actor=ACTOR)
    assert (first[0].outcome, again[0].outcome) == ("created", "unchanged")
    assert Ticket.objects.get().text_pseudonymized == "<PERSON_1> here, mail <EMAIL_1>"
    assert bytes(PlaceholderState.objects.get(customer_id=cid).ciphertext) == state_before


def test_batch_pseudonymizes_a_chunk_with_one_presidio_call(monkeypatch) -> None:
    from profiles.pseudonymizer import Pseudonymizer

    ids = [make_customer(source="support", external_id=f"SUP-B{i}") for i in range(3)]
    calls: list[int] = []
    original = Pseudonymizer.pseudonymize_batch

    def spy(self, texts, **kwargs):
        calls.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Pseudonymizer, "pseudonymize_batch", spy)
    records = [{"source": "support", "external_id": f"TB-{i}", "customer_id": str(ids[i % 3]),
                "opened_at": "2025-02-01T10:00:00Z", "text": f"Ticket number {i}"} for i in range(6)]
    results = services.facts_ingest_batch(kind="tickets", records=records, actor=ACTOR)
    assert [r.outcome for r in results] == ["created"] * 6
    assert calls == [6]


def test_reviews_nps_and_referrals_are_stored_with_pseudonymized_text() -> None:
    cid = make_customer(name="Noor Jansen", email="noor@example.nl", locale="nl_NL")
    make_review(cid, rating=5, text="Noor Jansen is heel tevreden")
    make_nps(cid, score=9, comment="Bel mij: noor@example.nl")
    make_referral(cid, converted=True)
    assert Review.objects.get().text_pseudonymized == "<PERSON_1> is heel tevreden"
    assert NpsAnswer.objects.get().comment_pseudonymized == "Bel mij: <EMAIL_1>"
    assert Referral.objects.get().converted is True
    facts = selectors.customer_facts(customer_id=cid)
    assert (facts["reviews"][0]["rating"], facts["nps"][0]["score"], facts["referrals"][0]["converted"]) == (5, 9, True)


def test_mark_fresh_clears_only_flags_set_before_the_scoring_snapshot() -> None:
    a = make_customer()
    b = make_customer()
    snapshot = timezone.now()
    Customer.objects.filter(id=b).update(stale_since=snapshot + timedelta(seconds=5))
    services.customer_mark_fresh(customer_ids=[a, b], as_of=snapshot)
    assert selectors.stale_customer_ids(limit=10) == [b]


def test_retention_purge_deletes_expired_facts_in_batches_and_none_early(settings) -> None:
    settings.RETENTION_DAYS = {"orders": 100, "interactions": 10, "tickets": 50, "reviews": 20}
    now = timezone.now()
    cid = make_customer()
    for days in (101, 150, 99):
        make_order(cid, amount="1", days_ago=days, now=now)
    for days in (11, 12, 13, 9):
        make_interaction(cid, days_ago=days, now=now)
    make_ticket(cid, days_ago=51, now=now)
    make_ticket(cid, days_ago=49, now=now)
    make_review(cid, rating=4, days_ago=21, now=now)
    make_nps(cid, score=7, days_ago=19, now=now)
    make_referral(cid, days_ago=25, now=now)
    services.customer_mark_fresh(customer_ids=[cid])

    due = services.retention_purge(now=now, dry_run=True)
    assert due == {"orders": 2, "interactions": 3, "tickets": 1, "notes": 0, "reviews": 1, "nps": 0, "referrals": 1}
    assert Order.objects.count() == 3

    deleted = services.retention_purge(now=now, batch_size=2)

    assert deleted == due
    assert sorted(round((now - o.ordered_at).days) for o in Order.objects.all()) == [99]
    assert [round((now - i.at).days) for i in Interaction.objects.all()] == [9]
    assert Ticket.objects.count() == 1 and Review.objects.count() == 0 and Referral.objects.count() == 0
    assert NpsAnswer.objects.count() == 1
    assert selectors.stale_customer_ids(limit=5) == [cid]
    assert services.retention_purge(now=now) == dict.fromkeys(due, 0)


def test_purge_expired_task_uses_default_retention() -> None:
    from profiles.tasks import purge_expired

    cid = make_customer()
    make_interaction(cid, days_ago=731)
    make_interaction(cid, days_ago=729)
    make_order(cid, amount="5", days_ago=3000)
    counts = purge_expired.delay().get()
    assert counts["interactions"] == 1 and counts["orders"] == 0
    assert Interaction.objects.count() == 1 and Order.objects.count() == 1


def test_erasure_crypto_shreds_and_deletes_everything_but_a_pii_free_tombstone(governance) -> None:
    cid = make_customer(name="Erin Erased", email="erin@example.com", phone="+44 7700 900555", orders=2, tickets=1,
                        interactions=1, source="crm", external_id="ERASE-1")
    make_review(cid, rating=3, text="meh")
    sealed = services.customer_seal(customer_id=cid, label="decision", payload={"features": {"x": 1}})
    blob = bytes(PersonalField.objects.get(customer_id=cid, field="name").ciphertext)
    other = make_customer(orders=1)

    services.customer_erase(customer_id=cid, actor="user:dpo")

    assert not selectors.customer_exists(customer_id=cid)
    assert selectors.customer_is_erased(customer_id=cid)
    for model in (CustomerKey, PersonalField, BlindIndexEntry, SourceIdentity, PlaceholderState, Order, Ticket,
                  Interaction, Review):
        assert not model.objects.filter(customer_id=cid).exists(), model.__name__
    assert selectors.customer_find(email="erin@example.com") is None
    assert selectors.customer_find(source="crm", external_id="ERASE-1") is None
    with pytest.raises(DecryptionError):
        selectors.customer_unseal(customer_id=cid, label="decision", blob=sealed)
    with pytest.raises(DecryptionError):
        services.customer_seal(customer_id=cid, label="decision", payload={})
    assert b"Erin" not in blob
    tombstone = Tombstone.objects.get()
    assert (tombstone.customer_id, tombstone.reason) == (cid, "erasure_request")
    [event] = governance("customer.erased")
    assert (event.subject, event.details) == (cid, {"reason": "erasure_request", "aliases": []})
    assert Order.objects.filter(customer_id=other).count() == 1
    services.customer_erase(customer_id=cid, actor="user:dpo")  # idempotent
    assert len(governance("customer.erased")) == 1


def test_erasing_a_merged_customer_erases_its_aliases_too() -> None:
    older = services.customer_ingest(source="crm", external_id="M-1", personal={"email": "m@example.com"},
                                     actor=ACTOR).customer_id
    Customer.objects.filter(id=older).update(created_at=timezone.now() - timedelta(days=1))
    newer = services.customer_ingest(source="erp", external_id="M-2", personal={"phone": "+447700900777"},
                                     actor=ACTOR).customer_id
    services.customer_ingest(source="web", external_id="M-3",
                             personal={"email": "m@example.com", "phone": "+447700900777"}, actor=ACTOR)
    services.customer_erase(customer_id=newer, actor="user:dpo")
    assert Customer.objects.count() == 0 and CustomerKey.objects.count() == 0
    assert set(Tombstone.objects.values_list("customer_id", flat=True)) == {older, newer}


def test_erasing_an_unknown_customer_is_not_found() -> None:
    import uuid

    from config.errors import NotFound

    with pytest.raises(NotFound):
        services.customer_erase(customer_id=uuid.uuid4(), actor="user:dpo")
    assert Tombstone.objects.count() == 0


def test_customer_id_chunks_pages_over_live_customers_only() -> None:
    ids = sorted((make_customer() for _ in range(5)), key=str)
    chunks = list(selectors.customer_id_chunks(chunk_size=2))
    assert chunks == [ids[0:2], ids[2:4], ids[4:5]]
    assert list(selectors.customer_id_chunks(chunk_size=2, after=ids[3])) == [ids[4:5]]
    assert selectors.customer_count() == 5
