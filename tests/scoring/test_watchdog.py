"""Fault 3: a killed worker left its chunks waiting and the run `running`. The beat watchdog resumes a run
without progress (the pending chunks are queued again and scored once), and fails one past the give-up age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.scoring.helpers import SCORING, decisions_for

pytestmark = pytest.mark.django_db


def _stalled_run(seed_population, *, n: int, started_ago: timedelta, chunk_size: int = 5):
    from scoring import services
    from scoring.models import RescoreRun

    ids = seed_population(n)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=chunk_size)
    first = services.rescore_pending_chunks(run_id=run.id)[0]
    services.rescore_chunk(run_id=run.id, customer_ids=first)  # one chunk done, then the worker "died"
    RescoreRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - started_ago)
    run.chunks.filter(done=True).update(finished_at=timezone.now() - started_ago)
    run.refresh_from_db()
    assert run.status == RescoreRun.Status.RUNNING and run.chunks_done == 1
    return run, ids


def test_a_stalled_run_is_resumed_and_finishes_with_everyone_scored_once(active_model, seed_population,
                                                                          django_capture_on_commit_callbacks):
    from scoring.models import CustomerScore, RescoreRun
    from scoring.tasks import rescore_watchdog

    run, ids = _stalled_run(seed_population, n=15, started_ago=timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = rescore_watchdog.delay().get()
    assert outcome == {"resumed": [str(run.pk)], "failed": []}
    run.refresh_from_db()
    assert (run.status, run.chunks_done, run.scored) == (RescoreRun.Status.COMPLETED, 3, 15)
    assert all(len(decisions_for(c)) == 1 for c in ids)
    assert CustomerScore.objects.filter(customer_id__in=ids, purpose=SCORING).count() == 15


def test_a_run_making_progress_is_left_alone(active_model, seed_population):
    from scoring import services
    from scoring.models import RescoreRun

    run, _ = _stalled_run(seed_population, n=10, started_ago=timedelta(minutes=2))
    assert services.rescore_runs_watchdog() == {"resumed": [], "failed": []}
    run.refresh_from_db()
    assert run.status == RescoreRun.Status.RUNNING and run.chunks_done == 1


def test_a_run_past_the_give_up_age_is_failed_for_an_operator(active_model, seed_population, settings):
    from scoring import services
    from scoring.models import RescoreRun

    settings.RESCORE_WATCHDOG_GIVE_UP_HOURS = 24
    run, _ = _stalled_run(seed_population, n=10, started_ago=timedelta(hours=30))
    assert services.rescore_runs_watchdog() == {"resumed": [], "failed": [str(run.pk)]}
    run.refresh_from_db()
    assert run.status == RescoreRun.Status.FAILED and run.finished_at is not None
    assert run.chunks_done == 1  # nothing else ran: `rescore --resume` is the operator's
