"""The KPI rollup: the report's cells per (month, tier, metric) and the uplift of the standard windows, computed
set-based by ``kpis.services.kpi_rollup_refresh`` (after a rescore of the scores' purpose and every
``KPI_ROLLUP_REFRESH_SECONDS``). Aggregates only: no pseudonym, no personal data. Unsuppressed values are
stored; suppression is applied when a report is served (exactly as on the live path)."""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class KpiSnapshot(models.Model):
    """One refresh of the rollup: the figures as they were at ``taken_at`` (the report's "now")."""

    taken_at = models.DateTimeField(default=timezone.now)
    first_month = models.CharField(max_length=7)  # YYYY-MM
    last_month = models.CharField(max_length=7)
    rows = models.JSONField(default=list)  # the table's rows in order: tiers, then "All tiers"
    fingerprint = models.CharField(max_length=64)  # kpis.selectors.settings_fingerprint() when computed
    trigger = models.CharField(max_length=32, default="manual")
    seconds = models.FloatField(default=0.0)
    customers = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict)  # seconds per step of the refresh (population, orders, ...)

    class Meta:
        indexes = [models.Index(fields=["taken_at", "id"], name="kpi_snapshot_taken")]

    def __str__(self) -> str:
        return f"kpi-snapshot:{self.pk}"


class KpiCell(models.Model):
    """One cell of the report: ``n`` distinct customers, the unsuppressed value (null when not computable)."""

    snapshot = models.ForeignKey(KpiSnapshot, on_delete=models.CASCADE, related_name="cells")
    month = models.CharField(max_length=7)
    tier = models.CharField(max_length=32)
    metric = models.CharField(max_length=40)
    n = models.PositiveIntegerField()
    value = models.FloatField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "month", "tier", "metric"],
                                               name="kpi_cell_unique")]

    def __str__(self) -> str:
        return f"kpi-cell:{self.snapshot_id}:{self.month}:{self.tier}:{self.metric}"


class KpiUplift(models.Model):
    """The uplift report of one window (months ``window_first`` .. ``window_last``) and tier filter ("": all)."""

    snapshot = models.ForeignKey(KpiSnapshot, on_delete=models.CASCADE, related_name="uplifts")
    window_first = models.CharField(max_length=7)
    window_last = models.CharField(max_length=7)
    tier = models.CharField(max_length=32, blank=True, default="")
    report = models.JSONField(encoder=DjangoJSONEncoder)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "window_first", "window_last", "tier"],
                                               name="kpi_uplift_unique")]

    def __str__(self) -> str:
        return f"kpi-uplift:{self.snapshot_id}:{self.window_first}:{self.window_last}:{self.tier or 'all'}"
