"""Batch rescoring: tier shares, the gate at execution time, idempotency under retry, resumability."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import pytest

from tests.scoring.helpers import SCORING, decisions_for, withdraw

pytestmark = pytest.mark.django_db


def _run_all(run_id):
    from scoring import services

    return [services.rescore_chunk(run_id=run_id, customer_ids=ids)
            for ids in services.rescore_pending_chunks(run_id=run_id)]


def test_tier_shares_match_the_configured_percentiles_among_scored_customers(active_model, seed_population, settings):
    from scoring import services
    from scoring.models import CustomerScore

    ids = seed_population(80)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=25)
    assert run.chunks_total == 4
    _run_all(run.id)
    tiers = Counter(CustomerScore.objects.filter(purpose=SCORING).values_list("tier", flat=True))
    assert sum(tiers.values()) == len(ids)
    assert tiers == {"VIP": 8, "Premium": 16, "Standard": 48, "Basic": 8}

    # A different configuration gives exactly its shares on the next run.
    settings.TIER_SHARES = {"VIP": 0.25, "Premium": 0.25, "Standard": 0.25, "Basic": 0.25}
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=30)
    _run_all(run.id)
    tiers = Counter(CustomerScore.objects.filter(purpose=SCORING).values_list("tier", flat=True))
    assert tiers == {"VIP": 20, "Premium": 20, "Standard": 20, "Basic": 20}


def test_higher_tiers_have_higher_clv(active_model, seed_population):
    from scoring import services
    from scoring.models import CustomerScore

    seed_population(60)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=60)
    _run_all(run.id)
    order = ["Basic", "Standard", "Premium", "VIP"]
    rows = list(CustomerScore.objects.values_list("tier", "clv"))
    for lower, upper in zip(order, order[1:], strict=False):
        assert max(c for t, c in rows if t == lower) <= min(c for t, c in rows if t == upper) + 1e-6


def test_customers_without_consent_at_execution_are_skipped_counted_and_their_scores_deleted(
        active_model, seed_population):
    from consent.services import processing_restrict
    from scoring import selectors, services
    from scoring.models import CustomerScore

    ids = seed_population(20)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=10)
    _run_all(run.id)
    assert CustomerScore.objects.count() == 20
    withdraw(ids[0])
    processing_restrict(customer_id=ids[1], actor="job:test", reason="accuracy_contested")
    before = {c: len(decisions_for(c)) for c in ids[:2]}

    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=10)
    _run_all(run.id)
    progress = selectors.rescore_run_progress(run_id=run.id)
    assert progress["status"] == "completed"
    assert progress["scored"] == 18
    assert progress["skipped"] == {"no_consent": 1, "restricted": 1, "objected": 0, "erased": 0}
    assert progress["done"] == progress["total"] == 20
    assert {c: len(decisions_for(c)) for c in ids[:2]} == before
    assert not CustomerScore.objects.filter(customer_id__in=ids[:2]).exists()
    assert CustomerScore.objects.count() == 18


def test_batch_decisions_are_keyed_per_run_customer_and_purpose_and_tier_changes_are_marked(
        active_model, seed_population):
    from scoring import services
    from scoring.models import CustomerScore

    ids = seed_population(12)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=12)
    _run_all(run.id)
    decision = decisions_for(ids[0])[0]
    assert decision.decision_key == f"{run.id}:{ids[0]}:{SCORING}"
    assert decision.decision_type == "batch_rescore"
    assert decision.sealed_details

    current = CustomerScore.objects.get(customer_id=ids[0]).tier
    other = "Basic" if current != "Basic" else "VIP"
    CustomerScore.objects.filter(customer_id=ids[0]).update(tier=other)
    run2 = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=12)
    _run_all(run2.id)
    latest = decisions_for(ids[0])[-1]
    assert latest.decision_type == "tier_change"
    assert latest.outputs["tier"] == current


def test_a_retried_chunk_writes_nothing_twice(active_model, seed_population):
    from audit.models import DecisionRecord
    from scoring import services
    from scoring.models import CustomerScore, RescoreRun

    ids = seed_population(15)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=15)
    [chunk_ids] = services.rescore_pending_chunks(run_id=run.id)
    first = services.rescore_chunk(run_id=run.id, customer_ids=chunk_ids)
    scores = {r.customer_id: (r.tier, r.clv) for r in CustomerScore.objects.all()}
    again = services.rescore_chunk(run_id=run.id, customer_ids=list(reversed(chunk_ids)))
    assert again.already_done and again.scored == first.scored == 15
    assert DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).count() == 15
    assert {r.customer_id: (r.tier, r.clv) for r in CustomerScore.objects.all()} == scores
    run.refresh_from_db()
    assert (run.done, run.scored, run.chunks_done, run.status) == (15, 15, 1, RescoreRun.Status.COMPLETED)
    assert all(len(decisions_for(c)) == 1 for c in ids)


@pytest.mark.parametrize(("fast", "writer"), [(True, "decision_records_bulk_encoded"),
                                              (False, "decision_records_bulk")])
def test_a_chunk_that_dies_midway_leaves_nothing_and_its_redelivery_scores_everyone_once(
        active_model, seed_population, settings, fast, writer):
    from audit import services as audit_services
    from audit.models import DecisionRecord
    from scoring import services
    from scoring.models import CustomerScore, RescoreChunk

    settings.RESCORE_FAST_PATH = fast
    ids = seed_population(16)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=8)
    chunks = services.rescore_pending_chunks(run_id=run.id)
    services.rescore_chunk(run_id=run.id, customer_ids=chunks[0])

    real_bulk = getattr(audit_services, writer)

    def dies_after_writing(**kwargs):
        real_bulk(**kwargs)  # the decisions are written ... then the worker dies
        raise SystemExit("worker killed")

    with mock.patch.object(audit_services, writer, side_effect=dies_after_writing), \
            pytest.raises(SystemExit):
        services.rescore_chunk(run_id=run.id, customer_ids=chunks[1])
    assert DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).count() == 8  # rolled back
    assert not RescoreChunk.objects.get(run=run, chunk_no=1).done

    services.rescore_chunk(run_id=run.id, customer_ids=chunks[1])  # redelivery
    keys = list(DecisionRecord.objects.filter(decision_key__startswith=str(run.id))
                .values_list("decision_key", flat=True))
    assert len(keys) == len(set(keys)) == 16
    assert sorted(CustomerScore.objects.values_list("customer_id", flat=True), key=str) == sorted(ids, key=str)
    assert all(len(decisions_for(c)) == 1 for c in ids)


def test_runs_are_resumable_from_their_pending_chunks(active_model, seed_population):
    from django.core.management import call_command

    from scoring import selectors, services

    seed_population(12)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=4)
    first = services.rescore_pending_chunks(run_id=run.id)[0]
    services.rescore_chunk(run_id=run.id, customer_ids=first)
    assert selectors.rescore_run_progress(run_id=run.id)["done"] == 4
    call_command("rescore", "--resume", str(run.id), "--no-progress")
    progress = selectors.rescore_run_progress(run_id=run.id)
    assert (progress["status"], progress["done"], progress["scored"], progress["chunks_done"]) == (
        "completed", 12, 12, 3)


def test_rescore_command_scores_everyone_with_progress(active_model, seed_population, capsys):
    from django.core.management import call_command

    from scoring.models import CustomerScore, RescoreRun

    ids = seed_population(10)
    call_command("rescore", "--all", "--purpose", SCORING, "--chunk-size", "4", "--no-progress")
    run = RescoreRun.objects.get()
    assert (run.status, run.scored, run.chunks_total) == ("completed", 10, 3)
    assert CustomerScore.objects.filter(customer_id__in=ids).count() == 10
    assert "scored 10" in capsys.readouterr().out


def test_rescore_command_draws_its_progress_bars(active_model, seed_population, capsys):
    from django.core.management import call_command

    seed_population(10)
    call_command("rescore", "--all", "--purpose", SCORING, "--chunk-size", "4")
    captured = capsys.readouterr()  # stderr is not a terminal: no bar by default (logs stay JSON lines)
    assert f"planning {SCORING}:" not in captured.err and f"scoring {SCORING}:" not in captured.err
    assert "scored 10" in captured.out
    call_command("rescore", "--all", "--purpose", SCORING, "--chunk-size", "4", "--progress")
    captured = capsys.readouterr()
    bars = captured.err.replace("\r", "\n")
    assert f"planning {SCORING}:" in bars
    scoring = [line for line in bars.splitlines() if line.startswith(f"scoring {SCORING}:")]
    assert scoring and "100%" in scoring[-1] and "10/10" in scoring[-1]  # the bar ends full
    assert "scored 10" in captured.out


def test_nightly_task_plans_a_run_per_batch_purpose_and_scores_it(active_model, seed_population, settings,
                                                                  django_capture_on_commit_callbacks):
    from scoring.models import CustomerScore, RescoreRun
    from scoring.tasks import rescore_all_nightly

    settings.SCORING_BATCH_PURPOSES = [SCORING, "service_prioritization"]
    ids = seed_population(6, purposes=(SCORING,))
    with django_capture_on_commit_callbacks(execute=True):
        rescore_all_nightly.delay()
    runs = {r.purpose: r for r in RescoreRun.objects.all()}
    assert set(runs) == {SCORING, "service_prioritization"}
    assert runs[SCORING].status == "completed" and runs[SCORING].scored == 6
    assert runs["service_prioritization"].skipped_no_consent == 6
    assert CustomerScore.objects.filter(customer_id__in=ids, purpose=SCORING).count() == 6
    assert not CustomerScore.objects.filter(purpose="service_prioritization").exists()


def test_stale_customers_are_rescored_by_the_periodic_task(active_model, seed_population, settings,
                                                           django_capture_on_commit_callbacks):
    from profiles.models import Customer
    from scoring.tasks import rescore_stale

    settings.SCORING_BATCH_PURPOSES = [SCORING]
    ids = seed_population(5)
    Customer.objects.filter(id__in=ids).update(stale_since=None)
    Customer.objects.filter(id__in=ids[:2]).update(stale_since="2020-01-01T00:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        assert rescore_stale.delay().get() == 2
    assert all(len(decisions_for(c)) == 1 for c in ids[:2])
    assert all(decisions_for(c) == [] for c in ids[2:])
    assert not Customer.objects.filter(id__in=ids, stale_since__isnull=False).exists()


def test_a_chunk_of_unknown_customers_is_refused(active_model, seed_population):
    import uuid

    from config.errors import ValidationFailed
    from scoring import services

    seed_population(3)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test")
    with pytest.raises(ValidationFailed):
        services.rescore_chunk(run_id=run.id, customer_ids=[uuid.uuid4()])


def test_tier_distribution_and_model_overview_report_the_stored_scores(active_model, seed_population):
    from scoring import selectors, services

    seed_population(20)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test")
    _run_all(run.id)
    dist = selectors.tier_distribution(purpose=SCORING)["purposes"][SCORING]
    assert dist["total"] == 20
    assert {t: v["count"] for t, v in dist["tiers"].items()} == {"VIP": 2, "Premium": 4, "Standard": 12, "Basic": 2}
    overview = selectors.model_overview()
    [active] = overview["active"]
    assert active["version"] == "test-model-1"
    assert "drift" in active and active["drift"]["status"] in {"stable", "moderate", "significant"}
