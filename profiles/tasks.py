"""Celery tasks of the profiles app: thin, ids-only arguments."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from config.uuids import as_uuid

logger = logging.getLogger("profiles.tasks")


@shared_task(
    name="profiles.tasks.import_chunk", acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
    max_retries=5, soft_time_limit=20 * 60, time_limit=25 * 60,
)
def import_chunk(import_id: str, chunk_no: int) -> None:
    """Process one encrypted chunk of a CSV import (idempotent: a processed chunk is gone)."""
    from .imports import import_chunk_process

    done = import_chunk_process(job_id=as_uuid(import_id), chunk_no=int(chunk_no))
    logger.info("import chunk", extra={"job": str(import_id), "chunk": int(chunk_no), "status": int(done)})


@shared_task(
    name="profiles.tasks.purge_expired", acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True,
    max_retries=3, soft_time_limit=50 * 60, time_limit=55 * 60,
)
def purge_expired() -> dict[str, int]:
    """Nightly retention purge: delete facts older than their category's retention, in bounded batches;
    drop encrypted import chunks of jobs abandoned for more than two days."""
    from .services import imports_abandoned_purge, retention_purge

    counts = retention_purge()
    abandoned = imports_abandoned_purge()
    for target, count in counts.items():
        logger.info("retention purge", extra={"kind": target, "count": count})
    logger.info("retention purge", extra={"kind": "import_chunks", "count": abandoned})
    return counts
