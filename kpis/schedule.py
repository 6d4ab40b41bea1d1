"""The periodic rollup refresh in embedded mode (``make run``: no broker): a job of its own in-process scheduler
(``scoring.schedule.InProcessScheduler``), started in the ``runserver`` process only, under the same conditions
as the scoring scheduler (``scoring.schedule.should_start_in_process``). In production Celery beat sends
``kpis.tasks.rollup_refresh`` every ``KPI_ROLLUP_REFRESH_SECONDS`` (``config.celery``)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

logger = logging.getLogger("kpis")
_scheduler: Any = None


def refresh_cron() -> str:
    """Every ``KPI_ROLLUP_REFRESH_SECONDS`` rounded to whole minutes (1..59), as a cron expression."""
    minutes = max(1, min(59, round(float(getattr(settings, "KPI_ROLLUP_REFRESH_SECONDS", 900)) / 60)))
    return f"*/{minutes} * * * *"


def start_in_process() -> Any:
    global _scheduler
    from scoring.schedule import Cron, InProcessScheduler, Job, should_start_in_process

    if _scheduler is not None or not should_start_in_process():
        return None
    if float(getattr(settings, "KPI_ROLLUP_REFRESH_SECONDS", 900)) <= 0:
        return None

    def run() -> None:
        from kpis import services

        services.kpi_rollup_refresh(trigger="schedule")

    _scheduler = InProcessScheduler([Job("kpis-rollup-refresh", Cron.parse(refresh_cron()), run)],
                                    interval=float(getattr(settings, "SCORING_SCHEDULER_INTERVAL", 30.0)))
    _scheduler.start()
    logger.info("kpi rollup scheduler started", extra={"event": "kpis.schedule.started"})
    return _scheduler
