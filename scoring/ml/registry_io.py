"""Tamper-evident (de)serialization of a :class:`~scoring.ml.models.TrainedBundle` with skops.

The bundle is flattened to plain dicts/lists/arrays plus scikit-learn estimators (our dataclasses are
rebuilt on load), dumped with ``skops.io.dumps`` and identified by the SHA-256 of the bytes.
``load_bundle`` checks the hash *before* parsing anything, then refuses any type outside an explicit
allow-list (scikit-learn and numpy only) instead of trusting everything skops reports.
A table-trained churn :class:`~scoring.ml.models.ClassifierModel` is stored the same way
(``dump_classifier`` / ``load_classifier``; ``classifier_to_dict`` / ``classifier_from_dict`` flatten it).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import skops.io as sio

from .btyd import BetaGeo, BTYDValue, GammaGamma
from .models import ClassifierModel, SegmentModel, TableEncoder, TrainedBundle, ValueModel

FORMAT = "privacy-scoring-bundle"
CLASSIFIER_FORMAT = "privacy-scoring-classifier"
VERSION = 1
ALLOWED_MODULE_PREFIXES = ("sklearn.", "numpy.")


class ArtifactTampered(Exception):
    """The artifact bytes do not match the expected SHA-256."""


class UntrustedArtifact(Exception):
    """The artifact contains types outside the allow-list."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _btyd_to_dict(m: BTYDValue | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "bgnbd": m.bgnbd.params.tolist(),
        "gg": m.gg.params.tolist(),
        "horizon_days": int(m.horizon_days),
        "columns": list(m.columns),
        "baseline_inputs": np.asarray(m.baseline_inputs, dtype=np.float64),
        "fallback_spend": float(m.fallback_spend),
    }


def _btyd_from_dict(d: dict[str, Any] | None) -> BTYDValue | None:
    if d is None:
        return None
    c = d["columns"]
    return BTYDValue(
        BetaGeo(*d["bgnbd"]),
        GammaGamma(*d["gg"]),
        int(d["horizon_days"]),
        (c[0], c[1], c[2], c[3]),
        np.asarray(d["baseline_inputs"], dtype=np.float64),
        float(d["fallback_spend"]),
    )


def classifier_to_dict(m: ClassifierModel) -> dict[str, Any]:
    """A :class:`ClassifierModel` as plain dicts/lists/arrays plus its scikit-learn estimator."""
    enc = None
    if m.encoder is not None:
        enc = {
            "feature_names": list(m.encoder.feature_names),
            "categories": [None if c is None else list(c) for c in m.encoder.categories],
            "fill": np.asarray(m.encoder.fill, dtype=np.float64),
        }
    return {
        "name": m.name,
        "feature_names": list(m.feature_names),
        "calibrated": m.calibrated,
        "constant": float(m.constant),
        "encoder": enc,
        "metrics": {k: float(v) for k, v in m.metrics.items()},
    }


def classifier_from_dict(d: dict[str, Any]) -> ClassifierModel:
    """Inverse of :func:`classifier_to_dict`."""
    enc = d["encoder"]
    encoder = (
        None
        if enc is None
        else TableEncoder(
            tuple(enc["feature_names"]), list(enc["categories"]), np.asarray(enc["fill"], dtype=np.float64)
        )
    )
    return ClassifierModel(
        d["name"],
        tuple(d["feature_names"]),
        d["calibrated"],
        float(d["constant"]),
        encoder,
        dict(d["metrics"]),
    )


def bundle_to_dict(bundle: TrainedBundle) -> dict[str, Any]:
    """Plain-container representation (only builtins, numpy arrays and sklearn estimators)."""
    clv = bundle.clv
    return {
        "format": FORMAT,
        "version": VERSION,
        "feature_names": list(bundle.feature_names),
        "horizon_days": int(bundle.horizon_days),
        "clv": {
            "kind": clv.kind,
            "horizon_days": int(clv.horizon_days),
            "feature_names": list(clv.feature_names),
            "estimator": clv.estimator,
            "btyd": _btyd_to_dict(clv.btyd),
            "btyd_weight": float(clv.btyd_weight),
            "prospect": clv.prospect,
        },
        "churn": classifier_to_dict(bundle.churn),
        "upsell": classifier_to_dict(bundle.upsell),
        "advocacy": classifier_to_dict(bundle.advocacy),
        "segments": {
            "scaler": bundle.segments.scaler,
            "kmeans": bundle.segments.kmeans,
            "names": list(bundle.segments.names),
            "columns": list(bundle.segments.columns),
        },
        "metrics": {k: float(v) for k, v in bundle.metrics.items()},
        "model_card": bundle.model_card,
    }


def bundle_from_dict(d: dict[str, Any]) -> TrainedBundle:
    if d.get("format") != FORMAT or d.get("version") != VERSION:
        raise UntrustedArtifact(f"unknown artifact format {d.get('format')!r} v{d.get('version')!r}")
    c = d["clv"]
    clv = ValueModel(
        c["kind"],
        int(c["horizon_days"]),
        tuple(c["feature_names"]),
        c["estimator"],
        _btyd_from_dict(c["btyd"]),
        float(c["btyd_weight"]),
        c.get("prospect"),  # absent in bundles trained before the no-purchase CLV model
    )
    s = d["segments"]
    seg = SegmentModel(s["scaler"], s["kmeans"], tuple(s["names"]), tuple(s["columns"]))
    return TrainedBundle(
        clv,
        classifier_from_dict(d["churn"]),
        classifier_from_dict(d["upsell"]),
        classifier_from_dict(d["advocacy"]),
        seg,
        dict(d["metrics"]),
        d["model_card"],
        tuple(d["feature_names"]),
        int(d["horizon_days"]),
    )


def dump_bundle(bundle: TrainedBundle) -> tuple[bytes, str]:
    """Serialize with skops; returns ``(bytes, sha256 hex)``."""
    data = sio.dumps(bundle_to_dict(bundle))
    return data, sha256(data)


def _allowed(type_name: str) -> bool:
    return type_name.startswith(ALLOWED_MODULE_PREFIXES)


def load_bundle(data: bytes, expected_sha256: str) -> TrainedBundle:
    """Verify the SHA-256 first (``ArtifactTampered``), then the type allow-list, then deserialize."""
    if not hmac.compare_digest(sha256(data), str(expected_sha256).lower()):
        raise ArtifactTampered("artifact SHA-256 does not match the registry; refusing to load")
    untrusted = sio.get_untrusted_types(data=data)
    refused = [t for t in untrusted if not _allowed(t)]
    if refused:
        raise UntrustedArtifact(f"artifact contains non-allow-listed types: {refused}")
    return bundle_from_dict(sio.loads(data, trusted=untrusted))


def dump_classifier(model: ClassifierModel) -> tuple[bytes, str]:
    """skops bytes and SHA-256 of a table-trained churn model (same format rules as bundles)."""
    data = sio.dumps({"format": CLASSIFIER_FORMAT, "version": VERSION, "model": classifier_to_dict(model)})
    return data, sha256(data)


def load_classifier(data: bytes, expected_sha256: str) -> ClassifierModel:
    """Verify the SHA-256 first (``ArtifactTampered``), then the type allow-list and the format, then
    deserialize a classifier written by :func:`dump_classifier`."""
    if not hmac.compare_digest(sha256(data), str(expected_sha256).lower()):
        raise ArtifactTampered("artifact SHA-256 does not match the registry; refusing to load")
    untrusted = sio.get_untrusted_types(data=data)
    if any(not _allowed(t) for t in untrusted):
        raise UntrustedArtifact("artifact contains non-allow-listed types")
    payload = sio.loads(data, trusted=untrusted)
    if payload.get("format") != CLASSIFIER_FORMAT:
        raise UntrustedArtifact("unknown artifact format")
    return classifier_from_dict(payload["model"])
