"""Thin Celery tasks of the engagement app (no arguments: the sweep reads the current scores)."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from engagement import services


@shared_task(name="engagement.tasks.actions_sweep", acks_late=True, ignore_result=True,
             autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3,
             soft_time_limit=1500, time_limit=1800)
def actions_sweep() -> dict:
    """Create the missing actions from the current scores (idempotent: one open action per customer/type)."""
    return services.actions_sweep().to_json()
