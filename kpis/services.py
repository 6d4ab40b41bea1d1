"""Writes of the KPI app: the rollup refresh (aggregates only; no personal data, no decision, so no audit record)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from kpis import rollup
from kpis import selectors as kpi
from kpis.models import KpiCell, KpiSnapshot, KpiUplift

logger = logging.getLogger("kpis")
KEEP_SNAPSHOTS = 2


def kpi_rollup_refresh(*, trigger: str = "manual", now: datetime | None = None) -> KpiSnapshot:
    """Compute the rollup (``kpis.rollup.compute``) from one consistent view of the data (REPEATABLE READ on
    PostgreSQL when not inside a caller's transaction) and store it as the newest snapshot; older ones beyond
    the last ``KEEP_SNAPSHOTS`` are deleted. Served by ``kpis.selectors.kpi_report_for`` while fresh."""
    t0 = time.perf_counter()
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        now = now or timezone.now()
        fingerprint = kpi.settings_fingerprint()
        result = rollup.compute(now=now)
        snapshot = KpiSnapshot.objects.create(
            taken_at=now, first_month=kpi.month_key(result.months[0]), last_month=kpi.month_key(result.months[-1]),
            rows=result.rows, fingerprint=fingerprint, trigger=trigger[:32], customers=result.customers)
        cells = []
        for metric in kpi.METRICS:
            for (month, row), _cell in result.grid.cells[metric.name].items():
                n, value = result.grid.figure(metric, month, row)
                if n:
                    cells.append(KpiCell(snapshot=snapshot, month=month, tier=row, metric=metric.name, n=n,
                                         value=value))
        KpiCell.objects.bulk_create(cells, batch_size=2000)
        KpiUplift.objects.bulk_create([
            KpiUplift(snapshot=snapshot, window_first=first, window_last=last, tier=tier, report=report)
            for (first, last, tier), report in result.uplifts.items()])
        snapshot.seconds = round(time.perf_counter() - t0, 3)
        snapshot.timings = {k: round(v, 3) for k, v in result.timings.items()}
        snapshot.save(update_fields=["seconds", "timings"])
        keep = list(KpiSnapshot.objects.order_by("-taken_at", "-id").values_list("id", flat=True)[:KEEP_SNAPSHOTS])
        KpiSnapshot.objects.exclude(id__in=keep).delete()
    logger.info("kpi rollup refreshed", extra={"event": "kpis.rollup.refreshed", "duration_ms": int(snapshot.seconds * 1000)})
    return snapshot
