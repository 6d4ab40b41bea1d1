"""Fixtures of the consent tests."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

ACTOR = "job:test-consent"


@pytest.fixture(autouse=True)
def consent_purposes(db: None) -> None:
    """The purposes and v1 notices seeded by the data migration (re-seeded after a transactional test's flush)."""
    from django.apps import apps

    seed = importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed
    seed(apps, None)


@pytest.fixture
def new_customer() -> Callable[..., uuid.UUID]:
    """``new_customer(**kwargs)`` -> the pseudonym of a fresh customer created through profiles' services."""
    from tests.factories import make_customer

    def factory(**kwargs: Any) -> uuid.UUID:
        return make_customer(**kwargs)

    return factory


@pytest.fixture
def customer(new_customer: Callable[..., uuid.UUID]) -> uuid.UUID:
    return new_customer()


@pytest.fixture
def grant() -> Callable[..., Any]:
    from consent.services import consent_grant

    def do(customer_id: uuid.UUID, purpose: str = "automated_scoring", **kwargs: Any) -> Any:
        kwargs.setdefault("source", "web")
        kwargs.setdefault("channel", "web")
        kwargs.setdefault("actor", ACTOR)
        return consent_grant(customer_id=customer_id, purpose=purpose, **kwargs)

    return do


@pytest.fixture
def withdraw() -> Callable[..., Any]:
    from consent.services import consent_withdraw

    def do(customer_id: uuid.UUID, purpose: str = "automated_scoring", **kwargs: Any) -> Any:
        kwargs.setdefault("source", "web")
        kwargs.setdefault("channel", "web")
        kwargs.setdefault("actor", ACTOR)
        return consent_withdraw(customer_id=customer_id, purpose=purpose, **kwargs)

    return do
