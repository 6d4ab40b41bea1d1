"""Fixtures of the webhook tests: a live receiver, subscriptions, customers with consent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.scoring.conftest import active_model, synthetic_artifact  # noqa: F401 - shared model fixtures
from tests.webhooks.receiver import Receiver

ACTOR = "job:test-webhooks"
SCORING = "automated_scoring"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def subscribe(db: None) -> Callable[..., Any]:
    """``subscribe(url, events, purpose=SCORING)`` -> (subscription, secret) through the service."""
    from webhooks.services import subscription_create

    def make(url: str, events: list[str], purpose: str = SCORING) -> tuple[Any, str]:
        created = subscription_create(url=url, events=events, purpose=purpose, actor="api:test-admin")
        return created.subscription, created.secret

    return make


@pytest.fixture
def consented(db: None) -> Callable[..., uuid.UUID]:
    """``consented(purposes=(SCORING,), **make_customer kwargs)`` -> a customer with those consents."""
    from consent.services import consent_grant
    from tests.factories import make_customer

    def make(purposes: tuple[str, ...] = (SCORING,), **kwargs: Any) -> uuid.UUID:
        cid = make_customer(**kwargs)
        for purpose in purposes:
            consent_grant(customer_id=cid, purpose=purpose, source="web", channel="web", actor=ACTOR)
        return cid

    return make


def relay_and_send(**kwargs: Any) -> Any:
    from webhooks import services

    services.outbox_relay_all()
    return services.deliveries_send_due(**kwargs)
