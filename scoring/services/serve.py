"""Real time: serving a score, routing a ticket, refreshing one customer's score.

No score is computed or served unless the processing gate allows the customer for the purpose at the
moment the computation runs; the decision is recorded through ``audit.services`` in the same transaction
as the score it reports, with features and explanation sealed under the customer's data key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import NoConsent, NotFound, Objected, Restricted, ValidationFailed
from consent import selectors as consent_selectors
from profiles import selectors as profiles_selectors
from profiles import services as profiles_services
from scoring import engine, quality, registry
from scoring import selectors as scoring_selectors
from scoring.models import CustomerScore, ModelVersion, ScoreOverride
from scoring.services.checks import check_purpose, parse_uuid
from scoring.services.scores import (
    effective_outputs,
    row_fields,
    score_events,
    score_events_record,
    score_values,
    scores_upsert,
)

logger = logging.getLogger("scoring")

REFUSALS: dict[str, type[Exception]] = {
    "no_consent": NoConsent,
    "restricted": Restricted,
    "objected": Objected,
}


def score_max_age() -> timedelta:
    return timedelta(hours=int(getattr(settings, "SCORE_MAX_AGE_HOURS", 48)))


# --------------------------------------------------------------------------- the gate


def _allowed_or_refuse(gate: Any, *, purpose: str, what: str) -> Any:
    """The gate when it allows; a refusal is logged (ids and codes only) and raised, never recorded."""
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
class ScoreResult(engine.ScoreFields):
    """A served score (``engine.ScoreFields``, with any override applied) and its decision."""

    purpose: str
    currency: str
    model_versions: dict[str, str]
    decision_id: int
    computed_at: datetime
    override: dict[str, Any] | None = None
    automated_tier: str | None = None
    horizon_days: int = 365  # of the CLV amount: the horizon the serving model was trained for
    #: The customer's current mood from their latest tickets (``profiles.selectors.customer_current_mood``),
    #: read after the consent gate like the rest of the answer.
    current_mood: dict[str, Any] | None = None
    # score kinds not served (quality floors, scoring.quality): [{"kind", "code", "reason"}]; their fields are None
    unavailable: list[dict[str, str]] = field(default_factory=list)
    tier_basis: dict[str, str] | None = None  # what the tiers rank by (the CLV model, or the naive fallback)


@dataclass
class RouteResult:
    customer_id: uuid.UUID
    purpose: str
    ticket_category: str
    queue: str
    sla_hours: int
    escalation_level: int
    handler: str
    tier: str | None
    risk_level: str | None
    decision_id: int | None
    model_versions: dict[str, str]
    #: False: the customer may not be profiled for the purpose now (no consent, restriction, objection), so
    #: the ticket gets the non-personalised default queue, with no score and no decision about the person.
    personalised: bool = True


# --------------------------------------------------------------------------- current score


@dataclass
class _Current:
    row: CustomerScore
    versions: dict[str, str]
    computed_now: bool
    override: ScoreOverride | None = None
    wrapped_key: dict[str, Any] | None = None  # read with the score (profiles' expressions), for sealing
    previous: tuple[str, str] | None = None  # (tier, risk level) of the stored score this one replaced
    mood: dict[str, Any] | None = None  # the current mood, read with the stored score (None: read it apart)


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



def _stored_score(*, customer_id: uuid.UUID, purpose: str) -> _Current | None:
    """The stored score, its active override and the customer's wrapped key (one query, see
    ``scoring.selectors.score_stored_get``). ``versions`` is left empty (the caller checks freshness first)."""
    stored = scoring_selectors.score_stored_get(customer_id=customer_id, purpose=purpose)
    if stored is None:
        return None
    return _Current(stored.row, {}, False, stored.override, stored.wrapped_key, mood=stored.mood)


def _current_score(*, customer_id: uuid.UUID, purpose: str) -> _Current:
    """The fresh stored score (with the active override: one query), or one computed now for this customer
    (stored). Caller holds the gate, in a transaction (a computed score is written)."""
    now = timezone.now()
    stored = _stored_score(customer_id=customer_id, purpose=purpose)
    return _warm(stored, now) or _computed(customer_id=customer_id, purpose=purpose, stored=stored, now=now)


def _warm(stored: _Current | None, now: datetime) -> _Current | None:
    """``stored`` when it is fresh (and its models verify), else None."""
    if stored is None or not _is_fresh(stored.row, now):
        return None
    row = stored.row
    # Nothing is served from a model whose artifact does not verify (cached after the first check).
    registry.loaded_models(
        registry.ref_of(row.model_version),
        registry.ref_of(row.churn_model_version) if row.churn_model_version is not None else None,
    )
    stored.versions = _versions_of(row)
    return stored


def _computed(*, customer_id: uuid.UUID, purpose: str, stored: _Current | None, now: datetime) -> _Current:
    """A score computed now for this customer and stored (missing or stale stored score)."""
    models = registry.active_models()
    reference = registry.reference_for(models, purpose)
    computed = engine.compute_scores([customer_id], as_of=now, models=models, reference=reference)[0]
    fields = row_fields(computed, models=models, reference=reference, as_of=now, run_id=None, now=now)
    fresh = CustomerScore(customer_id=customer_id, purpose=purpose, **fields)
    scores_upsert([fresh])
    if stored is None:
        override = scoring_selectors.score_override_active(customer_id=customer_id, purpose=purpose)
        return _Current(fresh, models.versions(), True, override)
    return _Current(fresh, models.versions(), True, stored.override, stored.wrapped_key,
                    previous=(stored.row.tier, stored.row.risk_level), mood=stored.mood)


def _seal(customer_id: uuid.UUID, row: CustomerScore, wrapped_key: dict[str, Any] | None = None) -> bytes:
    try:
        return profiles_services.customer_seal(
            customer_id=customer_id, label=audit_services.DECISION_DETAILS_LABEL,
            payload={"features": row.features, "explanation": row.explanation}, wrapped_key=wrapped_key,
        )
    except DecryptionError:  # erased between the gate and now: no decision without its sealed details
        raise NotFound("Customer not found.") from None


# --------------------------------------------------------------------------- real time


def score_serve(*, customer_id: uuid.UUID, purpose: str, requester: str) -> ScoreResult:
    """Gate now -> current score (stored if fresh, else computed) -> override -> decision record.

    Gate and decision are one transaction, and the gate holds the consent state (``processing_gate_held``:
    ``FOR SHARE`` on PostgreSQL) until it commits: a withdrawal committed before the gate is seen, and one
    arriving later waits for this decision's commit. So no decision is ever committed after a withdrawal's
    commit (issue 20, fault 2; tests/scoring/test_consent_race.py)."""
    cid = parse_uuid(customer_id)
    purpose = check_purpose(purpose)
    with transaction.atomic():
        now = timezone.now()
        # One statement on PostgreSQL: the consent-state lock, the gate and (if it allows) the stored score.
        gate, found = scoring_selectors.score_gate_held_and_stored(customer_id=cid, purpose=purpose, now=now)
        _allowed_or_refuse(gate, purpose=purpose, what="serve")
        stored = None if found is None else _Current(found.row, {}, False, found.override, found.wrapped_key,
                                                     mood=found.mood)
        current = _warm(stored, now)
        if current is None:
            current = _computed(customer_id=cid, purpose=purpose, stored=stored, now=now)
        return _serve_decision(cid, purpose, requester, gate, current)


def _serve_decision(cid: uuid.UUID, purpose: str, requester: str, gate: Any, current: _Current) -> ScoreResult:
    """Record the served score as a decision and answer it."""
    row = current.row
    outputs = effective_outputs(score_values(row), current.override)
    unavailable = quality.unavailable_kinds(row.model_version_id, row.churn_model_version_id)
    for kind in unavailable:
        outputs.update(dict.fromkeys(engine.UNAVAILABLE_FIELDS[kind]))
    decision_id = audit_services.decision_record_id(
        customer=cid, purpose=purpose, decision_type="served_score", requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=current.versions, features_hash=row.features_hash, outputs=outputs,
        sealed_details=_seal(cid, row, current.wrapped_key),
    )
    if current.computed_now:
        score_events_record(score_events(customer_id=cid, purpose=purpose, decision_id=decision_id,
                                           previous=current.previous, row=score_values(row),
                                           explanation=row.explanation))
    return ScoreResult(
        customer_id=cid, purpose=purpose, clv=outputs["clv"], currency=row.currency, clv_score=outputs["clv_score"],
        churn_probability=outputs["churn_probability"], risk_level=row.risk_level, upsell=outputs["upsell"],
        advocacy=outputs["advocacy"], segment=row.segment, tier=outputs["tier"],
        service_level=outputs["service_level"], recommendation=outputs["recommendation"],
        explanation=row.explanation, model_versions=current.versions, decision_id=decision_id,
        computed_at=row.computed_at, override=outputs.get("override"),
        automated_tier=outputs.get("automated_tier"), horizon_days=registry.horizon_days(row.model_version_id),
        current_mood=current.mood or profiles_selectors.customer_current_mood(customer_id=cid),
        unavailable=quality.unavailable_list(unavailable),
        tier_basis=quality.tier_basis(unavailable, table_only=row.model_version_id == row.churn_model_version_id),
    )


TICKET_CATEGORY_MAX = 64


@transaction.atomic
def route_ticket(*, customer_id: uuid.UUID, category: str, purpose: str, requester: str) -> RouteResult:
    """Queue, SLA and escalation for a ticket of this customer; recorded as a "routing" decision.

    The category must be a known one (or mapped onto one by ``TICKET_CATEGORY_MAP``): an unknown category is
    refused with the allowed list, never silently routed to "general". A customer who may not be profiled for
    the purpose now gets the non-personalised default queue (``personalised=False``), with no decision."""
    from scoring.ml.tiers import route, route_default, ticket_categories, ticket_category_resolve

    cid = parse_uuid(customer_id)
    purpose = check_purpose(purpose)
    known = ticket_category_resolve(category, settings.TICKET_CATEGORY_MAP) if isinstance(category, str) else None
    if known is None or len(category) > TICKET_CATEGORY_MAX:
        raise ValidationFailed(
            "Unknown ticket category.",
            extra={"errors": {"ticket_category": [{"code": "invalid_choice", "message": "Not one of the allowed "
                                                   "values.", "allowed": ticket_categories(settings.TICKET_CATEGORY_MAP)}]}})
    category = known
    # Held: the consent state stays locked until this transaction ends, so a withdrawal cannot commit
    # between the gate and the routing decision (a refusal routes without personalisation instead).
    gate = consent_selectors.processing_gate_held(customer_id=cid, purpose=purpose)
    if not gate.allowed and gate.code in REFUSALS:
        # No profiling for this purpose now: the helpdesk still needs a queue, so the ticket gets the
        # non-personalised default. Nothing about the person is read, scored or recorded.
        logger.info("ticket routed without personalisation",
                    extra={"event": "scoring.route.default", "code": gate.code, "purpose": purpose})
        default = route_default(category)
        return RouteResult(
            customer_id=cid, purpose=purpose, ticket_category=category, queue=str(default["queue"]),
            sla_hours=int(str(default["sla_hours"])), escalation_level=int(str(default["escalation_level"])),
            handler=str(default["handler"]), tier=None, risk_level=None, decision_id=None, model_versions={},
            personalised=False,
        )
    if not gate.allowed:
        raise NotFound("Customer not found.")
    current = _current_score(customer_id=cid, purpose=purpose)
    row = current.row
    outputs = effective_outputs(score_values(row), current.override)
    routed = route(outputs["tier"], row.risk_level, category)
    decision_outputs = {
        "tier": outputs["tier"], "risk_level": row.risk_level, "ticket_category": category[:64],
        "queue": routed["queue"], "sla_hours": routed["sla_hours"], "escalation_level": routed["escalation_level"],
        "handler": routed["handler"], "clv_score": outputs["clv_score"],
        "churn_probability": outputs["churn_probability"],
    }
    if "override" in outputs:
        decision_outputs["override"] = outputs["override"]
    decision_id = audit_services.decision_record_id(
        customer=cid, purpose=purpose, decision_type="routing", requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=current.versions, features_hash=row.features_hash, outputs=decision_outputs,
        sealed_details=_seal(cid, row, current.wrapped_key),
    )
    if current.computed_now:
        score_events_record(score_events(customer_id=cid, purpose=purpose, decision_id=decision_id,
                                           previous=current.previous, row=score_values(row),
                                           explanation=row.explanation))
    return RouteResult(
        customer_id=cid, purpose=purpose, ticket_category=category, queue=str(routed["queue"]),
        sla_hours=int(str(routed["sla_hours"])), escalation_level=int(str(routed["escalation_level"])),
        handler=str(routed["handler"]), tier=outputs["tier"], risk_level=row.risk_level, decision_id=decision_id,
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
    cid = parse_uuid(customer_id)
    purpose = check_purpose(purpose)
    gate = consent_selectors.processing_gate(customer_id=cid, purpose=purpose)
    if not gate.allowed:
        CustomerScore.objects.filter(customer_id=cid, purpose=purpose).delete()
        logger.info("refresh skipped by the processing gate",
                    extra={"event": "scoring.refresh.skipped", "code": gate.code, "purpose": purpose})
        return str(gate.code)
    now = timezone.now()
    models = registry.active_models()
    reference = registry.reference_for(models, purpose)
    stored_before = CustomerScore.objects.filter(customer_id=cid, purpose=purpose).values_list(
        "tier", "risk_level").first()
    previous = stored_before[0] if stored_before is not None else None
    computed = engine.compute_scores([cid], as_of=now, models=models, reference=reference)[0]
    row = CustomerScore(customer_id=cid, purpose=purpose,
                        **row_fields(computed, models=models, reference=reference, as_of=now, run_id=None, now=now))
    override = scoring_selectors.score_override_active(customer_id=cid, purpose=purpose)
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose,
        decision_type="tier_change" if previous is not None and previous != computed.tier else "batch_rescore",
        requester=requester, consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=models.versions(), features_hash=computed.features_hash,
        outputs=effective_outputs(score_values(row), override), sealed_details=_seal(cid, row),
        decision_key=decision_key,
    )
    row.decision_id = decision.pk
    scores_upsert([row])
    score_events_record(score_events(customer_id=cid, purpose=purpose, decision_id=decision.pk,
                                       previous=tuple(stored_before) if stored_before is not None else None,
                                       row=score_values(row), explanation=computed.explanation))
    profiles_services.customer_mark_fresh(customer_ids=[cid], as_of=now)
    return "scored"


