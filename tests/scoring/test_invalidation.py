"""Withdrawn consent, restriction and objection invalidate stored scores at once (GDPR Art. 7(3), 18, 21).

consent sends ``consent.signals.consent_changed`` inside its writing transaction; scoring's receiver deletes
the stored ``CustomerScore`` rows of the purposes concerned in that same transaction, so a failing
invalidation rolls the consent change back.
"""

from __future__ import annotations

import pytest

from tests.scoring.helpers import ACTOR, SCORING, customer_with_history, grant, withdraw

pytestmark = pytest.mark.django_db

PRIORITY = "service_prioritization"
MARKETING = "marketing"


def _served(cid, *purposes):
    from scoring import services

    for purpose in purposes:
        services.score_serve(customer_id=cid, purpose=purpose, requester="api:support-desk")


def _stored(cid) -> list[str]:
    from scoring.models import CustomerScore

    return sorted(CustomerScore.objects.filter(customer_id=cid).values_list("purpose", flat=True))


@pytest.fixture
def scored(active_model):
    """Two customers, each with a served score for the scoring and the service-prioritization purpose."""
    ids = [customer_with_history(purposes=(SCORING, PRIORITY), seed=seed) for seed in (1, 2)]
    for cid in ids:
        _served(cid, SCORING, PRIORITY)
        assert _stored(cid) == [SCORING, PRIORITY]
    return ids


def test_withdrawn_consent_deletes_the_stored_score_for_that_purpose_only(scored):
    from scoring.models import CustomerScore

    cid, other = scored
    withdraw(cid, SCORING)

    assert _stored(cid) == [PRIORITY]
    assert _stored(other) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 3


def test_restriction_of_all_purposes_deletes_every_stored_score_of_the_customer(scored):
    from consent.services import processing_restrict
    from scoring.models import CustomerScore

    cid, other = scored
    processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested")

    assert _stored(cid) == []
    assert _stored(other) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 2


def test_restriction_of_one_purpose_deletes_only_that_purposes_score(scored):
    from consent.services import processing_restrict
    from scoring.models import CustomerScore

    cid, _ = scored
    processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested", purpose=PRIORITY)

    assert _stored(cid) == [SCORING]
    assert CustomerScore.objects.count() == 3


def test_objection_to_one_purpose_deletes_only_that_purposes_score(scored):
    from consent.services import processing_object
    from scoring.models import CustomerScore

    cid, other = scored
    processing_object(customer_id=cid, actor=ACTOR, purpose=SCORING)

    assert _stored(cid) == [PRIORITY]
    assert _stored(other) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 3


def test_objection_to_all_purposes_deletes_every_stored_score_of_the_customer(scored):
    from consent.services import processing_object
    from scoring.models import CustomerScore

    cid, _ = scored
    processing_object(customer_id=cid, actor=ACTOR)

    assert _stored(cid) == []
    assert CustomerScore.objects.count() == 2


def test_withdrawal_recorded_by_bulk_import_deletes_the_stored_score_for_that_purpose(scored):
    from consent.services import consent_bulk_record
    from scoring.models import CustomerScore

    cid, other = scored
    results = consent_bulk_record(records=[
        {"customer": str(cid), "purpose": PRIORITY, "action": "withdraw", "source": "crm", "channel": "web"},
    ], actor=ACTOR)

    assert [r.status for r in results] == ["created"]
    assert _stored(cid) == [SCORING]
    assert _stored(other) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 3


def test_grants_lifts_and_changes_to_unscored_purposes_keep_stored_scores(scored):
    from consent.services import processing_restrict, processing_restriction_lift
    from scoring.models import CustomerScore

    cid, _ = scored
    grant(cid, SCORING)
    grant(cid, MARKETING)
    withdraw(cid, MARKETING)
    processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested", purpose=MARKETING)
    processing_restriction_lift(customer_id=cid, actor=ACTOR, purpose=MARKETING)

    assert _stored(cid) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 4


def test_consent_changed_signal_carries_pseudonym_purpose_and_kind(scored):
    from consent.services import processing_object, processing_objection_lift
    from consent.signals import consent_changed

    cid, _ = scored
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["customer_id"], kwargs["purpose"], kwargs["kind"]))

    consent_changed.connect(receiver, dispatch_uid="test.invalidation.receiver")
    try:
        withdraw(cid, SCORING)
        grant(cid, SCORING)
        processing_object(customer_id=cid, actor=ACTOR)
        processing_objection_lift(customer_id=cid, actor=ACTOR)
    finally:
        consent_changed.disconnect(dispatch_uid="test.invalidation.receiver")

    assert received == [
        (cid, SCORING, "withdrawn"), (cid, SCORING, "granted"), (cid, None, "objected"), (cid, None, "lifted"),
    ]


def _boom(**kwargs):
    raise RuntimeError("invalidation failed")


def test_failing_invalidation_rolls_back_the_withdrawal(scored, monkeypatch):
    from audit.models import GovernanceEvent
    from consent.models import ConsentEvent
    from consent.selectors import processing_gate
    from scoring import services
    from scoring.models import CustomerScore

    cid, _ = scored
    events_before = ConsentEvent.objects.filter(customer_id=cid).count()
    withdrawn_records = GovernanceEvent.objects.filter(kind="consent.withdrawn").count()
    monkeypatch.setattr(services, "scores_invalidate", _boom)

    with pytest.raises(RuntimeError):
        withdraw(cid, SCORING)

    assert events_before == 2
    assert ConsentEvent.objects.filter(customer_id=cid).count() == 2
    assert not ConsentEvent.objects.filter(customer_id=cid, action=ConsentEvent.Action.WITHDRAW).exists()
    assert GovernanceEvent.objects.filter(kind="consent.withdrawn").count() == withdrawn_records == 0
    assert processing_gate(customer_id=cid, purpose=SCORING).allowed is True
    assert _stored(cid) == [SCORING, PRIORITY]
    assert CustomerScore.objects.count() == 4


def test_failing_invalidation_rolls_back_the_restriction(scored, monkeypatch):
    from audit.models import GovernanceEvent
    from consent.models import ProcessingFlag, ProcessingFlagCurrent
    from consent.services import processing_restrict
    from scoring import services
    from scoring.models import CustomerScore

    cid, _ = scored
    monkeypatch.setattr(services, "scores_invalidate", _boom)

    with pytest.raises(RuntimeError):
        processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested")

    assert ProcessingFlag.objects.filter(customer_id=cid).count() == 0
    assert ProcessingFlagCurrent.objects.filter(customer_id=cid).count() == 0
    assert GovernanceEvent.objects.filter(kind="processing.restricted").count() == 0
    assert CustomerScore.objects.count() == 4
