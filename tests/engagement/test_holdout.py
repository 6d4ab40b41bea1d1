"""The holdout group: a stable keyed-hash assignment, its share, and its audited decision."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.engagement.helpers import SCORING, SERVICE, customer, score_event


def test_same_key_same_members_and_share_within_tolerance_on_10k_ids(settings: Any) -> None:
    from engagement import services

    ids = [uuid.UUID(int=i * 7919 + 1) for i in range(10_000)]
    first = {cid for cid in ids if services.holdout_is_member(cid, share=0.10)}
    again = {cid for cid in ids if services.holdout_is_member(cid, share=0.10)}
    assert first == again
    assert abs(len(first) / len(ids) - 0.10) < 0.01  # 3 standard errors ~ 0.009
    # a different key gives a different (but equally sized) group; the key is derived, not the raw one
    other_key = b"k" * 32
    other = {cid for cid in ids if services.holdout_is_member(cid, share=0.10, key=other_key)}
    assert other != first and abs(len(other) / len(ids) - 0.10) < 0.01
    assert services._holdout_key() != bytes(settings.BLIND_INDEX_KEY)
    # a larger share keeps every member of the smaller one (monotone in the share)
    assert first <= {cid for cid in ids if services.holdout_is_member(cid, share=0.2)}


@pytest.mark.django_db
def test_assignment_is_recorded_once_as_an_audited_decision(settings: Any) -> None:
    from audit.models import DecisionRecord
    from engagement import services
    from engagement.models import HoldoutAssignment

    settings.ENGAGEMENT_HOLDOUT_SHARE = 0.10
    cid = customer(SCORING, SERVICE)
    assignment = services.holdout_assign(customer_id=cid)
    assert assignment is not None
    assert assignment.holdout == services.holdout_is_member(cid, share=0.10)
    decision = DecisionRecord.objects.get(pk=assignment.decision_id)
    assert (decision.decision_type, decision.purpose, decision.customer) == ("holdout_assignment", SCORING, cid)
    assert decision.outputs["holdout"] == assignment.holdout and decision.outputs["share"] == 0.10
    assert decision.consent_event_id is not None
    assert services.holdout_assign(customer_id=cid).pk == assignment.pk
    score_event(cid)
    assert HoldoutAssignment.objects.count() == 1
    assert DecisionRecord.objects.filter(decision_type="holdout_assignment").count() == 1


@pytest.mark.django_db
def test_no_assignment_without_consent() -> None:
    from audit.models import DecisionRecord
    from engagement import services
    from engagement.models import HoldoutAssignment

    cid = customer(SERVICE)
    assert services.holdout_assign(customer_id=cid) is None
    assert HoldoutAssignment.objects.count() == 0
    assert not DecisionRecord.objects.filter(decision_type="holdout_assignment").exists()


@pytest.mark.django_db
def test_the_customer_can_know_their_assignment() -> None:
    from engagement import selectors, services

    cid = customer(SCORING)
    assert selectors.holdout_for_customer(customer_id=cid) is None
    assignment = services.holdout_assign(customer_id=cid)
    known = selectors.holdout_for_customer(customer_id=cid)
    assert known is not None and known["holdout"] == assignment.holdout and known["summary"]
