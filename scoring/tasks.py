"""Thin Celery tasks of the scoring app. Arguments are ids only (customer pseudonyms, run ids, purpose codes).

All are ``acks_late`` (a worker killed mid-task leaves the message to be redelivered; the chunk's
transaction rolled back, so the redelivery redoes it completely and writes nothing twice).
"""

from __future__ import annotations

import logging
from uuid import UUID

from celery import Task, shared_task
from django.conf import settings

from config.celery import db_retry_policy
from scoring import services
from scoring.registry import ModelUnavailable

logger = logging.getLogger("scoring.tasks")
STALE_BATCH = 500


@shared_task(
    name="scoring.tasks.rescore_chunk", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    **db_retry_policy(), soft_time_limit=1500, time_limit=1800,
)
def rescore_chunk(run_id: str, customer_ids: list[str]) -> dict:
    counts = services.rescore_chunk(run_id=UUID(run_id), customer_ids=[UUID(c) for c in customer_ids])
    return counts.to_json()


@shared_task(
    name="scoring.tasks.rescore_chunks", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    **db_retry_policy(), soft_time_limit=1500, time_limit=1800,
)
def rescore_chunks(run_ids: list[str], customer_ids: list[str]) -> dict:
    """One chunk of runs planned together (one per batch purpose), scored for all of them at once."""
    counts = services.rescore_chunks(run_ids=[UUID(r) for r in run_ids], customer_ids=[UUID(c) for c in customer_ids])
    return {str(run_id): c.to_json() for run_id, c in counts.items()}


@shared_task(
    name="scoring.tasks.rescore_plan_chunk", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
    **db_retry_policy(), soft_time_limit=1500, time_limit=1800,
)
def rescore_plan_chunk(run_ids: list[str], customer_ids: list[str]) -> bool:
    """Pass 1 of one chunk of runs created together (gate, features, rank; stored on the chunk rows); the
    task that plans the runs' last chunk computes their references and queues pass 2. The chunk's features
    stay in this worker for its pass 2, should this worker get it."""
    return services.rescore_chunk_plan(run_ids=[UUID(r) for r in run_ids],
                                       customer_ids=[UUID(c) for c in customer_ids], keep_features=True,
                                       dispatch=True)


@shared_task(
    bind=True, name="scoring.tasks.rescore_customer", acks_late=True, ignore_result=True,
    **db_retry_policy(), soft_time_limit=120, time_limit=180,
)
def rescore_customer(self: Task, customer_id: str, purpose: str) -> str:
    key = f"refresh:{self.request.id}:{purpose}" if self.request.id else None
    try:
        return services.score_refresh(customer_id=UUID(customer_id), purpose=purpose, decision_key=key)
    except ModelUnavailable:
        logger.warning("no model to rescore with", extra={"event": "scoring.refresh.no_model", "purpose": purpose})
        return "model_unavailable"


@shared_task(name="scoring.tasks.rescore_all_nightly", acks_late=True, ignore_result=True,
             soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def rescore_all_nightly() -> list[str]:
    """Create the runs of all batch purposes together and fan their planning out to the workers (pass 1);
    the task that plans the last chunk fans pass 2 out."""
    try:
        runs = services.rescore_runs_create(purposes=services.batch_purposes(), requester="job:nightly_rescore")
    except ModelUnavailable:
        logger.warning("nightly rescore skipped: no model", extra={"event": "scoring.nightly.no_model"})
        return []
    services.rescore_runs_plan_dispatch(run_ids=[run.id for run in runs])
    return [str(run.id) for run in runs]


@shared_task(name="scoring.tasks.rescore_stale", acks_late=True, ignore_result=True,
             soft_time_limit=1500, time_limit=1800)
def rescore_stale() -> int:
    """Customers with new data since their last score: a subset run per batch purpose, chunks queued."""
    from profiles import selectors as profiles_selectors

    ids = profiles_selectors.stale_customer_ids(limit=int(getattr(settings, "RESCORE_STALE_BATCH", STALE_BATCH)))
    if not ids:
        return 0
    try:
        runs = services.rescore_runs_start(purposes=services.batch_purposes(), requester="job:rescore_stale",
                                           customer_ids=ids)
    except ModelUnavailable:
        return 0
    services.rescore_runs_dispatch(run_ids=[run.id for run in runs])
    return len(ids)


@shared_task(name="scoring.tasks.scheduled_rescore", acks_late=True, ignore_result=True,
             soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def scheduled_rescore() -> int | None:
    """The daily rescore: drift, a retrain when triggered, then a full rescore (``scoring.schedule``)."""
    from scoring import schedule

    run = schedule.scheduled_rescore()
    return run.pk if run is not None else None


@shared_task(name="scoring.tasks.scheduled_retrain", acks_late=True, ignore_result=True,
             soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def scheduled_retrain() -> int | None:
    """The weekly retrain through the activation gate (``scoring.schedule``)."""
    from scoring import schedule

    run = schedule.scheduled_retrain()
    return run.pk if run is not None else None


@shared_task(name="scoring.tasks.rescore_watchdog", acks_late=True, ignore_result=True,
             soft_time_limit=240, time_limit=300)
def rescore_watchdog() -> dict:
    """Beat, every 5 minutes: resume (or, past the give-up age, fail) runs that stopped making progress."""
    return services.rescore_runs_watchdog()
