"""Batch rescoring of several purposes at once: one run per purpose, planned and scored together.

Features, model outputs, explanations and sealed details are computed once per customer; the gate is
checked per purpose when the chunk executes; decisions are written per consented customer-purpose.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.scoring.helpers import SCORING, grant, withdraw

pytestmark = pytest.mark.django_db
SERVICE = "service_prioritization"


def _score_all(run_ids):
    from scoring import services

    return [services.rescore_chunks(run_ids=run_ids, customer_ids=ids)
            for ids in services.rescore_pending_chunk_ids(run_ids=run_ids)]


def _keys(run):
    from audit.models import DecisionRecord

    return list(DecisionRecord.objects.filter(decision_key__startswith=f"{run.id}:")
                .values_list("customer", "purpose", "decision_key"))


def test_one_pass_records_exactly_one_decision_per_consented_customer_purpose_and_counts_the_others(
        active_model, seed_population):
    from scoring import selectors, services
    from scoring.models import CustomerScore

    both = seed_population(6, purposes=(SCORING, SERVICE))
    scoring_only = seed_population(4, purposes=(SCORING,))
    nobody = seed_population(2, purposes=())
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=5)
    by_purpose = {run.purpose: run for run in runs}
    assert [run.chunks_total for run in runs] == [3, 3]
    results = _score_all([run.id for run in runs])
    assert len(results) == 3  # one call per chunk covers both purposes

    scoring_run, service_run = by_purpose[SCORING], by_purpose[SERVICE]
    scoring_keys, service_keys = _keys(scoring_run), _keys(service_run)
    assert sorted((c, p) for c, p, _ in scoring_keys) == sorted((c, SCORING) for c in both + scoring_only)
    assert sorted((c, p) for c, p, _ in service_keys) == sorted((c, SERVICE) for c in both)
    assert all(key == f"{scoring_run.id}:{c}:{SCORING}" for c, _, key in scoring_keys)
    assert all(key == f"{service_run.id}:{c}:{SERVICE}" for c, _, key in service_keys)

    scoring_progress = selectors.rescore_run_progress(run_id=scoring_run.id)
    service_progress = selectors.rescore_run_progress(run_id=service_run.id)
    assert (scoring_progress["status"], scoring_progress["scored"], scoring_progress["done"]) == ("completed", 10, 12)
    assert scoring_progress["skipped"] == {"no_consent": 2, "restricted": 0, "objected": 0, "erased": 0}
    assert (service_progress["status"], service_progress["scored"], service_progress["done"]) == ("completed", 6, 12)
    assert service_progress["skipped"] == {"no_consent": 6, "restricted": 0, "objected": 0, "erased": 0}
    assert CustomerScore.objects.filter(purpose=SCORING).count() == 10
    assert set(CustomerScore.objects.filter(purpose=SERVICE).values_list("customer_id", flat=True)) == set(both)
    assert not CustomerScore.objects.filter(customer_id__in=nobody).exists()


def test_both_purposes_get_the_same_features_and_model_outputs_and_their_own_tiers(active_model, seed_population):
    from scoring import services
    from scoring.models import CustomerScore

    ids = seed_population(12, purposes=(SCORING, SERVICE))
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=12)
    _score_all([run.id for run in runs])
    rows = {(r.customer_id, r.purpose): r for r in CustomerScore.objects.all()}
    for cid in ids:
        a, b = rows[(cid, SCORING)], rows[(cid, SERVICE)]
        assert (a.features, a.explanation, a.features_hash, a.clv, a.churn_probability) == (
            b.features, b.explanation, b.features_hash, b.clv, b.churn_probability)
        assert a.thresholds_ref == f"run:{runs[0].id}" and b.thresholds_ref == f"run:{runs[1].id}"
    tiers = {p: sorted(r.tier for (c, q), r in rows.items() if q == p) for p in (SCORING, SERVICE)}
    assert tiers[SCORING] == tiers[SERVICE]  # same population for both purposes: same shares


def test_batch_scores_equal_the_single_customer_computation_against_the_same_reference(
        active_model, seed_population):
    from scoring import engine, registry, services
    from scoring.models import CustomerScore
    from scoring.population import Reference

    ids = seed_population(10)
    [run] = services.rescore_runs_start(purposes=[SCORING], requester="job:test", chunk_size=4,
                                        keep_features=True)
    _score_all([run.id])
    run.refresh_from_db()
    expected = engine.compute_scores(ids, as_of=run.as_of, models=registry.active_models(),
                                     reference=Reference.from_json(run.thresholds))
    stored = {r.customer_id: r for r in CustomerScore.objects.filter(purpose=SCORING)}
    for c in expected:
        row = stored[c.customer_id]
        assert (row.tier, row.clv_score, row.segment, row.risk_level, row.features_hash) == (
            c.tier, c.clv_score, c.segment, c.risk_level, c.features_hash)
        assert row.recommendation == c.recommendation and row.service_level == c.service_level
        assert row.clv == pytest.approx(c.clv, rel=1e-12)
        for key, exp in row.explanation.items():
            total = exp["baseline"] + sum(item[2] for item in exp["contributions"]) + exp["remainder"]
            assert total == pytest.approx(exp["output"], abs=1e-6), key


def test_a_reexecuted_chunk_writes_nothing_twice_and_a_half_done_chunk_completes_only_the_missing_purpose(
        active_model, seed_population):
    from audit.models import DecisionRecord
    from scoring import services
    from scoring.models import RescoreRun

    ids = seed_population(8, purposes=(SCORING, SERVICE))
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=8)
    [chunk] = list(services.rescore_pending_chunk_ids(run_ids=[r.id for r in runs]))
    first = services.rescore_chunk(run_id=runs[0].id, customer_ids=chunk)  # one purpose only
    assert first.scored == 8 and not first.already_done
    both = services.rescore_chunks(run_ids=[r.id for r in runs], customer_ids=list(reversed(chunk)))
    assert both[runs[0].id].already_done and both[runs[0].id].scored == 8
    assert not both[runs[1].id].already_done and both[runs[1].id].scored == 8
    again = services.rescore_chunks(run_ids=[r.id for r in runs], customer_ids=chunk)
    assert all(c.already_done for c in again.values())
    for run in runs:
        assert DecisionRecord.objects.filter(decision_key__startswith=f"{run.id}:").count() == 8
        run.refresh_from_db()
        assert (run.status, run.done, run.scored, run.chunks_done) == (RescoreRun.Status.COMPLETED, 8, 8, 1)
    assert DecisionRecord.objects.filter(customer__in=ids).count() == 16


def test_consent_changed_after_planning_is_honoured_when_the_chunk_executes(active_model, seed_population):
    from audit.models import DecisionRecord
    from scoring import services
    from scoring.models import CustomerScore

    ids = seed_population(6, purposes=(SCORING, SERVICE))
    late = seed_population(1, purposes=())[0]
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=7,
                                       keep_features=True)
    withdraw(ids[0], SERVICE)  # after planning: the features of ids[0] are in the planning cache
    grant(late, SCORING)  # not in the planning cache: the chunk is computed afresh
    counts = _score_all([r.id for r in runs])[0]
    by_purpose = {r.purpose: counts[r.id] for r in runs}
    assert (by_purpose[SCORING].scored, by_purpose[SCORING].skipped) == (7, {})
    assert (by_purpose[SERVICE].scored, by_purpose[SERVICE].skipped) == (5, {"skipped_no_consent": 2})
    assert not DecisionRecord.objects.filter(customer=ids[0], purpose=SERVICE).exists()
    assert DecisionRecord.objects.filter(customer=ids[0], purpose=SCORING).count() == 1
    assert DecisionRecord.objects.filter(customer=late, purpose=SCORING).count() == 1
    assert not CustomerScore.objects.filter(customer_id=ids[0], purpose=SERVICE).exists()


def test_nightly_runs_are_dispatched_as_one_task_per_chunk_for_all_purposes(
        active_model, seed_population, settings, django_capture_on_commit_callbacks):
    from unittest import mock

    from scoring import tasks
    from scoring.models import RescoreRun

    settings.SCORING_BATCH_PURPOSES = [SCORING, SERVICE]
    settings.RESCORE_CHUNK_SIZE = 3
    seed_population(7, purposes=(SCORING, SERVICE))
    with mock.patch.object(tasks.rescore_chunks, "delay_on_commit", wraps=tasks.rescore_chunks.delay) as queued, \
            django_capture_on_commit_callbacks(execute=True):
        tasks.rescore_all_nightly.delay()
    assert queued.call_count == 3
    runs = list(RescoreRun.objects.order_by("purpose"))
    assert all(call.args[0] == [str(r.id) for r in sorted(runs, key=lambda r: r.purpose != SCORING)]
               for call in queued.call_args_list)
    assert [(r.purpose, r.status, r.scored) for r in runs] == [(SCORING, "completed", 7), (SERVICE, "completed", 7)]


def test_planning_commits_its_chunks_as_it_goes_and_a_failed_plan_is_marked_failed(active_model, seed_population):
    from unittest import mock

    from scoring import services
    from scoring.models import RescoreChunk, RescoreRun

    seed_population(6)
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 2:
            raise RuntimeError("planner stopped")

    with mock.patch("scoring.services.rescore_plan.RESCORE_PLAN_FLUSH_CHUNKS", 1), pytest.raises(RuntimeError):
        services.rescore_runs_start(purposes=[SCORING], requester="job:test", chunk_size=2, progress=progress)
    run = RescoreRun.objects.get()
    assert run.status == RescoreRun.Status.FAILED
    assert (run.chunks_total, run.chunks_planned) == (3, 2)
    assert RescoreChunk.objects.filter(run=run).count() == 3  # every chunk row, created before planning
    # the chunks planned before the failure, committed (with their pairs, kept until the plan completes)
    assert list(RescoreChunk.objects.filter(run=run).order_by("chunk_no").values_list("planned", flat=True)) == [
        True, True, False]
    assert all(c.plan is not None for c in RescoreChunk.objects.filter(run=run, planned=True))


def test_reference_from_keys_matches_the_ranking_by_clv_then_tiebreak():
    from scoring.population import Reference, reference_from_keys, tiebreak, tier_shares

    rng = np.random.default_rng(5)
    ids = [f"customer-{i}" for i in range(503)]
    values = np.round(rng.gamma(1.0, 50.0, len(ids)), 0)  # many ties
    values[:100] = 0.0
    keys = np.asarray([tiebreak(c) for c in ids])
    ref = reference_from_keys(values, keys, source="test")
    order = sorted(range(len(ids)), key=lambda i: (values[i], keys[i]), reverse=True)
    shares = tier_shares()
    expected_tiers = {}
    cumulative, start = 0.0, 0
    for name, share in shares:
        cumulative += share
        end = len(ids) if name == shares[-1][0] else int(round(cumulative * len(ids)))
        for i in order[start:end]:
            expected_tiers[ids[i]] = name
        start = end
    assert ref.tiers_for(values, ids) == [expected_tiers[c] for c in ids]
    assert Reference.from_json(ref.to_json()).tiers_for_keys(values, keys) == [expected_tiers[c] for c in ids]


def test_finish_scores_recommendations_equal_the_per_customer_rule():
    from scoring import engine
    from scoring.population import reference_from_keys, tiebreak

    rng = np.random.default_rng(11)
    n = 400
    ids = [f"c{i}" for i in range(n)]
    batch = engine.ScoredBatch(
        customer_ids=ids, clv=rng.gamma(1.0, 100.0, n), churn=rng.uniform(0, 1, n), upsell=rng.uniform(0, 1, n),
        advocacy=rng.uniform(0, 1, n), rank=rng.gamma(1.0, 100.0, n), segment=["Loyal"] * n,
        features=[{}] * n, explanation=[{}] * n, features_hash=["h"] * n,
        tiebreak=np.asarray([tiebreak(c) for c in ids]),
    )
    reference = reference_from_keys(batch.rank, batch.tiebreak, source="test")
    scores = engine.finish_scores(batch, reference=reference)
    assert len({s.tier for s in scores}) == 4
    for s in scores:
        assert s.recommendation == engine.recommendation_for(s.tier, s.churn_probability, s.upsell, s.advocacy)
        assert s.service_level == engine.service_level_for(s.tier)
