"""Helpers of the scoring tests (customers, consent, models)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import numpy as np
from django.utils import timezone

ACTOR = "job:test_scoring"
SCORING = "automated_scoring"
SMALL_CONFIG_KW = {
    "n_folds": 2, "min_history_days": 60, "final_cutoffs": 1, "rf_trees": 12, "rf_max_depth": 5, "gb_trees": 12, "clf_trees": 12,
    "calibration_cv": 2, "n_segments": 4,
}


def small_config() -> Any:
    from scoring.ml.models import ModelConfig

    return ModelConfig(**SMALL_CONFIG_KW)


def register_model(artifact: SimpleNamespace, *, version: str = "test-model-1", active: bool = True) -> Any:
    from scoring.models import ModelArtifact, ModelVersion

    v = ModelVersion.objects.create(
        version=version, status=ModelVersion.Status.ACTIVE if active else ModelVersion.Status.CANDIDATE,
        activated_at=timezone.now() if active else None, sha256=artifact.sha, card=artifact.card,
        metrics=artifact.metrics, population=artifact.population, seed=0,
    )
    ModelArtifact.objects.create(model_version=v, data=artifact.data, size=len(artifact.data))
    return v


def grant(customer_id: uuid.UUID, purpose: str = SCORING) -> Any:
    from consent.services import consent_grant

    return consent_grant(customer_id=customer_id, purpose=purpose, source="web", channel="web", actor=ACTOR)


def withdraw(customer_id: uuid.UUID, purpose: str = SCORING) -> Any:
    from consent.services import consent_withdraw

    return consent_withdraw(customer_id=customer_id, purpose=purpose, source="web", channel="web", actor=ACTOR)


def customer_with_history(*, purposes: Iterable[str] = (SCORING,), orders: int = 4, seed: int | None = None,
                          **kwargs: Any) -> uuid.UUID:
    """A customer created through the real services (tests.factories), with orders and logins."""
    from tests.factories import make_customer, make_interaction, make_nps, make_ticket

    cid = make_customer(orders=orders, interactions=3, seed=seed, **kwargs)
    make_ticket(cid, days_ago=20, text="", escalated=True, satisfaction=2)
    make_interaction(cid, kind="email_open", days_ago=5, count=4)
    make_nps(cid, score=9, days_ago=30)
    for purpose in purposes:
        grant(cid, purpose)
    return cid


def _bulk_facts(ids: list[uuid.UUID], events: Any, now: Any) -> None:
    from profiles.models import Interaction, NpsAnswer, Order, Referral, Review, Ticket
    from scoring.ml.features import INTERACTION_KINDS

    last = events.last_day()

    def at(day: Any) -> Any:
        return now - timedelta(days=int(last - day), hours=1)

    categories = (events.order_category if events.order_category is not None
                  else np.full(len(events.order_customer), -1))
    orders = [
        Order(customer_id=ids[c], source="erp", external_digest=f"o-{uuid.uuid4().hex}", ordered_at=at(d),
              amount=Decimal(f"{a:.2f}"), margin=Decimal(f"{m:.2f}"), returned=bool(r), days_late=int(late),
              category=f"cat-{k}" if k >= 0 else "")
        for c, d, a, m, r, late, k in zip(events.order_customer, events.order_day, events.order_amount,
                                          events.order_margin, events.order_returned, events.order_days_late,
                                          categories, strict=True)
    ]
    Order.objects.bulk_create(orders, batch_size=2000)
    sentiment = np.asarray(events.ticket_sentiment, dtype=np.float64)
    if len(sentiment) != len(events.ticket_day):
        sentiment = np.full(len(events.ticket_day), np.nan)
    tickets = [
        Ticket(customer_id=ids[c], source="support", external_digest=f"t-{uuid.uuid4().hex}", opened_at=at(d),
               escalated=bool(e), satisfaction=None if np.isnan(s) else int(s),
               sentiment_score=None if np.isnan(mood) else float(mood),
               sentiment_label="unknown" if np.isnan(mood) else "neutral")
        for c, d, e, s, mood in zip(events.ticket_customer, events.ticket_day, events.ticket_escalated,
                                    events.ticket_satisfaction, sentiment, strict=True)
    ]
    Ticket.objects.bulk_create(tickets, batch_size=2000)
    interactions, nps, referrals = [], [], []
    for c, d, k, v in zip(events.interaction_customer, events.interaction_day, events.interaction_kind,
                          events.interaction_value, strict=True):
        kind = INTERACTION_KINDS[int(k)]
        if kind == "nps":
            nps.append(NpsAnswer(customer_id=ids[c], source="web", external_digest=f"n-{uuid.uuid4().hex}",
                                 at=at(d), score=int(v)))
        elif kind == "referral":
            referrals.append(Referral(customer_id=ids[c], source="crm", external_digest=f"r-{uuid.uuid4().hex}",
                                      at=at(d)))
        else:
            interactions.append(Interaction(customer_id=ids[c], source="web", external_digest=f"i-{uuid.uuid4().hex}",
                                            kind=kind, at=at(d), count=1))
    Interaction.objects.bulk_create(interactions, batch_size=2000)
    NpsAnswer.objects.bulk_create(nps, batch_size=2000)
    Referral.objects.bulk_create(referrals, batch_size=2000)
    Review.objects.bulk_create([
        Review(customer_id=ids[c], source="web", external_digest=f"v-{uuid.uuid4().hex}", at=at(d), rating=int(r))
        for c, d, r in zip(events.review_customer, events.review_day, events.review_rating, strict=True)
    ], batch_size=2000)


def decisions_for(customer_id: uuid.UUID) -> list[Any]:
    from audit.models import DecisionRecord

    return list(DecisionRecord.objects.filter(customer=customer_id).order_by("id"))
