"""Customer 360 data model.

Privacy invariants held here (see docs/ARCHITECTURE.md and PRIVACY.md):

- ``Customer.id`` (a random UUID) is the pseudonym, the only identifier used outside this app.
- Personal data lives only in ``PersonalField.ciphertext`` (AES-256-GCM under the customer's data key,
  AAD = customer|field|key version) and in the encrypted original free text of facts. There is no
  plaintext personal column, and no unique or indexed column over personal data: lookups go through
  ``BlindIndexEntry`` / ``SourceIdentity`` digests (keyed HMAC-SHA256).
- Deleting the customer's ``CustomerKey`` row crypto-shreds every ciphertext of that customer.
- ``__str__`` of every model returns pseudonymous ids only.
"""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

SOURCES = ("crm", "erp", "support", "web")
SOURCE_CHOICES = [(s, s) for s in SOURCES]

# Standard personal fields (all stored encrypted). Extra CRM attributes marked personal are stored as
# PersonalField rows named "attr_<name>".
PERSONAL_FIELDS = (
    "name",
    "email",
    "phone",
    "address",
    "company",
    "job_title",
    "preferred_language",
    "date_of_birth",
)


class Customer(models.Model):
    """A person, known only by a random pseudonymous UUID."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Coarse, non-identifying: ISO 3166-1 alpha-2 country (phone normalization, locale recognizers).
    country = models.CharField(max_length=2, blank=True, default="")
    # Plain CRM attributes (e.g. lifecycle stage, segment): one JSON object encrypted under the customer's data
    # key (profiles.attribute_sealing; NULL when none), so erasure crypto-shreds them. Which of them are scoring
    # features (names only, no values) stays in clear.
    attributes_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    attributes_key_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    feature_attributes = models.JSONField(default=list, blank=True)
    # Set when new facts arrive; scoring's rescore_stale picks these up and clears it.
    stale_since = models.DateTimeField(null=True, blank=True, db_index=True)
    # An alias left behind by identity resolution points to the surviving customer.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="aliases"
    )

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return str(self.id)


class CustomerKey(models.Model):
    """The customer's data key (DEK), wrapped under a key-encryption key. Deleting it = crypto-shredding."""

    customer = models.OneToOneField(Customer, primary_key=True, on_delete=models.CASCADE, related_name="key")
    kek_id = models.CharField(max_length=64, db_index=True)
    wrapped = models.BinaryField()
    key_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"key:{self.customer_id}"


class PersonalField(models.Model):
    """One encrypted personal value (AES-256-GCM under the customer's DEK)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="personal_fields")
    field = models.CharField(max_length=80)
    ciphertext = models.BinaryField()
    key_version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "field"], name="personal_field_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.field}"


class BlindIndexEntry(models.Model):
    """Keyed HMAC digest of a normalized e-mail or phone: one identifier belongs to one customer."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        PHONE = "phone"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    digest = models.CharField(max_length=64)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="blind_indexes")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "digest"], name="blind_index_unique"),
            # One current e-mail and one current phone per customer (merges refuse a second one).
            models.UniqueConstraint(fields=["customer", "kind"], name="blind_index_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.customer_id}"


class SourceIdentity(models.Model):
    """One record of the customer in a source system (CRM, ERP, support desk, web/app)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="source_identities")
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)
    digest = models.CharField(max_length=64)  # source_index(source, external_id)
    external_id_encrypted = models.BinaryField()
    key_version = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "digest"], name="source_identity_unique")]

    def __str__(self) -> str:
        return f"{self.source}:{self.customer_id}"


class PlaceholderState(models.Model):
    """The Presidio placeholder numbering of one customer (``<PERSON_1>`` ...), encrypted under the DEK."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="placeholder_state"
    )
    ciphertext = models.BinaryField()
    key_version = models.PositiveIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"placeholders:{self.customer_id}"


# --- Facts ---------------------------------------------------------------------------------------------


class Fact(models.Model):
    """Common columns: the source system and a digest of its id for the record (upsert key)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16, choices=SOURCE_CHOICES)
    external_digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__.lower()}:{self.pk}:{self.customer_id}"


class Order(Fact):
    class Kind(models.TextChoices):
        ORDER = "order"
        INVOICE = "invoice"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ORDER)
    ordered_at = models.DateTimeField(db_index=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    margin = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    returned = models.BooleanField(default=False)
    days_late = models.IntegerField(null=True, blank=True)  # days the invoice was paid late (0 = on time)
    category = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_digest"], name="order_unique")]
        indexes = [models.Index(fields=["customer", "ordered_at"], name="order_customer_at")]


class Interaction(Fact):
    class Kind(models.TextChoices):
        LOGIN = "login"
        PAGE_VIEW = "page_view"
        EMAIL_OPEN = "email_open"
        EMAIL_CLICK = "email_click"
        FEATURE_USE = "feature_use"
        CART_ABANDON = "cart_abandon"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_digest"], name="interaction_unique")]
        indexes = [models.Index(fields=["customer", "at"], name="interaction_customer_at")]


class FreeTextFact(Fact):
    """A fact with free text: stored pseudonymized; the original only encrypted under the DEK, if kept."""

    text_original_encrypted = models.BinaryField(null=True, blank=True)
    key_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        abstract = True


class Ticket(FreeTextFact):
    class Channel(models.TextChoices):
        EMAIL = "email"
        PHONE = "phone"
        CHAT = "chat"
        WEB = "web"
        SOCIAL = "social"
        OTHER = "other"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tickets")
    opened_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.OTHER)
    escalated = models.BooleanField(default=False)
    satisfaction = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    category = models.CharField(max_length=64, blank=True, default="")
    text_pseudonymized = models.TextField(blank=True, default="")
    #: First answer by the business (KPIs: SLA adherence and first-response time by tier).
    first_response_at = models.DateTimeField(null=True, blank=True)
    #: ISO 639-1 code detected at ingestion ("" when there is no text, "und" when undetermined).
    language = models.CharField(max_length=8, blank=True, default="")
    #: Mood computed at ingestion from the original text, in memory: "positive" | "neutral" | "negative" |
    #: "unknown" (no model for the language) | "" (no text). Only the label and score are stored.
    sentiment_label = models.CharField(max_length=8, blank=True, default="")
    sentiment_score = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_digest"], name="ticket_unique"),
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="ticket_satisfaction_1_5",
            ),
        ]
        indexes = [models.Index(fields=["customer", "opened_at"], name="ticket_customer_at")]


class Note(FreeTextFact):
    """Free-form notes and call transcripts from CRM/support."""

    class Kind(models.TextChoices):
        NOTE = "note"
        CALL_TRANSCRIPT = "call_transcript"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.NOTE)
    at = models.DateTimeField(db_index=True)
    text_pseudonymized = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_digest"], name="note_unique")]


class Review(FreeTextFact):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="reviews")
    at = models.DateTimeField(db_index=True)
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    text_pseudonymized = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_digest"], name="review_unique"),
            models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="review_rating_1_5"),
        ]


class NpsAnswer(FreeTextFact):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="nps_answers")
    at = models.DateTimeField(db_index=True)
    score = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(10)])
    comment_pseudonymized = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_digest"], name="nps_unique"),
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=10), name="nps_score_0_10"),
        ]


class Referral(Fact):
    """The customer referred someone (who is not identified here)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="referrals")
    at = models.DateTimeField(db_index=True)
    converted = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "external_digest"], name="referral_unique")]


# --- PII-free records ----------------------------------------------------------------------------------


class Tombstone(models.Model):
    """What remains of an erased customer: the pseudonym, when, and a reason code. No personal data."""

    customer_id = models.UUIDField(primary_key=True)
    erased_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=32)

    def __str__(self) -> str:
        return f"erased:{self.customer_id}"


class MergeRecord(models.Model):
    """Identity resolution joined ``loser`` into ``survivor`` (pseudonyms and the matching rule only)."""

    survivor_id = models.UUIDField(db_index=True)
    loser_id = models.UUIDField(unique=True)
    matched_on = models.JSONField(default=list)  # ["email", "phone", "source"]
    source = models.CharField(max_length=16)
    actor = models.CharField(max_length=120)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"merge:{self.loser_id}->{self.survivor_id}"


# --- Imports -------------------------------------------------------------------------------------------


class ImportJob(models.Model):
    """A CSV import. Rows never leave the database unencrypted: chunks are stored under a per-job key."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=16)
    kind = models.CharField(max_length=32)
    mapping = models.CharField(max_length=32, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    actor = models.CharField(max_length=120)
    kek_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField()
    total_rows = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # [{"line": 12, "column": "email", "code": "invalid"}] -- never values.
    rejections = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import:{self.id}"


class ImportChunk(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    chunk_no = models.PositiveIntegerField()
    ciphertext = models.BinaryField()
    rows = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "chunk_no"], name="import_chunk_unique")]

    def __str__(self) -> str:
        return f"import:{self.job_id}:{self.chunk_no}"
