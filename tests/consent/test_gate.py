"""The processing gate: consent, withdrawal, restriction, objection, erasure, re-consent, merges, bulk."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import NotFound, ValidationFailed
from consent import selectors, services
from consent.models import ConsentEvent, ConsentStateCurrent, ProcessingFlag, ProcessingFlagCurrent
from consent.selectors import GateDecision
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db

SCORING = "automated_scoring"


def gate(cid: uuid.UUID, purpose: str = SCORING, **kwargs) -> GateDecision:
    return selectors.processing_gate(customer_id=cid, purpose=purpose, **kwargs)


def test_granted_consent_opens_the_gate_with_the_event_and_notice_version(customer, grant):
    event = grant(customer)
    assert gate(customer) == GateDecision(allowed=True, code="ok", consent_event_id=event.id, notice_version="v1")
    assert gate(customer, "marketing") == GateDecision(allowed=False, code="no_consent")


def test_withdrawal_takes_effect_immediately_for_the_gate(customer, grant, withdraw):
    grant(customer)
    assert gate(customer).allowed
    withdrawal = withdraw(customer)
    assert gate(customer) == GateDecision(allowed=False, code="no_consent", consent_event_id=withdrawal.id,
                                          notice_version="v1")
    assert selectors.processing_gate_bulk(customer_ids=[customer], purpose=SCORING)[customer].allowed is False
    # The past is not rewritten: just before the withdrawal the consent was valid.
    before = selectors.processing_gate(customer_id=customer, purpose=SCORING,
                                       at=withdrawal.occurred_at - timedelta(microseconds=1))
    assert before.allowed is True


def test_withdrawing_one_purpose_leaves_the_others_granted(customer, grant, withdraw):
    grant(customer, "automated_scoring")
    grant(customer, "service_prioritization")
    withdraw(customer, "automated_scoring")
    assert gate(customer, "automated_scoring").code == "no_consent"
    assert gate(customer, "service_prioritization").code == "ok"


def test_gate_now_costs_at_most_two_queries(customer, grant, django_assert_max_num_queries):
    grant(customer)
    with django_assert_max_num_queries(2):
        assert gate(customer).allowed


def test_restriction_blocks_the_gate_and_lifting_restores_it(customer, grant):
    grant(customer)
    grant(customer, "marketing")
    services.processing_restrict(customer_id=customer, actor=ACTOR, reason="accuracy_contested", purpose=SCORING)
    assert gate(customer) == GateDecision(allowed=False, code="restricted")
    assert gate(customer, "marketing").code == "ok"  # restricted for one purpose only
    services.processing_restriction_lift(customer_id=customer, actor=ACTOR, purpose=SCORING)
    assert gate(customer).code == "ok"


def test_restriction_of_all_purposes_blocks_every_purpose_until_lifted(customer, grant):
    for purpose in ("automated_scoring", "service_prioritization", "marketing"):
        grant(customer, purpose)
    services.processing_restrict(customer_id=customer, actor=ACTOR, reason="unlawful_processing")
    assert {p: gate(customer, p).code for p in ("automated_scoring", "service_prioritization", "marketing")} == {
        "automated_scoring": "restricted", "service_prioritization": "restricted", "marketing": "restricted"}
    services.processing_restriction_lift(customer_id=customer, actor=ACTOR)
    assert gate(customer, "marketing").code == "ok"
    assert ProcessingFlagCurrent.objects.filter(customer_id=customer).count() == 0


def test_lifting_all_restrictions_also_lifts_purpose_specific_ones(customer, grant):
    grant(customer)
    services.processing_restrict(customer_id=customer, actor=ACTOR, reason="legal_claims", purpose=SCORING)
    services.processing_restrict(customer_id=customer, actor=ACTOR, reason="legal_claims", purpose="marketing")
    services.processing_restriction_lift(customer_id=customer, actor=ACTOR)
    assert gate(customer).code == "ok"
    assert selectors.processing_flags_active(customer_id=customer) == []


def test_objection_blocks_the_gate_and_lifting_restores_it(customer, grant):
    grant(customer)
    services.processing_object(customer_id=customer, actor=ACTOR, purpose=SCORING)
    assert gate(customer) == GateDecision(allowed=False, code="objected")
    assert selectors.processing_flags_active(customer_id=customer) == [{"kind": "objection", "purpose": SCORING}]
    services.processing_objection_lift(customer_id=customer, actor=ACTOR, purpose=SCORING)
    assert gate(customer).code == "ok"


def test_restriction_takes_precedence_over_objection_and_missing_consent(customer):
    services.processing_object(customer_id=customer, actor=ACTOR)
    assert gate(customer).code == "objected"
    services.processing_restrict(customer_id=customer, actor=ACTOR, reason="accuracy_contested")
    assert gate(customer).code == "restricted"


def test_gate_reports_unknown_customers_as_not_found():
    assert gate(uuid.uuid4()) == GateDecision(allowed=False, code="not_found")


def test_gate_reports_erased_customers_as_erased_and_their_consent_is_gone(customer, grant):
    from profiles.services import customer_erase

    grant(customer)
    services.processing_object(customer_id=customer, actor=ACTOR, purpose="marketing")
    deleted = services.consent_erase_subject(customer_id=customer, actor=ACTOR)
    customer_erase(customer_id=customer, actor=ACTOR)
    assert deleted == 2
    assert gate(customer) == GateDecision(allowed=False, code="erased")
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 0
    assert ProcessingFlag.objects.filter(customer_id=customer).count() == 0
    assert ConsentStateCurrent.objects.filter(customer_id=customer).count() == 0
    assert selectors.processing_gate_bulk(customer_ids=[customer], purpose=SCORING)[customer].allowed is False


def test_unknown_purpose_is_a_validation_error(customer):
    with pytest.raises(ValidationFailed) as exc:
        gate(customer, "astrology")
    assert exc.value.code == "invalid"
    with pytest.raises(ValidationFailed):
        selectors.processing_gate_bulk(customer_ids=[customer], purpose="astrology")


def test_new_notice_requiring_reconsent_closes_the_gate_until_granted_again(customer, grant):
    old = grant(customer, at=timezone.now() - timedelta(days=3))
    notice = services.notice_publish(purpose=SCORING, text="We now also use your app usage.", requires_reconsent=True,
                                     actor=ACTOR)
    assert notice.version == "v2"
    assert gate(customer) == GateDecision(allowed=False, code="no_consent", consent_event_id=old.id,
                                          notice_version="v1")
    assert selectors.consent_state(customer_id=customer, purpose=SCORING).status == "reconsent_required"
    assert gate(customer, at=timezone.now() - timedelta(days=1)).allowed is True  # before v2 was published
    renewed = grant(customer)
    assert gate(customer) == GateDecision(allowed=True, code="ok", consent_event_id=renewed.id, notice_version="v2")


def test_new_notice_without_reconsent_keeps_earlier_grants_valid(customer, grant):
    grant(customer)
    services.notice_publish(purpose=SCORING, text="Typo fixed.", requires_reconsent=False, actor=ACTOR)
    assert gate(customer).allowed is True


def test_bulk_gate_matches_the_single_gate_for_every_state(new_customer, grant, withdraw):
    ids = [new_customer() for _ in range(7)]
    grant(ids[0])
    grant(ids[1])
    withdraw(ids[1])
    grant(ids[2])
    services.processing_restrict(customer_id=ids[2], actor=ACTOR, reason="accuracy_contested")
    grant(ids[3])
    services.processing_object(customer_id=ids[3], actor=ACTOR, purpose=SCORING)
    grant(ids[4], "marketing")
    grant(ids[5])
    services.processing_restrict(customer_id=ids[5], actor=ACTOR, reason="legal_claims", purpose="marketing")
    unknown = uuid.uuid4()
    decisions = selectors.processing_gate_bulk(customer_ids=[*ids, unknown], purpose=SCORING)
    assert {i: decisions[c].code for i, c in enumerate(ids)} == {
        0: "ok", 1: "no_consent", 2: "restricted", 3: "objected", 4: "no_consent", 5: "ok", 6: "no_consent"}
    for cid in ids:
        assert decisions[cid] == gate(cid)
    assert decisions[unknown].allowed is False


def test_bulk_gate_uses_a_constant_number_of_queries_per_chunk(new_customer, grant, django_assert_max_num_queries):
    ids = [new_customer() for _ in range(12)]
    for cid in ids[::2]:
        grant(cid)
    chunk = selectors.bulk_chunk_size()
    one_chunk = ids + [uuid.uuid4() for _ in range(chunk - len(ids))]
    # purpose + consent + flags + existence + erased (some ids are unknown)
    with django_assert_max_num_queries(5):
        now = selectors.processing_gate_bulk(customer_ids=one_chunk, purpose=SCORING)
    with django_assert_max_num_queries(5):
        past = selectors.processing_gate_bulk(customer_ids=one_chunk, purpose=SCORING, at=timezone.now())
    assert sum(d.allowed for d in now.values()) == 6
    assert {c: d.code for c, d in now.items()} == {c: d.code for c, d in past.items()}
    assert sum(d.code == "not_found" for d in now.values()) == chunk - len(ids)
    three_chunks = one_chunk + [uuid.uuid4() for _ in range(2 * chunk)]
    with django_assert_max_num_queries(1 + 4 * 3):
        assert sum(d.allowed for d in selectors.processing_gate_bulk(customer_ids=three_chunks,
                                                                     purpose=SCORING).values()) == 6


def test_identity_merge_carries_consent_over_and_the_latest_decision_wins(new_customer, grant, withdraw):
    from profiles.selectors import customer_resolve
    from profiles.services import customer_ingest

    email, phone = f"merge.{uuid.uuid4().hex[:8]}@example.com", "+447700900" + f"{uuid.uuid4().int % 1000:03d}"
    survivor = new_customer(email=email, phone="", source="crm")
    alias = new_customer(email="", phone=phone, source="erp")
    now = timezone.now()
    grant(survivor, at=now - timedelta(days=10))
    grant(alias, at=now - timedelta(days=20))
    withdrawal = withdraw(alias, at=now - timedelta(days=5))  # the person withdrew through the other system
    assert gate(survivor).allowed is True

    customer_ingest(source="support", external_id=f"SUP-{uuid.uuid4().hex[:8]}",
                    personal={"email": email, "phone": phone}, actor=ACTOR)
    assert customer_resolve(customer_id=alias) == survivor
    assert gate(survivor).code == "no_consent"
    assert gate(alias).code == "no_consent"  # an alias is gated as the customer it was merged into
    assert selectors.processing_gate_bulk(customer_ids=[alias], purpose=SCORING)[alias].allowed is False
    carried = selectors.consent_state(customer_id=survivor, purpose=SCORING)
    assert (carried.status, carried.occurred_at) == ("withdrawn", withdrawal.occurred_at)
    assert gate(survivor, at=now - timedelta(days=7)).allowed is True
    # Withdrawals sent for the alias now land on the survivor.
    grant(alias)
    assert gate(survivor).allowed is True


def test_consent_reads_of_unknown_customers_raise_not_found():
    with pytest.raises(NotFound):
        selectors.customer_consents(customer_id=uuid.uuid4())
    with pytest.raises(NotFound):
        selectors.customer_consent_history(customer_id=uuid.uuid4())
