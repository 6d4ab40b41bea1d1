"""Feedback on automated decisions: a reviewer's override of the outcome (Art. 22(3)) and outcomes
reported by internal systems (training labels). Each is recorded in the audit trail in its transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import NotFound, ValidationFailed
from profiles import services as profiles_services
from scoring import engine
from scoring.models import Outcome, ScoreOverride
from scoring.population import tier_shares
from scoring.services.checks import check_purpose, parse_uuid

OUTCOME_KINDS = frozenset(Outcome.Kind.values)


@transaction.atomic
def outcome_record(*, customer_id: uuid.UUID, kind: str, at: datetime | None, source: str, actor: str) -> Outcome:
    """An explicit outcome reported by an internal system (feeds training labels)."""
    from profiles import selectors as profiles_selectors

    cid = parse_uuid(customer_id)
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
    cid = parse_uuid(customer_id)
    purpose = check_purpose(purpose)
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
    cid = parse_uuid(customer_id)
    ended = ScoreOverride.objects.filter(customer_id=cid, purpose=purpose, active=True).update(
        active=False, superseded_at=timezone.now())
    audit_services.decision_review_record(decision_id=int(decision_id), reviewer=reviewer, outcome="confirmed",
                                          override={}, rationale=rationale)
    return ended
