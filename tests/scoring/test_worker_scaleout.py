"""Scale-out of the nightly rescore across real Celery workers (PostgreSQL + Redis; skipped elsewhere).

Two real worker processes (``tests/scoring/killable_worker.py``, each recording the chunks it takes) consume
one queue. ``rescore_runs_dispatch`` queues the chunks of the runs of both batch purposes planned together
— twice, as a redelivery or a second dispatch would: each chunk is written exactly once whichever worker
takes it (the chunk rows are locked and marked done in the writing transaction), both workers write chunks,
every consented customer gets one decision record per purpose, the run that completes is the last chunk's,
whichever worker wrote it, and the audit chain verifies. A run whose chunk messages were lost (a worker
machine gone) is resumed by the watchdog, both purposes per chunk task again, and finishes the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tests.scoring.helpers import SCORING, register_model, withdraw
from tests.scoring.test_worker_integration import ROOT, _stop, _wait, _worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_workers(tmp_path: Path):
    """Two real Celery workers on a queue of their own; the test process sends its tasks there."""
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip("needs PostgreSQL and a Redis broker (two real worker processes)")
    from config.celery import app

    queue = f"scoring-scaleout-{os.getpid()}-{time.monotonic_ns()}"
    claims = tmp_path / "claims"
    claims.mkdir()
    procs = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "tests" / "scoring" / "killable_worker.py")], cwd=ROOT,
            env={**_worker_env(queue, None), "KILLTEST_CLAIMS_DIR": str(claims)},
            stdout=(tmp_path / f"worker{k}.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        for k in range(2)
    ]
    names = [f"killtest-{p.pid}@{os.uname().nodename}" for p in procs]

    def answering() -> bool:
        try:
            replies = app.control.ping(timeout=1.0, destination=names)
        except Exception:  # noqa: BLE001 - not up yet
            return False
        return {name for reply in replies for name in reply} >= set(names)

    previous_queue = app.conf.task_default_queue
    try:
        assert _wait(answering, timeout=120), (tmp_path / "worker0.log").read_text()[-3000:]
        app.conf.task_always_eager = False
        app.conf.task_default_queue = queue
        yield {"procs": procs, "claims": claims, "queue": queue, "logs": [tmp_path / f"worker{k}.log" for k in (0, 1)]}
    finally:
        app.conf.task_default_queue = previous_queue
        app.conf.task_always_eager = True
        for proc in procs:
            _stop(proc)


def _claims(claims: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(claims.glob("*.jsonl")) for line in f.read_text().splitlines()]


def _all_done(run_ids, expected_tasks: int, claims: Path) -> bool:
    from scoring.models import RescoreRun

    return (set(RescoreRun.objects.filter(pk__in=run_ids).values_list("status", flat=True)) == {"completed"}
            and len(_claims(claims)) >= expected_tasks)


def _assert_scored_once(runs, ids, victim):
    from audit.models import DecisionRecord
    from audit.services import chain_verify_run
    from scoring.models import CustomerScore, RescoreChunk, RescoreRun

    for run in runs:
        expected = set(ids) - ({victim} if run.purpose == SCORING else set())
        records = list(DecisionRecord.objects.filter(decision_key__startswith=f"{run.id}:")
                       .values_list("customer", "decision_key", "purpose"))
        assert len(records) == len({key for _, key, _ in records}) == len(expected)
        assert Counter(customer for customer, _, _ in records) == Counter(expected)
        assert {purpose for _, _, purpose in records} == {run.purpose}
        assert set(CustomerScore.objects.filter(purpose=run.purpose, customer_id__in=ids)
                   .values_list("customer_id", flat=True)) == expected
        run.refresh_from_db()
        assert run.status == RescoreRun.Status.COMPLETED and run.finished_at is not None
        assert run.chunks_done == run.chunks_total == RescoreChunk.objects.filter(run=run, done=True).count()
        assert (run.done, run.scored) == (len(ids), len(expected))
        assert run.skipped_no_consent == (1 if run.purpose == SCORING else 0)
    # the workers go on after the last chunk (the completed run queues the engagement sweep, whose records
    # commit on their own): seal and verify until nothing waits, every time with an intact chain
    results: list = []

    def sealed_and_intact() -> bool:
        results.append(chain_verify_run(actor="cli"))
        assert results[-1].ok, results[-1]
        return results[-1].unsealed == 0

    assert _wait(sealed_and_intact, timeout=60), results[-1]


def test_two_workers_share_the_chunks_and_every_customer_is_scored_once(two_workers, synthetic_artifact,
                                                                          seed_population):
    from scoring import registry, services

    registry.cache_clear()
    register_model(synthetic_artifact)
    purposes = services.batch_purposes()
    assert len(purposes) == 2
    ids = seed_population(24, purposes=purposes)
    victim = ids[7]
    withdraw(victim, SCORING)  # refused for one purpose, scored for the other
    runs = services.rescore_runs_start(purposes=purposes, requester="job:test", chunk_size=3)
    run_ids = [run.id for run in runs]
    assert {run.chunks_total for run in runs} == {8}
    with transaction.atomic():  # the chunks go to the broker on commit, one task per chunk (both purposes)
        assert services.rescore_runs_dispatch(run_ids=run_ids) == 8
    with transaction.atomic():  # the same chunks again: a duplicate delivery must write nothing twice
        assert services.rescore_runs_dispatch(run_ids=run_ids) == 8
    claims_dir = two_workers["claims"]
    assert _wait(lambda: _all_done(run_ids, 16, claims_dir), timeout=240), \
        two_workers["logs"][0].read_text()[-3000:] + two_workers["logs"][1].read_text()[-3000:]

    claims = _claims(claims_dir)
    # every message taken by some worker; the broker delivers at least once (Redis may hand a message over
    # again, e.g. after a visibility timeout under load), so a chunk can be claimed more than twice
    taken = Counter(tuple(c["customers"]) for c in claims)
    assert len(claims) >= 16 and all(n >= 2 for n in taken.values()), taken
    chunks = set(taken)
    assert len(chunks) == 8 and set().union(*chunks) == {str(c) for c in ids}
    written = Counter(tuple(c["customers"]) for c in claims if c["wrote"])
    assert written == Counter(dict.fromkeys(chunks, 1)), "a chunk written twice, or not at all"
    assert all(sorted(c["wrote"]) == sorted(str(r) for r in run_ids) for c in claims if c["wrote"])
    by_worker = Counter(c["pid"] for c in claims if c["wrote"])
    assert set(by_worker) == {p.pid for p in two_workers["procs"]}, f"one worker took every chunk: {by_worker}"
    _assert_scored_once(runs, ids, victim)


def test_a_run_whose_chunk_messages_were_lost_is_resumed_by_the_watchdog_on_any_worker(
        two_workers, synthetic_artifact, seed_population):
    from scoring import registry, services
    from scoring.models import RescoreRun
    from scoring.tasks import rescore_chunks

    registry.cache_clear()
    register_model(synthetic_artifact)
    purposes = services.batch_purposes()
    ids = seed_population(15, purposes=purposes)
    victim = ids[2]
    withdraw(victim, SCORING)
    runs = services.rescore_runs_start(purposes=purposes, requester="job:test", chunk_size=3)
    run_ids = [run.id for run in runs]
    pending = list(services.rescore_pending_chunk_ids(run_ids=run_ids))
    assert len(pending) == 5
    # Only two chunks ever reach the broker (the machine that held the rest went away with its messages).
    for chunk in pending[:2]:
        rescore_chunks.apply_async(([str(r) for r in run_ids], chunk))
    claims_dir = two_workers["claims"]
    assert _wait(lambda: len(_claims(claims_dir)) >= 2, timeout=120)
    assert set(RescoreRun.objects.filter(pk__in=run_ids).values_list("chunks_done", flat=True)) == {2}
    # Nothing moves: 16 minutes later the watchdog queues the 3 pending chunks again, both purposes per task.
    outcome = services.rescore_runs_watchdog(now=timezone.now() + timedelta(minutes=16))
    assert sorted(outcome["resumed"]) == sorted(str(r) for r in run_ids) and outcome["failed"] == []
    assert _wait(lambda: _all_done(run_ids, 5, claims_dir), timeout=240), \
        two_workers["logs"][0].read_text()[-3000:] + two_workers["logs"][1].read_text()[-3000:]
    claims = _claims(claims_dir)
    written = [c for c in claims if c["wrote"]]  # at-least-once delivery: a redelivered chunk writes nothing
    assert len(written) == len({tuple(c["customers"]) for c in written}) == 5
    assert all(sorted(c["wrote"]) == sorted(str(r) for r in run_ids) for c in written)
    _assert_scored_once(runs, ids, victim)
