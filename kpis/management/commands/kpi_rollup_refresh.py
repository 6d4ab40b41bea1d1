"""``manage.py kpi_rollup_refresh``: recompute the KPI rollup now (operators; beat and rescores do it on their own)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Recompute the KPI rollup (cells per month and tier, uplift of the standard windows) and print its facts."

    def handle(self, *args: Any, **options: Any) -> None:
        from kpis import services

        snap = services.kpi_rollup_refresh(trigger="command")
        self.stdout.write(f"snapshot={snap.pk} taken_at={snap.taken_at.isoformat()} months={snap.first_month}.."
                          f"{snap.last_month} customers={snap.customers} cells={snap.cells.count()} "
                          f"uplifts={snap.uplifts.count()} seconds={snap.seconds}")
