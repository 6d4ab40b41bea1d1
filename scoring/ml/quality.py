"""Quality floors: every served score kind against an absolute floor and a naive baseline.

Each kind is judged on the temporal validation windows of its training (``scoring.ml.models.train_all``
computes the model's and the baseline's metrics on the very same rows):

- ``churn``: AUC >= the floor (``SCORING_QUALITY_FLOOR_AUC``, default 0.60) and not below the AUC of the
  **recency rank** (days since the last order; a churn model trained from a CRM table without orders is
  compared with the prior rate instead), and a Brier score better than the prior rate's;
- ``upsell`` / ``advocacy``: AUC >= the floor, and a Brier score strictly better than the **prior rate**'s
  (the training positive rate served to everyone). A constant has AUC 0.5, so "beats the prior" means
  "ranks better than chance" (the floor is above 0.5) *and* "its probabilities are closer to the outcomes
  than the base rate" (Brier);
- ``clv``: top-decile capture (the share of the validation window's revenue earned by the 10 % of customers
  ranked highest) not below the capture of the **historical spend** ranking. The AUC floor does not apply
  (``floor`` is ``None``).

The result is ``ModelVersion.card["quality"]`` (contract 1 of the team): ``{kind: {"metric", "value",
"baseline", "baseline_method", "floor", "status", "reason"}}``, status ``ok`` / ``below_floor`` /
``below_baseline`` / ``not_trained``. A kind that is not ``ok`` is never served: the API answers it as
unavailable (``model_unavailable``) and tiers fall back to the historical-spend ranking when ``clv`` is not ok.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("clv", "churn", "upsell", "advocacy")
DEFAULT_FLOOR_AUC = 0.60
OK, BELOW_FLOOR, BELOW_BASELINE, NOT_TRAINED = "ok", "below_floor", "below_baseline", "not_trained"
BASELINE_METHODS = {
    "clv": "historical spend ranking (top-decile capture)",
    "churn": "recency rank (days since the last order)",
    "upsell": "prior rate (AUC 0.5; Brier score of the training positive rate)",
    "advocacy": "prior rate (AUC 0.5; Brier score of the training positive rate)",
}


def _num(metrics: Mapping[str, Any], key: str) -> float | None:
    v = metrics.get(key)
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _entry(metric: str, value: float | None, baseline: float | None, method: str, floor: float | None,
           status: str, reason: str) -> dict[str, Any]:
    return {"metric": metric, "value": value, "baseline": baseline, "baseline_method": method, "floor": floor,
            "status": status, "reason": reason}


def not_trained(kind: str, reason: str, *, metric: str = "auc", floor: float | None = None) -> dict[str, Any]:
    return _entry(metric, None, None, BASELINE_METHODS[kind], floor, NOT_TRAINED, reason)


def assess_clv(metrics: Mapping[str, Any]) -> dict[str, Any]:
    value = _num(metrics, "clv_top_decile_share")
    base = _num(metrics, "clv_baseline_top_decile_share")
    method = BASELINE_METHODS["clv"]
    if value is None:
        return _entry("top_decile_share", None, base, method, None, NOT_TRAINED,
                      "No validation window with revenue: the CLV model could not be validated.")
    if base is not None and value < base - 1e-9:
        return _entry("top_decile_share", value, base, method, None, BELOW_BASELINE,
                      f"The CLV model captures {value:.1%} of the next period's revenue in its top decile, less "
                      f"than ranking by historical spend ({base:.1%}).")
    return _entry("top_decile_share", value, base, method, None, OK,
                  f"Top-decile capture {value:.1%} (historical spend: "
                  f"{'unknown' if base is None else format(base, '.1%')}).")


def assess_classifier(kind: str, metrics: Mapping[str, Any], *, floor: float) -> dict[str, Any]:
    auc = _num(metrics, f"{kind}_auc")
    method = BASELINE_METHODS[kind]
    base = _num(metrics, "churn_baseline_auc") if kind == "churn" else 0.5 if auc is not None else None
    if auc is None:
        return _entry("auc", None, base, method, floor, NOT_TRAINED,
                      f"No validation labels of both classes: the {kind} model could not be validated.")
    if auc < floor:
        return _entry("auc", auc, base, method, floor, BELOW_FLOOR,
                      f"The {kind} model's AUC {auc:.3f} is below the quality floor {floor:.2f}.")
    if kind == "churn" and base is not None and auc < base - 1e-9:
        return _entry("auc", auc, base, method, floor, BELOW_BASELINE,
                      f"The churn model's AUC {auc:.3f} is below the naive baseline's {base:.3f}.")
    brier, prior = _num(metrics, f"{kind}_brier"), _num(metrics, f"{kind}_prior_brier")
    if auc <= 0.5 or (brier is not None and prior is not None and not brier < prior):
        return _entry("auc", auc, base, method, floor, BELOW_BASELINE,
                      f"The {kind} model does not beat the prior rate (AUC {auc:.3f}; Brier "
                      f"{_fmt(brier)} vs the prior's {_fmt(prior)}).")
    return _entry("auc", auc, base, method, floor, OK,
                  f"AUC {auc:.3f} (floor {floor:.2f}; baseline {_fmt(base)}).")


def _fmt(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.3f}"


def assess(metrics: Mapping[str, Any], *, floor: float = DEFAULT_FLOOR_AUC,
           kinds: Iterable[str] = KINDS) -> dict[str, dict[str, Any]]:
    """The quality of each kind from a training's metrics (kinds not in ``kinds`` are ``not_trained``)."""
    wanted = set(kinds)
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        if kind not in wanted:
            out[kind] = not_trained(kind, f"This model version has no {kind} model.",
                                    metric="top_decile_share" if kind == "clv" else "auc",
                                    floor=None if kind == "clv" else floor)
        elif kind == "clv":
            out[kind] = assess_clv(metrics)
        else:
            out[kind] = assess_classifier(kind, metrics, floor=floor)
    return out


def usable(quality: Mapping[str, Any] | None, kind: str) -> bool:
    """Whether ``kind`` may be served under ``quality`` (a card without quality: judged by nobody, served as
    before only by legacy versions; ``scoring.quality`` assesses those from their metrics)."""
    entry = (quality or {}).get(kind)
    return bool(entry) and entry.get("status") == OK
