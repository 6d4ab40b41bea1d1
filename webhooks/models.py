"""Webhook subscriptions, their deliveries and the record of who received which customer's data.

Nothing here holds personal data: endpoints, purpose codes, event types, pseudonymous customer ids, states and
short error codes. The signing secret is stored encrypted (AES-256-GCM under a key-encryption key from the
settings, ``KEK_KEYS``), bound to its subscription by associated data.
"""

from __future__ import annotations

import uuid

from django.db import models


class WebhookSubscription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)  # event types (events.services.PUBLIC_EVENT_TYPES)
    purpose = models.CharField(max_length=64)
    secret_sealed = models.BinaryField()
    secret_kek_id = models.CharField(max_length=64)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"webhook:{self.id}"


class Delivery(models.Model):
    """One event for one subscription. ``seq`` (the outbox id) orders a customer's deliveries per endpoint."""

    class State(models.TextChoices):
        PENDING = "pending"  # waiting for its first or next attempt (or for an earlier delivery)
        DELIVERED = "delivered"  # the endpoint answered 2xx
        DEAD = "dead"  # every attempt failed for the whole retry window: a dead letter (replayable)
        DROPPED = "dropped"  # not sent, on purpose (no consent at send time, subscription deleted)

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("events.OutboxEvent", on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    customer_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    window_started_at = models.DateTimeField()  # the retry window (24 h by default) runs from here
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # HTTP status of the last attempt
    last_error = models.CharField(max_length=64, blank=True, default="")  # a short code, never a body
    reason = models.CharField(max_length=64, blank=True, default="")  # why dropped / dead
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["subscription", "event"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["subscription", "customer_id", "state", "seq"], name="webhook_delivery_order"),
        ]

    def __str__(self) -> str:
        return f"delivery:{self.pk}"


class WebhookRecipient(models.Model):
    """An endpoint that was sent data about a customer (GDPR Art. 19: it is told of erasure and withdrawal)."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="recipients")
    customer_id = models.UUIDField()
    first_sent_at = models.DateTimeField()
    last_sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscription", "customer_id"], name="webhook_recipient_once")]
        indexes = [models.Index(fields=["customer_id"], name="webhook_recipient_customer")]

    def __str__(self) -> str:
        return f"recipient:{self.subscription_id}"
