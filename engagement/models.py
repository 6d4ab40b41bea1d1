"""Next-best actions and holdout assignments. Pseudonyms, codes, numbers and reasons in words: no personal data.

Invariants (database constraints)
- one open (``open`` or ``claimed``) action per customer and action type (``action_one_open_per_type``);
- one holdout assignment per customer (primary key).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

OPEN_STATUSES = ("open", "claimed")


class Action(models.Model):
    class Type(models.TextChoices):
        RETENTION_CALL = "retention_call"
        UPSELL_OFFER = "upsell_offer"
        ADVOCACY_ASK = "advocacy_ask"
        SLA_BREACH = "sla_breach"
        WIN_BACK = "win_back"

    class Status(models.TextChoices):
        OPEN = "open"
        CLAIMED = "claimed"
        COMPLETED = "completed"
        DISMISSED = "dismissed"
        CANCELLED = "cancelled"

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        DECLINED = "declined"
        RETAINED = "retained"
        CHURNED = "churned"
        NO_ANSWER = "no_answer"

    customer_id = models.UUIDField()  # the pseudonym
    type = models.CharField(max_length=20, choices=Type.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    purpose = models.CharField(max_length=64)  # whose consent the action needs (checked at creation)
    tier = models.CharField(max_length=32)
    scores = models.JSONField(default=dict)  # {"clv", "churn_probability", "risk_level", "upsell", "advocacy"}
    priority = models.FloatField()  # higher first
    value_at_stake = models.FloatField(default=0.0)
    currency = models.CharField(max_length=3, default="EUR")
    due_at = models.DateTimeField()
    reason = models.TextField()  # in words, from the decision's explanation (no personal data)
    decision_id = models.BigIntegerField(null=True, blank=True)  # the audited decision that led to it
    source = models.CharField(max_length=16)  # "event" (score event) or "sweep" (after a rescore run)
    ticket_id = models.BigIntegerField(null=True, blank=True)  # sla_breach: the late ticket (fact id)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default="")
    close_reason = models.CharField(max_length=32, blank=True, default="")  # a code, e.g. consent_withdrawn
    claimed_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "type"], condition=Q(status__in=OPEN_STATUSES),
                                    name="action_one_open_per_type"),
            models.CheckConstraint(condition=Q(status="completed") | Q(outcome=""), name="action_outcome_on_completion"),
        ]
        indexes = [
            models.Index(fields=["status", "-priority", "id"], name="action_queue"),
            models.Index(fields=["customer_id", "status"], name="action_customer_status"),
            models.Index(fields=["type", "created_at"], name="action_type_created"),
        ]

    def __str__(self) -> str:
        return f"action:{self.pk}:{self.type}:{self.customer_id}"


class HoldoutAssignment(models.Model):
    """Whether a customer is in the holdout group (no proactive actions): assigned once by a keyed hash,
    recorded as an audited decision (``decision_id``). Deleted on erasure."""

    customer_id = models.UUIDField(primary_key=True)
    holdout = models.BooleanField()
    share = models.FloatField()  # the holdout share in force at assignment
    bucket = models.FloatField()  # the keyed hash as a number in [0, 1)
    decision_id = models.BigIntegerField(null=True, blank=True)
    assigned_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["holdout", "assigned_at"], name="holdout_group_at")]

    def __str__(self) -> str:
        return f"holdout:{self.customer_id}"
