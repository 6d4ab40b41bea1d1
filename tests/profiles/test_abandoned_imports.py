"""The nightly purge drops the encrypted chunks of imports abandoned for more than two days (a service:
``profiles.services.imports_abandoned_purge``; the task only calls it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import ImportChunk, ImportJob

pytestmark = pytest.mark.django_db


def _job(*, days_ago: float, status: str) -> ImportJob:
    job = ImportJob.objects.create(source="crm", kind="customers", status=status, actor="t", kek_id="k",
                                   wrapped_key=b"w", created_at=timezone.now() - timedelta(days=days_ago))
    ImportChunk.objects.create(job=job, chunk_no=0, ciphertext=b"c", rows=1)
    return job


def test_purge_task_drops_abandoned_chunks_and_fails_the_running_job_only() -> None:
    from profiles.tasks import purge_expired

    old = _job(days_ago=3, status=ImportJob.Status.RUNNING)
    old_done = _job(days_ago=3, status=ImportJob.Status.COMPLETED)
    fresh = _job(days_ago=1, status=ImportJob.Status.RUNNING)
    purge_expired.delay().get()
    assert list(ImportChunk.objects.values_list("job_id", flat=True)) == [fresh.id]
    old.refresh_from_db(), old_done.refresh_from_db(), fresh.refresh_from_db()
    assert (old.status, old_done.status, fresh.status) == ("failed", "completed", "running")
    assert old.finished_at is not None and fresh.finished_at is None


def test_service_returns_the_rows_deleted_and_nothing_when_nothing_is_stale() -> None:
    from profiles.services import imports_abandoned_purge

    _job(days_ago=1, status=ImportJob.Status.RUNNING)
    assert imports_abandoned_purge() == 0
    assert ImportChunk.objects.count() == 1
    _job(days_ago=5, status=ImportJob.Status.RUNNING)
    assert imports_abandoned_purge() == 1
    assert ImportChunk.objects.count() == 1
