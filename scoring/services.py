"""All writes of the scoring app: serving scores, routing, batch rescoring, outcomes, overrides, registry.

Invariants
- No score is computed or served unless ``consent.selectors.processing_gate`` allows the customer for
  the purpose *at the moment the computation runs* (batch chunks re-check it when they execute).
  A refusal raises ``NoConsent`` / ``Restricted`` / ``Objected`` (403) or ``NotFound`` (erased/unknown),
  is logged without personal data and is not a decision: nothing is written.
- Every automated decision (served score, routing, batch rescore, tier change) is recorded through
  ``audit.services`` in the same transaction as the score it reports; features and explanation go into
  ``sealed_details``, encrypted under the customer's data key (crypto-shredded by erasure).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import (
    Conflict,
    NoConsent,
    NotFound,
    Objected,
    Restricted,
    ValidationFailed,
)
from consent import selectors as consent_selectors
from profiles import services as profiles_services
from scoring import engine, registry
from scoring.models import (
    CustomerScore,
    ModelArtifact,
    ModelVersion,
    Outcome,
    RescoreChunk,
    RescoreRun,
    ScoreOverride,
)
from scoring.population import Reference, reference_from_population, tier_shares
from scoring.registry import LoadedModels, ModelRef, ModelUnavailable

logger = logging.getLogger("scoring")

REFUSALS: dict[str, type[Exception]] = {
    "no_consent": NoConsent,
    "restricted": Restricted,
    "objected": Objected,
}
SKIP_FIELDS = {
    "no_consent": "skipped_no_consent",
    "restricted": "skipped_restricted",
    "objected": "skipped_objected",
    "erased": "skipped_erased",
    "not_found": "skipped_erased",
}
SCORE_FIELDS = (
    "model_version", "churn_model_version", "clv", "currency", "clv_score", "churn_probability", "risk_level",
    "upsell", "advocacy", "segment", "tier", "service_level", "recommendation", "explanation", "features",
    "features_hash", "thresholds_ref", "as_of", "computed_at", "run_id", "decision_id", "stale",
)


def batch_purposes() -> list[str]:
    """Purposes the nightly job rescores (``SCORING_BATCH_PURPOSES``)."""
    return list(getattr(settings, "SCORING_BATCH_PURPOSES", ["automated_scoring", "service_prioritization"]))


def score_max_age() -> timedelta:
    return timedelta(hours=int(getattr(settings, "SCORE_MAX_AGE_HOURS", 48)))


def _uuid(value: Any, field_name: str = "customer") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise ValidationFailed("Invalid customer id.", extra={"errors": {field_name: [{"code": "invalid"}]}}) from None


def _check_purpose(purpose: Any) -> str:
    if not isinstance(purpose, str) or not purpose:
        raise ValidationFailed("A purpose is required.", extra={"errors": {"purpose": [{"code": "required"}]}})
    consent_selectors.purpose_id_for(purpose)  # ValidationFailed for unknown purposes
    return purpose


# --------------------------------------------------------------------------- the gate


def _gate_or_refuse(*, customer_id: uuid.UUID, purpose: str, what: str) -> Any:
    """The processing gate now; a refusal is logged (ids and codes only) and raised, never recorded."""
    gate = consent_selectors.processing_gate(customer_id=customer_id, purpose=purpose)
    if gate.allowed:
        return gate
    logger.info("scoring refused by the processing gate",
                extra={"event": f"scoring.{what}.refused", "code": gate.code, "purpose": purpose})
    error = REFUSALS.get(gate.code)
    if error is None:
        raise NotFound("Customer not found.")
    raise error()


# --------------------------------------------------------------------------- results


@dataclass
class ScoreResult:
    customer_id: uuid.UUID
    purpose: str
    clv: float
    currency: str
    clv_score: int
    churn_probability: float
    risk_level: str
    upsell: float
    advocacy: float
    segment: str
    tier: str
    service_level: dict[str, Any]
    recommendation: dict[str, str]
    explanation: dict[str, Any]
    model_versions: dict[str, str]
    decision_id: int
    computed_at: datetime
    override: dict[str, Any] | None = None
    automated_tier: str | None = None


@dataclass
class RouteResult:
    customer_id: uuid.UUID
    purpose: str
    ticket_category: str
    queue: str
    sla_hours: int
    escalation_level: int
    handler: str
    tier: str
    risk_level: str
    decision_id: int
    model_versions: dict[str, str]


@dataclass
class ChunkCounts:
    total: int = 0
    scored: int = 0
    tier_changes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    already_done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "scored": self.scored, "tier_changes": self.tier_changes,
                "skipped": dict(self.skipped)}


# --------------------------------------------------------------------------- current score (shared)


@dataclass
class _Current:
    row: CustomerScore
    versions: dict[str, str]
    computed_now: bool


def _row_fields(c: engine.ComputedScore, *, models: LoadedModels, reference: Reference, as_of: datetime,
                run_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    return {
        "model_version_id": models.full.id,
        "churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None,
        "clv": c.clv, "currency": engine.currency(), "clv_score": c.clv_score,
        "churn_probability": c.churn_probability, "risk_level": c.risk_level, "upsell": c.upsell,
        "advocacy": c.advocacy, "segment": c.segment, "tier": c.tier, "service_level": c.service_level,
        "recommendation": c.recommendation, "explanation": c.explanation, "features": c.features,
        "features_hash": c.features_hash, "thresholds_ref": reference.source[:80], "as_of": as_of,
        "computed_at": now, "run_id": run_id, "decision_id": None, "stale": False,
    }


def _upsert_scores(rows: list[CustomerScore]) -> None:
    CustomerScore.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["customer_id", "purpose"], update_fields=list(SCORE_FIELDS),
        batch_size=500,
    )


def _is_fresh(row: CustomerScore, now: datetime) -> bool:
    if row.stale or row.model_version.status != ModelVersion.Status.ACTIVE:
        return False
    if row.churn_model_version is not None and row.churn_model_version.status != ModelVersion.Status.ACTIVE:
        return False
    return now - row.computed_at <= score_max_age()


def _versions_of(row: CustomerScore) -> dict[str, str]:
    v = row.model_version.version
    churn = row.churn_model_version.version if row.churn_model_version is not None else v
    return {"clv": v, "churn": churn, "upsell": v, "advocacy": v, "segments": v}


def _current_score(*, customer_id: uuid.UUID, purpose: str) -> _Current:
    """The fresh stored score, or one computed now for this customer (stored). Caller holds the gate."""
    now = timezone.now()
    row = (
        CustomerScore.objects.select_related("model_version", "churn_model_version")
        .filter(customer_id=customer_id, purpose=purpose)
        .first()
    )
    if row is not None and _is_fresh(row, now):
        # Nothing is served from a model whose artifact does not verify (cached after the first check).
        registry.loaded_models(
            registry.ref_of(row.model_version),
            registry.ref_of(row.churn_model_version) if row.churn_model_version is not None else None,
        )
        return _Current(row, _versions_of(row), False)
    models = registry.active_models()
    reference = registry.reference_for(models, purpose)
    computed = engine.compute_scores([customer_id], as_of=now, models=models, reference=reference)[0]
    fields = _row_fields(computed, models=models, reference=reference, as_of=now, run_id=None, now=now)
    fresh = CustomerScore(customer_id=customer_id, purpose=purpose, **fields)
    _upsert_scores([fresh])
    return _Current(fresh, models.versions(), True)


def _active_override(customer_id: uuid.UUID, purpose: str) -> ScoreOverride | None:
    return ScoreOverride.objects.filter(customer_id=customer_id, purpose=purpose, active=True).first()


def _effective_outputs(row: CustomerScore, override: ScoreOverride | None) -> dict[str, Any]:
    outputs = {
        "clv": round(float(row.clv), 2), "currency": row.currency, "clv_score": int(row.clv_score),
        "churn_probability": round(float(row.churn_probability), 4), "risk_level": row.risk_level,
        "upsell": round(float(row.upsell), 4), "advocacy": round(float(row.advocacy), 4), "segment": row.segment,
        "tier": row.tier, "service_level": row.service_level, "recommendation": row.recommendation,
    }
    if override is not None:
        outputs["automated_tier"] = row.tier
        outputs["tier"] = override.tier
        outputs["service_level"] = override.service_level or engine.service_level_for(override.tier)
        outputs["recommendation"] = engine.recommendation_for(
            override.tier, float(row.churn_probability), float(row.upsell), float(row.advocacy))
        outputs["override"] = {"review_of_decision": override.decision_id, "tier": override.tier,
                               "since": override.created_at.isoformat()}
    return outputs


def _seal(customer_id: uuid.UUID, row: CustomerScore) -> bytes:
    try:
        return profiles_services.customer_seal(
            customer_id=customer_id, label=audit_services.DECISION_DETAILS_LABEL,
            payload={"features": row.features, "explanation": row.explanation},
        )
    except DecryptionError:  # erased between the gate and now: no decision without its sealed details
        raise NotFound("Customer not found.") from None


# --------------------------------------------------------------------------- real time


@transaction.atomic
def score_serve(*, customer_id: uuid.UUID, purpose: str, requester: str) -> ScoreResult:
    """Gate now -> current score (stored if fresh, else computed) -> override -> decision record."""
    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
    gate = _gate_or_refuse(customer_id=cid, purpose=purpose, what="serve")
    current = _current_score(customer_id=cid, purpose=purpose)
    row = current.row
    override = _active_override(cid, purpose)
    outputs = _effective_outputs(row, override)
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose, decision_type="served_score", requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=current.versions, features_hash=row.features_hash, outputs=outputs,
        sealed_details=_seal(cid, row),
    )
    return ScoreResult(
        customer_id=cid, purpose=purpose, clv=outputs["clv"], currency=row.currency, clv_score=outputs["clv_score"],
        churn_probability=outputs["churn_probability"], risk_level=row.risk_level, upsell=outputs["upsell"],
        advocacy=outputs["advocacy"], segment=row.segment, tier=outputs["tier"],
        service_level=outputs["service_level"], recommendation=outputs["recommendation"],
        explanation=row.explanation, model_versions=current.versions, decision_id=decision.pk,
        computed_at=row.computed_at, override=outputs.get("override"),
        automated_tier=outputs.get("automated_tier"),
    )


TICKET_CATEGORY_MAX = 64


@transaction.atomic
def route_ticket(*, customer_id: uuid.UUID, category: str, purpose: str, requester: str) -> RouteResult:
    """Queue, SLA and escalation for a ticket of this customer; recorded as a "routing" decision."""
    from scoring.ml.tiers import route

    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
    if not isinstance(category, str) or not category or len(category) > TICKET_CATEGORY_MAX:
        raise ValidationFailed("Invalid ticket category.", extra={"errors": {"ticket_category": [{"code": "invalid"}]}})
    category = category.strip().lower()
    gate = _gate_or_refuse(customer_id=cid, purpose=purpose, what="route")
    current = _current_score(customer_id=cid, purpose=purpose)
    row = current.row
    override = _active_override(cid, purpose)
    outputs = _effective_outputs(row, override)
    routed = route(outputs["tier"], row.risk_level, category)
    decision_outputs = {
        "tier": outputs["tier"], "risk_level": row.risk_level, "ticket_category": category[:64],
        "queue": routed["queue"], "sla_hours": routed["sla_hours"], "escalation_level": routed["escalation_level"],
        "handler": routed["handler"], "clv_score": outputs["clv_score"],
        "churn_probability": outputs["churn_probability"],
    }
    if "override" in outputs:
        decision_outputs["override"] = outputs["override"]
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose, decision_type="routing", requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=current.versions, features_hash=row.features_hash, outputs=decision_outputs,
        sealed_details=_seal(cid, row),
    )
    return RouteResult(
        customer_id=cid, purpose=purpose, ticket_category=category, queue=str(routed["queue"]),
        sla_hours=int(str(routed["sla_hours"])), escalation_level=int(str(routed["escalation_level"])),
        handler=str(routed["handler"]), tier=outputs["tier"], risk_level=row.risk_level, decision_id=decision.pk,
        model_versions=current.versions,
    )


@transaction.atomic
def score_refresh(*, customer_id: uuid.UUID, purpose: str, requester: str = "job:rescore_customer",
                  decision_key: str | None = None) -> str:
    """Recompute one customer's stored score after new data (task ``rescore_customer``, rectification).

    Returns ``"scored"`` or the gate code. Without consent now, the stored score for the purpose is
    deleted (it may no longer be served) and nothing else happens. ``decision_key`` makes a retried
    call idempotent (the task passes its own id: a redelivered message records no second decision).
    """
    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
    gate = consent_selectors.processing_gate(customer_id=cid, purpose=purpose)
    if not gate.allowed:
        CustomerScore.objects.filter(customer_id=cid, purpose=purpose).delete()
        logger.info("refresh skipped by the processing gate",
                    extra={"event": "scoring.refresh.skipped", "code": gate.code, "purpose": purpose})
        return str(gate.code)
    now = timezone.now()
    models = registry.active_models()
    reference = registry.reference_for(models, purpose)
    previous = CustomerScore.objects.filter(customer_id=cid, purpose=purpose).values_list("tier", flat=True).first()
    computed = engine.compute_scores([cid], as_of=now, models=models, reference=reference)[0]
    row = CustomerScore(customer_id=cid, purpose=purpose,
                        **_row_fields(computed, models=models, reference=reference, as_of=now, run_id=None, now=now))
    override = _active_override(cid, purpose)
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose,
        decision_type="tier_change" if previous is not None and previous != computed.tier else "batch_rescore",
        requester=requester, consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=models.versions(), features_hash=computed.features_hash,
        outputs=_effective_outputs(row, override), sealed_details=_seal(cid, row),
        decision_key=decision_key,
    )
    row.decision_id = decision.pk
    _upsert_scores([row])
    profiles_services.customer_mark_fresh(customer_ids=[cid], as_of=now)
    return "scored"


# --------------------------------------------------------------------------- batch rescoring


def _digest(customer_ids: Sequence[Any]) -> str:
    return hashlib.sha256(",".join(sorted(str(c) for c in customer_ids)).encode()).hexdigest()


def _chunks(values: list[Any], size: int) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


@transaction.atomic
def rescore_run_start(
    *, purpose: str, requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None, progress: Callable[[int], None] | None = None,
) -> RescoreRun:
    """Plan a rescoring run: chunks of customer ids and the population reference for tiers.

    A *full* run (``customer_ids=None``) covers every live customer and is two-pass: pass 1 (here)
    predicts CLV (no explanations, no writes) for the customers the gate allows now and stores the tier
    cut-offs of that population on the run; pass 2 (``rescore_chunk``) re-checks the gate and writes.
    A subset run uses the latest full run's reference (or the model's training population).
    ``progress(n)`` is called with the number of customers planned after each chunk (CLI progress bar).
    """
    from profiles import selectors as profiles_selectors

    purpose = _check_purpose(purpose)
    size = int(chunk_size or settings.RESCORE_CHUNK_SIZE)
    if size <= 0:
        raise ValidationFailed("chunk_size must be positive.")
    models = registry.active_models()
    now = timezone.now()
    run = RescoreRun.objects.create(
        purpose=purpose, requester=requester, full=customer_ids is None, model_version_id=models.full.id,
        as_of=now, started_at=now,
    )
    run.thresholds = {"churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None}
    if customer_ids is None:
        chunk_iter: Any = profiles_selectors.customer_id_chunks(chunk_size=size)
    else:
        chunk_iter = _chunks(list(dict.fromkeys(_uuid(c) for c in customer_ids)), size)
    population_values: list[np.ndarray] = []
    population_ids: list[str] = []
    planned: list[RescoreChunk] = []
    total = 0
    for chunk_no, ids in enumerate(chunk_iter):
        ids = [_uuid(c) for c in ids]
        planned.append(RescoreChunk(run=run, chunk_no=chunk_no, digest=_digest(ids),
                                    customer_ids=[str(c) for c in ids]))
        total += len(ids)
        if run.full:
            gates = consent_selectors.processing_gate_bulk(customer_ids=ids, purpose=purpose)
            allowed = [c for c in ids if gates[c].allowed]
            if allowed:
                from profiles.aggregates import fact_aggregates

                columns = fact_aggregates(customer_ids=allowed, as_of=now)
                population_values.append(engine.rank_values(models, columns))
                population_ids.extend(str(c) for c in allowed)
        if len(planned) >= 100:
            RescoreChunk.objects.bulk_create(planned)
            planned = []
        if progress is not None:
            progress(len(ids))
    RescoreChunk.objects.bulk_create(planned)
    if run.full:
        values = np.concatenate(population_values) if population_values else np.zeros(0)
        reference = reference_from_population(values, population_ids, source=f"run:{run.id}")
    else:
        reference = registry.reference_for(models, purpose)
    run.thresholds = {**run.thresholds, **reference.to_json()}
    run.total = total
    run.chunks_total = RescoreChunk.objects.filter(run=run).count()
    run.status = RescoreRun.Status.RUNNING if run.chunks_total else RescoreRun.Status.COMPLETED
    if run.status == RescoreRun.Status.COMPLETED:
        run.finished_at = timezone.now()
    run.save(update_fields=["thresholds", "total", "chunks_total", "status", "finished_at"])
    logger.info("rescore run planned", extra={"event": "scoring.run.planned", "run_id": str(run.id),
                                              "purpose": purpose, "total": total, "count": run.chunks_total})
    return run


def rescore_run_dispatch(*, run_id: uuid.UUID) -> int:
    """Queue ``rescore_chunk`` tasks for the run's pending chunks (after commit). Returns how many."""
    from scoring import tasks

    pending = list(
        RescoreChunk.objects.filter(run_id=run_id, done=False).order_by("chunk_no").values_list("customer_ids", flat=True)
    )
    for ids in pending:
        tasks.rescore_chunk.delay_on_commit(str(run_id), list(ids))
    return len(pending)


def rescore_pending_chunks(*, run_id: uuid.UUID) -> list[list[str]]:
    return [list(ids) for ids in RescoreChunk.objects.filter(run_id=run_id, done=False).order_by("chunk_no")
            .values_list("customer_ids", flat=True)]


def _seal_many(items: list[tuple[uuid.UUID, dict[str, Any]]]) -> dict[uuid.UUID, bytes]:
    """Seal decision details for many customers (bulk variant of profiles when available)."""
    label = audit_services.DECISION_DETAILS_LABEL
    bulk = getattr(profiles_services, "customer_seal_many", None)
    if bulk is not None:
        return dict(bulk(items=[(cid, label, payload) for cid, payload in items]))
    sealed: dict[uuid.UUID, bytes] = {}
    for cid, payload in items:
        try:
            sealed[cid] = profiles_services.customer_seal(customer_id=cid, label=label, payload=payload)
        except DecryptionError:  # erased after the gate: skipped below
            continue
    return sealed


@transaction.atomic
def rescore_chunk(*, run_id: uuid.UUID, customer_ids: Sequence[uuid.UUID | str]) -> ChunkCounts:
    """Score one chunk of a run in one transaction; re-checks the gate now; idempotent under retry.

    Customers the gate refuses now are skipped and counted, and their stored score for the purpose is
    deleted. Decision records carry ``decision_key = "<run>:<customer>:<purpose>"`` (unique), the chunk
    row is locked and marked done in the same transaction: a retried or duplicated chunk writes nothing
    twice, and a chunk killed mid-way rolls back completely and is redone on redelivery.
    """
    ids = [_uuid(c) for c in customer_ids]
    run = RescoreRun.objects.filter(pk=_uuid(run_id, "run")).first()
    if run is None:
        raise NotFound("Rescore run not found.")
    chunk = RescoreChunk.objects.select_for_update().filter(run=run, digest=_digest(ids)).first()
    if chunk is None:
        raise ValidationFailed("These customers are not a chunk of this run.")
    if chunk.done:
        counts = chunk.counts or {}
        return ChunkCounts(total=int(counts.get("total", 0)), scored=int(counts.get("scored", 0)),
                           tier_changes=int(counts.get("tier_changes", 0)), skipped=dict(counts.get("skipped", {})),
                           already_done=True)
    purpose = run.purpose
    counts = ChunkCounts(total=len(ids))
    gates = consent_selectors.processing_gate_bulk(customer_ids=ids, purpose=purpose)
    allowed = [cid for cid in ids if gates[cid].allowed]
    refused = [cid for cid in ids if not gates[cid].allowed]
    for refused_id in refused:
        code = SKIP_FIELDS.get(gates[refused_id].code, "skipped_no_consent")
        counts.skipped[code] = counts.skipped.get(code, 0) + 1
    if refused:
        CustomerScore.objects.filter(customer_id__in=refused, purpose=purpose).delete()
    if allowed:
        churn_id = (run.thresholds or {}).get("churn_model_version_id")
        if run.model_version is None:
            raise registry.ModelUnavailable()
        full_ref = registry.ref_of(run.model_version)
        churn_ref = None
        if churn_id:
            churn_version = ModelVersion.objects.filter(pk=churn_id).first()
            churn_ref = registry.ref_of(churn_version) if churn_version is not None else None
        models = registry.loaded_models(full_ref, churn_ref)
        reference = Reference.from_json(run.thresholds)
        computed = engine.compute_scores(allowed, as_of=run.as_of, models=models, reference=reference)
        previous = dict(
            CustomerScore.objects.filter(customer_id__in=allowed, purpose=purpose).values_list("customer_id", "tier")
        )
        overrides = {o.customer_id: o for o in ScoreOverride.objects.filter(
            customer_id__in=allowed, purpose=purpose, active=True)}
        now = timezone.now()
        rows = [
            CustomerScore(customer_id=c.customer_id, purpose=purpose,
                          **_row_fields(c, models=models, reference=reference, as_of=run.as_of, run_id=run.id, now=now))
            for c in computed
        ]
        sealed = _seal_many([(r.customer_id, {"features": r.features, "explanation": r.explanation}) for r in rows])
        if len(sealed) < len(rows):  # erased meanwhile: no decision, no score
            gone = len(rows) - len(sealed)
            counts.skipped["skipped_erased"] = counts.skipped.get("skipped_erased", 0) + gone
            keep = [i for i, r in enumerate(rows) if r.customer_id in sealed]
            rows = [rows[i] for i in keep]
            computed = [computed[i] for i in keep]
        versions = models.versions()
        records = []
        for c, r in zip(computed, rows, strict=True):
            before = previous.get(c.customer_id)
            changed = before is not None and before != c.tier
            counts.tier_changes += int(changed)
            gate = gates[c.customer_id]
            records.append({
                "customer": c.customer_id, "purpose": purpose,
                "decision_type": "tier_change" if changed else "batch_rescore",
                "requester": run.requester, "consent_event_id": gate.consent_event_id,
                "notice_version": gate.notice_version, "model_versions": versions,
                "features_hash": c.features_hash, "outputs": _effective_outputs(r, overrides.get(c.customer_id)),
                "sealed_details": sealed[c.customer_id], "decision_key": f"{run.id}:{c.customer_id}:{purpose}",
            })
        audit_services.decision_records_bulk(records=records)
        _upsert_scores(rows)
        counts.scored = len(rows)
    # processed (scored, or refused and its stored score deleted): no longer stale as of the run
    profiles_services.customer_mark_fresh(customer_ids=ids, as_of=run.as_of)
    chunk.done = True
    chunk.counts = counts.to_json()
    chunk.finished_at = timezone.now()
    chunk.save(update_fields=["done", "counts", "finished_at"])
    updates: dict[str, Any] = {
        "chunks_done": F("chunks_done") + 1, "done": F("done") + counts.total, "scored": F("scored") + counts.scored,
        "tier_changes": F("tier_changes") + counts.tier_changes,
    }
    for name, n in counts.skipped.items():
        updates[name] = F(name) + n
    RescoreRun.objects.filter(pk=run.pk).update(**updates)
    run.refresh_from_db(fields=["chunks_done", "chunks_total", "status"])
    if run.chunks_done >= run.chunks_total and run.status != RescoreRun.Status.COMPLETED:
        RescoreRun.objects.filter(pk=run.pk).update(status=RescoreRun.Status.COMPLETED, finished_at=timezone.now())
        RescoreChunk.objects.filter(run=run).update(customer_ids=[])
        if run.model_version_id is not None:
            registry.reference_forget(run.model_version_id, purpose)
        logger.info("rescore run completed", extra={"event": "scoring.run.completed", "run_id": str(run.id)})
    logger.info("rescore chunk done", extra={"event": "scoring.chunk.done", "run_id": str(run.id),
                                             "chunk": chunk.chunk_no, "scored": counts.scored,
                                             "skipped": sum(counts.skipped.values())})
    return counts


# --------------------------------------------------------------------------- outcomes, overrides, erasure


OUTCOME_KINDS = frozenset(Outcome.Kind.values)


@transaction.atomic
def outcome_record(*, customer_id: uuid.UUID, kind: str, at: datetime | None, source: str, actor: str) -> Outcome:
    """An explicit outcome reported by an internal system (feeds training labels)."""
    from profiles import selectors as profiles_selectors

    cid = _uuid(customer_id)
    if kind not in OUTCOME_KINDS:
        raise ValidationFailed("Unknown outcome kind.", extra={"errors": {"kind": [{"code": "invalid_choice"}]}})
    when = at or timezone.now()
    if timezone.is_naive(when):
        raise ValidationFailed("The time needs a timezone.", extra={"errors": {"at": [{"code": "invalid"}]}})
    if when > timezone.now() + timedelta(minutes=5):
        raise ValidationFailed("The outcome lies in the future.", extra={"errors": {"at": [{"code": "invalid"}]}})
    if not isinstance(source, str) or not source or len(source) > 64:
        raise ValidationFailed("Invalid source.", extra={"errors": {"source": [{"code": "invalid"}]}})
    if not profiles_selectors.customer_exists(customer_id=cid):
        raise NotFound("Customer not found.")
    outcome = Outcome.objects.create(customer_id=cid, kind=kind, at=when, source=source, actor=actor)
    audit_services.governance_record(kind="outcome.recorded", actor=actor, subject=cid,
                                     details={"kind": kind, "source": source, "outcome_id": outcome.pk})
    return outcome


def _check_tier(tier: Any) -> str:
    names = [name for name, _ in tier_shares()]
    if tier not in names:
        raise ValidationFailed("Unknown tier.", extra={"errors": {"tier": [{"code": "invalid_choice"}]}})
    return str(tier)


SERVICE_LEVEL_KEYS = {"response_time_hours": int, "escalation": str, "extras": str}


def _service_level_override(tier: str, given: dict | None) -> dict[str, Any]:
    """The tier's service level with the reviewer's changes (known keys only, type-checked)."""
    level = engine.service_level_for(tier)
    for key, value in (given or {}).items():
        kind = SERVICE_LEVEL_KEYS.get(key)
        if kind is None:
            continue
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 24 * 90:
                raise ValidationFailed("Invalid service level.",
                                       extra={"errors": {"service_level": [{"code": "invalid"}]}})
            level[key] = value
            level["response_time"] = f"< {value} h"
        else:
            if not isinstance(value, str) or not value.strip() or len(value) > 120:
                raise ValidationFailed("Invalid service level.",
                                       extra={"errors": {"service_level": [{"code": "invalid"}]}})
            level[key] = value.strip()
    return level


@transaction.atomic
def score_override_apply(
    *, customer_id: uuid.UUID, purpose: str, decision_id: int, tier: str, service_level: dict | None,
    rationale: str, reviewer: str,
) -> None:
    """A human reviewer overrides the automated outcome (Art. 22(3)). The override is the effective
    outcome of every later score for this customer and purpose until the next review; the review is
    recorded with ``audit.services.decision_review_record`` in the same transaction."""
    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
    tier = _check_tier(tier)
    level = _service_level_override(tier, service_level)
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValidationFailed("A rationale is required.", extra={"errors": {"rationale": [{"code": "required"}]}})
    now = timezone.now()
    ScoreOverride.objects.filter(customer_id=cid, purpose=purpose, active=True).update(active=False, superseded_at=now)
    try:
        sealed = profiles_services.customer_seal(customer_id=cid, label="score_override",
                                                 payload={"rationale": rationale})
    except DecryptionError:  # no data key: the customer is erased or unknown
        raise NotFound("Customer not found.") from None
    ScoreOverride.objects.create(customer_id=cid, purpose=purpose, decision_id=int(decision_id), tier=tier,
                                 service_level=level, rationale_sealed=sealed, reviewer=reviewer, created_at=now)
    audit_services.decision_review_record(
        decision_id=int(decision_id), reviewer=reviewer, outcome="overridden",
        override={"tier": tier, "service_level": level, "purpose": purpose}, rationale=rationale,
    )


@transaction.atomic
def score_override_clear(*, customer_id: uuid.UUID, purpose: str, decision_id: int, rationale: str,
                         reviewer: str) -> int:
    """A later review confirms the automated outcome: the active override ends (review recorded)."""
    cid = _uuid(customer_id)
    ended = ScoreOverride.objects.filter(customer_id=cid, purpose=purpose, active=True).update(
        active=False, superseded_at=timezone.now())
    audit_services.decision_review_record(decision_id=int(decision_id), reviewer=reviewer, outcome="confirmed",
                                          override={}, rationale=rationale)
    return ended


@transaction.atomic
def scores_erase_customer(*, customer_id: uuid.UUID) -> int:
    """Delete everything scoring holds about a customer (scores, overrides, outcomes). Returns the count.

    Decision records stay in the audit trail (pseudonym and PII-free facts; their sealed details become
    unreadable when profiles crypto-shreds the data key).
    """
    cid = _uuid(customer_id)
    count = CustomerScore.objects.filter(customer_id=cid).delete()[0]
    count += ScoreOverride.objects.filter(customer_id=cid).delete()[0]
    count += Outcome.objects.filter(customer_id=cid).delete()[0]
    return count


@transaction.atomic
def scores_invalidate(*, customer_id: uuid.UUID, purpose: str | None = None) -> int:
    """Delete stored scores (e.g. consent withdrawn for ``purpose``; ``None``: every purpose)."""
    qs = CustomerScore.objects.filter(customer_id=_uuid(customer_id))
    if purpose is not None:
        qs = qs.filter(purpose=purpose)
    return qs.delete()[0]


@transaction.atomic
def scores_mark_stale(*, customer_ids: Sequence[uuid.UUID]) -> int:
    return CustomerScore.objects.filter(customer_id__in=list(customer_ids), stale=False).update(stale=True)


# --------------------------------------------------------------------------- registry


def _next_version(kind: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    base = f"{'m' if kind == ModelVersion.Kind.FULL else 'churn'}-{stamp}"
    version = base
    n = 1
    while ModelVersion.objects.filter(version=version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def _clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@transaction.atomic
def model_version_store(
    *, obj: Any, kind: str, card: dict, metrics: dict, population: dict, seed: int, actor: str,
) -> ModelVersion:
    """Serialize (skops), hash and store a trained model as a candidate version."""
    data, digest = registry.dump(obj)
    version = ModelVersion.objects.create(
        version=_next_version(kind), kind=kind, sha256=digest, card=_clean_json(card), metrics=_clean_json(metrics),
        population=_clean_json(population), seed=seed, actor=actor,
    )
    ModelArtifact.objects.create(model_version=version, data=data, size=len(data))
    return version


def _active(kind: str) -> ModelVersion | None:
    return ModelVersion.objects.select_for_update().filter(kind=kind, status=ModelVersion.Status.ACTIVE).first()


@transaction.atomic
def model_activate(*, version: str, force: bool = False, actor: str) -> ModelVersion:
    """Activate a stored version: its artifact must verify; its metrics must not be worse than the
    active version's (``scoring.ml.models.is_better``) unless ``force``. Governance record
    ``model.activated``; stored scores become stale (recomputed on next request or run)."""
    from scoring.ml.models import is_better

    target = ModelVersion.objects.select_for_update().filter(version=version).first()
    if target is None:
        raise NotFound("Model version not found.")
    if target.status == ModelVersion.Status.ACTIVE:
        return target
    registry.verify(target)
    current = _active(target.kind)
    if current is not None and not force and not is_better(target.metrics, current.metrics):
        raise Conflict("The candidate's metrics are worse than the active model's.", code="model_not_better")
    now = timezone.now()
    if current is not None:
        current.status = ModelVersion.Status.RETIRED
        current.retired_at = now
        current.save(update_fields=["status", "retired_at"])
    target.status = ModelVersion.Status.ACTIVE
    target.activated_at = now
    target.retired_at = None
    target.save(update_fields=["status", "activated_at", "retired_at"])
    if target.kind == ModelVersion.Kind.CHURN_TABLE:  # full versions: freshness checks the active status
        CustomerScore.objects.filter(stale=False).update(stale=True)
    audit_services.governance_record(
        kind="model.activated", actor=actor,
        details={"version": target.version, "kind": target.kind, "previous": current.version if current else None,
                 "forced": bool(force), "sha256": target.sha256},
    )
    return target


@transaction.atomic
def model_rollback(*, actor: str, kind: str = ModelVersion.Kind.FULL) -> ModelVersion:
    """Re-activate the previously active version (its artifact must verify). Governance ``model.rolled_back``."""
    current = _active(kind)
    if current is None:
        raise Conflict("No active model to roll back.", code="no_active_model")
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(kind=kind, status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .exclude(pk=current.pk)
        .order_by("-activated_at", "-id")
        .first()
    )
    if previous is None:
        raise Conflict("There is no previous model version to roll back to.", code="no_previous_model")
    registry.verify(previous)
    now = timezone.now()
    current.status = ModelVersion.Status.RETIRED
    current.retired_at = now
    current.save(update_fields=["status", "retired_at"])
    previous.status = ModelVersion.Status.ACTIVE
    previous.activated_at = now
    previous.retired_at = None
    previous.save(update_fields=["status", "activated_at", "retired_at"])
    if kind == ModelVersion.Kind.CHURN_TABLE:
        CustomerScore.objects.filter(stale=False).update(stale=True)
    audit_services.governance_record(
        kind="model.rolled_back", actor=actor,
        details={"version": previous.version, "kind": kind, "from": current.version, "sha256": previous.sha256},
    )
    return previous


def model_train(
    *, actor: str, seed: int = 0, horizon_days: int | None = None, force: bool = False, activate: bool = True,
    as_of: datetime | None = None, purpose: str | None = None, config: Any = None,
    progress: Callable[[str], None] | None = None,
) -> ModelVersion:
    """Train all models from the database and store them; activate when not worse (or ``force``)."""
    from scoring import training

    result = training.train_from_database(seed=seed, horizon_days=horizon_days or settings.SCORING_HORIZON_DAYS,
                                          as_of=as_of, purpose=purpose, config=config, progress=progress)
    version = model_version_store(obj=result.bundle, kind=ModelVersion.Kind.FULL, card=result.card,
                                  metrics=result.bundle.metrics, population=result.population, seed=seed, actor=actor)
    if activate:
        _activate_if_better(version, force=force, actor=actor)
    return version


def model_train_from_attributes(
    *, actor: str, label: str, seed: int = 0, force: bool = False, activate: bool = True,
    purpose: str | None = None, config: Any = None,
) -> ModelVersion:
    """Train a churn model from the customers' CRM attributes and a label attribute (e.g. ``churned``)."""
    from scoring import training

    result = training.train_churn_from_attributes(label=label, seed=seed, purpose=purpose, config=config)
    version = model_version_store(obj=result.model, kind=ModelVersion.Kind.CHURN_TABLE, card=result.card,
                                  metrics=result.model.metrics, population={}, seed=seed, actor=actor)
    if activate:
        _activate_if_better(version, force=force, actor=actor)
    return version


def _activate_if_better(version: ModelVersion, *, force: bool, actor: str) -> None:
    try:
        model_activate(version=version.version, force=force, actor=actor)
    except Conflict:
        logger.info("trained model kept as candidate (not better than the active one)",
                    extra={"event": "scoring.model.candidate", "model_version": version.version})


__all__ = [
    "ChunkCounts", "ModelRef", "ModelUnavailable", "RouteResult", "ScoreResult", "batch_purposes",
    "model_activate", "model_rollback", "model_train", "model_train_from_attributes", "model_version_store",
    "outcome_record", "rescore_chunk", "rescore_run_dispatch", "rescore_run_start", "route_ticket",
    "score_override_apply", "score_override_clear", "score_refresh", "score_serve", "scores_erase_customer",
    "scores_invalidate", "scores_mark_stale",
]
