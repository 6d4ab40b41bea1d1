"""Identity resolution: the same person from several systems becomes one profile; conflicts are refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from profiles import selectors, services
from profiles.errors import MergeConflict
from profiles.models import (
    BlindIndexEntry,
    Customer,
    CustomerKey,
    MergeRecord,
    Order,
    PersonalField,
    SourceIdentity,
    Ticket,
)

pytestmark = pytest.mark.django_db
ACTOR = "job:test"


def ingest(source: str, external_id: str, **personal: str | None) -> services.IngestResult:
    country = personal.pop("country", None)
    return services.customer_ingest(source=source, external_id=external_id, personal=personal, actor=ACTOR,
                                    country=country)


def counts() -> tuple[int, ...]:
    return (Customer.objects.count(), PersonalField.objects.count(), BlindIndexEntry.objects.count(),
            SourceIdentity.objects.count(), MergeRecord.objects.count())


def test_same_person_from_crm_erp_and_support_becomes_one_profile(governance) -> None:
    crm = ingest("crm", "C-100", name="Maria Virtanen", email="maria.virtanen@example.fi", country="FI")
    erp = ingest("erp", "E-9", email=" MARIA.Virtanen@Example.fi ", phone="+358 40 123 4567",
                 company="Virtanen Oy", country="FI")
    support = ingest("support", "S-77", phone="040 123 4567", address="Mannerheimintie 1, 00100 Helsinki",
                     country="FI")

    assert crm.outcome == "created"
    assert (erp.outcome, support.outcome) == ("merged", "merged")
    assert crm.customer_id == erp.customer_id == support.customer_id
    assert Customer.objects.count() == 1
    data = selectors.customer_personal_data(customer_id=crm.customer_id)
    assert data["name"] == "Maria Virtanen"
    assert data["email"] == "maria.virtanen@example.fi"
    assert data["phone"] == "+358401234567"
    assert data["company"] == "Virtanen Oy"
    assert data["address"] == "Mannerheimintie 1, 00100 Helsinki"
    identities = selectors.customer_source_identities(customer_id=crm.customer_id)
    assert sorted((i["source"], i["external_id"]) for i in identities) == [
        ("crm", "C-100"), ("erp", "E-9"), ("support", "S-77")]
    for source, ext in (("crm", "C-100"), ("erp", "E-9"), ("support", "S-77")):
        assert selectors.customer_find(source=source, external_id=ext) == crm.customer_id
    # Linking a new source record to an existing customer is not a merge of two customers.
    assert MergeRecord.objects.count() == 0
    assert governance("customer.merged") == []


def test_reingesting_the_same_record_is_unchanged_and_writes_nothing() -> None:
    first = ingest("crm", "C-1", name="Jan de Vries", email="jan@example.nl", phone="+31 6 12345678")
    snapshot = counts()
    ciphertexts = list(PersonalField.objects.order_by("id").values_list("ciphertext", flat=True))

    again = ingest("crm", "C-1", name="Jan de Vries", email="JAN@example.nl", phone="+31612345678")

    assert again == services.IngestResult(customer_id=first.customer_id, outcome="unchanged")
    assert counts() == snapshot
    assert [bytes(c) for c in PersonalField.objects.order_by("id").values_list("ciphertext", flat=True)] == [
        bytes(c) for c in ciphertexts]


def test_source_update_of_own_record_changes_fields_and_blind_index() -> None:
    first = ingest("crm", "C-2", name="Old Name", email="old@example.com")
    result = ingest("crm", "C-2", name="New Name", email="new@example.com")
    assert result == services.IngestResult(customer_id=first.customer_id, outcome="updated")
    assert selectors.customer_personal_data(customer_id=first.customer_id)["name"] == "New Name"
    assert selectors.customer_find(email="new@example.com") == first.customer_id
    assert selectors.customer_find(email="old@example.com") is None


def test_email_matching_one_customer_and_phone_another_is_refused_and_nothing_written(governance) -> None:
    a = ingest("crm", "A-1", name="Anna Nowak", email="anna@example.pl", phone="+48 601 111 111")
    b = ingest("crm", "B-1", name="Piotr Nowak", email="piotr@example.pl", phone="+48 601 222 222")
    snapshot = counts()

    with pytest.raises(MergeConflict) as info:
        ingest("support", "S-1", email="anna@example.pl", phone="+48 601 222 222")

    assert info.value.code == "merge_conflict"
    assert info.value.status_code == 409
    assert counts() == snapshot
    assert selectors.customer_find(source="support", external_id="S-1") is None
    assert selectors.customer_find(email="anna@example.pl") == a.customer_id
    assert selectors.customer_find(phone="+48601222222") == b.customer_id
    assert governance("customer.merged") == []


def test_known_source_id_arriving_with_an_email_bound_to_another_customer_is_refused() -> None:
    a = ingest("crm", "A-2", email="first@example.com")
    ingest("crm", "B-2", email="second@example.com")
    snapshot = counts()
    with pytest.raises(MergeConflict):
        ingest("crm", "A-2", email="second@example.com")
    assert counts() == snapshot
    assert selectors.customer_personal_data(customer_id=a.customer_id)["email"] == "first@example.com"


def test_new_source_record_whose_phone_differs_from_the_email_match_is_refused() -> None:
    ingest("crm", "A-3", email="same@example.com", phone="+44 7700 900001")
    snapshot = counts()
    with pytest.raises(MergeConflict) as info:
        ingest("erp", "E-3", email="same@example.com", phone="+44 7700 900002")
    assert info.value.reason == "conflicting_phone"
    assert counts() == snapshot


def test_compatible_customers_are_merged_into_the_oldest_and_the_other_becomes_an_alias(governance, facts_changed
                                                                                       ) -> None:
    older = ingest("crm", "C-10", name="Sven Svensson", email="sven@example.se")
    Customer.objects.filter(id=older.customer_id).update(created_at=timezone.now() - timedelta(days=30))
    newer = ingest("support", "S-10", phone="+46 70 123 45 67", job_title="Engineer", country="SE")
    services.order_ingest(source="erp", external_id="O-1", customer_id=newer.customer_id,
                          ordered_at=timezone.now() - timedelta(days=3), amount="10.00", actor=ACTOR)
    services.ticket_ingest(source="support", external_id="T-1", customer_id=newer.customer_id,
                           opened_at=timezone.now() - timedelta(days=2), text="Sven here, call +46 70 123 45 67",
                           actor=ACTOR)
    sealed = services.customer_seal(customer_id=newer.customer_id, label="decision", payload={"a": 1})

    result = ingest("web", "W-10", email="sven@example.se", phone="+46701234567")

    assert result == services.IngestResult(customer_id=older.customer_id, outcome="merged")
    survivor, alias = older.customer_id, newer.customer_id
    assert Customer.objects.get(id=alias).merged_into_id == survivor
    assert selectors.customer_resolve(customer_id=alias) == survivor
    assert selectors.customer_aliases(customer_id=survivor) == [alias]
    data = selectors.customer_personal_data(customer_id=survivor)
    assert (data["name"], data["email"], data["phone"], data["job_title"]) == (
        "Sven Svensson", "sven@example.se", "+46701234567", "Engineer")
    assert PersonalField.objects.filter(customer_id=alias).count() == 0
    assert Order.objects.get().customer_id == survivor
    ticket = Ticket.objects.get()
    assert ticket.customer_id == survivor
    assert selectors.customer_facts(customer_id=survivor)["tickets"][0]["text_original"] == (
        "Sven here, call +46 70 123 45 67")
    assert sorted(SourceIdentity.objects.filter(customer_id=survivor).values_list("source", flat=True)) == [
        "crm", "support", "web"]
    assert selectors.customer_find(phone="+46701234567") == survivor
    # The alias keeps its own key: details sealed before the merge stay readable (until erasure).
    assert CustomerKey.objects.filter(customer_id=alias).exists()
    assert selectors.customer_unseal(customer_id=alias, label="decision", blob=sealed) == {"a": 1}
    record = MergeRecord.objects.get()
    assert (record.survivor_id, record.loser_id, record.matched_on) == (survivor, alias, ["phone"])
    [event] = governance("customer.merged")
    assert event.subject == survivor
    assert event.details == {"survivor": str(survivor), "alias": str(alias), "matched_on": ["phone"],
                             "source": "web"}
    assert [survivor] in facts_changed
    assert selectors.stale_customer_ids(limit=10) == [survivor]


def test_facts_sent_for_an_alias_land_on_the_survivor() -> None:
    older = ingest("crm", "C-20", email="alias.facts@example.com")
    Customer.objects.filter(id=older.customer_id).update(created_at=timezone.now() - timedelta(days=1))
    newer = ingest("erp", "E-20", phone="+44 7700 900020")
    ingest("web", "W-20", email="alias.facts@example.com", phone="+447700900020")
    result = services.order_ingest(source="erp", external_id="O-20", customer_external_id="E-20",
                                   ordered_at=timezone.now(), amount=Decimal("5"), actor=ACTOR)
    assert result.customer_id == older.customer_id
    assert selectors.customer_find(source="erp", external_id="E-20") == older.customer_id
    assert newer.customer_id != older.customer_id


def test_rectification_reencrypts_updates_the_index_and_is_audited(governance, facts_changed) -> None:
    cid = ingest("crm", "C-30", name="Eva Example", email="eva@example.com", phone="+44 7700 900030").customer_id
    changed = services.customer_rectify(customer_id=cid, fields={"name": "Eva Exemplar", "email": "eva@new.example",
                                                                 "phone": None, "company": "ACME"}, actor="user:dpo")
    assert changed == ["company", "email", "name", "phone"]
    data = selectors.customer_personal_data(customer_id=cid)
    assert (data["name"], data["email"], data["phone"], data["company"]) == (
        "Eva Exemplar", "eva@new.example", None, "ACME")
    assert selectors.customer_find(email="eva@new.example") == cid
    assert selectors.customer_find(email="eva@example.com") is None
    assert selectors.customer_find(phone="+447700900030") is None
    [event] = governance("customer.rectified")
    assert (event.subject, event.details) == (cid, {"fields": ["company", "email", "name", "phone"]})
    assert [cid] in facts_changed
    assert services.customer_rectify(customer_id=cid, fields={"name": "Eva Exemplar"}, actor="user:dpo") == []
    assert len(governance("customer.rectified")) == 1


def test_rectification_to_an_identifier_of_another_customer_is_refused() -> None:
    a = ingest("crm", "C-31", email="taken@example.com").customer_id
    b = ingest("crm", "C-32", email="free@example.com").customer_id
    with pytest.raises(services.IdentifierInUse):
        services.customer_rectify(customer_id=b, fields={"email": "taken@example.com"}, actor="user:dpo")
    assert selectors.customer_personal_data(customer_id=b)["email"] == "free@example.com"
    assert selectors.customer_find(email="taken@example.com") == a


@pytest.mark.parametrize(
    ("personal", "field", "code"),
    [
        ({"email": "not-an-email"}, "email", "invalid"),
        ({"phone": "12"}, "phone", "invalid"),
        ({"date_of_birth": "31/12/1980"}, "date_of_birth", "date"),
        ({"name": "x" * 501}, "name", "max_length"),
        ({"Bad Field": "x"}, "personal", "invalid_field_name"),
    ],
)
def test_invalid_personal_values_are_rejected_with_field_and_code_and_nothing_written(personal, field, code) -> None:
    with pytest.raises(services.RecordInvalid) as info:
        services.customer_ingest(source="crm", external_id="BAD-1", personal=personal, actor=ACTOR)
    assert (info.value.field, info.value.field_code) == (field, code)
    assert "x" * 20 not in str(info.value.extra) and "not-an-email" not in str(info.value.extra)
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(("declared", "field"), [
    (["plan", "health_status"], "feature_attributes.health_status"),
    (["religiousAffiliation"], "feature_attributes"),  # not an attribute name: the field is not echoed
    (["trade_union_member"], "feature_attributes.trade_union_member"),
])
def test_a_special_category_name_declared_as_a_feature_is_refused_and_nothing_written(declared, field) -> None:
    with pytest.raises(services.RecordInvalid) as info:
        services.customer_ingest(source="crm", external_id="ART9-1", personal={}, actor=ACTOR,
                                 attributes={"plan": "gold"}, feature_attributes=declared)
    assert (info.value.field, info.value.field_code) == (field, "special_category")
    assert Customer.objects.count() == 0
