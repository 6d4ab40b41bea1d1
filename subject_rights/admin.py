"""Read-only admin views (no personal data: pseudonyms, statuses and dates only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import ErasureLedgerEntry, Export, LegalHold, ReviewTask, SubjectRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SubjectRequest)
class SubjectRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "channel", "status", "received_at", "due_at", "alert_level", "outcome")
    list_filter = ("type", "channel", "status", "alert_level")
    fields = ("id", "type", "channel", "status", "subject", "requester", "received_at", "verified_at", "due_at",
              "extension_months", "extension_code", "outcome", "rejection_code", "completed_at", "result")


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ("id", "request", "created_at", "expires_at", "deleted_at", "downloads")
    fields = ("id", "request", "subject", "created_at", "expires_at", "deleted_at", "size_bytes", "downloads")


@admin.register(LegalHold)
class LegalHoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "subject", "reason", "placed_at", "released_at")
    fields = ("subject", "reason", "placed_by", "placed_at", "released_by", "released_at")


@admin.register(ErasureLedgerEntry)
class ErasureLedgerAdmin(ReadOnlyAdmin):
    list_display = ("customer_id", "request_id", "erased_at", "replayed_at")


@admin.register(ReviewTask)
class ReviewTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "decision_id", "state", "outcome", "created_at", "decided_at")
    fields = ("request", "subject", "decision_id", "purpose", "state", "outcome", "reviewer", "created_at",
              "decided_at")
