"""Fixtures of the scoring tests.

- ``synthetic_artifact`` (session): a small model bundle trained once on synthetic histories
  (``scoring.ml.synthetic``), serialized with skops; ``active_model`` registers it as the active version.
- ``seed_population(n, ...)``: customers created through ``profiles.services.customer_ingest`` (encrypted
  fields, data keys), with synthetic fact histories bulk-inserted for speed (the profiles fact services
  run one savepoint per fact; the behaviour tests create facts through them via ``tests.factories``),
  and consent granted through ``consent.services``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from tests.scoring.helpers import ACTOR, SCORING, _bulk_facts, grant, register_model, small_config


@pytest.fixture(scope="session")
def synthetic_artifact() -> SimpleNamespace:
    from scoring.ml.features import aggregate_from_events, build_matrix
    from scoring.ml.models import TrainingData, train_all
    from scoring.ml.registry_io import dump_bundle
    from scoring.ml.synthetic import generate_events
    from scoring.population import reference_from_population
    from scoring.services.model_registry import clean_json

    events = generate_events(600, seed=11, days=800)
    bundle = train_all(TrainingData(events=events), horizon_days=180, seed=0, config=small_config())
    data, sha = dump_bundle(bundle)
    X = build_matrix(aggregate_from_events(events, events.last_day()))
    population = reference_from_population(
        bundle.clv.predict(X), [f"synthetic-{i:05d}" for i in range(len(X))], source="model:training"
    ).to_json()
    from scoring.training import _distribution

    card = {**bundle.model_card, "score_distribution": _distribution(bundle, X)}
    return SimpleNamespace(bundle=bundle, data=data, sha=sha, population=population,
                           metrics=clean_json(bundle.metrics), card=clean_json(card))


@pytest.fixture
def active_model(db: None, synthetic_artifact: SimpleNamespace) -> Any:
    from scoring import registry

    registry.cache_clear()
    yield register_model(synthetic_artifact)
    registry.cache_clear()


@pytest.fixture
def seed_population(db: None) -> Callable[..., list[uuid.UUID]]:
    def make(n: int, *, seed: int = 3, days: int = 800, purposes: Iterable[str] = (SCORING,),
             attributes: Callable[[int], dict] | None = None, feature_attributes: list[str] | None = None,
             ) -> list[uuid.UUID]:
        from profiles.services import customer_ingest
        from scoring.ml.synthetic import generate_events

        events = generate_events(n, seed=seed, days=days)
        tag = uuid.uuid4().hex[:8]
        ids = [
            customer_ingest(source="crm", external_id=f"POP-{tag}-{i}", personal={},
                            attributes=attributes(i) if attributes else None,
                            feature_attributes=feature_attributes, actor=ACTOR).customer_id
            for i in range(n)
        ]
        _bulk_facts(ids, events, timezone.now())
        for cid in ids:
            for purpose in purposes:
                grant(cid, purpose)
        return ids

    return make




@pytest.fixture(autouse=True)
def _registry_cache_clear() -> Any:
    """Model version ids repeat across tests (each test's database starts empty): forget what the registry
    cached per version id (artifacts, horizons, quality)."""
    from scoring import registry

    registry.cache_clear()
    yield
    registry.cache_clear()
