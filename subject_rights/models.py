"""Data-subject requests, their clock, verification codes, exports, legal holds, the erasure ledger
and human reviews of contested automated decisions.

Privacy invariants held here:

- The subject is referred to only by the pseudonym (``Customer.id``); it is empty when no customer
  matched the requester (the request is then answered as "no data held").
- The requester's e-mail is never stored in clear: only its blind index (for throttling) and, for
  communicating with the requester, a ciphertext under the customer's data key (so erasure shreds
  it) or under a per-request key that is destroyed when the request closes.
- Verification codes are stored only as an HMAC.
- Export files are AES-GCM ciphertext under a per-export key; the key row is shredded on expiry.
- Nothing here has a unique or indexed column over personal data.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RequestType(models.TextChoices):
    ACCESS = "access", _("Access (Art. 15)")
    PORTABILITY = "portability", _("Portability (Art. 20)")
    RECTIFICATION = "rectification", _("Rectification (Art. 16)")
    ERASURE = "erasure", _("Erasure (Art. 17)")
    RESTRICTION = "restriction", _("Restriction (Art. 18)")
    OBJECTION = "objection", _("Objection (Art. 21)")
    CONTEST = "contest", _("Contest of an automated decision (Art. 22(3))")


class Channel(models.TextChoices):
    SELF_SERVICE = "self_service", _("Self-service")
    API = "api", _("Internal API")
    DPO = "dpo", _("DPO on behalf")


class Status(models.TextChoices):
    RECEIVED = "received", _("Received")
    IDENTITY_PENDING = "identity_pending", _("Identity pending")
    VERIFIED = "verified", _("Verified")
    IN_PROGRESS = "in_progress", _("In progress")
    EXTENDED = "extended", _("Extended")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")


OPEN_STATUSES = (Status.RECEIVED, Status.IDENTITY_PENDING, Status.VERIFIED, Status.IN_PROGRESS, Status.EXTENDED)
CLOSED_STATUSES = (Status.COMPLETED, Status.REJECTED)


class Outcome(models.TextChoices):
    NONE = "", _("-")
    NO_DATA_HELD = "no_data_held", _("No data held")
    EXPORTED = "exported", _("Export delivered")
    RECTIFIED = "rectified", _("Rectified and rescored")
    ERASED = "erased", _("Erased")
    RESTRICTED = "restricted", _("Processing restricted")
    OBJECTED = "objected", _("Objection applied")
    REVIEW_CONFIRMED = "review_confirmed", _("Decision confirmed by a human")
    REVIEW_OVERRIDDEN = "review_overridden", _("Decision overridden by a human")
    ANSWERED = "answered", _("Answered")


class RejectionCode(models.TextChoices):
    IDENTITY_NOT_VERIFIED = "identity_not_verified", _("Identity could not be verified")
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded", _("Manifestly unfounded (Art. 12(5))")
    EXCESSIVE = "excessive", _("Excessive, in particular repetitive (Art. 12(5))")
    LEGAL_HOLD = "legal_hold", _("A legal hold prevents erasure (Art. 17(3))")
    LEGAL_OBLIGATION = "legal_obligation", _("A legal obligation requires us to keep the data")
    INVALID = "invalid", _("The request could not be carried out as asked")
    OTHER = "other", _("Other")


class ExtensionCode(models.TextChoices):
    COMPLEXITY = "complexity", _("The request is complex")
    NUMBER_OF_REQUESTS = "number_of_requests", _("We received a large number of requests")


class SubjectRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=16, choices=RequestType.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    # The pseudonym; empty when no customer matched (answered as "no data held").
    subject = models.UUIDField(null=True, blank=True, db_index=True)
    requester = models.CharField(max_length=120)  # api:<client>, user:<name>, subject:self
    # sha256(requester | key): unique, so the same key from the same requester is the same request.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    purpose = models.CharField(max_length=64, blank=True, default="")  # restriction/objection scope
    decision_id = models.BigIntegerField(null=True, blank=True)  # contest
    # Blind index of the requester's e-mail (self-service throttling); cleared when the request closes.
    email_digest = models.CharField(max_length=64, blank=True, default="")
    # Rectification values, sealed under the customer's data key; cleared once applied.
    payload_sealed = models.BinaryField(null=True, blank=True)
    # The requester's e-mail for communication, encrypted; cleared when the request closes.
    contact_mode = models.CharField(max_length=8, blank=True, default="")  # "customer" | "request" | ""
    contact_sealed = models.BinaryField(null=True, blank=True)
    contact_kek_id = models.CharField(max_length=64, blank=True, default="")
    contact_key_wrapped = models.BinaryField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True, default="")

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The clock: due_at excludes a running pause (see subject_rights.clock).
    due_at = models.DateTimeField(db_index=True)
    paused_since = models.DateTimeField(null=True, blank=True)
    paused_total = models.DurationField(default=timedelta(0))
    extension_months = models.PositiveSmallIntegerField(default=0)
    extension_code = models.CharField(max_length=24, choices=ExtensionCode.choices, blank=True, default="")
    extension_reason = models.TextField(blank=True, default="")
    extended_at = models.DateTimeField(null=True, blank=True)
    alert_level = models.CharField(max_length=10, blank=True, default="", db_index=True)
    alerted_at = models.DateTimeField(null=True, blank=True)

    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, default="")
    rejection_code = models.CharField(max_length=24, choices=RejectionCode.choices, blank=True, default="")
    rejection_reason = models.TextField(blank=True, default="")
    # PII-free facts about what was done: decision ids before/after, export id, changed field names...
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["due_at", "received_at"]
        constraints = [
            models.CheckConstraint(condition=Q(extension_months__gte=0, extension_months__lte=2),
                                   name="dsr_extension_at_most_two_months"),
            models.CheckConstraint(condition=~Q(status="rejected") | ~Q(rejection_code=""),
                                   name="dsr_rejection_has_reason"),
            models.CheckConstraint(condition=~Q(type="contest") | Q(decision_id__isnull=False),
                                   name="dsr_contest_has_decision"),
            models.CheckConstraint(condition=Q(extension_months=0) | ~Q(extension_code=""),
                                   name="dsr_extension_has_reason"),
        ]
        indexes = [models.Index(fields=["status", "due_at"], name="dsr_status_due")]

    def __str__(self) -> str:
        return f"dsr:{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class StatusChange(models.Model):
    """The request's history (the audit chain holds the same as ``dsr.status_changed``)."""

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="history")
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=120)
    code = models.CharField(max_length=32, blank=True, default="")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"dsr:{self.request_id}:{self.from_status}->{self.to_status}"


class VerificationCode(models.Model):
    """A one-time code sent to the requester's e-mail; only its HMAC is kept."""

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"otp:{self.request_id}"


class Export(models.Model):
    """An encrypted export file under EXPORT_DIR; the wrapped per-export key is shredded on expiry."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="exports")
    subject = models.UUIDField(db_index=True)
    kek_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField(null=True, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export:{self.id}"

    @property
    def file_name(self) -> str:
        return f"{self.id}.bin"


class LegalHold(models.Model):
    """A configured reason (settings.LEGAL_HOLD_REASONS) that blocks erasure of one subject."""

    subject = models.UUIDField(db_index=True)
    reason = models.CharField(max_length=64)
    justification = models.TextField()
    placed_by = models.CharField(max_length=120)
    placed_at = models.DateTimeField(default=timezone.now)
    released_by = models.CharField(max_length=120, blank=True, default="")
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at"]
        constraints = [models.CheckConstraint(condition=~Q(justification=""), name="legal_hold_justified")]

    def __str__(self) -> str:
        return f"hold:{self.subject}:{self.reason}"

    @property
    def active(self) -> bool:
        return self.released_at is None


class ErasureLedgerEntry(models.Model):
    """PII-free record of an erasure (also appended to the file store under ERASURE_LEDGER_DIR)."""

    customer_id = models.UUIDField(unique=True)
    request_id = models.UUIDField(null=True, blank=True)
    erased_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["erased_at", "id"]

    def __str__(self) -> str:
        return f"erased:{self.customer_id}"


class ReviewTask(models.Model):
    """A human review of a contested automated decision (Art. 22(3)), worked in the DPO console."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DECIDED = "decided", "Decided"
        CANCELLED = "cancelled", "Cancelled"

    class Result(models.TextChoices):
        NONE = "", "-"
        CONFIRMED = "confirmed", "Confirmed"
        OVERRIDDEN = "overridden", "Overridden"

    request = models.OneToOneField(SubjectRequest, on_delete=models.CASCADE, related_name="review")
    subject = models.UUIDField(db_index=True)
    decision_id = models.BigIntegerField()
    purpose = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    reviewer = models.CharField(max_length=120, blank=True, default="")
    outcome = models.CharField(max_length=12, choices=Result.choices, blank=True, default="")
    override = models.JSONField(default=dict, blank=True)  # {"tier": ..., "service_level": ...}
    rationale = models.TextField(blank=True, default="")
    audit_review_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="open", decided_at__isnull=True) | ~Q(state="open"),
                name="review_open_not_decided",
            ),
            models.CheckConstraint(
                condition=~Q(state="decided") | (~Q(outcome="") & ~Q(rationale="")),
                name="review_decided_has_outcome_and_rationale",
            ),
        ]

    def __str__(self) -> str:
        return f"review:{self.pk}:{self.subject}"
