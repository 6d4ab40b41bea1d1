"""Segments: k-means on standardized RFM columns, named by their centroids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

SEGMENT_COLUMNS = ("recency_days", "frequency", "monetary_total", "tenure_days")


SEGMENT_NAMES = (
    "Champions",
    "Hibernating",
    "New",
    "At risk",
    "Loyal",
    "Potential loyalists",
    "Need attention",
    "About to sleep",
)


@dataclass
class SegmentModel:
    """KMeans on standardized log1p(RFM + tenure) with rule-named clusters."""

    scaler: StandardScaler
    kmeans: KMeans
    names: tuple[str, ...]
    columns: tuple[int, ...]

    def _z(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.transform(
            np.log1p(np.maximum(np.asarray(X, dtype=np.float64)[:, list(self.columns)], 0))
        )

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.kmeans.predict(self._z(X))

    def labels(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.names, dtype=object)[self.predict(X)]


def fit_segments(X: np.ndarray, names: Sequence[str], k: int, seed: int) -> SegmentModel:
    """KMeans segments named from centroid ranks (deterministic rules)."""
    cols = tuple(list(names).index(c) for c in SEGMENT_COLUMNS)
    raw = np.log1p(np.maximum(np.asarray(X, dtype=np.float64)[:, list(cols)], 0))
    scaler = StandardScaler().fit(raw)
    z = scaler.transform(raw)
    k = max(1, min(k, len(np.unique(z, axis=0))))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    return SegmentModel(scaler, km, name_segments(km.cluster_centers_), cols)


def name_segments(centroids: np.ndarray) -> tuple[str, ...]:
    """Name clusters from standardized (recency, frequency, monetary, tenure) centroids.

    Priority: Champions = best value + freshness; Hibernating = worst; New = shortest tenure;
    At risk = high value but stale; Loyal = best remaining; then generic names. Ties -> lower index.
    """
    c = np.asarray(centroids, dtype=np.float64)
    value = c[:, 1] + c[:, 2]
    fresh = -c[:, 0]
    age = c[:, 3]
    rules = (value + fresh, -(value + fresh), -age, value - fresh, value + fresh)
    names = [""] * len(c)
    remaining = list(range(len(c)))
    for label, score in zip(SEGMENT_NAMES[:5], rules, strict=True):
        if not remaining:
            break
        best = min(remaining, key=lambda i: (-float(score[i]), i))
        names[best] = label
        remaining.remove(best)
    extras = list(SEGMENT_NAMES[5:])
    for i in sorted(remaining, key=lambda i: (-(value + fresh)[i], i)):
        names[i] = extras.pop(0) if extras else f"Segment {i + 1}"
    return tuple(names)
