"""The Celery app. Embedded mode (no CELERY_BROKER_URL) runs tasks in-process; production uses Redis.

Task arguments are ids only (never personal data). Each task carries the correlation id of the
request or job that queued it, so log lines across processes join up.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import before_task_publish, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")



def db_retry_policy() -> dict:
    """Retry options of tasks that a database outage interrupts (``OperationalError``): exponential backoff
    without jitter (``CELERY_RETRY_BACKOFF_S`` doubling up to ``CELERY_RETRY_BACKOFF_MAX_S``) for
    ``CELERY_RETRY_MAX`` retries, so that the retries outlast an outage of ``CELERY_RETRY_OUTLASTS_S`` (5
    minutes by default; tests/hardening/test_task_reliability.py computes the schedule with Celery's own
    formula). What outlasts even that is caught by the stale-run watchdog or ``rescore --resume``."""
    from django.conf import settings
    from django.db import OperationalError

    return {
        "autoretry_for": (OperationalError,),
        "retry_backoff": settings.CELERY_RETRY_BACKOFF_S,
        "retry_backoff_max": settings.CELERY_RETRY_BACKOFF_MAX_S,
        "retry_jitter": False,
        "max_retries": settings.CELERY_RETRY_MAX,
    }


app = Celery("scoring")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _embedded_broker(sender: Celery, **_: object) -> None:
    """Embedded mode (no broker: tasks run eagerly in-process). Celery still acquires a producer for an eager
    ``apply_async``, and kombu, given no URL, falls back to AMQP on localhost with a "No hostname was supplied"
    warning in the log at every first task. An in-memory transport (with a host name, so kombu has nothing to fall back on) is what "no broker" means here; nothing is
    ever sent over it. ``settings.CELERY_BROKER_URL`` stays empty, so embedded mode is still detected by it."""
    if not sender.conf.broker_url:
        sender.conf.broker_url = "memory://localhost/"

app.conf.beat_schedule = {
    "rescore-stale": {"task": "scoring.tasks.rescore_stale", "schedule": 300.0},
    "dsr-deadline-check": {"task": "subject_rights.tasks.flag_due_requests", "schedule": crontab(hour=6, minute=0)},
    "dsr-export-cleanup": {"task": "subject_rights.tasks.delete_expired_exports", "schedule": 3600.0},
    "audit-seal": {"task": "audit.tasks.seal_chain", "schedule": 5.0},  # AUDIT_HEAD_SIGN_SECONDS (below)
    "audit-checkpoint": {"task": "audit.tasks.write_checkpoint", "schedule": 60.0},
    # Webhooks: safety net of the on-commit relay kick, and the retry schedule of failed deliveries.
    "webhooks-relay": {"task": "webhooks.tasks.relay_outbox", "schedule": 5.0},
    "webhooks-deliver": {"task": "webhooks.tasks.deliver_due", "schedule": 5.0},
    "retention-purge": {"task": "profiles.tasks.purge_expired", "schedule": crontab(hour=3, minute=30)},
    "rescore-watchdog": {"task": "scoring.tasks.rescore_watchdog", "schedule": 300.0},  # issue 20
    # issue 17: tickets pass their first-response time between rescores (SLA-breach actions)
    "actions-sweep": {"task": "engagement.tasks.actions_sweep", "schedule": 900.0},
}


@app.on_after_configure.connect
def _scoring_schedule(sender: Celery, **_: object) -> None:
    """The daily rescore (with drift and triggered retrains) and the weekly retrain, on the cron expressions of
    SCORING_RESCORE_SCHEDULE / SCORING_RETRAIN_SCHEDULE (read from the settings once they are loaded); they
    replace the former plain nightly rescore."""
    from django.conf import settings

    from scoring.schedule import beat_entries

    sender.conf.beat_schedule.update(beat_entries())
    # Seal and sign the audit chain head at least every AUDIT_HEAD_SIGN_SECONDS (docs/AUDIT.md).
    sender.conf.beat_schedule["audit-seal"]["schedule"] = float(getattr(settings, "AUDIT_HEAD_SIGN_SECONDS", 5.0))
    # issue 17: the KPI rollup (also refreshed after each rescore of the scores' purpose)
    every = float(getattr(settings, "KPI_ROLLUP_REFRESH_SECONDS", 900))
    if every > 0:
        sender.conf.beat_schedule["kpis-rollup-refresh"] = {"task": "kpis.tasks.rollup_refresh", "schedule": every}
    sender.conf.beat_schedule["rescore-watchdog"]["schedule"] = float(settings.RESCORE_WATCHDOG_INTERVAL_S)


@before_task_publish.connect
def _propagate_correlation_id(headers: dict | None = None, **_: object) -> None:
    from config.logging import get_correlation_id

    if headers is not None and "correlation_id" not in headers:
        headers["correlation_id"] = get_correlation_id() or ""


@task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: object = None, **_: object) -> None:
    from config.logging import bind_task

    request = getattr(task, "request", None)
    correlation_id = getattr(request, "correlation_id", None) if request is not None else None
    bind_task(task_id=task_id, task_name=getattr(task, "name", None), correlation_id=correlation_id)


@task_postrun.connect
def _unbind_task_context(**_: object) -> None:
    from config.logging import unbind_task

    unbind_task()
