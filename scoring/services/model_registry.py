"""The model registry: storing trained versions, activation behind the quality floors, rollback, training."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config.errors import Conflict, NotFound
from scoring import quality, registry
from scoring.models import CustomerScore, ModelArtifact, ModelVersion

logger = logging.getLogger("scoring")


def _next_version(kind: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    base = f"{'m' if kind == ModelVersion.Kind.FULL else 'churn'}-{stamp}"
    version = base
    n = 1
    while ModelVersion.objects.filter(version=version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def clean_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
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
        version=_next_version(kind), kind=kind, sha256=digest, card=clean_json(card), metrics=clean_json(metrics),
        population=clean_json(population), seed=seed, actor=actor,
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
