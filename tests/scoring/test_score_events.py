"""Score events (contract 3): ``score.tier_changed`` / ``score.risk_raised`` are recorded in the decision's
transaction, by the real-time and the batch paths, only when the tier changes or the risk level rises against
the previous stored score."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.scoring.helpers import SCORING, customer_with_history

pytestmark = pytest.mark.django_db

PAYLOAD_KEYS = {"decision_id", "tier", "previous_tier", "risk_level", "previous_risk_level", "clv",
                "churn_probability", "upsell", "advocacy", "service_level", "reasons"}
RISK = {"low": 0, "medium": 1, "high": 2}


def _score_events(**filters):
    from events.models import OutboxEvent

    return list(OutboxEvent.objects.filter(type__startswith="score.", **filters).order_by("id"))


def _pretend_stored(cid, *, tier, risk_level, stale=True):
    """The stored score says something else than the model will compute (as after new data)."""
    from scoring.models import CustomerScore

    assert CustomerScore.objects.filter(customer_id=cid, purpose=SCORING).update(
        tier=tier, risk_level=risk_level, stale=stale) == 1


def _other_tier(tier):
    return "Basic" if tier != "Basic" else "VIP"


def test_first_score_and_unchanged_scores_record_no_event(active_model):
    from scoring import services

    cid = customer_with_history()
    services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    services.score_refresh(customer_id=cid, purpose=SCORING)
    services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    assert _score_events() == []


def test_real_time_score_that_changes_the_tier_records_the_contract_payload(active_model):
    from audit.models import DecisionRecord
    from scoring import services
    from scoring.models import CustomerScore

    cid = customer_with_history()
    first = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    previous_tier = _other_tier(first.tier)
    _pretend_stored(cid, tier=previous_tier, risk_level="low")
    result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    events = _score_events()
    expected_types = ["score.tier_changed"] + (["score.risk_raised"] if RISK[result.risk_level] > 0 else [])
    assert [e.type for e in events] == expected_types
    stored = CustomerScore.objects.get(customer_id=cid, purpose=SCORING)
    for event in events:
        assert (event.customer_id, event.purpose) == (cid, SCORING)
        assert set(event.payload) == PAYLOAD_KEYS
        assert event.payload["decision_id"] == result.decision_id
        assert DecisionRecord.objects.get(pk=result.decision_id).customer == cid
        assert (event.payload["tier"], event.payload["previous_tier"]) == (result.tier, previous_tier)
        assert (event.payload["risk_level"], event.payload["previous_risk_level"]) == (result.risk_level, "low")
        assert event.payload["clv"] == round(float(stored.clv), 2)
        assert event.payload["churn_probability"] == round(float(stored.churn_probability), 4)
        assert event.payload["service_level"] == stored.service_level
        assert all(isinstance(r, str) and r for r in event.payload["reasons"])
        assert 1 <= len(event.payload["reasons"]) <= 3


def test_refresh_records_risk_raised_only_when_the_risk_level_rises(active_model):
    from scoring import services

    cid = customer_with_history()
    first = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    # same tier, risk said to be lower before: a rise (unless the customer is at low risk: nothing)
    _pretend_stored(cid, tier=first.tier, risk_level="low", stale=False)
    services.score_refresh(customer_id=cid, purpose=SCORING)
    expected = ["score.risk_raised"] if RISK[first.risk_level] > 0 else []
    assert [e.type for e in _score_events()] == expected
    # risk said to be higher before: a fall is not an event
    _pretend_stored(cid, tier=first.tier, risk_level="high", stale=False)
    before = len(_score_events())
    services.score_refresh(customer_id=cid, purpose=SCORING)
    assert len(_score_events()) == before


def test_score_event_rolls_back_with_its_decision(active_model, monkeypatch):
    from scoring import services
    from tests.scoring.helpers import decisions_for

    cid = customer_with_history()
    first = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:test")
    _pretend_stored(cid, tier=_other_tier(first.tier), risk_level="low", stale=False)
    n_decisions = len(decisions_for(cid))

    def failing(**kwargs):
        raise RuntimeError("the last write of the refresh fails, after the event")

    from profiles import services as profiles_services

    monkeypatch.setattr(profiles_services, "customer_mark_fresh", failing)
    with pytest.raises(RuntimeError):
        services.score_refresh(customer_id=cid, purpose=SCORING)
    assert _score_events() == []
    assert len(decisions_for(cid)) == n_decisions


def test_batch_rescore_records_events_for_changed_customers_with_one_insert_per_chunk(active_model, seed_population):
    from audit.models import DecisionRecord
    from events.models import OutboxEvent
    from scoring import services
    from scoring.models import CustomerScore

    ids = seed_population(40)

    def run_all():
        run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=20)
        inserts = []
        for chunk in services.rescore_pending_chunks(run_id=run.id):
            with CaptureQueriesContext(connection) as ctx:
                services.rescore_chunk(run_id=run.id, customer_ids=chunk)
            inserts.append(sum(1 for q in ctx.captured_queries
                               if (q["sql"] or "").lstrip().upper().startswith("INSERT")  # COPY: no SQL text
                               and OutboxEvent._meta.db_table in (q["sql"] or "")))
        run.refresh_from_db()
        return run, inserts

    run, inserts = run_all()
    assert _score_events() == [] and inserts == [0, 0]  # first scores: nothing changed
    real = dict(CustomerScore.objects.filter(purpose=SCORING).values_list("customer_id", "tier"))
    risk = dict(CustomerScore.objects.filter(purpose=SCORING).values_list("customer_id", "risk_level"))
    CustomerScore.objects.filter(purpose=SCORING).update(tier="Standard", risk_level="low")
    run, inserts = run_all()
    changed = {cid for cid in ids if real[cid] != "Standard"}
    raised = {cid for cid in ids if RISK[risk[cid]] > 0}
    tier_events = _score_events(type="score.tier_changed")
    risk_events = _score_events(type="score.risk_raised")
    assert {e.customer_id for e in tier_events} == changed and len(tier_events) == len(changed)
    assert {e.customer_id for e in risk_events} == raised and len(risk_events) == len(raised)
    assert run.tier_changes == len(changed)
    assert all(n <= 1 for n in inserts) and sum(inserts) >= 1  # set-based: at most one outbox INSERT per chunk
    for event in tier_events + risk_events:
        assert set(event.payload) == PAYLOAD_KEYS
        decision = DecisionRecord.objects.get(pk=event.payload["decision_id"])
        assert decision.customer == event.customer_id
        assert decision.decision_key == f"{run.id}:{event.customer_id}:{SCORING}"
        assert event.payload["previous_tier"] == "Standard" and event.payload["previous_risk_level"] == "low"
        assert event.payload["tier"] == real[event.customer_id]
        assert event.payload["risk_level"] == risk[event.customer_id]
    # one more unchanged run: no event
    before = OutboxEvent.objects.count()
    run_all()
    assert OutboxEvent.objects.count() == before


def test_in_transaction_receivers_see_batch_events(active_model, seed_population):
    from events.signals import event_recorded
    from scoring import services
    from scoring.models import CustomerScore

    seen = []

    def receiver(sender, event, **kwargs):
        seen.append((event.type, event.pk is not None, connection.in_atomic_block))

    ids = seed_population(10)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=10)
    for chunk in services.rescore_pending_chunks(run_id=run.id):
        services.rescore_chunk(run_id=run.id, customer_ids=chunk)
    CustomerScore.objects.filter(purpose=SCORING).update(tier="Standard", risk_level="low")
    event_recorded.connect(receiver)
    try:
        run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=10)
        for chunk in services.rescore_pending_chunks(run_id=run.id):
            services.rescore_chunk(run_id=run.id, customer_ids=chunk)
    finally:
        event_recorded.disconnect(receiver)
    assert len(seen) == len(_score_events()) > 0
    assert all(has_pk and atomic for _, has_pk, atomic in seen)
    assert len(ids) == 10
