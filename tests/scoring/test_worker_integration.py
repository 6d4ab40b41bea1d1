"""Batch rescoring with real Celery workers (PostgreSQL + Redis; eager fallback on SQLite where possible).

- Consent withdrawn while chunk tasks are queued: the queued tasks re-check the gate when they run, so no
  decision about that customer is written after the withdrawal (Art. 7(3)).
- A worker killed with SIGKILL in the middle of a chunk (acks_late): its transaction rolls back, the
  message is redelivered to the next worker, and every customer ends up scored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.scoring.helpers import SCORING, register_model, withdraw

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _wait(predicate, timeout=90.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return predicate()


def _run_status(run_id):
    from scoring.models import RescoreRun

    return RescoreRun.objects.get(pk=run_id).status


def test_withdrawal_while_rescore_tasks_are_queued_stops_the_decisions(celery_worker, synthetic_artifact,
                                                                       seed_population):
    from audit.models import DecisionRecord
    from scoring import registry, services
    from scoring.tasks import rescore_chunk

    registry.cache_clear()
    register_model(synthetic_artifact)
    ids = seed_population(12)
    victim = ids[5]
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=4)
    chunks = services.rescore_pending_chunks(run_id=run.id)
    # The tasks are on the broker (due in 3 s) when the withdrawal commits: the race is between a queued
    # chunk and the withdrawal, and the chunk must re-check consent when it executes.
    for chunk in chunks:
        rescore_chunk.apply_async((str(run.id), chunk), countdown=3)
    withdrawn_at = timezone.now()
    withdraw(victim)
    assert not DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).exists(), (
        "a chunk ran before the withdrawal committed: the race was not exercised")
    assert _wait(lambda: _run_status(run.id) == "completed"), "run did not complete"
    assert not DecisionRecord.objects.filter(customer=victim, created_at__gte=withdrawn_at).exists()
    assert not DecisionRecord.objects.filter(customer=victim).exists()
    scored = set(DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).values_list("customer", flat=True))
    assert scored == set(ids) - {victim}
    run.refresh_from_db()
    assert (run.scored, run.skipped_no_consent) == (11, 1)


def _worker_env(queue: str, marker: Path | None) -> dict[str, str]:
    from django.db import connection

    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{s.get('USER') or 'postgres'}{password}@{s.get('HOST') or '127.0.0.1'}:"
                        f"{s.get('PORT') or 5432}/{s['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "KILLTEST_QUEUE": queue,
    }
    env.pop("KILLTEST_PAUSE_MARKER", None)
    if marker is not None:
        env["KILLTEST_PAUSE_MARKER"] = str(marker)
    return env


def _start_worker(queue: str, marker: Path | None, log: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "tests" / "scoring" / "killable_worker.py")],
        cwd=ROOT, env=_worker_env(queue, marker), stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_worker_killed_mid_chunk_leaves_no_duplicates_and_no_missing_customers(
        synthetic_artifact, seed_population, tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL:
        pytest.skip("needs PostgreSQL and a Redis broker (a real worker process to kill)")
    from audit.models import DecisionRecord
    from config.celery import app
    from scoring import registry, services
    from scoring.models import CustomerScore, RescoreChunk
    from scoring.tasks import rescore_chunk

    registry.cache_clear()
    register_model(synthetic_artifact)
    ids = seed_population(8)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=4)
    queue = f"scoring-killtest-{os.getpid()}-{time.monotonic_ns()}"
    marker = tmp_path / "paused"
    first = _start_worker(queue, marker, tmp_path / "worker1.log")
    second = None
    app.conf.task_always_eager = False
    try:
        for chunk in services.rescore_pending_chunks(run_id=run.id):
            rescore_chunk.apply_async((str(run.id), chunk), queue=queue)
        assert _wait(marker.exists, timeout=120), (tmp_path / "worker1.log").read_text()[-3000:]
        _stop(first, signal.SIGKILL)  # kill -9 in the middle of the chunk transaction
        assert first.returncode == -signal.SIGKILL
        assert not DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).exists()
        assert RescoreChunk.objects.filter(run=run, done=True).count() == 0

        second = _start_worker(queue, None, tmp_path / "worker2.log")
        assert _wait(lambda: _run_status(run.id) == "completed", timeout=150), \
            (tmp_path / "worker2.log").read_text()[-3000:]
    finally:
        app.conf.task_always_eager = True
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)
    keys = list(DecisionRecord.objects.filter(decision_key__startswith=str(run.id)).values_list("decision_key",
                                                                                                 flat=True))
    assert len(keys) == len(set(keys)) == 8
    assert sorted(DecisionRecord.objects.filter(decision_key__startswith=str(run.id))
                  .values_list("customer", flat=True), key=str) == sorted(ids, key=str)
    assert CustomerScore.objects.filter(customer_id__in=ids, purpose=SCORING).count() == 8
    run.refresh_from_db()
    assert (run.scored, run.done, run.chunks_done) == (8, 8, 2)
