"""Fixtures of the subject-rights tests."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.scoring.conftest import active_model, synthetic_artifact  # noqa: F401 - shared model fixtures

ACTOR = "job:test-dsr"


@pytest.fixture(scope="session", autouse=True)
def _import_heavy_modules_before_freezing_time() -> None:
    """Import the scientific stack before any test freezes time: importing pandas' C extensions under
    freezegun crashes the interpreter. (Scoring pulls them in lazily on first use.)"""
    importlib.import_module("pandas")
    importlib.import_module("sklearn")


@pytest.fixture(autouse=True)
def _ledger_dir(settings: Any, tmp_path: Any) -> None:
    """Each test gets its own erasure-ledger file store."""
    settings.ERASURE_LEDGER_DIR = str(tmp_path / "erasure-ledger")


@pytest.fixture
def purposes(db: None) -> None:
    """The purposes and v1 notices seeded by consent's data migration (re-seeded after a flush)."""
    from django.apps import apps

    importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed(apps, None)


@pytest.fixture
def customer_factory(purposes: None) -> Callable[..., uuid.UUID]:
    from tests.factories import make_customer

    return make_customer


@pytest.fixture
def grant(purposes: None) -> Callable[..., Any]:
    from consent.services import consent_grant

    def do(customer_id: uuid.UUID, purpose: str = "automated_scoring") -> Any:
        return consent_grant(customer_id=customer_id, purpose=purpose, source="web", channel="web", actor=ACTOR)

    return do


@pytest.fixture
def dsr_status_events() -> Callable[[Any], list[tuple[str | None, str]]]:
    """``dsr_status_events(request_id)`` -> [(from, to), ...] from the audit governance records."""
    from audit.models import GovernanceEvent

    def events(request_id: Any) -> list[tuple[str | None, str]]:
        rows = GovernanceEvent.objects.filter(kind="dsr.status_changed").order_by("id")
        return [(r.details.get("from"), r.details["to"]) for r in rows if r.details.get("request") == str(request_id)]

    return events
