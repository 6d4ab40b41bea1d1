"""Next-best actions: creation from score events and the sweep, consent gating, holdout, no duplicates,
cancellation by withdrawal, restriction, objection and erasure, outcomes as training labels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.engagement.helpers import (
    ACTOR,
    MARKETING,
    SCORING,
    SERVICE,
    customer,
    events_of,
    open_actions,
    score_event,
    store_score,
    withdraw,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_holdout(settings: Any) -> None:
    settings.ENGAGEMENT_HOLDOUT_SHARE = 0.0


def test_risk_raised_event_creates_a_retention_call_in_the_decisions_transaction() -> None:
    from engagement.models import Action

    cid = customer(SCORING, SERVICE)
    score_event(cid, churn=0.8, clv=1000.0, decision_id=42)
    action = Action.objects.get(customer_id=cid)
    assert (action.type, action.status, action.purpose, action.tier) == ("retention_call", "open", SERVICE, "VIP")
    assert action.value_at_stake == 800.0
    assert action.decision_id == 42
    assert action.source == "event"
    assert action.reason.startswith("VIP customer at high churn risk (80 %). Main reasons: Days since last order")
    assert action.due_at - action.created_at == timedelta(hours=2)  # the VIP first-response time
    assert action.scores == {"clv": 1000.0, "churn_probability": 0.8, "risk_level": "high", "upsell": 0.1,
                             "advocacy": 0.1}
    [created] = events_of(["action.created"])
    assert created.customer_id == cid and created.purpose == SERVICE
    assert created.payload["action_id"] == action.pk and created.payload["action_type"] == "retention_call"
    assert set(created.payload) == {"action_id", "action_type", "status", "outcome", "tier", "priority",
                                    "value_at_stake", "due_at", "reason", "decision_id"}


def test_an_event_rolled_back_leaves_no_action() -> None:
    from engagement.models import Action

    cid = customer(SCORING, SERVICE)
    with pytest.raises(RuntimeError), transaction.atomic():
        score_event(cid)
        raise RuntimeError("the decision's transaction fails")
    assert Action.objects.count() == 0


def test_nothing_is_created_without_consent_for_the_scores_purpose() -> None:
    from engagement.models import Action

    cid = customer(SERVICE, MARKETING)  # no automated_scoring consent
    score_event(cid, upsell=0.9)
    assert Action.objects.count() == 0
    assert events_of(["action.created"]) == []


def test_nothing_is_created_without_consent_for_the_actions_own_purpose() -> None:
    from engagement.models import Action

    cid = customer(SCORING)  # no service_prioritization, no marketing
    score_event(cid, upsell=0.9, advocacy=0.9, risk="high")
    assert Action.objects.count() == 0


def test_upsell_offer_needs_active_marketing_consent_at_creation() -> None:
    cid = customer(SCORING, SERVICE, MARKETING)
    withdraw(cid, MARKETING)
    score_event(cid, risk="low", churn=0.1, upsell=0.9)
    assert open_actions(cid) == []
    other = customer(SCORING, MARKETING)
    score_event(other, risk="low", churn=0.1, upsell=0.9, advocacy=0.8)
    assert open_actions(other) == [("advocacy_ask", MARKETING), ("upsell_offer", MARKETING)]


def test_standard_tier_at_high_risk_gets_no_retention_call() -> None:
    cid = customer(SCORING, SERVICE)
    score_event(cid, tier="Standard", risk="high")
    assert open_actions(cid) == []


def test_no_duplicate_open_action_per_customer_and_type() -> None:
    from engagement.models import Action

    cid = customer(SCORING, SERVICE)
    score_event(cid)
    score_event(cid, type="score.tier_changed")
    assert Action.objects.filter(customer_id=cid).count() == 1
    assert len(events_of(["action.created"])) == 1


def test_the_database_refuses_a_second_open_action_of_a_type() -> None:
    from engagement.models import Action

    cid = customer(SCORING, SERVICE)
    score_event(cid)
    first = Action.objects.get(customer_id=cid)
    with pytest.raises(IntegrityError), transaction.atomic():
        Action.objects.create(customer_id=cid, type="retention_call", status="claimed", purpose=SERVICE, tier="VIP",
                              priority=1, due_at=timezone.now(), reason="x", source="test")
    first.status = "completed"
    first.outcome = "retained"
    first.closed_at = timezone.now()
    first.save()
    score_event(cid)  # recently closed: the cool-down holds it back
    assert Action.objects.filter(customer_id=cid).count() == 1
    first.closed_at = timezone.now() - timedelta(days=31)
    first.save()
    score_event(cid)  # closed before the cool-down: a new one
    assert Action.objects.filter(customer_id=cid).count() == 2


@pytest.mark.parametrize("change", ["withdraw_service", "withdraw_scoring", "restrict", "object_all"])
def test_consent_changes_cancel_open_actions_in_the_same_transaction(change: str) -> None:
    from consent import services as consent_services
    from engagement.models import Action

    cid = customer(SCORING, SERVICE, MARKETING)
    score_event(cid, upsell=0.9)
    assert open_actions(cid) == [("retention_call", SERVICE), ("upsell_offer", MARKETING)]
    if change == "withdraw_service":
        withdraw(cid, SERVICE)
        expected = [("upsell_offer", MARKETING)]  # purpose-aware: the marketing action stays
    elif change == "withdraw_scoring":
        withdraw(cid, SCORING)
        expected = []  # every action is built on the scores
    elif change == "restrict":
        consent_services.processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested")
        expected = []
    else:
        consent_services.processing_object(customer_id=cid, actor=ACTOR)
        expected = []
    assert open_actions(cid) == expected
    cancelled = Action.objects.filter(customer_id=cid, status="cancelled")
    assert cancelled.count() == 2 - len(expected)
    assert all(a.close_reason.startswith("consent_") and a.closed_at is not None for a in cancelled)
    assert all(a.scores == {} and a.reason == "" and a.value_at_stake == 0.0 for a in cancelled)
    assert len(events_of(["action.closed"])) == 2 - len(expected)


def test_a_failing_cancellation_rolls_the_withdrawal_back(monkeypatch: Any) -> None:
    from consent.selectors import processing_gate
    from engagement import services

    cid = customer(SCORING, SERVICE)
    score_event(cid)

    def boom(**kwargs: Any) -> int:
        raise RuntimeError("cancellation failed")

    monkeypatch.setattr(services, "actions_cancel_for_consent", boom)
    with pytest.raises(RuntimeError):
        withdraw(cid, SERVICE)
    assert processing_gate(customer_id=cid, purpose=SERVICE).allowed
    assert open_actions(cid) == [("retention_call", SERVICE)]


def test_erasure_cancels_open_actions_strips_snapshots_and_forgets_the_holdout() -> None:
    from engagement.models import Action, HoldoutAssignment
    from subject_rights.services import erasure_replay

    cid = customer(SCORING, SERVICE)
    score_event(cid)
    assert HoldoutAssignment.objects.filter(customer_id=cid).exists()
    assert erasure_replay(customer_id=cid, actor=ACTOR)
    action = Action.objects.get(customer_id=cid)
    assert (action.status, action.close_reason, action.scores, action.reason, action.value_at_stake) == (
        "cancelled", "erasure", {}, "", 0.0)
    assert not HoldoutAssignment.objects.filter(customer_id=cid).exists()
    score_event(cid)  # an erased customer gets nothing new
    assert open_actions(cid) == []


def test_holdout_members_receive_no_proactive_actions(settings: Any) -> None:
    from engagement.models import Action, HoldoutAssignment

    settings.ENGAGEMENT_HOLDOUT_SHARE = 0.5
    ids = [customer(SCORING, SERVICE, MARKETING) for _ in range(12)]
    for cid in ids:
        score_event(cid, upsell=0.9)
    members = set(HoldoutAssignment.objects.filter(holdout=True).values_list("customer_id", flat=True))
    assert 0 < len(members) < 12
    with_actions = set(Action.objects.values_list("customer_id", flat=True))
    assert with_actions == set(ids) - members


def test_sweep_creates_missing_actions_sla_breach_and_win_back_once() -> None:
    from engagement import services
    from engagement.models import Action
    from tests.factories import make_order, make_ticket

    vip = customer(SCORING, SERVICE)  # retention_call
    late = customer(SCORING, SERVICE, tier="Premium", risk="low", churn=0.1)
    make_ticket(late, days_ago=1, closed_after_days=None, text="")  # Premium: 8 h first response, 24 h ago
    fresh = customer(SCORING, SERVICE, tier="Basic", risk="low", churn=0.1)
    make_ticket(fresh, days_ago=0.5, closed_after_days=None, text="")  # Basic: 48 h, not late yet
    lapsed = customer(SCORING, MARKETING, tier="Standard", risk="medium", churn=0.5)
    make_order(lapsed, amount="900.00", days_ago=400)
    recent = customer(SCORING, MARKETING, tier="Standard", risk="medium", churn=0.5)
    make_order(recent, amount="900.00", days_ago=30)
    no_consent = customer(SCORING)  # VIP at high risk but no service_prioritization consent
    counts = services.actions_sweep()
    assert counts.created == {"retention_call": 1, "sla_breach": 1, "win_back": 1}
    assert sorted(Action.objects.values_list("type", "customer_id")) == sorted(
        [("retention_call", vip), ("sla_breach", late), ("win_back", lapsed)])
    assert counts.skipped_no_consent == 1 and no_consent not in set(Action.objects.values_list("customer_id", flat=True))
    breach = Action.objects.get(type="sla_breach")
    assert breach.ticket_id is not None and "past the Premium first-response time of 8 h" in breach.reason
    assert services.actions_sweep().created == {}  # idempotent
    assert Action.objects.count() == 3
    services.action_complete(action_id=breach.pk, outcome="retained", actor="test")
    assert services.actions_sweep().created == {}  # the same late ticket makes no second sla_breach
    assert Action.objects.count() == 3


def test_a_completed_rescore_run_queues_the_sweep(django_capture_on_commit_callbacks: Any) -> None:
    from engagement.models import Action
    from scoring import signals
    from scoring.models import RescoreRun

    cid = customer(SCORING, SERVICE)
    with django_capture_on_commit_callbacks(execute=True):
        signals.rescore_run_completed.send(sender=RescoreRun, run_id=None, purpose=SCORING)
    assert open_actions(cid) == [("retention_call", SERVICE)]
    assert Action.objects.get(customer_id=cid).source == "sweep"


@pytest.mark.parametrize(("action_type", "outcome", "label"), [
    ("retention_call", "retained", "renewed"),
    ("retention_call", "churned", "churned"),
    ("retention_call", "no_answer", None),
    ("upsell_offer", "accepted", "upsell_accepted"),
    ("upsell_offer", "declined", "upsell_declined"),
])
def test_completion_outcome_becomes_a_training_label(action_type: str, outcome: str, label: str | None) -> None:
    from engagement import services
    from engagement.models import Action
    from scoring.models import Outcome

    cid = customer(SCORING, SERVICE, MARKETING)
    score_event(cid, upsell=0.9)
    action = Action.objects.get(customer_id=cid, type=action_type)
    services.action_complete(action_id=action.pk, outcome=outcome, actor="client:crm")
    action.refresh_from_db()
    assert (action.status, action.outcome) == ("completed", outcome)
    kinds = list(Outcome.objects.filter(customer_id=cid).values_list("kind", flat=True))
    assert kinds == ([label] if label else [])
    closed = events_of(["action.closed"])[-1]
    assert closed.payload["outcome"] == outcome and closed.payload["status"] == "completed"


def test_store_score_helper_sanity() -> None:
    cid = customer(SCORING)
    row = store_score(cid, tier="Premium")
    assert row.tier == "Premium"


def test_a_merged_alias_loses_its_open_actions() -> None:
    from profiles import signals as profiles_signals

    alias = customer(SCORING, SERVICE)
    survivor = customer(SCORING, SERVICE)
    score_event(alias)
    with transaction.atomic():
        profiles_signals.customers_merged.send(sender=None, survivor_id=survivor, loser_ids=[alias])
    assert open_actions(alias) == []


def test_sweep_refers_to_the_scores_audited_decision_when_the_score_row_lacks_it() -> None:
    from audit import services as audit_services
    from engagement import services
    from engagement.models import Action

    cid = customer(SCORING, SERVICE, decision_id=None)
    decision = audit_services.decision_record(
        customer=cid, purpose=SCORING, decision_type="batch_rescore", requester="job:test", consent_event_id=None,
        notice_version=None, model_versions={"full": "engagement-test"}, features_hash="f" * 64,
        outputs={"tier": "VIP"}, sealed_details=None)
    services.actions_sweep()
    assert Action.objects.get(customer_id=cid).decision_id == decision.pk
