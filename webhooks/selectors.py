"""Reads of the webhooks app: subscriptions, dead letters and delivery health (console, API)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from config.errors import NotFound
from events import selectors as events_selectors
from webhooks.models import Delivery, WebhookSubscription


def subscription_list() -> list[WebhookSubscription]:
    return list(WebhookSubscription.objects.filter(deleted_at__isnull=True).order_by("created_at", "id"))


def subscription_get(*, subscription_id: uuid.UUID) -> WebhookSubscription:
    sub = WebhookSubscription.objects.filter(id=subscription_id, deleted_at__isnull=True).first()
    if sub is None:
        raise NotFound("Webhook subscription not found.")
    return sub


def dead_letters(*, limit: int = 200) -> list[Delivery]:
    return list(Delivery.objects.filter(state=Delivery.State.DEAD).select_related("subscription", "event")
                .order_by("-last_attempt_at", "-id")[:limit])


def deliveries_for_customer(*, customer_id: uuid.UUID) -> list[Delivery]:
    return list(Delivery.objects.filter(customer_id=customer_id).order_by("seq", "id"))


def erasure_notice_recipients(*, customer_ids: list[uuid.UUID]) -> list[WebhookSubscription]:
    """The live subscriptions an erasure of these pseudonyms would notify (GDPR Art. 19): those subscribed
    to ``customer.erased`` and every past recipient of the customer's data."""
    from webhooks.models import WebhookRecipient

    past = set(WebhookRecipient.objects.filter(customer_id__in=customer_ids).values_list("subscription_id", flat=True))
    return [s for s in subscription_list() if "customer.erased" in (s.events or []) or s.id in past]


def delivery_health(*, recent: int = 20) -> dict[str, Any]:
    """Counts by state, deliveries failing now (pending after a failed attempt), the most recent failures,
    the outbox backlog and the deliveries of the last 24 hours."""
    counts = dict.fromkeys(Delivery.State.values, 0)
    for row in Delivery.objects.values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = int(row["n"])
    retrying = Delivery.objects.filter(state=Delivery.State.PENDING, attempts__gt=0).count()
    failures = list(Delivery.objects.exclude(last_error="").exclude(state=Delivery.State.DELIVERED)
                    .select_related("subscription").order_by("-last_attempt_at", "-id")[:recent])
    since = timezone.now() - timedelta(hours=24)
    delivered_24h = Delivery.objects.filter(state=Delivery.State.DELIVERED, delivered_at__gte=since).count()
    dropped = {row["reason"]: int(row["n"]) for row in Delivery.objects.filter(state=Delivery.State.DROPPED)
               .values("reason").annotate(n=Count("id")).order_by()}
    return {"counts": counts, "retrying": retrying, "recent_failures": failures, "delivered_24h": delivered_24h,
            "dropped_reasons": dropped, "outbox": events_selectors.outbox_backlog(),
            "subscriptions": WebhookSubscription.objects.filter(deleted_at__isnull=True).count()}
