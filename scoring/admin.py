"""Read-only admin for the model registry and rescoring runs (no personal data is displayed)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from scoring.models import DriftReport, ModelVersion, RescoreRun, ScheduleRun


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("version", "kind", "status", "created_at", "activated_at", "sha256")
    list_filter = ("kind", "status")
    exclude = ("population",)


@admin.register(RescoreRun)
class RescoreRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "purpose", "status", "full", "total", "done", "scored", "skipped_no_consent", "started_at",
                    "finished_at")
    list_filter = ("purpose", "status")
    exclude = ("thresholds",)


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ("computed_at", "model_version", "job", "population", "max_psi", "retrain_triggered")
    list_filter = ("job", "retrain_triggered")


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "job", "trigger", "status", "seconds", "model_version", "activated")
    list_filter = ("job", "trigger", "status")
