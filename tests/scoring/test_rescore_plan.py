"""The planning pass (pass 1) in chunks: parallel planning against the serial one.

A random population (seeded) with every gate state for the two batch purposes: consent for one, both or
none, a withdrawal, a restriction, an objection, an erasure. The runs are created once; their reference is
computed (a) by the serial algorithm the planner had before it was split (every chunk's gate, features and
rank in one process, the pairs in memory, one ``reference_from_keys``), and (b) by the chunk planning:
chunks planned in a random order, one of them delivered twice. Every run's thresholds JSON must be equal.
Then a whole run planned serially (``rescore_runs_start``) and one planned in a random order with a
duplicate delivery write exactly the same decisions, scores and counts (time frozen, run ids and the sealing
nonce made reproducible, one run rolled back to a savepoint before the other).

The watchdog and ``rescore --resume`` finish runs stuck in planning; a planning whose chunk rows were never
all created is failed, not resumed.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from tests.scoring.helpers import SCORING, grant, withdraw
from tests.scoring.test_rescore_fast import _snapshot, comparable  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db
SERVICE = "service_prioritization"


def _population(seed_population, rng: random.Random) -> list[uuid.UUID]:
    from consent.services import processing_object, processing_restrict
    from profiles.services import customer_erase

    both = seed_population(30, seed=rng.randrange(1000), purposes=(SCORING, SERVICE))
    one = seed_population(10, seed=rng.randrange(1000), purposes=(SCORING,))
    other = seed_population(8, seed=rng.randrange(1000), purposes=(SERVICE,))
    none = seed_population(5, seed=rng.randrange(1000), purposes=())
    picked = rng.sample(both, 6)
    withdraw(picked[0], SCORING)
    withdraw(picked[1], SERVICE)
    processing_restrict(customer_id=picked[2], purpose=SERVICE, reason="accuracy_contested", actor="user:dpo")
    processing_restrict(customer_id=picked[3], purpose=None, reason="legal_claims", actor="user:dpo")
    processing_object(customer_id=picked[4], purpose=SCORING, actor="user:dpo")
    customer_erase(customer_id=picked[5], actor="user:dpo", reason="test")
    grant(none[0], SERVICE)
    return both + one + other + none


def _serial_references(runs) -> dict[uuid.UUID, dict[str, Any]]:
    """The reference as the serial planner computed it (before pass 1 was split into chunk tasks)."""
    from consent import selectors as consent_selectors
    from scoring import engine, registry
    from scoring.features.aggregates import fact_aggregates
    from scoring.models import RescoreChunk
    from scoring.population import reference_from_keys, tiebreak

    purposes = [run.purpose for run in runs]
    models = registry.active_models()
    values: dict[str, list[np.ndarray]] = {p: [] for p in purposes}
    keys: dict[str, list[np.ndarray]] = {p: [] for p in purposes}
    for raw in RescoreChunk.objects.filter(run=runs[0]).order_by("chunk_no").values_list("customer_ids", flat=True):
        ids = [uuid.UUID(c) for c in raw]
        gates_by = consent_selectors.processing_gates_columns(customer_ids=ids, purposes=purposes)
        allowed = {purpose: gates_by[purpose].allowed for purpose in purposes}
        union = np.logical_or.reduce([allowed[p] for p in purposes])
        if union.any():
            uids = [c for c, ok in zip(ids, union.tolist(), strict=True) if ok]
            columns = fact_aggregates(customer_ids=uids, as_of=runs[0].as_of)
            rank = engine.rank_values(models, columns)
            tb = np.asarray([tiebreak(c) for c in uids])
            for purpose in purposes:
                mask = allowed[purpose][union]
                values[purpose].append(rank[mask])
                keys[purpose].append(tb[mask])
    out = {}
    for run in runs:
        v = np.concatenate(values[run.purpose]) if values[run.purpose] else np.zeros(0)
        k = np.concatenate(keys[run.purpose]) if keys[run.purpose] else np.zeros(0, dtype="<U16")
        out[run.pk] = {**run.thresholds, **reference_from_keys(v, k, source=f"run:{run.id}").to_json()}
    return out


def _plan_shuffled(run_ids: list, rng: random.Random) -> int:
    """Plan every chunk in a random order, one chunk delivered twice (the second delivery plans nothing)."""
    from scoring import selectors, services

    chunks = list(selectors.rescore_unplanned_chunk_ids(run_ids=run_ids))
    order = rng.sample(chunks, len(chunks))
    twice = rng.randrange(len(order))
    order.insert(rng.randrange(twice + 1, len(order) + 1), order[twice])
    planned = [services.rescore_chunk_plan(run_ids=rng.sample(run_ids, len(run_ids)), customer_ids=ids)
               for ids in order]
    assert planned.count(False) == 1 and planned.count(True) == len(chunks)
    return len(chunks)


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_the_reference_planned_in_chunks_in_any_order_is_the_serial_reference(active_model, seed_population, seed):
    from scoring import services
    from scoring.models import RescoreChunk, RescoreRun

    rng = random.Random(seed)
    _population(seed_population, rng)
    runs = services.rescore_runs_create(purposes=[SCORING, SERVICE], requester="job:test",
                                        chunk_size=rng.choice([4, 7, 13]))
    run_ids = [run.id for run in runs]
    assert all(run.status == RescoreRun.Status.PREPARING and run.chunks_planned == 0 for run in runs)
    expected = _serial_references(runs)
    n = _plan_shuffled(run_ids, rng)
    assert n >= 4
    for run in RescoreRun.objects.filter(pk__in=run_ids):
        assert run.status == RescoreRun.Status.RUNNING and run.chunks_planned == run.chunks_total == n
        assert run.thresholds == expected[run.pk], run.purpose
        assert run.thresholds["n"] > 0
    by_purpose = {run.purpose: run.thresholds["n"] for run in RescoreRun.objects.filter(pk__in=run_ids)}
    assert by_purpose[SCORING] != by_purpose[SERVICE]  # each run its own allowed population
    # the stored pairs are gone once reduced; a late redelivery plans and counts nothing
    assert not RescoreChunk.objects.filter(run_id__in=run_ids, plan__isnull=False).exists()
    first = RescoreChunk.objects.filter(run=runs[0]).order_by("chunk_no").first()
    assert services.rescore_chunk_plan(run_ids=run_ids, customer_ids=first.customer_ids) is False
    assert {run.chunks_planned for run in RescoreRun.objects.filter(pk__in=run_ids)} == {n}


def test_plan_pairs_round_trip():
    from scoring.population import tiebreak
    from scoring.services.rescore_plan import plan_decode, plan_encode

    ranks = np.asarray([3.5, -0.0, 1e300, 2.0 / 3.0])
    keys = np.asarray([tiebreak(uuid.uuid4()) for _ in ranks])
    got_ranks, got_keys = plan_decode(plan_encode(ranks, keys))
    assert got_ranks.tobytes() == ranks.tobytes() and got_keys.tolist() == keys.tolist()
    assert got_keys.dtype == keys.dtype
    assert [a.size for a in plan_decode(plan_encode(np.zeros(0), np.zeros(0, dtype="<U16")))] == [0, 0]
    assert [a.size for a in plan_decode(None)] == [0, 0]


@pytest.mark.parametrize("seed", [5, 17])
def test_a_run_planned_in_chunks_writes_what_a_serially_planned_run_writes(
        active_model, seed_population, comparable, monkeypatch, seed):  # noqa: F811 - the fixture
    from django.db import transaction

    from scoring import selectors, services
    from scoring.models import RescoreRun

    rng = random.Random(seed)
    _population(seed_population, rng)
    size = rng.choice([5, 9, 16])
    fixed_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(2)]
    queue: list[uuid.UUID] = []  # the ids the runs of each execution get, in creation order
    monkeypatch.setattr(RescoreRun._meta.get_field("id"), "_get_default", lambda: queue.pop(0))

    def execute(planner) -> dict[str, Any]:
        queue[:] = fixed_ids
        run_ids = planner()
        assert not queue
        for chunk in selectors.rescore_pending_chunk_ids(run_ids=run_ids):
            services.rescore_chunks(run_ids=run_ids, customer_ids=chunk)
        snapshot = _snapshot(run_ids)
        snapshot["thresholds"] = {str(r.id): r.thresholds for r in RescoreRun.objects.filter(pk__in=run_ids)}
        return snapshot

    def serial() -> list:
        return [run.id for run in services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test",
                                                             chunk_size=size)]

    def in_chunks() -> list:
        run_ids = [run.id for run in services.rescore_runs_create(purposes=[SCORING, SERVICE], requester="job:test",
                                                                  chunk_size=size)]
        _plan_shuffled(run_ids, rng)
        return run_ids

    savepoint = transaction.savepoint()
    reference = execute(serial)
    transaction.savepoint_rollback(savepoint)
    services.rescore_feature_cache_clear()
    parallel = execute(in_chunks)

    assert len(reference["decisions"]) > 60
    assert sorted(reference["thresholds"]) == sorted(str(r) for r in fixed_ids)
    for part in ("thresholds", "runs", "chunks", "order", "seals", "events", "score_decisions"):
        assert parallel[part] == reference[part], part
    assert parallel["scores"] == reference["scores"]
    assert parallel["decisions"].keys() == reference["decisions"].keys()
    for key, record in reference["decisions"].items():
        assert parallel["decisions"][key] == record, key


def test_the_watchdog_resumes_a_run_stuck_in_planning(active_model, seed_population, settings,
                                                      django_capture_on_commit_callbacks):
    from django.utils import timezone

    from scoring import selectors, services
    from scoring.models import RescoreRun

    settings.CELERY_TASK_ALWAYS_EAGER = True
    ids = seed_population(11, purposes=(SCORING, SERVICE))
    withdraw(ids[0], SERVICE)
    runs = services.rescore_runs_create(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=3)
    run_ids = [run.id for run in runs]
    first = next(iter(selectors.rescore_unplanned_chunk_ids(run_ids=run_ids)))
    services.rescore_chunk_plan(run_ids=run_ids, customer_ids=first)  # then the planner is gone
    assert services.rescore_runs_watchdog() == {"resumed": [], "failed": []}  # not stale yet
    later = timezone.now() + timedelta(minutes=16)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.rescore_runs_watchdog(now=later)
    assert sorted(outcome["resumed"]) == sorted(str(r) for r in run_ids) and outcome["failed"] == []
    done = {r.purpose: r for r in RescoreRun.objects.filter(pk__in=run_ids)}
    assert {(r.status, r.chunks_planned, r.chunks_done) for r in done.values()} == {("completed", 4, 4)}
    assert (done[SCORING].scored, done[SERVICE].scored, done[SERVICE].skipped_no_consent) == (11, 10, 1)


def test_the_watchdog_fails_a_planning_whose_chunks_were_never_all_created(active_model, seed_population):
    from django.utils import timezone

    from scoring import services
    from scoring.models import RescoreChunk, RescoreRun

    seed_population(4)
    run = services.rescore_runs_create(purposes=[SCORING], requester="job:test", chunk_size=2)[0]
    RescoreRun.objects.filter(pk=run.pk).update(chunks_total=0)  # the creating process died mid-way
    RescoreChunk.objects.filter(run=run, chunk_no=1).delete()
    outcome = services.rescore_runs_watchdog(now=timezone.now() + timedelta(minutes=16))
    assert outcome == {"resumed": [], "failed": [str(run.pk)]}
    run.refresh_from_db()
    assert run.status == RescoreRun.Status.FAILED


def test_rescore_resume_finishes_a_run_stuck_in_planning(active_model, seed_population, capsys):
    from django.core.management import call_command

    from scoring import selectors, services
    from scoring.models import RescoreRun

    seed_population(10)
    run = services.rescore_runs_create(purposes=[SCORING], requester="job:test", chunk_size=4)[0]
    first = next(iter(selectors.rescore_unplanned_chunk_ids(run_ids=[run.id])))
    services.rescore_chunk_plan(run_ids=[run.id], customer_ids=first)
    RescoreRun.objects.filter(pk=run.pk).update(status=RescoreRun.Status.FAILED)  # e.g. given up
    call_command("rescore", "--resume", str(run.id), "--no-progress")
    out = capsys.readouterr().out
    assert "Planned 10 customers in 3 chunks:" in out and "scored 10" in out
    run.refresh_from_db()
    assert (run.status, run.chunks_planned, run.chunks_done, run.scored, run.thresholds["n"]) == (
        "completed", 3, 3, 10, 10)


def test_rescore_async_plans_and_scores_through_the_tasks(active_model, seed_population, capsys,
                                                          django_capture_on_commit_callbacks):
    """``rescore --all --async`` with the in-process task runner (eager, the embedded default): the planning
    tasks, then pass 2 queued by the one that planned the last chunk."""
    from unittest import mock

    from django.core.management import call_command

    from scoring import tasks
    from scoring.models import RescoreRun

    seed_population(9, purposes=(SCORING, SERVICE))
    with mock.patch.object(tasks.rescore_plan_chunk, "delay_on_commit", wraps=tasks.rescore_plan_chunk.delay
                           ) as planning, \
            mock.patch.object(tasks.rescore_chunks, "delay_on_commit", wraps=tasks.rescore_chunks.delay) as scoring, \
            django_capture_on_commit_callbacks(execute=True):
        call_command("rescore", "--all", "--async", "--chunk-size", "4", "--no-progress")
    assert (planning.call_count, scoring.call_count) == (3, 3)
    out = capsys.readouterr().out
    assert "Planned 9 customers in 3 chunks:" in out and out.count("completed, scored 9") == 2
    assert {(r.status, r.chunks_planned, r.chunks_done, r.scored) for r in RescoreRun.objects.all()} == {
        ("completed", 3, 3, 9)}


@pytest.mark.django_db(transaction=True)
def test_rescore_in_two_processes_plans_and_scores_each_share(synthetic_artifact, seed_population, capsys):
    """``rescore --all --workers 2`` (PostgreSQL: forked processes see only committed rows): each process
    plans its share of the chunks, one of them computes the references, then each scores its share."""
    from django.core.management import call_command
    from django.db import connection

    from audit.models import DecisionRecord
    from scoring import registry
    from scoring.models import RescoreRun
    from tests.scoring.helpers import register_model

    if connection.vendor != "postgresql":
        pytest.skip("forked scoring processes: PostgreSQL")
    registry.cache_clear()
    register_model(synthetic_artifact)
    ids = seed_population(14, purposes=(SCORING, SERVICE))
    withdraw(ids[3], SERVICE)
    call_command("rescore", "--all", "--workers", "2", "--chunk-size", "3", "--no-progress")
    out = capsys.readouterr().out
    assert "Planned 14 customers in 5 chunks:" in out
    runs = {r.purpose: r for r in RescoreRun.objects.all()}
    assert {(r.status, r.chunks_planned, r.chunks_done) for r in runs.values()} == {("completed", 5, 5)}
    assert (runs[SCORING].scored, runs[SERVICE].scored, runs[SERVICE].skipped_no_consent) == (14, 13, 1)
    assert runs[SCORING].thresholds["n"] == 14 and runs[SERVICE].thresholds["n"] == 13
    for run in runs.values():  # one decision per scored customer, each once (the sweep after a run adds its own)
        keys = list(DecisionRecord.objects.filter(decision_key__startswith=f"{run.id}:").values_list(
            "decision_key", flat=True))
        assert len(keys) == len(set(keys)) == run.scored
