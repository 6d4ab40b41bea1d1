"""Read-mostly admin: pseudonyms, counts and codes only. Personal values are never shown or editable here
(the DPO console decrypts, with an access record)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    BlindIndexEntry,
    Customer,
    CustomerKey,
    ImportJob,
    MergeRecord,
    PersonalField,
    SourceIdentity,
    Tombstone,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "country", "stale_since", "merged_into")
    list_filter = ("country",)
    search_fields = ("=id",)
    # CRM attribute values are encrypted per customer (profiles.attribute_sealing): the admin never shows them.
    fields = ("id", "created_at", "updated_at", "country", "feature_attributes", "stale_since", "merged_into")
    readonly_fields = fields


@admin.register(CustomerKey)
class CustomerKeyAdmin(ReadOnlyAdmin):
    list_display = ("customer", "kek_id", "key_version", "created_at", "rotated_at")
    list_filter = ("kek_id",)
    fields = ("customer", "kek_id", "key_version", "created_at", "rotated_at")
    readonly_fields = fields


@admin.register(PersonalField)
class PersonalFieldAdmin(ReadOnlyAdmin):
    """Which fields exist for whom; the ciphertext is not shown."""

    list_display = ("customer", "field", "key_version", "updated_at")
    list_filter = ("field",)
    fields = ("customer", "field", "key_version", "updated_at")
    readonly_fields = fields


@admin.register(BlindIndexEntry)
class BlindIndexEntryAdmin(ReadOnlyAdmin):
    list_display = ("customer", "kind", "created_at")
    list_filter = ("kind",)
    fields = ("customer", "kind", "created_at")
    readonly_fields = fields


@admin.register(SourceIdentity)
class SourceIdentityAdmin(ReadOnlyAdmin):
    list_display = ("customer", "source", "created_at")
    list_filter = ("source",)
    fields = ("customer", "source", "created_at", "last_seen_at")
    readonly_fields = fields


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "source", "kind", "status", "total_rows", "created", "updated", "merged", "unchanged",
                    "rejected", "created_at")
    list_filter = ("source", "status")
    fields = ("id", "source", "kind", "mapping", "status", "actor", "total_rows", "chunks_total", "chunks_done", "created",
              "updated", "merged", "unchanged", "rejected", "rejections", "created_at", "finished_at")
    readonly_fields = fields


@admin.register(Tombstone)
class TombstoneAdmin(ReadOnlyAdmin):
    list_display = ("customer_id", "erased_at", "reason")
    fields = ("customer_id", "erased_at", "reason")
    readonly_fields = fields


@admin.register(MergeRecord)
class MergeRecordAdmin(ReadOnlyAdmin):
    list_display = ("survivor_id", "loser_id", "matched_on", "source", "at")
    fields = ("survivor_id", "loser_id", "matched_on", "source", "actor", "at")
    readonly_fields = fields
