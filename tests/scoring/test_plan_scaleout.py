"""Scale-out of the rescore's planning pass across real Celery workers (PostgreSQL + Redis; skipped elsewhere).

Two real worker processes (``tests/scoring/killable_worker.py``, recording the chunks they plan and score)
consume one queue. The runs of both batch purposes are created, and their planning tasks queued twice, as a
redelivery or a second dispatch would: each chunk is planned exactly once whichever worker takes it, both
workers plan chunks, the worker that plans the last chunk computes the references — the serial planner's,
exactly — and queues pass 2, which both workers share; the runs complete once, every consented customer
gets one decision record per purpose, and the audit chain verifies.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from django.db import transaction

from tests.scoring.helpers import SCORING, register_model, withdraw
from tests.scoring.test_rescore_plan import _serial_references
from tests.scoring.test_worker_integration import _wait
from tests.scoring.test_worker_scaleout import _all_done, _assert_scored_once, _claims, two_workers  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _plan_claims(claims: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(claims.glob("*.plan")) for line in f.read_text().splitlines()]


def test_two_workers_plan_the_chunks_and_the_run_completes_once(two_workers, synthetic_artifact,  # noqa: F811
                                                               seed_population):
    from scoring import registry, services
    from scoring.models import RescoreChunk, RescoreRun

    registry.cache_clear()
    register_model(synthetic_artifact)
    purposes = services.batch_purposes()
    assert len(purposes) == 2
    ids = seed_population(30, purposes=purposes)
    victim = ids[11]
    withdraw(victim, SCORING)  # out of one run's reference population, in the other's
    runs = services.rescore_runs_create(purposes=purposes, requester="job:test", chunk_size=3)
    run_ids = [run.id for run in runs]
    assert {(run.status, run.chunks_total) for run in runs} == {("preparing", 10)}
    expected = _serial_references(runs)
    with transaction.atomic():  # one planning task per chunk (both purposes), sent on commit
        assert services.rescore_runs_plan_dispatch(run_ids=run_ids) == 10
    with transaction.atomic():  # the same chunks again: a duplicate delivery must plan nothing twice
        assert services.rescore_runs_plan_dispatch(run_ids=run_ids) == 10
    claims_dir = two_workers["claims"]
    logs = two_workers["logs"]
    assert _wait(lambda: _all_done(run_ids, 10, claims_dir), timeout=300), \
        logs[0].read_text()[-3000:] + logs[1].read_text()[-3000:]
    assert _wait(lambda: len(_plan_claims(claims_dir)) >= 20, timeout=60)

    plans = _plan_claims(claims_dir)
    taken = Counter(tuple(c["customers"]) for c in plans)
    assert len(taken) == 10 and all(n >= 2 for n in taken.values()), taken
    planned = Counter(tuple(c["customers"]) for c in plans if c["planned"])
    assert planned == Counter(dict.fromkeys(taken, 1)), "a chunk planned twice, or not at all"
    by_worker = Counter(c["pid"] for c in plans if c["planned"])
    assert set(by_worker) == {p.pid for p in two_workers["procs"]}, f"one worker planned every chunk: {by_worker}"
    for run in RescoreRun.objects.filter(pk__in=run_ids):
        assert run.thresholds == expected[run.pk], run.purpose
        assert run.chunks_planned == run.chunks_total == 10
    assert not RescoreChunk.objects.filter(run_id__in=run_ids, plan__isnull=False).exists()
    # pass 2, queued once by the worker that planned the last chunk: each chunk written once, by either worker
    written = Counter(tuple(c["customers"]) for c in _claims(claims_dir) if c["wrote"])
    assert written == Counter(dict.fromkeys(taken, 1)), "a chunk written twice, or not at all"
    _assert_scored_once(runs, ids, victim)
