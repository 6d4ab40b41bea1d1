"""Faults 3 and 4: the Redis visibility timeout was left at its one-hour default (below nothing, above
nothing), and database-outage retries gave up within about 10 s. Now the visibility timeout is set above
every task's time limit, and the retry schedule (Celery's own backoff formula, no jitter) outlasts 5 minutes."""

from __future__ import annotations

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import OperationalError

from config.celery import app

RETRYING_TASKS = ["scoring.tasks.rescore_chunk", "scoring.tasks.rescore_chunks", "scoring.tasks.rescore_customer"]


def _schedule(task) -> list[int]:
    return [get_exponential_backoff_interval(factor=task.retry_backoff, retries=n, maximum=task.retry_backoff_max,
                                             full_jitter=task.retry_jitter) for n in range(task.max_retries)]


def test_database_outage_retries_outlast_five_minutes():
    app.loader.import_default_modules()
    for name in RETRYING_TASKS:
        task = app.tasks[name]
        assert OperationalError in task.autoretry_for, name
        assert task.retry_jitter is False, name  # full jitter could shrink every wait towards zero
        schedule = _schedule(task)
        assert sum(schedule) >= 300, (name, schedule)
        assert settings.CELERY_RETRY_OUTLASTS_S == 300


def test_the_old_schedule_would_have_given_up_within_a_minute():
    # The schedule of issue 20's fault walk (backoff 1 s doubling, 5 retries) summed to at most 31 s.
    old = [get_exponential_backoff_interval(factor=1, retries=n, maximum=600, full_jitter=False) for n in range(5)]
    assert sum(old) == 31


def test_visibility_timeout_is_above_every_task_time_limit():
    app.loader.import_default_modules()
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert app.conf.broker_transport_options["visibility_timeout"] == timeout
    limits = {name: (task.time_limit or settings.CELERY_TASK_TIME_LIMIT) for name, task in app.tasks.items()
              if not name.startswith("celery.")}
    assert limits and max(limits.values()) <= settings.CELERY_LONGEST_TASK_TIME_LIMIT_S
    assert timeout > max(limits.values())
