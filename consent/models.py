"""Consent ledger: purposes, versioned notices, append-only consent events and processing flags.

Invariants:

- ``ConsentEvent`` and ``ProcessingFlag`` are append-only. The ORM refuses ``save()`` of an existing row,
  ``delete()``, and queryset ``update()`` / ``delete()`` / ``bulk_update()``. The single exception is
  erasure (``consent.services.consent_erase_subject``), which deletes a subject's rows through the private
  :func:`erasure_bypass` context.
- ``ConsentNotice`` rows are immutable once published (their ``text_hash`` proves what the person saw).
- ``ConsentStateCurrent`` / ``ProcessingFlagCurrent`` are denormalized "now" tables, written in the same
  transaction as each event, for the hot path (real-time and batch gating). Past instants are always
  derived from the events themselves.
- Customers are referenced only by their pseudonym (``customer_id``, a UUID), never by a foreign key into
  ``profiles``; no personal data is stored here (evidence is PII-free: hashes and keyed HMACs only).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

_ERASURE_BYPASS: contextvars.ContextVar[bool] = contextvars.ContextVar("consent_erasure_bypass", default=False)


class AppendOnlyViolation(Exception):
    """Raised when code tries to change or delete an append-only consent record."""


@contextlib.contextmanager
def erasure_bypass() -> Iterator[None]:
    """Private: only ``consent.services.consent_erase_subject`` may delete append-only rows."""
    token = _ERASURE_BYPASS.set(True)
    try:
        yield
    finally:
        _ERASURE_BYPASS.reset(token)


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyViolation(f"{self.model.__name__} rows are append-only")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise AppendOnlyViolation(f"{self.model.__name__} rows are append-only")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyViolation(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        if not _ERASURE_BYPASS.get():
            raise AppendOnlyViolation(f"{self.model.__name__} rows are append-only")
        return super().delete()

    delete.queryset_only = True  # type: ignore[attr-defined]

    def _raw_delete(self, using: Any) -> int:
        if not _ERASURE_BYPASS.get():
            raise AppendOnlyViolation(f"{self.model.__name__} rows are append-only")
        return super()._raw_delete(using)  # type: ignore[misc]


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if not _ERASURE_BYPASS.get():
            raise AppendOnlyViolation(f"{type(self).__name__} rows are append-only")
        return super().delete(*args, **kwargs)


class LawfulBasis(models.TextChoices):
    CONSENT = "consent", "Consent (Art. 6(1)(a))"
    CONTRACT = "contract", "Contract (Art. 6(1)(b))"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation (Art. 6(1)(c))"
    VITAL_INTERESTS = "vital_interests", "Vital interests (Art. 6(1)(d))"
    PUBLIC_TASK = "public_task", "Public task (Art. 6(1)(e))"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interests (Art. 6(1)(f))"


class Purpose(models.Model):
    """A purpose of processing (Art. 5(1)(b)), with its lawful basis and retention (Art. 30)."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField()
    lawful_basis = models.CharField(max_length=32, choices=LawfulBasis.choices)
    explicit_consent_required = models.BooleanField(default=True)
    retention_days = models.PositiveIntegerField()
    data_categories = models.JSONField(default=list, blank=True)
    recipients = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class ConsentNotice(models.Model):
    """One published version of the text a person is shown when asked for consent."""

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="notices")
    version = models.CharField(max_length=32)
    text = models.TextField()
    text_hash = models.CharField(max_length=64)  # sha256(text utf-8), hex
    requires_reconsent = models.BooleanField(default=False)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["purpose_id", "published_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="consent_notice_purpose_version"),
        ]
        indexes = [models.Index(fields=["purpose", "published_at"], name="consent_notice_purpose_at")]

    def __str__(self) -> str:
        return f"{self.purpose_id}:{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation("published notices are immutable")
        super().save(*args, **kwargs)


class Channel(models.TextChoices):
    WEB = "web"
    APP = "app"
    EMAIL = "email"
    PHONE = "phone"
    IN_STORE = "in_store"
    API = "api"
    IMPORT = "import"


class ConsentEvent(AppendOnlyModel):
    """An append-only grant or withdrawal of consent for one purpose, on one notice version."""

    class Action(models.TextChoices):
        GRANT = "grant"
        WITHDRAW = "withdraw"

    id = models.BigAutoField(primary_key=True)
    customer_id = models.UUIDField()  # the pseudonym (profiles.Customer.id); deliberately not a FK
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    notice = models.ForeignKey(ConsentNotice, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=64)  # the source system (web, crm, app, console, ...), a code
    channel = models.CharField(max_length=16, choices=Channel.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    # PII-free proof: form ids, hashes, keyed HMAC of the IP address -- never clear values.
    evidence = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=120)
    # Keyed digest of the event's facts for events recorded with an explicit time (imports, bulk API):
    # recording the same fact twice returns the first event instead of a duplicate.
    dedupe_key = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=["grant", "withdraw"]), name="consent_event_action"),
        ]
        indexes = [
            models.Index(fields=["customer_id", "purpose", "occurred_at", "id"], name="consent_event_cust_purp_at"),
            models.Index(fields=["purpose", "occurred_at"], name="consent_event_purpose_at"),
        ]

    def __str__(self) -> str:
        return f"consent-event:{self.pk}:{self.customer_id}"


class ConsentStateCurrent(models.Model):
    """Denormalized latest consent event per (customer, purpose): the "now" state for the hot path.

    Written in the same transaction as every consent event; whether a grant is still valid (not
    superseded by a later notice that requires re-consent) is checked at read time against the notices.
    """

    customer_id = models.UUIDField()
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="+")
    event = models.OneToOneField(ConsentEvent, on_delete=models.CASCADE, related_name="+")
    granted = models.BooleanField()
    notice = models.ForeignKey(ConsentNotice, on_delete=models.PROTECT, related_name="+")
    occurred_at = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "purpose"], name="consent_current_customer_purpose"),
        ]
        indexes = [models.Index(fields=["purpose", "granted"], name="consent_cur_purpose_granted")]

    def __str__(self) -> str:
        return f"consent-state:{self.customer_id}:{self.purpose_id}"


class FlagKind(models.TextChoices):
    RESTRICTION = "restriction"  # Art. 18
    OBJECTION = "objection"  # Art. 21


class ProcessingFlag(AppendOnlyModel):
    """An append-only set/lift of a restriction (Art. 18) or objection (Art. 21); purpose null = all."""

    class Action(models.TextChoices):
        SET = "set"
        LIFT = "lift"

    id = models.BigAutoField(primary_key=True)
    customer_id = models.UUIDField()
    kind = models.CharField(max_length=16, choices=FlagKind.choices)
    action = models.CharField(max_length=8, choices=Action.choices)
    purpose = models.ForeignKey(Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=64)  # a reason code, never free text
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=120)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["restriction", "objection"]), name="processing_flag_kind"),
            models.CheckConstraint(condition=Q(action__in=["set", "lift"]), name="processing_flag_action"),
        ]
        indexes = [models.Index(fields=["customer_id", "at", "id"], name="processing_flag_cust_at")]

    def __str__(self) -> str:
        return f"processing-flag:{self.pk}:{self.customer_id}"


class ProcessingFlagCurrent(models.Model):
    """The flags that hold now: one row per active (customer, kind, purpose-or-all); deleted on lift."""

    customer_id = models.UUIDField()
    kind = models.CharField(max_length=16, choices=FlagKind.choices)
    purpose = models.ForeignKey(Purpose, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    flag = models.ForeignKey(ProcessingFlag, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "kind", "purpose"],
                condition=Q(purpose__isnull=False),
                name="flag_current_unique_purpose",
            ),
            models.UniqueConstraint(
                fields=["customer_id", "kind"], condition=Q(purpose__isnull=True), name="flag_current_unique_all"
            ),
        ]
        indexes = [models.Index(fields=["customer_id", "kind"], name="flag_cur_customer_kind")]

    def __str__(self) -> str:
        return f"processing-flag-current:{self.customer_id}:{self.kind}"
