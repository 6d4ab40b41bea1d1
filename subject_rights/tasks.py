"""Thin Celery tasks (arguments are ids only)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="subject_rights.tasks.build_export", acks_late=True, time_limit=600, soft_time_limit=540)
def build_export(request_id: str) -> str | None:
    """Build the export of an access/portability request. A no-op for closed requests and erased subjects."""
    from .services import export_build

    export = export_build(request_id=UUID(request_id))
    return str(export.id) if export is not None else None


@shared_task(name="subject_rights.tasks.flag_due_requests", acks_late=True, time_limit=600, soft_time_limit=540)
def flag_due_requests() -> dict[str, Any]:
    """Daily: flag requests due within 7 days and overdue ones; alert the DPO."""
    from .services import requests_flag_due

    counts = requests_flag_due()
    return {"due_soon": counts.due_soon, "overdue": counts.overdue, "changed": counts.changed}


@shared_task(name="subject_rights.tasks.delete_expired_exports", acks_late=True, time_limit=600, soft_time_limit=540)
def delete_expired_exports() -> int:
    """Hourly: delete expired export files and shred their keys."""
    from .services import exports_delete_expired

    return exports_delete_expired()


@shared_task(name="subject_rights.tasks.vacuum_after_erasure", acks_late=True, ignore_result=True, time_limit=3600,
             soft_time_limit=3540)
def vacuum_after_erasure() -> int:
    """After an erasure's commit: VACUUM the tables it deleted from (dead tuples pruned from the table files)."""
    from .services.erasure import erased_tables_vacuum

    tables = erased_tables_vacuum()
    logger.info("tables vacuumed after erasure", extra={"event": "dsr.erasure.vacuumed", "count": len(tables)})
    return len(tables)
