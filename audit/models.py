"""Audit models. The audit app depends on no other app of ours.

``ApiClient`` lives here because API clients are the *recipients* of decisions and the *requesters*
recorded in every decision record; the accountability layer owns who may ask for what.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, ClassVar

from django.db import models
from django.utils import timezone


class ApiClient(models.Model):
    """An internal system (support desk, CRM, marketing) calling the API with a bearer token.

    The token is stored only as a SHA-256 hash; it is shown once, at creation.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12)
    scopes = models.JSONField(default=list)
    purposes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"api-client:{self.name}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def requester(self) -> str:
        return f"api:{self.name}"


# =====================================================================================================
# Accountability records. All of them are append-only: the ORM refuses updates and deletes (below), and
# on PostgreSQL a trigger (migration 0003) refuses UPDATE, DELETE and TRUNCATE. Each chained record
# carries the SHA-256 of its canonical form (``audit.canonical``), computed at insert in the business
# transaction; the sealer (``audit.chain``) later links it into the hash chain (``ChainLink``).
# =====================================================================================================


class AppendOnlyViolation(Exception):
    """Raised when code tries to change or delete an append-only audit row."""

    def __init__(self, model: str = "audit record") -> None:
        super().__init__(f"{model} rows are append-only")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyViolation(self.model.__name__)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyViolation(self.model.__name__)

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise AppendOnlyViolation(self.model.__name__)

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyViolation(self.model.__name__)

    def _raw_delete(self, using: Any) -> int:
        raise AppendOnlyViolation(self.model.__name__)


class AppendOnlyModel(models.Model):
    """Insert-only rows: ``save()`` of an existing row and ``delete()`` raise ``AppendOnlyViolation``."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation(type(self).__name__)
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyViolation(type(self).__name__)


class CanonicalJSONField(models.TextField):
    """A JSON value stored as its canonical text (sorted keys, compact, ASCII, no NaN).

    Stored as text rather than jsonb so that the stored bytes *are* the canonical form: the verifier
    hashes them without parsing and re-serialising (see ``audit.canonical``).
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class ChainedRecord(AppendOnlyModel):
    """An audit record that is linked into the hash chain."""

    RECORD_TYPE: ClassVar[str] = ""
    # Fields covered by the content hash, in addition to created_at (see audit.canonical).
    CANONICAL_FIELDS: ClassVar[tuple[str, ...]] = ()

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(default=timezone.now)
    content_hash = models.CharField(max_length=64, editable=False)

    class Meta:
        abstract = True


class DecisionRecord(ChainedRecord):
    """One automated decision. ``customer`` is the pseudonym, deliberately not a foreign key, so the
    record outlives erasure; anything sensitive (features, explanation) sits in ``sealed_details``,
    encrypted under the customer's data key, and is crypto-shredded by erasure."""

    RECORD_TYPE = "decision"
    CANONICAL_FIELDS = (
        "customer", "purpose", "consent_event_id", "notice_version", "requester", "decision_type",
        "model_versions", "model_version", "features_hash", "outputs", "tier", "sealed_details", "decision_key",
    )

    class DecisionType(models.TextChoices):
        SERVED_SCORE = "served_score", "Served score"
        BATCH_RESCORE = "batch_rescore", "Batch rescore"
        TIER_CHANGE = "tier_change", "Tier change"
        ROUTING = "routing", "Routing"
        HOLDOUT_ASSIGNMENT = "holdout_assignment", "Holdout assignment"

    customer = models.UUIDField()
    purpose = models.CharField(max_length=64)
    consent_event_id = models.BigIntegerField(null=True, blank=True)
    notice_version = models.CharField(max_length=64, null=True, blank=True)
    requester = models.CharField(max_length=150)
    decision_type = models.CharField(max_length=32, choices=DecisionType.choices)
    model_versions = CanonicalJSONField(default=dict)
    # Denormalised (hashed, kept for the record): the single version when all models share one, else
    # "name=version;...". Not used for searching: a version inside the mixed form needs a LIKE '%..%'.
    model_version = models.CharField(max_length=200, blank=True, default="")
    # Search columns (not hashed; derived from the hashed ``model_versions`` by ``model_version_columns``,
    # and the verifier checks that they still are): the record's distinct model versions in sorted order,
    # at most two (the full model bundle and, when a churn table model is active, the churn model).
    model_version_1 = models.CharField(max_length=64, blank=True, default="")
    model_version_2 = models.CharField(max_length=64, null=True, blank=True)
    features_hash = models.CharField(max_length=64)
    outputs = CanonicalJSONField(default=dict)
    tier = models.CharField(max_length=32, blank=True, default="")  # denormalised from outputs["tier"]
    sealed_details = models.BinaryField(null=True, blank=True)
    # Unique where present (batch rescores: one per customer and run); served scores carry none, so the
    # index is partial and a real-time append does not pay for it.
    decision_key = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["decision_key"], condition=models.Q(decision_key__isnull=False),
                                    name="audit_dec_key_unique"),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_dec_created"),
            models.Index(fields=["customer", "created_at", "id"], name="audit_dec_customer"),
            models.Index(fields=["decision_type", "created_at", "id"], name="audit_dec_type"),
            models.Index(fields=["tier", "created_at", "id"], name="audit_dec_tier"),
            models.Index(fields=["purpose", "created_at", "id"], name="audit_dec_purpose"),
            models.Index(fields=["requester", "created_at", "id"], name="audit_dec_requester"),
            models.Index(fields=["model_version_1", "created_at", "id"], name="audit_dec_model_1"),
            models.Index(fields=["model_version_2", "created_at", "id"], name="audit_dec_model_2",
                         condition=models.Q(model_version_2__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"decision:{self.pk}"


MAX_MODEL_VERSIONS = 2  # distinct model versions one decision may rely on (one search column each)


def model_version_columns(model_versions: dict[str, Any]) -> tuple[str, str | None]:
    """The search columns ``(model_version_1, model_version_2)`` of a decision's ``model_versions``: its
    distinct versions in code-point order, the second ``None`` when all models share one version.
    (Decisions with more than ``MAX_MODEL_VERSIONS`` distinct versions are refused at insert.)"""
    distinct = sorted({str(v) for v in model_versions.values()})
    if not distinct:
        return "", None
    return distinct[0], distinct[1] if len(distinct) > 1 else None


class HumanReview(ChainedRecord):
    """A human review of one decision (Art. 22(3)): confirmed, or overridden with the new outcome."""

    RECORD_TYPE = "review"
    CANONICAL_FIELDS = ("decision_id", "customer", "reviewer", "outcome", "override", "rationale")

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        OVERRIDDEN = "overridden", "Overridden"

    decision = models.ForeignKey(DecisionRecord, on_delete=models.PROTECT, related_name="reviews")
    customer = models.UUIDField()  # denormalised from the decision, for subject lookups
    reviewer = models.CharField(max_length=150)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    override = CanonicalJSONField(default=dict)
    rationale = models.TextField(blank=True, default="")  # the reviewer's reasoning; no personal data

    class Meta:
        indexes = [
            models.Index(fields=["decision", "created_at"], name="audit_review_decision"),
            models.Index(fields=["customer", "created_at"], name="audit_review_customer"),
            models.Index(fields=["created_at", "id"], name="audit_review_created"),
        ]

    def __str__(self) -> str:
        return f"review:{self.pk}"


class AccessRecord(ChainedRecord):
    """A read of a customer's personal data (API, console, export): who, why, whose, what, when."""

    RECORD_TYPE = "access"
    CANONICAL_FIELDS = ("actor", "purpose", "subject", "what", "details")

    actor = models.CharField(max_length=150)
    purpose = models.CharField(max_length=64)
    subject = models.UUIDField(null=True, blank=True)
    what = models.CharField(max_length=200)
    details = CanonicalJSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_access_created"),
            models.Index(fields=["subject", "created_at", "id"], name="audit_access_subject"),
            models.Index(fields=["actor", "created_at", "id"], name="audit_access_actor"),
            models.Index(fields=["purpose", "created_at", "id"], name="audit_access_purpose"),
        ]

    def __str__(self) -> str:
        return f"access:{self.pk}"


class GovernanceEvent(ChainedRecord):
    """A governance event: consent change, merge, key rotation, request state change, login, ..."""

    RECORD_TYPE = "governance"
    CANONICAL_FIELDS = ("kind", "actor", "subject", "details")

    kind = models.CharField(max_length=64)
    actor = models.CharField(max_length=150)
    subject = models.UUIDField(null=True, blank=True)
    details = CanonicalJSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_gov_created"),
            models.Index(fields=["kind", "created_at", "id"], name="audit_gov_kind"),
            models.Index(fields=["subject", "created_at", "id"], name="audit_gov_subject"),
        ]

    def __str__(self) -> str:
        return f"governance:{self.pk}"


CHAINED_MODELS: tuple[type[ChainedRecord], ...] = (DecisionRecord, HumanReview, AccessRecord, GovernanceEvent)
RECORD_TYPES: dict[str, type[ChainedRecord]] = {m.RECORD_TYPE: m for m in CHAINED_MODELS}


class PendingSeal(models.Model):
    """Outbox of committed-but-not-yet-chained records. Written in the business transaction, consumed
    (and deleted) by the sealer. Not an audit table itself: losing a row here cannot hide anything,
    because verification reports every record that is neither linked nor pending."""

    id = models.BigAutoField(primary_key=True)
    record_type = models.CharField(max_length=16)
    row_id = models.BigIntegerField()
    entry_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at", "id"], name="audit_pending_order")]
        constraints = [models.UniqueConstraint(fields=["record_type", "row_id"], name="audit_pending_once")]

    def __str__(self) -> str:
        return f"pending:{self.record_type}:{self.row_id}"


class ChainHead(models.Model):
    """A single row (pk=1) the sealer locks; caches the head of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    link_hash = models.CharField(max_length=64, default="0" * 64)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"chain-head:{self.seq}"


class ChainLink(AppendOnlyModel):
    """One link of the hash chain: record ``(record_type, row_id)`` with content hash ``entry_hash`` at
    position ``seq``; ``link_hash = sha256("seq|record_type|row_id|entry_hash|prev_link_hash")``."""

    seq = models.BigIntegerField(primary_key=True)
    record_type = models.CharField(max_length=16)
    row_id = models.BigIntegerField()
    entry_hash = models.CharField(max_length=64)
    prev_link_hash = models.CharField(max_length=64)
    link_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_type", "row_id"], name="audit_link_once")]

    def __str__(self) -> str:
        return f"link:{self.seq}"


class Checkpoint(AppendOnlyModel):
    """Metadata of a signed checkpoint (the signed copy lives in the external checkpoint store;
    verification trusts only that copy)."""

    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField()
    link_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)
    location = models.CharField(max_length=300)

    class Meta:
        indexes = [models.Index(fields=["seq"], name="audit_checkpoint_seq")]

    def __str__(self) -> str:
        return f"checkpoint:{self.seq}"


class VerificationRun(AppendOnlyModel):
    """The outcome of one chain verification (shown on the console's chain status page)."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    first_bad_seq = models.BigIntegerField(null=True, blank=True)
    first_bad_record = models.CharField(max_length=64, blank=True, default="")
    checked = models.BigIntegerField(default=0)
    checkpoints_checked = models.IntegerField(default=0)
    from_seq = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, default="")
    actor = models.CharField(max_length=150, default="cli")

    class Meta:
        indexes = [models.Index(fields=["finished_at", "id"], name="audit_verify_finished")]

    def __str__(self) -> str:
        return f"verification:{self.pk}"


# =====================================================================================================
# Personal-data breach register (Art. 33(5)). Not a chained record: the incident row is a register entry
# the DPO keeps up to date. Every change to it writes a governance record (breach.recorded,
# breach.updated, breach.authority_notified, breach.closed) in the same transaction, naming the changed
# fields, so the history is in the hash chain. All text is typed by the DPO and must be PII-free: the
# service (audit.breach) refuses text that contains an e-mail address.
# =====================================================================================================


class BreachIncident(models.Model):
    """One personal-data breach (or a drill), with the Art. 33(3) facts and the 72-hour clock."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ASSESSED = "assessed", "Assessed"
        NOTIFIED_AUTHORITY = "notified_authority", "Authority notified"
        CLOSED = "closed", "Closed"

    class Risk(models.TextChoices):
        UNLIKELY = "unlikely", "Unlikely to result in a risk (no notification, Art. 33(1))"
        RISK = "risk", "Risk: notify the supervisory authority (Art. 33)"
        HIGH_RISK = "high_risk", "High risk: also tell the data subjects (Art. 34)"

    class Nature(models.TextChoices):
        CONFIDENTIALITY = "confidentiality", "Confidentiality (disclosure or access)"
        INTEGRITY = "integrity", "Integrity (alteration)"
        AVAILABILITY = "availability", "Availability (loss or destruction)"

    id = models.BigAutoField(primary_key=True)
    reference = models.CharField(max_length=20, unique=True)  # BR-<year>-<number>
    detected_at = models.DateTimeField()  # when we became aware: the 72-hour clock starts here
    recorded_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    reported_by = models.CharField(max_length=150)  # actor string
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OPEN)
    is_drill = models.BooleanField(default=False)
    # Art. 33(3)(a)
    nature = models.JSONField(default=list)  # subset of Nature values
    description = models.TextField()
    subject_categories = models.JSONField(default=list)
    subjects_estimate = models.PositiveIntegerField()
    data_categories = models.JSONField(default=list)
    records_estimate = models.PositiveIntegerField()
    # Art. 33(3)(b): the DPO's contact point, from settings.DPO_EMAIL (a role address, not a data subject)
    dpo_contact = models.CharField(max_length=254)
    # Art. 33(3)(c), (d)
    consequences = models.TextField()
    measures = models.TextField()
    # Risk assessment (Art. 33(1), 34(1))
    risk = models.CharField(max_length=16, choices=Risk.choices)
    authority_notified_at = models.DateTimeField(null=True, blank=True)
    delay_reason = models.TextField(blank=True, default="")  # Art. 33(1): reasons for a late notification
    subjects_notified_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closing_note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-detected_at", "-id"]
        indexes = [models.Index(fields=["status", "detected_at"], name="audit_breach_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["open", "assessed", "notified_authority", "closed"]),
                                   name="audit_breach_status_valid"),
            models.CheckConstraint(condition=models.Q(risk__in=["unlikely", "risk", "high_risk"]),
                                   name="audit_breach_risk_valid"),
            models.CheckConstraint(
                condition=~models.Q(status="notified_authority") | models.Q(authority_notified_at__isnull=False),
                name="audit_breach_notified_has_time",
            ),
            models.CheckConstraint(condition=~models.Q(status="closed") | models.Q(closed_at__isnull=False),
                                   name="audit_breach_closed_has_time"),
        ]

    def __str__(self) -> str:
        return self.reference
