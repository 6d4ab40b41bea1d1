"""Retention: facts older than their configured period are purged in batches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import (
    ImportChunk,
    ImportJob,
    Interaction,
    Note,
    NpsAnswer,
    Order,
    Referral,
    Review,
    Ticket,
)
from .customers import mark_stale

DEFAULT_RETENTION_DAYS = {"orders": 3650, "interactions": 730, "tickets": 1095, "reviews": 1825}


# (retention category, model, date column). Notes and call transcripts follow the tickets category unless
# RETENTION_DAYS has "notes"; NPS answers and referrals follow "reviews" unless it has "nps"/"referrals".
RETENTION_TARGETS: tuple[tuple[str, str, Any, str], ...] = (
    ("orders", "orders", Order, "ordered_at"),
    ("interactions", "interactions", Interaction, "at"),
    ("tickets", "tickets", Ticket, "opened_at"),
    ("notes", "tickets", Note, "at"),
    ("reviews", "reviews", Review, "at"),
    ("nps", "reviews", NpsAnswer, "at"),
    ("referrals", "reviews", Referral, "at"),
)


def retention_days() -> dict[str, int]:
    """``settings.RETENTION_DAYS`` (JSON object, days per data category) over the defaults."""
    configured = getattr(settings, "RETENTION_DAYS", None) or {}
    return {**DEFAULT_RETENTION_DAYS, **{k: int(v) for k, v in configured.items()}}


@transaction.atomic
def _purge_batch(model: Any, column: str, cutoff: datetime, batch_size: int) -> int:
    ids = list(
        model.objects.filter(**{f"{column}__lt": cutoff}).order_by(column, "pk").values_list("pk", flat=True)[:batch_size]
    )
    if not ids:
        return 0
    customers = set(model.objects.filter(pk__in=ids).values_list("customer_id", flat=True))
    deleted, _ = model.objects.filter(pk__in=ids).delete()
    mark_stale(customers)
    return deleted


def retention_purge(*, now: datetime | None = None, batch_size: int = 1000, max_batches: int | None = None,
                    dry_run: bool = False) -> dict[str, int]:
    """Delete facts older than the retention of their data category, in bounded batches (each its own short
    transaction). Returns the number of rows deleted (or, with ``dry_run``, due) per target."""
    now = now or timezone.now()
    days = retention_days()
    counts: dict[str, int] = {}
    for target, category, model, column in RETENTION_TARGETS:
        cutoff = now - timedelta(days=days.get(target, days[category]))
        if dry_run:
            counts[target] = model.objects.filter(**{f"{column}__lt": cutoff}).count()
            continue
        total = batches = 0
        while max_batches is None or batches < max_batches:
            deleted = _purge_batch(model, column, cutoff, batch_size)
            total += deleted
            batches += 1
            if deleted < batch_size:
                break
        counts[target] = total
    return counts


ABANDONED_IMPORT_DAYS = 2


@transaction.atomic
def imports_abandoned_purge() -> int:
    """Drop the encrypted chunks of CSV imports started more than ``ABANDONED_IMPORT_DAYS`` ago, and mark
    such jobs still running as failed. Returns the number of rows deleted."""
    stale = timezone.now() - timedelta(days=ABANDONED_IMPORT_DAYS)
    abandoned, _ = ImportChunk.objects.filter(job__created_at__lt=stale).delete()
    ImportJob.objects.filter(created_at__lt=stale, status=ImportJob.Status.RUNNING).update(
        status=ImportJob.Status.FAILED, finished_at=timezone.now()
    )
    return abandoned
