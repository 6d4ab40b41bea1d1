"""The trained bundle (every model of one training run) and vectorized prediction with explanations."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ..explain import Contributions
from ..features import (
    AttributeEncoding,
    feature_names,
)

if TYPE_CHECKING:
    from .segments import SegmentModel
    from .trees import ClassifierModel
    from .value import ValueModel


@dataclass
class TrainedBundle:
    """All served models plus holdout metrics and the model card."""

    clv: ValueModel
    churn: ClassifierModel
    upsell: ClassifierModel
    advocacy: ClassifierModel
    segments: SegmentModel
    metrics: dict[str, float]
    model_card: dict[str, Any]
    feature_names: tuple[str, ...] = field(default_factory=feature_names)
    horizon_days: int = 365

    @cached_property
    def attributes(self) -> tuple[AttributeEncoding, ...]:
        """The encoding of the declared CRM attribute columns, as recorded in the model card (it travels in
        the artifact); none for a bundle trained before attributes were features."""
        return tuple(AttributeEncoding.from_json(a) for a in self.model_card.get("attribute_encoding") or ())


@dataclass
class Predictions:
    """Vectorized scores for a chunk of customers (row order of the input matrix)."""

    clv: np.ndarray
    churn_probability: np.ndarray
    upsell: np.ndarray
    advocacy: np.ndarray
    segment: np.ndarray  # segment names (object array)
    segment_code: np.ndarray
    contributions: dict[str, Contributions]  # "clv" (currency), "churn"/"upsell"/"advocacy" (points)


def predict_all(bundle: TrainedBundle, X: np.ndarray, *, explain: bool = True) -> Predictions:
    """Score a chunk of customers (rows of an inventory-ordered matrix), with exact contributions."""
    X = np.asarray(X, dtype=np.float64)
    contribs: dict[str, Contributions] = {}
    if explain:
        contribs["clv"] = bundle.clv.contributions(X)
        for key in ("churn", "upsell", "advocacy"):
            contribs[key] = getattr(bundle, key).contributions(X)
        clv = contribs["clv"].output
        churn, upsell, advocacy = (contribs[k].output / 100.0 for k in ("churn", "upsell", "advocacy"))
    else:
        clv = bundle.clv.predict(X)
        churn, upsell, advocacy = (
            getattr(bundle, k).predict_proba(X) for k in ("churn", "upsell", "advocacy")
        )
    codes = bundle.segments.predict(X)
    return Predictions(
        clv, churn, upsell, advocacy, np.asarray(bundle.segments.names, dtype=object)[codes], codes, contribs
    )
