"""Scoring data model: model registry, current scores, overrides, outcomes and rescoring runs.

Privacy notes
- Customers are referenced by their pseudonym (``customer_id``, the profiles ``Customer.id`` UUID) only;
  there is no foreign key into profiles (apps talk through services/selectors).
- ``CustomerScore`` holds the current score, its features and its explanation in clear JSON: they are
  numbers about a pseudonym (no direct identifiers), needed at serve time within milliseconds.
  Erasure deletes the rows (``scoring.services.scores_erase_customer``). The durable copy of features
  and explanation in the audit trail is sealed under the customer's data key (crypto-shredded).
- The free-text rationale of a human override is sealed under the customer's data key as well.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone


class ModelVersion(models.Model):
    """One trained model bundle (CLV, churn, upsell, advocacy, segments) in the registry."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    class Kind(models.TextChoices):
        FULL = "full"  # trained from the fact history (all models)
        CHURN_TABLE = "churn_table"  # churn model trained from a CRM table with a label column

    version = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    # Model card: data window, features, metrics, training time, seed, label definitions, population.
    card = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    # Population reference of the training data: CLV quantiles (percentile score) and tier cut-offs.
    population = models.JSONField(default=dict)
    seed = models.IntegerField(default=0)
    actor = models.CharField(max_length=120, default="cli")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=Q(status="active"), name="model_version_one_active_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"model:{self.version}"


class ModelArtifact(models.Model):
    """The serialized (skops) bundle. Stored in the database so every web/worker machine can load it."""

    model_version = models.OneToOneField(
        ModelVersion, primary_key=True, on_delete=models.CASCADE, related_name="artifact"
    )
    data = models.BinaryField()
    size = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"artifact:{self.model_version_id}"


class JSONTextField(models.TextField):
    """A JSON value stored as its text (``text``, not ``jsonb``), decoded when read.

    For the large JSON values nothing queries inside (a score's explanation and features, ~5 KB per row):
    PostgreSQL stores the text as given instead of parsing it into ``jsonb`` on every write (the nightly
    rescore writes two rows per customer). Reads get the decoded value, as from a ``JSONField``; writers
    that hold the JSON text already pass it as is (``scoring.services.scores``)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value)

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj))


class CustomerScore(models.Model):
    """The current score of one customer for one purpose (clear JSON; deleted on erasure)."""

    customer_id = models.UUIDField()
    purpose = models.CharField(max_length=64)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    churn_model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    clv = models.FloatField()
    currency = models.CharField(max_length=3, default="EUR")
    clv_score = models.PositiveSmallIntegerField()
    churn_probability = models.FloatField()
    risk_level = models.CharField(max_length=16)
    upsell = models.FloatField()
    advocacy = models.FloatField()
    segment = models.CharField(max_length=64, blank=True, default="")
    tier = models.CharField(max_length=32)
    service_level = models.JSONField(default=dict)
    recommendation = models.JSONField(default=dict)
    # {"clv": {"unit", "baseline", "output", "contributions": [{feature, value, contribution}...]}, ...}
    explanation = JSONTextField(default=dict)
    features = JSONTextField(default=dict)
    features_hash = models.CharField(max_length=64)
    thresholds_ref = models.CharField(max_length=80, blank=True, default="")  # "run:<id>" or "model:<ver>"
    as_of = models.DateTimeField()
    computed_at = models.DateTimeField(default=timezone.now)
    run_id = models.UUIDField(null=True, blank=True)
    decision_id = models.BigIntegerField(null=True, blank=True)  # latest decision record for this score
    stale = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "purpose"], name="customer_score_unique"),
            models.CheckConstraint(condition=Q(clv_score__gte=0, clv_score__lte=100), name="clv_score_0_100"),
            models.CheckConstraint(
                condition=Q(churn_probability__gte=0, churn_probability__lte=1), name="churn_probability_0_1"
            ),
        ]
        indexes = [
            models.Index(fields=["purpose", "tier"], name="score_purpose_tier"),
            models.Index(fields=["computed_at"], name="score_computed_at"),
        ]

    def __str__(self) -> str:
        return f"score:{self.customer_id}:{self.purpose}"


class ScoreOverride(models.Model):
    """A human reviewer's override of an automated outcome (Art. 22(3)); effective until the next review."""

    customer_id = models.UUIDField()
    purpose = models.CharField(max_length=64)
    decision_id = models.BigIntegerField()  # the reviewed decision record
    tier = models.CharField(max_length=32)
    service_level = models.JSONField(default=dict)
    rationale_sealed = models.BinaryField(null=True, blank=True)  # under the customer's data key
    reviewer = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)
    active = models.BooleanField(default=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "purpose"], condition=Q(active=True), name="score_override_one_active"
            ),
        ]
        indexes = [models.Index(fields=["customer_id", "purpose", "active"], name="override_lookup")]

    def __str__(self) -> str:
        return f"override:{self.customer_id}:{self.purpose}"


class Outcome(models.Model):
    """An explicit outcome reported by an internal system: the feedback loop for training labels."""

    class Kind(models.TextChoices):
        CHURNED = "churned"
        RENEWED = "renewed"
        UPSELL_ACCEPTED = "upsell_accepted"
        UPSELL_DECLINED = "upsell_declined"

    customer_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField()
    source = models.CharField(max_length=64)
    actor = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["kind", "at"], name="outcome_kind_at")]

    def __str__(self) -> str:
        return f"outcome:{self.customer_id}:{self.kind}"


class RescoreRun(models.Model):
    """A (nightly or requested) rescoring run, split into chunks; progress for the console and CLI."""

    class Status(models.TextChoices):
        PREPARING = "preparing"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(max_length=64)
    requester = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREPARING)
    full = models.BooleanField(default=True)  # all customers (its thresholds become the reference)
    model_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.PROTECT, related_name="+")
    as_of = models.DateTimeField(default=timezone.now)
    # Tier cut-offs and CLV quantiles of this run's population (pass 1); see scoring.population.
    thresholds = models.JSONField(default=dict)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)  # set once every chunk row of the plan exists
    chunks_planned = models.PositiveIntegerField(default=0)  # pass 1 (``preparing``): chunks ranked so far
    chunks_done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    tier_changes = models.PositiveIntegerField(default=0)
    skipped_no_consent = models.PositiveIntegerField(default=0)
    skipped_restricted = models.PositiveIntegerField(default=0)
    skipped_objected = models.PositiveIntegerField(default=0)
    skipped_erased = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"rescore:{self.id}"


class RescoreChunk(models.Model):
    """One chunk of a run: the customer pseudonyms it covers and, once done, its counts (idempotency).

    Pass 1 (planning, any worker) ranks the chunk's customers that the run's purpose allows and keeps their
    ``(rank, tie-break key)`` pairs in ``plan`` until the last chunk of the run is planned and the run's
    reference (``scoring.population``) is computed from all of them; then ``plan`` is cleared. The pairs hold
    no pseudonym (the key is a short hash, as in the reference's cut-offs)."""

    run = models.ForeignKey(RescoreRun, on_delete=models.CASCADE, related_name="chunks")
    chunk_no = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)  # sha256 of the sorted customer ids
    customer_ids = models.JSONField(default=list)
    planned = models.BooleanField(default=False)
    planned_at = models.DateTimeField(null=True, blank=True)
    # float64 ranks then 16-byte ASCII tie-break keys (``rescore_plan.plan_encode``); NULL once reduced
    plan = models.BinaryField(null=True, blank=True)
    done = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "chunk_no"]
        constraints = [
            models.UniqueConstraint(fields=["run", "chunk_no"], name="rescore_chunk_no_unique"),
            models.UniqueConstraint(fields=["run", "digest"], name="rescore_chunk_digest_unique"),
        ]

    def __str__(self) -> str:
        return f"rescore:{self.run_id}:{self.chunk_no}"


class DriftReport(models.Model):
    """Feature drift of the current population against the active model's training population (PSI per
    feature, ``scoring.drift``), computed by each scheduled rescore or retrain. Numbers about features only."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="drift_reports")
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)
    job = models.CharField(max_length=16)  # "rescore" | "retrain" | "manual"
    population = models.PositiveIntegerField(default=0)  # customers in the current population (sampled)
    psi = models.JSONField(default=dict)  # {feature: psi}
    top_features = models.JSONField(default=list)  # the most important features at training, best first
    drifted_features = models.JSONField(default=list)  # top features with PSI above the threshold
    threshold = models.FloatField(default=0.2)
    max_psi = models.FloatField(null=True, blank=True)
    retrain_triggered = models.BooleanField(default=False)

    class Meta:
        ordering = ["-computed_at", "-id"]

    def __str__(self) -> str:
        return f"drift:{self.model_version_id}:{self.computed_at:%Y-%m-%d}"


class ScheduleRun(models.Model):
    """One run of a scheduled job (daily rescore, weekly or triggered retrain): the training history."""

    class Job(models.TextChoices):
        RESCORE = "rescore"
        RETRAIN = "retrain"

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        SKIPPED = "skipped"
        FAILED = "failed"

    job = models.CharField(max_length=16, choices=Job.choices)
    trigger = models.CharField(max_length=16)  # "schedule" | "drift" | "outcomes" | "manual"
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")  # the version trained (retrain) or used (rescore)
    activated = models.BooleanField(default=False)
    drift_report = models.ForeignKey(DriftReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Non-personal details: reason code and message, counts, the retrain trigger decided by a rescore.
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"schedule:{self.job}:{self.started_at:%Y-%m-%dT%H:%M}"
