"""Read-only admin for the consent ledger: pseudonyms, codes and times only (no personal data exists here).

Changes go through the services (API, console), never through the admin: the ledger is append-only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from consent.models import ConsentEvent, ConsentNotice, ProcessingFlag, Purpose


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Purpose)
class PurposeAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "lawful_basis", "explicit_consent_required", "retention_days")


@admin.register(ConsentNotice)
class ConsentNoticeAdmin(ReadOnlyAdmin):
    list_display = ("purpose", "version", "requires_reconsent", "published_at", "text_hash")
    list_filter = ("purpose",)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer_id", "purpose", "action", "notice", "source", "channel", "occurred_at")
    list_filter = ("purpose", "action", "channel")
    search_fields = ("=customer_id",)
    date_hierarchy = "occurred_at"


@admin.register(ProcessingFlag)
class ProcessingFlagAdmin(ReadOnlyAdmin):
    list_display = ("id", "customer_id", "kind", "action", "purpose", "reason", "at")
    list_filter = ("kind", "action")
    search_fields = ("=customer_id",)
