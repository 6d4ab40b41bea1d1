"""Model registry access: store artifacts, load them only when their SHA-256 matches, cache in memory.

A loaded model is cached per process keyed by ``(model version id, sha256)``: it is verified and parsed
once, then every request uses the in-memory copy. An artifact whose bytes no longer match the recorded
hash is refused (``ModelUnavailable``, HTTP 503 ``model_unavailable``) and nothing is scored with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.errors import ServiceUnavailable
from scoring.ml import registry_io
from scoring.ml.models import ClassifierModel, TrainedBundle
from scoring.models import ModelArtifact, ModelVersion, RescoreRun
from scoring.population import Reference

logger = logging.getLogger("scoring.registry")

_lock = threading.Lock()
_models: dict[tuple[int, str], Any] = {}
_load_lock = threading.Lock()  # serializes artifact deserialization (see load)
_references: dict[tuple[int, str], tuple[float, Reference]] = {}
_horizons: dict[int, int] = {}  # model version id -> CLV horizon in days (a version never changes)
REFERENCE_TTL_S = 30.0


class ModelUnavailable(ServiceUnavailable):
    code = "model_unavailable"
    default_detail = "No verified scoring model is available. Try again later."


@dataclass(frozen=True)
class ModelRef:
    id: int
    version: str
    sha256: str
    kind: str


@dataclass(frozen=True)
class LoadedModels:
    """The active full bundle, plus the active churn model trained from a CRM table (if any).

    With attribute-only data no full bundle exists: ``full`` is then the churn-table version itself and
    ``bundle`` is None (``scoring.engine`` scores from the CRM table). ``unavailable`` maps each score kind
    that is not served (its quality is not "ok", ``scoring.quality``) to the reason."""

    full: ModelRef
    bundle: TrainedBundle | None
    churn_ref: ModelRef | None = None
    churn: ClassifierModel | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)

    def versions(self) -> dict[str, str]:
        v = self.full.version
        return {
            "clv": v,
            "churn": self.churn_ref.version if self.churn_ref is not None else v,
            "upsell": v,
            "advocacy": v,
            "segments": v,
        }


def cache_clear() -> None:
    from scoring import quality

    quality.cache_clear()
    with _lock:
        _models.clear()
        _references.clear()
        _horizons.clear()


# --------------------------------------------------------------------------- (de)serialization


def dump(obj: TrainedBundle | ClassifierModel) -> tuple[bytes, str]:
    if isinstance(obj, ClassifierModel):
        return registry_io.dump_classifier(obj)
    return registry_io.dump_bundle(obj)


# --------------------------------------------------------------------------- loading


def _ref(row: ModelVersion | Mapping[str, Any]) -> ModelRef:
    if not isinstance(row, ModelVersion):
        return ModelRef(row["id"], row["version"], row["sha256"], row["kind"])
    return ModelRef(row.pk, row.version, row.sha256, row.kind)


def load(ref: ModelRef) -> Any:
    """The verified, parsed model of ``ref`` (cached); ``ModelUnavailable`` if missing or tampered."""
    key = (ref.id, ref.sha256)
    cached = _models.get(key)
    if cached is not None:
        return cached
    data = ModelArtifact.objects.filter(model_version_id=ref.id).values_list("data", flat=True).first()
    if data is None:
        logger.error("model artifact missing", extra={"event": "scoring.artifact_missing", "model_version": ref.version})
        raise ModelUnavailable()
    try:
        # One deserialization at a time per process: skops parses with ``ast``, which is not safe to run in
        # several threads at once on CPython 3.11 (SystemError: AST constructor recursion depth mismatch, seen
        # when 8 threads served the first scores of a new model together).
        with _load_lock:
            cached = _models.get(key)
            if cached is not None:
                return cached
            if ref.kind == ModelVersion.Kind.CHURN_TABLE:
                obj: Any = registry_io.load_classifier(bytes(data), ref.sha256)
            else:
                obj = registry_io.load_bundle(bytes(data), ref.sha256)
    except (registry_io.ArtifactTampered, registry_io.UntrustedArtifact):
        logger.error("model artifact refused", extra={"event": "scoring.artifact_refused", "model_version": ref.version})
        raise ModelUnavailable() from None
    with _lock:
        _models[key] = obj
        if isinstance(obj, TrainedBundle):
            _horizons[ref.id] = int(obj.horizon_days)
    return obj


def horizon_days(model_version_id: int) -> int:
    """The CLV horizon (days) the full model version ``model_version_id`` was trained for: what its CLV
    amounts mean. Known once the version's bundle is loaded; otherwise read from its model card, once per
    process."""
    cached = _horizons.get(model_version_id)
    if cached is not None:
        return cached
    value = (
        ModelVersion.objects.filter(pk=model_version_id)
        .values_list("card__data_window__horizon_days", flat=True)
        .first()
    )
    if value is None:
        raise ModelUnavailable()
    with _lock:
        _horizons[model_version_id] = int(value)
    return int(value)


def verify(version: ModelVersion) -> None:
    """Load (and so verify) a stored version without caching it; raises ``ModelUnavailable``."""
    ref = _ref(version)
    with _lock:
        _models.pop((ref.id, ref.sha256), None)
    load(ref)


def loaded_models(full: ModelRef, churn: ModelRef | None) -> LoadedModels:
    from scoring import quality

    if full.kind == ModelVersion.Kind.CHURN_TABLE:  # attribute-only data: the table model serves alone
        churn = full
        bundle = None
    else:
        bundle = load(full)
    unavailable = quality.unavailable_kinds(full.id, churn.id if churn is not None else None)
    return LoadedModels(full, bundle, churn, load(churn) if churn is not None else None, unavailable)


def active_models() -> LoadedModels:
    """The active models (one query for the registry rows; artifacts come from the in-memory cache)."""
    rows = list(
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).values("id", "version", "sha256", "kind")
    )
    full = next((_ref(r) for r in rows if r["kind"] == ModelVersion.Kind.FULL), None)
    churn = next((_ref(r) for r in rows if r["kind"] == ModelVersion.Kind.CHURN_TABLE), None)
    if full is None:
        full = churn  # attribute-only data: the churn-table model serves alone (scoring.engine)
    if full is None:
        raise ModelUnavailable("No scoring model has been trained and activated yet.")
    return loaded_models(full, churn)


def ref_of(version: ModelVersion) -> ModelRef:
    return _ref(version)


# --------------------------------------------------------------------------- population reference


def reference_for(models: LoadedModels, purpose: str) -> Reference:
    """Tier cut-offs/quantiles: the latest completed full run of this model and purpose, else the
    training population stored with the model version (cached for a few seconds)."""
    key = (models.full.id, purpose)
    now = time.monotonic()
    hit = _references.get(key)
    if hit is not None and now - hit[0] < REFERENCE_TTL_S:
        return hit[1]
    thresholds = (
        RescoreRun.objects.filter(
            model_version_id=models.full.id, purpose=purpose, full=True, status=RescoreRun.Status.COMPLETED
        )
        .order_by("-finished_at")
        .values_list("thresholds", flat=True)
        .first()
    )
    if not thresholds:
        thresholds = ModelVersion.objects.filter(pk=models.full.id).values_list("population", flat=True).first()
    if not thresholds:
        raise ModelUnavailable("The active model has no population reference.")
    reference = Reference.from_json(thresholds)
    with _lock:
        _references[key] = (now, reference)
    return reference


def reference_forget(model_version_id: int, purpose: str) -> None:
    with _lock:
        _references.pop((model_version_id, purpose), None)
