"""Helpers of the engagement and KPI tests: customers with consent and a stored score (no model training)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

ACTOR = "job:test_engagement"
SCORING = "automated_scoring"
SERVICE = "service_prioritization"
MARKETING = "marketing"


def grant(customer_id: uuid.UUID, *purposes: str) -> None:
    from consent.services import consent_grant

    for purpose in purposes:
        consent_grant(customer_id=customer_id, purpose=purpose, source="web", channel="web", actor=ACTOR)


def withdraw(customer_id: uuid.UUID, purpose: str) -> None:
    from consent.services import consent_withdraw

    consent_withdraw(customer_id=customer_id, purpose=purpose, source="web", channel="web", actor=ACTOR)


def model_version() -> Any:
    from scoring.models import ModelVersion

    mv, _ = ModelVersion.objects.get_or_create(
        version="engagement-test", defaults={"status": "active", "sha256": "0" * 64,
                                             "card": {"data_window": {"horizon_days": 365}}})
    return mv


def store_score(customer_id: uuid.UUID, *, tier: str = "VIP", risk: str = "high", churn: float = 0.8,
                clv: float = 1000.0, upsell: float = 0.1, advocacy: float = 0.1, decision_id: int | None = 7,
                purpose: str = SCORING) -> Any:
    from scoring.engine import service_level_for
    from scoring.models import CustomerScore

    churn_expl = {"unit": "points", "baseline": 0.2, "output": churn,
                  "contributions": [["days_since_last_order", 120, 0.3], ["n_tickets_90d", 4, 0.1]]}
    return CustomerScore.objects.update_or_create(customer_id=customer_id, purpose=purpose, defaults={
        "model_version": model_version(), "clv": clv, "clv_score": 90, "churn_probability": churn, "risk_level": risk,
        "upsell": upsell, "advocacy": advocacy, "tier": tier, "service_level": service_level_for(tier),
        "explanation": {"churn": churn_expl}, "features": {}, "features_hash": "f" * 64, "as_of": timezone.now(),
        "decision_id": decision_id})[0]


def customer(*purposes: str, **score: Any) -> uuid.UUID:
    """A customer (through profiles' services) with consent for ``purposes`` and, if ``score`` is given or
    by default, a stored score."""
    from tests.factories import make_customer

    cid = make_customer(orders=0, seed=None)
    grant(cid, *purposes)
    if score is not None:
        store_score(cid, **score)
    return cid


def score_event(customer_id: uuid.UUID, *, type: str = "score.risk_raised", tier: str = "VIP",
                risk: str = "high", churn: float = 0.8, clv: float = 1000.0, upsell: float = 0.1,
                advocacy: float = 0.1, decision_id: int = 42) -> Any:
    """A score event as i17-webhooks emits it (contract 3), in its own transaction."""
    from django.db import transaction

    from events.services import event_record
    from scoring.engine import service_level_for

    with transaction.atomic():
        return event_record(type=type, customer_id=customer_id, purpose=SCORING, payload={
            "decision_id": decision_id, "tier": tier, "previous_tier": "Standard", "risk_level": risk,
            "previous_risk_level": "low", "clv": clv, "churn_probability": churn, "upsell": upsell,
            "advocacy": advocacy, "service_level": service_level_for(tier),
            "reasons": ["Days since last order: 120 (+30 points)", "Tickets in 90 days: 4 (+10 points)"]})


def open_actions(customer_id: uuid.UUID | None = None) -> list[tuple[str, str]]:
    from engagement.models import Action

    qs = Action.objects.filter(status__in=("open", "claimed"))
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return sorted(qs.values_list("type", "purpose"))


def events_of(types: Iterable[str]) -> list[Any]:
    from events.models import OutboxEvent

    return list(OutboxEvent.objects.filter(type__in=list(types)).order_by("id"))
