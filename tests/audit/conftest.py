"""Audit test fixtures: a private checkpoint directory per test, and record builders."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def checkpoint_dir(settings: Any, tmp_path: Path) -> Path:
    """Checkpoints live outside the database, so each test gets its own store (a rolled-back test
    database must not meet checkpoints signed in another test)."""
    directory = tmp_path / "checkpoints"
    settings.AUDIT_CHECKPOINT_DIR = str(directory)
    settings.AUDIT_CHECKPOINT_STORE = "audit.checkpoints.DirectoryStore"
    return directory


def decision_kwargs(**overrides: Any) -> dict[str, Any]:
    customer = overrides.pop("customer", None) or uuid.uuid4()
    values: dict[str, Any] = {
        "customer": customer,
        "purpose": "automated_scoring",
        "decision_type": "served_score",
        "requester": "api:support-desk",
        "consent_event_id": 41,
        "notice_version": "v3",
        "model_versions": {"clv": "2025.01.1", "churn": "2025.01.1"},
        "features_hash": hashlib.sha256(str(customer).encode()).hexdigest(),
        "outputs": {"clv": 812.5, "clv_score": 91, "churn_probability": 0.12, "risk_level": "low", "tier": "VIP",
                    "service_level": {"response_hours": 2, "escalation": "senior advisor"}},
        "sealed_details": b"\x01" + bytes(range(60)),
        "decision_key": None,
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_decision(db: None) -> Callable[..., Any]:
    from audit.services import decision_record

    def factory(**overrides: Any) -> Any:
        return decision_record(**decision_kwargs(**overrides))

    return factory


@pytest.fixture
def mixed_chain(db: None, make_decision: Callable[..., Any]) -> Callable[[int], list[Any]]:
    """``mixed_chain(n)`` writes n records of all four kinds and seals them."""
    from audit import services

    def build(n: int) -> list[Any]:
        records: list[Any] = []
        for i in range(n):
            kind = i % 4
            if kind == 0 or not records:
                records.append(make_decision(decision_type=["served_score", "batch_rescore", "routing"][i % 3]))
            elif kind == 1:
                decision = next(r for r in reversed(records) if r.RECORD_TYPE == "decision")
                records.append(services.decision_review_record(
                    decision_id=decision.pk, reviewer="user:dpo", outcome="overridden",
                    override={"tier": "Premium"}, rationale=f"review {i}: payment history was misread",
                ))
            elif kind == 2:
                records.append(services.access_record(actor="user:dpo", purpose="accountability",
                                                      subject=uuid.uuid4(), what="decision.inputs",
                                                      details={"decision_id": i}))
            else:
                records.append(services.governance_record(kind="consent.granted", actor="api:crm",
                                                          subject=uuid.uuid4(), details={"purpose": "marketing"}))
        services.chain_seal()
        return records

    return build


EXPLANATION = {
    "clv": {"unit": "currency", "baseline": 400.0, "output": 812.5, "remainder": 12.5,
            "contributions": [["orders_90d", 7, 310.0], ["support_escalations", 3, -60.0], ["tenure_days", 800, 150.0]]},
    "churn": {"unit": "points", "baseline": 20.0, "output": 12.0, "remainder": 0.0,
              "contributions": [["days_since_last_order", 12, -8.0]]},
}
FEATURES = {"orders_90d": 7, "support_escalations": 3, "tenure_days": 800, "days_since_last_order": 12}


@pytest.fixture
def customer(db: None) -> uuid.UUID:
    """A real customer (profiles) with a data key, found by e-mail through the blind index."""
    from profiles.services import customer_ingest

    return customer_ingest(source="crm", external_id="C-1001", actor="cli",
                           personal={"email": "ada.lovelace@example.com", "name": "Ada Lovelace"}).customer_id


@pytest.fixture
def sealed_decision(customer: uuid.UUID, make_decision: Callable[..., Any]) -> Any:
    """A decision whose inputs and explanation are sealed under the customer's data key."""
    from audit.services import DECISION_DETAILS_LABEL
    from profiles.services import customer_seal

    blob = customer_seal(customer_id=customer, label=DECISION_DETAILS_LABEL,
                         payload={"features": FEATURES, "explanation": EXPLANATION})
    return make_decision(customer=customer, sealed_details=blob, consent_event_id=None, notice_version=None)
