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
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Field, Max, Subquery
from django.utils import timezone

from audit import services as audit_services
from config.compiled_queries import CompiledQuery
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
from profiles import selectors as profiles_selectors
from profiles import services as profiles_services
from profiles.aggregates import ids_in
from scoring import engine, quality, registry
from scoring import signals as scoring_signals
from scoring.models import (
    CustomerScore,
    ModelArtifact,
    ModelVersion,
    Outcome,
    RescoreChunk,
    RescoreRun,
    ScoreOverride,
)
from scoring.population import Reference, reference_from_keys, tiebreak, tier_shares
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
    # Known codes are cached per process (purposes are reference data); the gate's query joins the purpose
    # row again, so this only answers early.
    if not consent_selectors.purpose_exists(code=purpose):
        raise ValidationFailed("Unknown purpose.", extra={"errors": {"purpose": [{"code": "invalid_choice"}]}})
    return purpose


# --------------------------------------------------------------------------- the gate


def _gate_or_refuse(*, customer_id: uuid.UUID, purpose: str, what: str, held: bool = False) -> Any:
    """The processing gate now; a refusal is logged (ids and codes only) and raised, never recorded.
    ``held``: the consent state stays locked until the caller's transaction ends (see processing_gate_held)."""
    gate = (consent_selectors.processing_gate_held if held else consent_selectors.processing_gate)(
        customer_id=customer_id, purpose=purpose)
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
    override: ScoreOverride | None = None
    wrapped_key: dict[str, Any] | None = None  # read with the score (profiles' expressions), for sealing
    previous: tuple[str, str] | None = None  # (tier, risk level) of the stored score this one replaced


def _computed_fields(c: engine.ComputedScore, *, thresholds_ref: str, as_of: datetime, run_id: uuid.UUID | None,
                     now: datetime, currency: str | None = None) -> dict[str, Any]:
    return {
        "clv": c.clv, "currency": currency or engine.currency(), "clv_score": c.clv_score,
        "churn_probability": c.churn_probability, "risk_level": c.risk_level, "upsell": c.upsell,
        "advocacy": c.advocacy, "segment": c.segment, "tier": c.tier, "service_level": c.service_level,
        "recommendation": c.recommendation, "explanation": c.explanation, "features": c.features,
        "features_hash": c.features_hash, "thresholds_ref": thresholds_ref, "as_of": as_of,
        "computed_at": now, "run_id": run_id, "decision_id": None, "stale": False,
    }


def _row_fields(c: engine.ComputedScore, *, models: LoadedModels, reference: Reference, as_of: datetime,
                run_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    return {
        "model_version_id": models.full.id,
        "churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None,
        **_computed_fields(c, thresholds_ref=reference.source[:80], as_of=as_of, run_id=run_id, now=now),
    }


_SCORE_JSON = frozenset({"service_level", "recommendation", "explanation", "features"})


def _score_columns() -> list[tuple[str, str, bool]]:
    """(attribute name, column, is JSON) of the columns an upsert writes."""
    out = []
    for name in ("customer_id", "purpose", *SCORE_FIELDS):
        fld = cast(Field, CustomerScore._meta.get_field(name))
        out.append((fld.attname, str(fld.column), name in _SCORE_JSON))
    return out


def _json_text(value: Any) -> str:
    return str(value) if isinstance(value, _EncodedJson) else json.dumps(value)


def _upsert_score_rows(rows: list[dict[str, Any]]) -> None:
    """Insert or replace the score of each ``(customer_id, purpose)``: one multi-row ``INSERT ... ON
    CONFLICT DO UPDATE`` per 500 rows (PostgreSQL and SQLite), JSON encoded once."""
    if not rows:
        return
    cols = _score_columns()
    qn = connection.ops.quote_name
    table = qn(CustomerScore._meta.db_table)
    postgres = connection.vendor == "postgresql"
    if postgres and len(rows) >= 50:  # batch: COPY; a single score (real time): one INSERT
        _copy_upsert_score_rows(rows, cols)
        return
    placeholders = ", ".join("%s::jsonb" if (postgres and is_json) else "%s" for _, _, is_json in cols)
    updates = ", ".join(f"{qn(col)} = EXCLUDED.{qn(col)}" for attname, col, _ in cols
                        if attname not in ("customer_id", "purpose"))
    head = f"INSERT INTO {table} ({', '.join(qn(col) for _, col, _ in cols)}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT ({qn('customer_id')}, {qn('purpose')}) DO UPDATE SET {updates}"
    if postgres:
        def prepare(attname: str, value: Any, is_json: bool) -> Any:
            return _json_text(value) if is_json else value
    else:
        fields = {f.attname: f for f in CustomerScore._meta.concrete_fields}

        def prepare(attname: str, value: Any, is_json: bool) -> Any:
            if is_json:
                return _json_text(value)
            return fields[attname].get_db_prep_save(value, connection)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            part = rows[start:start + 500]
            params = [prepare(attname, row[attname], is_json) for row in part for attname, _, is_json in cols]
            cursor.execute(head + ", ".join([f"({placeholders})"] * len(part)) + tail, params)


def _copy_upsert_score_rows(rows: list[dict[str, Any]], cols: list[tuple[str, str, bool]]) -> None:
    """PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO
    UPDATE`` (no SQL text proportional to the number of rows)."""
    qn = connection.ops.quote_name
    table = CustomerScore._meta.db_table
    columns = ", ".join(qn(col) for _, col, _ in cols)
    stage = qn(f"_stage_{table}_{len(cols)}")
    updates = ", ".join(f"{qn(col)} = EXCLUDED.{qn(col)}" for attname, col, _ in cols
                        if attname not in ("customer_id", "purpose"))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
                       f"SELECT {columns} FROM {qn(table)} WITH NO DATA")
        cursor.execute(f"TRUNCATE {stage}")
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_json_text(row[attname]) if is_json else row[attname] for attname, _, is_json in cols])
        cursor.execute(f"INSERT INTO {qn(table)} ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608
                       f"ON CONFLICT ({qn('customer_id')}, {qn('purpose')}) DO UPDATE SET {updates}")
        cursor.execute(f"TRUNCATE {stage}")


def _upsert_scores(rows: list[CustomerScore]) -> None:
    _upsert_score_rows([
        {attname: getattr(row, attname) for attname, _, _ in _score_columns()} for row in rows
    ])


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


# What serving reads of a stored score: its own columns, the registry fields of its model versions (not
# their large card/metrics/population JSON), the active override and the customer's wrapped data key.
_SCORE_COLUMNS = tuple(f.attname for f in CustomerScore._meta.concrete_fields)
_VERSION_FIELDS = ("id", "version", "sha256", "kind", "status")
_VERSION_RELATIONS = ("model_version", "churn_model_version")
_OVERRIDE_FIELDS = ("id", "decision_id", "tier", "service_level", "created_at")


def _stored_score_query(*, customer_id: uuid.UUID, purpose: str) -> Any:
    override = ScoreOverride.objects.filter(customer_id=customer_id, purpose=purpose, active=True).order_by()
    return (
        CustomerScore.objects.filter(customer_id=customer_id, purpose=purpose)
        .annotate(**{f"override_{name}": Subquery(override.values(name)[:1]) for name in _OVERRIDE_FIELDS})
        .annotate(**profiles_selectors.customer_key_expressions(customer_id=customer_id))
        .values(
            *_SCORE_COLUMNS,
            *(f"{relation}__{name}" for relation in _VERSION_RELATIONS for name in _VERSION_FIELDS),
            *(f"override_{name}" for name in _OVERRIDE_FIELDS),
            *profiles_selectors.KEY_EXPRESSION_NAMES,
        )
        .order_by()
    )


# Compiled once per thread; every call runs the query with this call's customer and purpose.
_STORED_SCORE = CompiledQuery(_stored_score_query, customer_id="uuid", purpose="text")


def _stored_score(*, customer_id: uuid.UUID, purpose: str) -> _Current | None:
    """One query: the stored score with its model versions' registry fields and, through correlated index
    lookups, the active override and the customer's wrapped data key (profiles' expressions). ``None``
    when no score is stored. ``versions`` is left empty (the caller checks freshness first)."""
    values = _STORED_SCORE.first(customer_id=customer_id, purpose=purpose)
    if values is None:
        return None
    row = CustomerScore(**{name: values[name] for name in _SCORE_COLUMNS})
    for relation in _VERSION_RELATIONS:
        version_id = values[f"{relation}__id"]
        setattr(row, relation, None if version_id is None else ModelVersion(
            **{name: values[f"{relation}__{name}"] for name in _VERSION_FIELDS}))
    wrapped_key = {name: values[name] for name in profiles_selectors.KEY_EXPRESSION_NAMES}
    found = None
    if values["override_id"] is not None:
        found = ScoreOverride(customer_id=customer_id, purpose=purpose, active=True,
                              **{name: values[f"override_{name}"] for name in _OVERRIDE_FIELDS})
    return _Current(row, {}, False, found, wrapped_key)


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
    fields = _row_fields(computed, models=models, reference=reference, as_of=now, run_id=None, now=now)
    fresh = CustomerScore(customer_id=customer_id, purpose=purpose, **fields)
    _upsert_scores([fresh])
    if stored is None:
        return _Current(fresh, models.versions(), True, _active_override(customer_id, purpose))
    return _Current(fresh, models.versions(), True, stored.override, stored.wrapped_key,
                    previous=(stored.row.tier, stored.row.risk_level))


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


def _seal(customer_id: uuid.UUID, row: CustomerScore, wrapped_key: dict[str, Any] | None = None) -> bytes:
    try:
        return profiles_services.customer_seal(
            customer_id=customer_id, label=audit_services.DECISION_DETAILS_LABEL,
            payload={"features": row.features, "explanation": row.explanation}, wrapped_key=wrapped_key,
        )
    except DecryptionError:  # erased between the gate and now: no decision without its sealed details
        raise NotFound("Customer not found.") from None


# --------------------------------------------------------------------------- score events (outbox)
#
# ``score.tier_changed`` / ``score.risk_raised`` are recorded in the decision's transaction, only when the
# tier changes or the risk level rises against the previous STORED score of the customer and purpose (a
# first score has nothing to change from). Payloads hold scores, tiers and reasons in words: no personal data.

_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}
REASONS_PER_EVENT = 3


def score_event_types(previous: tuple[str, str] | None, tier: str, risk_level: str) -> list[str]:
    if previous is None:
        return []
    types = []
    if previous[0] != tier:
        types.append("score.tier_changed")
    if _RISK_ORDER.get(risk_level, -1) > _RISK_ORDER.get(previous[1], -1):
        types.append("score.risk_raised")
    return types


def _event_reasons(explanation: dict[str, Any], model: str) -> list[str]:
    """The largest contributions of ``model`` (``clv`` for a tier, ``churn`` for a risk), in words."""
    exp = explanation.get(model) if isinstance(explanation, dict) else None
    if not exp:
        return []
    items = [item for item in exp.get("contributions", []) if item[2] != 0.0][:REASONS_PER_EVENT]
    return [engine.contribution_text(name, value, float(c), exp["unit"]) for name, value, c in items]


def _score_events(*, customer_id: uuid.UUID, purpose: str, decision_id: int, previous: tuple[str, str] | None,
                  row: dict[str, Any], explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """The score events (``events.services`` records) of one scored customer; ``row`` holds its score values."""
    types = score_event_types(previous, row["tier"], row["risk_level"])
    if not types or previous is None:
        return []
    base = {
        "decision_id": int(decision_id), "tier": row["tier"], "previous_tier": previous[0],
        "risk_level": row["risk_level"], "previous_risk_level": previous[1],
        "clv": round(float(row["clv"]), 2), "churn_probability": round(float(row["churn_probability"]), 4),
        "upsell": round(float(row["upsell"]), 4), "advocacy": round(float(row["advocacy"]), 4),
        "service_level": dict(row["service_level"] or {}),
    }
    return [{"type": kind, "customer_id": customer_id, "purpose": purpose,
             "payload": {**base, "reasons": _event_reasons(explanation, "clv" if kind == "score.tier_changed"
                                                           else "churn")}}
            for kind in types]


def _record_score_events(events: list[dict[str, Any]]) -> None:
    if events:
        from events import services as events_services

        events_services.events_record_many(events=events)


def _row_values(row: CustomerScore) -> dict[str, Any]:
    return {"tier": row.tier, "risk_level": row.risk_level, "clv": row.clv, "churn_probability": row.churn_probability,
            "upsell": row.upsell, "advocacy": row.advocacy, "service_level": row.service_level}


# --------------------------------------------------------------------------- real time


def score_serve(*, customer_id: uuid.UUID, purpose: str, requester: str) -> ScoreResult:
    """Gate now -> current score (stored if fresh, else computed) -> override -> decision record.

    Gate and decision are one transaction, and the gate holds the consent state (``processing_gate_held``:
    ``FOR SHARE`` on PostgreSQL) until it commits: a withdrawal committed before the gate is seen, and one
    arriving later waits for this decision's commit. So no decision is ever committed after a withdrawal's
    commit (issue 20, fault 2; tests/scoring/test_consent_race.py)."""
    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
    with transaction.atomic():
        gate = _gate_or_refuse(customer_id=cid, purpose=purpose, what="serve", held=True)
        now = timezone.now()
        stored = _stored_score(customer_id=cid, purpose=purpose)
        current = _warm(stored, now)
        if current is None:
            current = _computed(customer_id=cid, purpose=purpose, stored=stored, now=now)
        return _serve_decision(cid, purpose, requester, gate, current)


def _serve_decision(cid: uuid.UUID, purpose: str, requester: str, gate: Any, current: _Current) -> ScoreResult:
    """Record the served score as a decision and answer it."""
    row = current.row
    outputs = _effective_outputs(row, current.override)
    unavailable = quality.unavailable_kinds(row.model_version_id, row.churn_model_version_id)
    for kind in unavailable:
        outputs.update(dict.fromkeys(engine.UNAVAILABLE_FIELDS[kind]))
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose, decision_type="served_score", requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version,
        model_versions=current.versions, features_hash=row.features_hash, outputs=outputs,
        sealed_details=_seal(cid, row, current.wrapped_key),
    )
    if current.computed_now:
        _record_score_events(_score_events(customer_id=cid, purpose=purpose, decision_id=decision.pk,
                                           previous=current.previous, row=_row_values(row),
                                           explanation=row.explanation))
    return ScoreResult(
        customer_id=cid, purpose=purpose, clv=outputs["clv"], currency=row.currency, clv_score=outputs["clv_score"],
        churn_probability=outputs["churn_probability"], risk_level=row.risk_level, upsell=outputs["upsell"],
        advocacy=outputs["advocacy"], segment=row.segment, tier=outputs["tier"],
        service_level=outputs["service_level"], recommendation=outputs["recommendation"],
        explanation=row.explanation, model_versions=current.versions, decision_id=decision.pk,
        computed_at=row.computed_at, override=outputs.get("override"),
        automated_tier=outputs.get("automated_tier"), horizon_days=registry.horizon_days(row.model_version_id),
        current_mood=profiles_selectors.customer_current_mood(customer_id=cid),
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

    cid = _uuid(customer_id)
    purpose = _check_purpose(purpose)
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
    outputs = _effective_outputs(row, current.override)
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
        sealed_details=_seal(cid, row, current.wrapped_key),
    )
    if current.computed_now:
        _record_score_events(_score_events(customer_id=cid, purpose=purpose, decision_id=decision.pk,
                                           previous=current.previous, row=_row_values(row),
                                           explanation=row.explanation))
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
    stored_before = CustomerScore.objects.filter(customer_id=cid, purpose=purpose).values_list(
        "tier", "risk_level").first()
    previous = stored_before[0] if stored_before is not None else None
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
    _record_score_events(_score_events(customer_id=cid, purpose=purpose, decision_id=decision.pk,
                                       previous=tuple(stored_before) if stored_before is not None else None,
                                       row=_row_values(row), explanation=computed.explanation))
    profiles_services.customer_mark_fresh(customer_ids=[cid], as_of=now)
    return "scored"


# --------------------------------------------------------------------------- batch rescoring
#
# One run per purpose (``RescoreRun``), but the runs of the batch purposes are planned together and their
# chunks (the same customers) scored together: the gate is checked per purpose, while features, model
# outputs, explanations and the sealed details are computed once per customer; the decision records and
# scores are written per customer-purpose, with the chunk rows marked done, in one transaction.


def _digest(customer_ids: Sequence[Any]) -> str:
    return hashlib.sha256(",".join(sorted(str(c) for c in customer_ids)).encode()).hexdigest()


def _chunks(values: list[Any], size: int) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


# Aggregate columns computed by the planning pass, kept (bounded) for the scoring pass of the same process
# (``manage.py rescore`` scores in the process that planned). Keyed by the run's as-of time and the chunk
# digest; taken (removed) when the chunk is scored. Only customers some purpose's gate allowed at planning
# are in it, and the gate is checked again when the chunk is scored.
_FEATURE_CACHE: OrderedDict[tuple[str, str], tuple[dict[uuid.UUID, int], dict[str, np.ndarray]]] = OrderedDict()
_FEATURE_CACHE_ROWS = [0]
RESCORE_PLAN_FLUSH_CHUNKS = 100  # chunk rows committed per planning transaction


def _feature_cache_put(as_of: datetime, digest: str, ids: list[uuid.UUID], columns: dict[str, np.ndarray]) -> None:
    limit = int(getattr(settings, "RESCORE_FEATURE_CACHE_CUSTOMERS", 2_000_000))
    if len(ids) > limit:
        return
    while _FEATURE_CACHE and _FEATURE_CACHE_ROWS[0] + len(ids) > limit:
        _, (pos, _cols) = _FEATURE_CACHE.popitem(last=False)
        _FEATURE_CACHE_ROWS[0] -= len(pos)
    _FEATURE_CACHE[(as_of.isoformat(), digest)] = ({c: i for i, c in enumerate(ids)}, columns)
    _FEATURE_CACHE_ROWS[0] += len(ids)


def _feature_cache_take(as_of: datetime, digest: str, ids: list[uuid.UUID]) -> dict[str, np.ndarray] | None:
    entry = _FEATURE_CACHE.pop((as_of.isoformat(), digest), None)
    if entry is None:
        return None
    pos, columns = entry
    _FEATURE_CACHE_ROWS[0] -= len(pos)
    try:
        rows = np.asarray([pos[c] for c in ids], dtype=np.int64)
    except KeyError:  # someone granted consent since planning: compute the chunk afresh
        return None
    return {name: col[rows] for name, col in columns.items()}


def rescore_feature_cache_clear() -> None:
    _FEATURE_CACHE.clear()
    _FEATURE_CACHE_ROWS[0] = 0


def _mark_failed(runs: list[RescoreRun]) -> None:
    try:
        RescoreRun.objects.filter(pk__in=[r.pk for r in runs]).update(
            status=RescoreRun.Status.FAILED, finished_at=timezone.now())
    except Exception:  # noqa: BLE001 - the original error is what matters
        logger.warning("could not mark the runs failed", extra={"event": "scoring.run.mark_failed_failed"})


def rescore_runs_start(
    *, purposes: Sequence[str], requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None, progress: Callable[[int], None] | None = None, keep_features: bool = False,
) -> list[RescoreRun]:
    """Plan one rescoring run per purpose over the same chunks of customers (pass 1).

    A *full* run (``customer_ids=None``) covers every live customer, streamed in chunks (keyset): per
    chunk the gate of every purpose, then the CLV of the customers some purpose allows now is predicted
    once (features by set-based SQL, no explanations, no writes) and each run gets the tier cut-offs of
    its own allowed population. Pass 2 (``rescore_chunks``) re-checks the gate and writes. A subset run
    uses the latest full run's reference (or the model's training population).

    Short transactions: the runs are visible (status ``preparing``) from the start and the chunk rows are
    committed as planning goes. ``progress(n)`` gets the number of customers planned after each chunk.
    With ``keep_features`` the aggregate columns are kept in this process for pass 2 (bounded by
    ``RESCORE_FEATURE_CACHE_CUSTOMERS``).
    """
    from profiles import selectors as profiles_selectors
    from profiles.aggregates import fact_aggregates

    purposes = list(dict.fromkeys(_check_purpose(p) for p in purposes))
    if not purposes:
        raise ValidationFailed("At least one purpose is required.")
    size = int(chunk_size or settings.RESCORE_CHUNK_SIZE)
    if size <= 0:
        raise ValidationFailed("chunk_size must be positive.")
    models = registry.active_models()
    now = timezone.now()
    full = customer_ids is None
    churn_id = models.churn_ref.id if models.churn_ref is not None else None
    with transaction.atomic():
        runs = [
            RescoreRun.objects.create(
                purpose=purpose, requester=requester, full=full, model_version_id=models.full.id, as_of=now,
                started_at=now, thresholds={"churn_model_version_id": churn_id},
            )
            for purpose in purposes
        ]
    try:
        if full:
            chunk_iter: Any = profiles_selectors.customer_id_chunks(chunk_size=size)
        else:
            chunk_iter = _chunks(list(dict.fromkeys(_uuid(c) for c in customer_ids or ())), size)
        values: dict[str, list[np.ndarray]] = {p: [] for p in purposes}
        keys: dict[str, list[np.ndarray]] = {p: [] for p in purposes}
        planned: list[RescoreChunk] = []
        total = 0
        chunks_total = 0

        def flush() -> None:
            with transaction.atomic():
                RescoreChunk.objects.bulk_create(planned, batch_size=500)
                RescoreRun.objects.filter(pk__in=[r.pk for r in runs]).update(total=total)
            planned.clear()

        for chunk_no, raw in enumerate(chunk_iter):
            ids = [_uuid(c) for c in raw]
            digest = _digest(ids)
            str_ids = [str(c) for c in ids]
            planned.extend(RescoreChunk(run=run, chunk_no=chunk_no, digest=digest, customer_ids=str_ids)
                           for run in runs)
            total += len(ids)
            chunks_total += 1
            if full:
                gates_by = consent_selectors.processing_gates_bulk(customer_ids=ids, purposes=purposes)
                allowed = {
                    purpose: np.fromiter((gates_by[purpose][c].allowed for c in ids), dtype=bool, count=len(ids))
                    for purpose in purposes
                }
                union = np.logical_or.reduce([allowed[p] for p in purposes])
                if union.any():
                    uids = [c for c, ok in zip(ids, union.tolist(), strict=True) if ok]
                    columns = fact_aggregates(customer_ids=uids, as_of=now)
                    rank = engine.rank_values(models, columns)
                    tb = np.asarray([tiebreak(c) for c in uids])
                    for purpose in purposes:
                        mask = allowed[purpose][union]
                        values[purpose].append(rank[mask])
                        keys[purpose].append(tb[mask])
                    if keep_features:
                        _feature_cache_put(now, digest, uids, columns)
            if len(planned) >= RESCORE_PLAN_FLUSH_CHUNKS * len(runs):
                flush()
            if progress is not None:
                progress(len(ids))
        flush()
        with transaction.atomic():
            for run in runs:
                if full:
                    v = np.concatenate(values[run.purpose]) if values[run.purpose] else np.zeros(0)
                    k = np.concatenate(keys[run.purpose]) if keys[run.purpose] else np.zeros(0, dtype="<U16")
                    reference = reference_from_keys(v, k, source=f"run:{run.id}")
                else:
                    reference = registry.reference_for(models, run.purpose)
                run.thresholds = {**run.thresholds, **reference.to_json()}
                run.total = total
                run.chunks_total = chunks_total
                run.status = RescoreRun.Status.RUNNING if chunks_total else RescoreRun.Status.COMPLETED
                if run.status == RescoreRun.Status.COMPLETED:
                    run.finished_at = timezone.now()
                run.save(update_fields=["thresholds", "total", "chunks_total", "status", "finished_at"])
    except BaseException:
        _mark_failed(runs)
        raise
    for run in runs:
        logger.info("rescore run planned", extra={"event": "scoring.run.planned", "run_id": str(run.id),
                                                  "purpose": run.purpose, "total": total, "count": chunks_total})
    return runs


def rescore_run_start(
    *, purpose: str, requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None, progress: Callable[[int], None] | None = None,
) -> RescoreRun:
    """Plan a rescoring run for one purpose (see ``rescore_runs_start``)."""
    return rescore_runs_start(purposes=[purpose], requester=requester, customer_ids=customer_ids,
                              chunk_size=chunk_size, progress=progress)[0]


def rescore_run_dispatch(*, run_id: uuid.UUID) -> int:
    """Queue ``rescore_chunk`` tasks for the run's pending chunks (after commit). Returns how many."""
    return rescore_runs_dispatch(run_ids=[run_id])


def rescore_runs_dispatch(*, run_ids: Sequence[uuid.UUID]) -> int:
    """Queue one task per pending chunk of runs planned together (``rescore_chunks``: all their purposes
    at once), after commit. Returns how many."""
    from scoring import tasks

    keys = [str(_uuid(r, "run")) for r in run_ids]
    queued = 0
    for ids in rescore_pending_chunk_ids(run_ids=run_ids):
        if len(keys) == 1:
            tasks.rescore_chunk.delay_on_commit(keys[0], ids)
        else:
            tasks.rescore_chunks.delay_on_commit(keys, ids)
        queued += 1
    return queued


def rescore_pending_chunks(*, run_id: uuid.UUID) -> list[list[str]]:
    return list(rescore_pending_chunk_ids(run_ids=[run_id]))


def rescore_pending_chunk_ids(*, run_ids: Sequence[uuid.UUID], page: int = 50, worker: int = 0, workers: int = 1
                              ) -> Iterator[list[str]]:
    """Customer ids of each chunk not yet done in any of ``run_ids`` (chunk order), read ``page`` chunks
    at a time (the whole plan is never in memory). With ``workers > 1``, only the chunks whose number is
    ``worker`` modulo ``workers`` (so parallel workers share the plan without overlap)."""
    keys = [_uuid(r, "run") for r in run_ids]
    last = -1
    while True:
        qs = RescoreChunk.objects.filter(run_id__in=keys, done=False, chunk_no__gt=last)
        if workers > 1:
            qs = qs.annotate(_slot=F("chunk_no") % workers).filter(_slot=worker)
        rows = list(qs.order_by("chunk_no").values_list("chunk_no", "customer_ids")[: page * len(keys)])
        if not rows:
            return
        seen: set[int] = set()
        for chunk_no, ids in rows:
            if chunk_no not in seen:
                seen.add(chunk_no)
                yield list(ids)
        last = rows[-1][0]


class _EncodedJson(str):
    """A JSON value already encoded (written as is by the score upsert)."""


def _details_plaintext(features_json: str, explanation_json: str) -> bytes:
    """The sealed-details plaintext ``customer_seal`` would encode for ``{"features", "explanation"}``
    (sorted keys, compact), from the two values already encoded that way."""
    return ('{"explanation":' + explanation_json + ',"features":' + features_json + "}").encode()


def _seal_many(items: list[tuple[uuid.UUID, dict[str, Any] | bytes]]) -> dict[uuid.UUID, bytes]:
    """Seal decision details for many customers (one key query); erased customers are left out."""
    label = audit_services.DECISION_DETAILS_LABEL
    return dict(profiles_services.customer_seal_many(items=[(cid, label, payload) for cid, payload in items]))


def _effective_outputs_of(row: dict[str, Any], override: ScoreOverride | None) -> dict[str, Any]:
    """``_effective_outputs`` of a score row given as a dict of its values (batch path)."""
    outputs = {
        "clv": round(float(row["clv"]), 2), "currency": row["currency"], "clv_score": int(row["clv_score"]),
        "churn_probability": round(float(row["churn_probability"]), 4), "risk_level": row["risk_level"],
        "upsell": round(float(row["upsell"]), 4), "advocacy": round(float(row["advocacy"]), 4),
        "segment": row["segment"], "tier": row["tier"], "service_level": row["service_level"],
        "recommendation": row["recommendation"],
    }
    if override is not None:
        outputs["automated_tier"] = row["tier"]
        outputs["tier"] = override.tier
        outputs["service_level"] = override.service_level or engine.service_level_for(override.tier)
        outputs["recommendation"] = engine.recommendation_for(
            override.tier, float(row["churn_probability"]), float(row["upsell"]), float(row["advocacy"]))
        outputs["override"] = {"review_of_decision": override.decision_id, "tier": override.tier,
                               "since": override.created_at.isoformat()}
    return outputs


def _done_counts(chunk: RescoreChunk) -> ChunkCounts:
    counts = chunk.counts or {}
    return ChunkCounts(total=int(counts.get("total", 0)), scored=int(counts.get("scored", 0)),
                       tier_changes=int(counts.get("tier_changes", 0)), skipped=dict(counts.get("skipped", {})),
                       already_done=True)


_REFERENCES: dict[uuid.UUID, Reference] = {}


def _run_reference(run: RescoreRun) -> Reference:
    reference = _REFERENCES.get(run.pk)
    if reference is None:
        if len(_REFERENCES) > 64:
            _REFERENCES.clear()
        reference = _REFERENCES[run.pk] = Reference.from_json(run.thresholds)
    return reference


def _run_models(run: RescoreRun) -> LoadedModels:
    if run.model_version is None:
        raise registry.ModelUnavailable()
    churn_id = (run.thresholds or {}).get("churn_model_version_id")
    churn_ref = None
    if churn_id:
        churn_version = ModelVersion.objects.filter(pk=churn_id).first()
        churn_ref = registry.ref_of(churn_version) if churn_version is not None else None
    return registry.loaded_models(registry.ref_of(run.model_version), churn_ref)


@transaction.atomic
def rescore_chunk(*, run_id: uuid.UUID, customer_ids: Sequence[uuid.UUID | str]) -> ChunkCounts:
    """Score one chunk of one run (see ``rescore_chunks``)."""
    key = _uuid(run_id, "run")
    return rescore_chunks(run_ids=[key], customer_ids=customer_ids)[key]


@transaction.atomic
def rescore_chunks(*, run_ids: Sequence[uuid.UUID | str], customer_ids: Sequence[uuid.UUID | str]
                   ) -> dict[uuid.UUID, ChunkCounts]:
    """Score one chunk of customers for runs planned together, in one transaction; re-checks the gate of
    each run's purpose now; idempotent under retry.

    Customers a purpose's gate refuses now are skipped and counted in that run, and their stored score for
    the purpose is deleted. Features, model outputs, explanations and sealed details are computed once per
    customer for all the runs. Decision records carry ``decision_key = "<run>:<customer>:<purpose>"``
    (unique); the chunk rows are locked and marked done in the same transaction: a retried or duplicated
    chunk writes nothing twice, and a chunk killed mid-way rolls back completely and is redone on
    redelivery. Runs whose chunk is already done are left alone (their stored counts are returned).
    """
    ids = [_uuid(c) for c in customer_ids]
    keys = list(dict.fromkeys(_uuid(r, "run") for r in run_ids))
    runs = {r.pk: r for r in RescoreRun.objects.select_related("model_version").filter(pk__in=keys)}
    if len(runs) != len(keys):
        raise NotFound("Rescore run not found.")
    digest = _digest(ids)
    chunks = {c.run_id: c for c in RescoreChunk.objects.select_for_update().filter(run_id__in=keys, digest=digest)
              .order_by("run_id")}
    if len(chunks) != len(keys):
        raise ValidationFailed("These customers are not a chunk of this run.")
    result: dict[uuid.UUID, ChunkCounts] = {}
    pending: list[RescoreRun] = []
    for key in keys:
        if chunks[key].done:
            result[key] = _done_counts(chunks[key])
        else:
            pending.append(runs[key])
    if not pending:
        return result
    counts = {run.pk: ChunkCounts(total=len(ids)) for run in pending}
    gates: dict[uuid.UUID, dict[uuid.UUID, Any]] = {}
    gates_by = consent_selectors.processing_gates_bulk(customer_ids=ids, purposes=[run.purpose for run in pending])
    for run in pending:
        run_gates = gates_by[run.purpose]
        gates[run.pk] = run_gates
        refused = [cid for cid in ids if not run_gates[cid].allowed]
        skipped = counts[run.pk].skipped
        for refused_id in refused:
            code = SKIP_FIELDS.get(run_gates[refused_id].code, "skipped_no_consent")
            skipped[code] = skipped.get(code, 0) + 1
        if refused:
            CustomerScore.objects.filter(ids_in("customer_id", refused), purpose=run.purpose).delete()
    # Runs planned together share their model and as-of time: one group, scored once.
    groups: dict[tuple[Any, ...], list[RescoreRun]] = {}
    for run in pending:
        group_key = (run.model_version_id, (run.thresholds or {}).get("churn_model_version_id"), run.as_of)
        groups.setdefault(group_key, []).append(run)
    records: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    event_candidates: list[tuple[uuid.UUID, str, str, tuple[str, str] | None, dict[str, Any], dict[str, Any]]] = []
    for group in groups.values():
        allowed = [cid for cid in ids if any(gates[run.pk][cid].allowed for run in group)]
        if not allowed:
            continue
        models = _run_models(group[0])
        as_of = group[0].as_of
        columns = _feature_cache_take(as_of, digest, allowed)
        if columns is None:
            from profiles.aggregates import fact_aggregates

            columns = fact_aggregates(customer_ids=allowed, as_of=as_of)
        batch = engine.score_batch(allowed, columns=columns, models=models)
        # features and explanation encoded once per customer: sealed details and both purposes' score rows
        sealed = _seal_many([(cid, _details_plaintext(batch.features_json[i], batch.explanation_json[i]))
                             for i, cid in enumerate(allowed)])
        purposes = [run.purpose for run in group]
        previous = {
            (cid, purpose): (tier, risk) for cid, purpose, tier, risk in CustomerScore.objects.filter(
                ids_in("customer_id", allowed), purpose__in=purposes).values_list(
                    "customer_id", "purpose", "tier", "risk_level")
        }
        overrides = {(o.customer_id, o.purpose): o for o in ScoreOverride.objects.filter(
            ids_in("customer_id", allowed), purpose__in=purposes, active=True)}
        positions = {cid: i for i, cid in enumerate(allowed)}
        versions = models.versions()
        model_fields = {"model_version_id": models.full.id,
                        "churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None}
        now = timezone.now()
        currency = engine.currency()
        for run in group:
            run_gates = gates[run.pk]
            rows = [i for i, cid in enumerate(allowed) if run_gates[cid].allowed]
            kept = [i for i in rows if allowed[i] in sealed]
            if len(kept) < len(rows):  # erased meanwhile: no decision, no score
                skipped = counts[run.pk].skipped
                skipped["skipped_erased"] = skipped.get("skipped_erased", 0) + len(rows) - len(kept)
            reference = _run_reference(run)
            purpose = run.purpose
            thresholds_ref = reference.source[:80]
            for c in engine.finish_scores(batch, reference=reference, rows=kept):
                cid = c.customer_id
                before = previous.get((cid, purpose))
                changed = before is not None and before[0] != c.tier
                counts[run.pk].tier_changes += int(changed)
                gate = run_gates[cid]
                row = {"customer_id": cid, "purpose": purpose, **model_fields,
                       **_computed_fields(c, thresholds_ref=thresholds_ref, as_of=run.as_of, run_id=run.id, now=now,
                                          currency=currency)}
                i = positions[cid]
                row["features"] = _EncodedJson(batch.features_json[i])
                row["explanation"] = _EncodedJson(batch.explanation_json[i])
                score_rows.append(row)
                if score_event_types(before, c.tier, c.risk_level):
                    event_candidates.append((cid, purpose, f"{run.id}:{cid}:{purpose}", before, row, c.explanation))
                records.append({
                    "customer": cid, "purpose": purpose,
                    "decision_type": "tier_change" if changed else "batch_rescore",
                    "requester": run.requester, "consent_event_id": gate.consent_event_id,
                    "notice_version": gate.notice_version, "model_versions": versions,
                    "features_hash": c.features_hash,
                    "outputs": _effective_outputs_of(row, overrides.get((cid, purpose))),
                    "sealed_details": sealed[cid], "decision_key": f"{run.id}:{cid}:{purpose}",
                })
            counts[run.pk].scored = len(kept)
    if records:
        audit_services.decision_records_bulk(records=records)
        _upsert_score_rows(score_rows)
    if event_candidates:  # tier changes / risk rises of this chunk: one id lookup, one bulk insert
        from audit import selectors as audit_selectors

        decision_ids = audit_selectors.decision_ids_by_key(keys=[key for _, _, key, _, _, _ in event_candidates])
        _record_score_events([event for cid, purpose, key, before, row, explanation in event_candidates
                              for event in _score_events(customer_id=cid, purpose=purpose,
                                                         decision_id=decision_ids[key], previous=before, row=row,
                                                         explanation=explanation)])
    # processed (scored, or refused and its stored score deleted): no longer stale as of the run
    profiles_services.customer_mark_fresh(customer_ids=ids, as_of=max(run.as_of for run in pending))
    finished = timezone.now()
    for run in pending:
        chunk = chunks[run.pk]
        run_counts = counts[run.pk]
        chunk.done = True
        chunk.counts = run_counts.to_json()
        chunk.finished_at = finished
        chunk.save(update_fields=["done", "counts", "finished_at"])
        updates: dict[str, Any] = {
            "chunks_done": F("chunks_done") + 1, "done": F("done") + run_counts.total,
            "scored": F("scored") + run_counts.scored, "tier_changes": F("tier_changes") + run_counts.tier_changes,
        }
        for name, n in run_counts.skipped.items():
            updates[name] = F(name) + n
        RescoreRun.objects.filter(pk=run.pk).update(**updates)
        run.refresh_from_db(fields=["chunks_done", "chunks_total", "status"])
        if run.chunks_done >= run.chunks_total and run.status != RescoreRun.Status.COMPLETED:
            RescoreRun.objects.filter(pk=run.pk).update(status=RescoreRun.Status.COMPLETED, finished_at=timezone.now())
            RescoreChunk.objects.filter(run=run).update(customer_ids=[])
            _REFERENCES.pop(run.pk, None)
            if run.model_version_id is not None:
                registry.reference_forget(run.model_version_id, run.purpose)
            logger.info("rescore run completed", extra={"event": "scoring.run.completed", "run_id": str(run.id)})
            scoring_signals.rescore_run_completed.send(sender=RescoreRun, run_id=run.id, purpose=run.purpose)
        logger.info("rescore chunk done", extra={"event": "scoring.chunk.done", "run_id": str(run.id),
                                                 "chunk": chunk.chunk_no, "scored": run_counts.scored,
                                                 "skipped": sum(run_counts.skipped.values())})
        result[run.pk] = run_counts
    return {key: result[key] for key in keys}


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
    active version's on any activation metric (``scoring.ml.models.worse_metrics``) unless ``force``. Governance record
    ``model.activated``; stored scores become stale (recomputed on next request or run)."""
    from scoring.ml.models import worse_metrics

    target = ModelVersion.objects.select_for_update().filter(version=version).first()
    if target is None:
        raise NotFound("Model version not found.")
    if target.status == ModelVersion.Status.ACTIVE:
        return target
    registry.verify(target)
    refusal = quality.activation_refusal(target)
    if refusal:  # the quality floors hold even for a first model and even when forced
        raise Conflict(f"The model does not meet the quality floor: {refusal}", code="model_below_floor")
    current = _active(target.kind)
    worse = worse_metrics(target.metrics, current.metrics) if current is not None and not force else []
    if worse:
        raise Conflict(f"The candidate's metrics are worse than the active model's: {', '.join(worse)}.",
                       code="model_not_better")
    now = timezone.now()
    if current is not None:
        current.status = ModelVersion.Status.RETIRED
        current.retired_at = now
        current.save(update_fields=["status", "retired_at"])
    target.status = ModelVersion.Status.ACTIVE
    target.activated_at = now
    target.retired_at = None
    target.save(update_fields=["status", "activated_at", "retired_at"])
    # full versions: freshness checks the active status; a first full version also replaces scores of the
    # churn-table model serving alone (attribute-only data), whose version stays active
    if target.kind == ModelVersion.Kind.CHURN_TABLE or current is None:
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
                                  metrics=result.model.metrics, population=result.population, seed=seed, actor=actor)
    if activate:
        _activate_if_better(version, force=force, actor=actor)
    return version


def _activate_if_better(version: ModelVersion, *, force: bool, actor: str) -> None:
    try:
        model_activate(version=version.version, force=force, actor=actor)
    except Conflict as exc:
        logger.info("trained model kept as candidate (below the quality floor or not better than the active one)",
                    extra={"event": "scoring.model.candidate", "model_version": version.version,
                           "code": getattr(exc, "code", "")})


__all__ = [
    "ChunkCounts", "ModelRef", "ModelUnavailable", "RouteResult", "ScoreResult", "batch_purposes",
    "model_activate", "model_rollback", "model_train", "model_train_from_attributes", "model_version_store",
    "outcome_record", "rescore_chunk", "rescore_run_dispatch", "rescore_run_start", "route_ticket",
    "score_override_apply", "score_override_clear", "score_refresh", "score_serve", "scores_erase_customer",
    "scores_invalidate", "scores_mark_stale",
]


# --------------------------------------------------------------------------- stale-run watchdog (issue 20)


def rescore_runs_watchdog(*, now: datetime | None = None) -> dict[str, list[str]]:
    """Resume or fail runs that stopped making progress (a killed worker, retries exhausted by an outage).

    A ``running`` run whose last progress (its latest finished chunk, else its start) is older than
    ``RESCORE_WATCHDOG_STALE_MINUTES`` gets its pending chunks queued again (chunks are idempotent: a chunk
    that is in fact still running, or redelivered later by the broker, writes nothing twice). A run started
    more than ``RESCORE_WATCHDOG_GIVE_UP_HOURS`` ago is marked ``failed`` instead, for ``rescore --resume``
    by an operator. Run by beat (``scoring.tasks.rescore_watchdog``)."""
    now = now or timezone.now()
    stale_before = now - timedelta(minutes=int(getattr(settings, "RESCORE_WATCHDOG_STALE_MINUTES", 15)))
    give_up_before = now - timedelta(hours=float(getattr(settings, "RESCORE_WATCHDOG_GIVE_UP_HOURS", 24)))
    resumed: list[str] = []
    failed: list[str] = []
    runs = RescoreRun.objects.filter(status=RescoreRun.Status.RUNNING).annotate(
        last_progress=Max("chunks__finished_at"))
    for run in runs:
        last = max(filter(None, [run.last_progress, run.started_at]))
        if last >= stale_before:
            continue
        if run.started_at < give_up_before:
            RescoreRun.objects.filter(pk=run.pk, status=RescoreRun.Status.RUNNING).update(
                status=RescoreRun.Status.FAILED, finished_at=now)
            logger.error("stale rescore run given up", extra={"event": "scoring.watchdog.failed", "run_id": str(run.pk)})
            failed.append(str(run.pk))
            continue
        with transaction.atomic():
            queued = rescore_run_dispatch(run_id=run.pk)
        logger.warning("stale rescore run resumed", extra={"event": "scoring.watchdog.resumed", "run_id": str(run.pk),
                                                          "count": queued})
        resumed.append(str(run.pk))
    return {"resumed": resumed, "failed": failed}
