"""Read-only admin of webhook subscriptions and deliveries: hosts, codes, pseudonyms, states; never secrets.

Changes go through the API (subscriptions) and the DPO console (replay), which audit them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from webhooks.models import Delivery, WebhookSubscription


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(_ReadOnly):
    list_display = ("id", "purpose", "created_by", "created_at", "deleted_at")
    exclude = ("secret_sealed", "secret_kek_id")


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnly):
    list_display = ("id", "event_type", "state", "attempts", "last_status", "last_error", "next_attempt_at")
    list_filter = ("state", "event_type")
