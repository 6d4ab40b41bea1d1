"""Population reference for tiers and the 0-100 CLV score.

Tiers are percentiles of CLV among the scored customers (``settings.TIER_SHARES``, top tier first).
A full rescoring run is two-pass: pass 1 predicts CLV for every customer allowed at the start of the run
(cheap: no explanations) and stores here its *cut-offs*; pass 2 (the chunks) assigns tiers against them.
The cut-offs are ``(clv, tie-break)`` keys at the rank boundaries, where the tie-break is a short hash of
the pseudonym (so no pseudonym is stored in a cut-off): ties in CLV (many customers with the same value,
e.g. no purchases at all) are broken deterministically and the tier shares match the configured shares
exactly (up to one customer per boundary for rounding) among the customers of pass 1.

Between runs (real-time scoring of a new customer, subset runs), the reference of the latest completed
full run for the active model is used; before any run, the training population's reference stored with
the model version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

N_QUANTILES = 1001


def tiebreak(customer_id: object) -> str:
    """Deterministic tie-break key of a customer (a hash: cut-offs never hold pseudonyms)."""
    return hashlib.blake2b(str(customer_id).encode(), digest_size=8).hexdigest()


def tier_shares() -> list[tuple[str, float]]:
    """Configured tiers, top tier first, with shares normalized to sum to 1."""
    raw = settings.TIER_SHARES
    items = [(str(k), float(v)) for k, v in (raw.items() if isinstance(raw, Mapping) else raw)]
    total = sum(v for _, v in items) or 1.0
    return [(k, v / total) for k, v in items]


@dataclass(frozen=True)
class Reference:
    """Cut-offs (top tier first, one fewer than tiers) and sorted CLV quantiles."""

    tiers: tuple[str, ...]
    cutoffs: tuple[tuple[float, str] | None, ...]  # None: nobody reaches this tier (share rounds to 0)
    quantiles: np.ndarray
    n: int
    source: str  # "run:<uuid>" or "model:<version>"

    def to_json(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers),
            "cutoffs": [None if c is None else [float(c[0]), c[1]] for c in self.cutoffs],
            "quantiles": [float(q) for q in self.quantiles],
            "n": self.n,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reference:
        return cls(
            tiers=tuple(data["tiers"]),
            cutoffs=tuple(None if c is None else (float(c[0]), str(c[1])) for c in data["cutoffs"]),
            quantiles=np.asarray(data["quantiles"], dtype=np.float64),
            n=int(data["n"]),
            source=str(data.get("source", "")),
        )

    def tiers_for(self, clv: np.ndarray, customer_ids: Sequence[str]) -> list[str]:
        """Tier of each customer: the first cut-off (from the top) its ``(clv, id)`` key reaches."""
        return self.tiers_for_keys(clv, np.asarray([tiebreak(c) for c in customer_ids]))

    def tiers_for_keys(self, clv: np.ndarray, keys: np.ndarray) -> list[str]:
        """``tiers_for`` from the customers' tie-break keys (vectorized)."""
        values = np.asarray(clv, dtype=np.float64)
        keys = np.asarray(keys).astype(str) if len(keys) else np.zeros(0, dtype="<U16")
        out = np.full(len(values), self.tiers[-1], dtype=object)
        undecided = np.ones(len(values), dtype=bool)
        for name, cutoff in zip(self.tiers, self.cutoffs, strict=False):
            if cutoff is None:
                continue
            value, key = cutoff
            reaches = (values > value) | ((values == value) & (keys >= key))
            hit = undecided & reaches
            out[hit] = name
            undecided &= ~hit
        return out.tolist()

    def clv_scores(self, clv: np.ndarray) -> np.ndarray:
        """0-100 percentile of each CLV within the reference population (mid-rank for ties)."""
        q = self.quantiles
        if len(q) == 0:
            return np.zeros(len(clv), dtype=np.int64)
        v = np.asarray(clv, dtype=np.float64)
        mid = (np.searchsorted(q, v, side="left") + np.searchsorted(q, v, side="right")) / 2.0
        return np.clip(np.rint(100.0 * mid / len(q)), 0, 100).astype(np.int64)


def reference_from_population(clv: np.ndarray, customer_ids: Sequence[str], *, source: str) -> Reference:
    """Cut-offs at the configured shares of the ``(clv, id)`` ranking, and CLV quantiles."""
    return reference_from_keys(clv, np.asarray([tiebreak(c) for c in customer_ids]), source=source)


def reference_from_keys(clv: np.ndarray, keys: np.ndarray, *, source: str) -> Reference:
    """``reference_from_population`` from the customers' tie-break keys (``tiebreak``) instead of their
    pseudonyms: what a planning pass keeps in memory (16 characters per customer). Vectorized ranking."""
    shares = tier_shares()
    names = tuple(name for name, _ in shares)
    values = np.asarray(clv, dtype=np.float64)
    ids = np.asarray(keys).astype(str) if len(keys) else np.zeros(0, dtype="<U16")
    n = len(values)
    if n == 0:
        return Reference(names, tuple(None for _ in names[:-1]), np.zeros(0), 0, source)
    order = np.lexsort((ids, values))[::-1]  # best first: (clv, tie-break) descending
    cutoffs: list[tuple[float, str] | None] = []
    cumulative = 0.0
    for _, share in shares[:-1]:
        cumulative += share
        count = int(round(cumulative * n))
        if count <= 0:
            cutoffs.append(None)
        else:
            i = int(order[min(count, n) - 1])
            cutoffs.append((float(values[i]), str(ids[i])))
    quantiles = np.quantile(values, np.linspace(0.0, 1.0, min(N_QUANTILES, max(n, 2))))
    return Reference(names, tuple(cutoffs), np.sort(quantiles), n, source)
