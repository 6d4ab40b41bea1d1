"""The outbox. Rows hold pseudonymous ids, purpose codes, scores, tiers and reason codes: never personal data."""

from __future__ import annotations

import uuid

from django.db import models


class OutboxEvent(models.Model):
    """One event, written in the transaction of the change that caused it.

    ``id`` orders events (per customer, the order of their changes); ``event_id`` is the stable id receivers
    use to deduplicate at-least-once deliveries.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64, db_index=True)
    customer_id = models.UUIDField(null=True, blank=True, db_index=True)
    purpose = models.CharField(max_length=64, null=True, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set by the relay (``events.services.events_claim_undispatched`` + ``events_mark_dispatched``) once the
    # event has been fanned out to its recipients; a partial index finds the rest at once.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["customer_id", "id"], name="outbox_customer_seq"),
            models.Index(fields=["id"], name="outbox_undispatched", condition=models.Q(dispatched_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.event_id}"
