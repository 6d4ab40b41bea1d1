"""Thin Celery task of the KPI app: refresh the rollup (no arguments: it reads the current data)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from kpis import services


@shared_task(name="kpis.tasks.rollup_refresh", acks_late=True, ignore_result=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3,
             soft_time_limit=1500, time_limit=1800)
def rollup_refresh(trigger: str = "schedule") -> int:
    """Recompute the KPI rollup; returns the new snapshot's id."""
    return services.kpi_rollup_refresh(trigger=trigger).pk
