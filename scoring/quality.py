"""Quality floors in the service layer: the floor setting, the activation gate and what serving leaves out.

The judgement itself is :mod:`scoring.ml.quality` (model vs absolute floor vs naive baseline, on the same
validation windows), written into ``ModelVersion.card["quality"]`` at training. Here:

- :func:`activation_refusal` — why a version may not be activated at all (``model_activate`` raises 409
  ``model_below_floor``; ``force`` does not override it): a churn-table version whose churn is not "ok"; a
  full version none of whose kinds is "ok". A full version with some kinds "ok" is activated, and only
  those kinds are served;
- :func:`unavailable_kinds` — per active version pair, the kinds served as unavailable with their reason
  (cached per process: a version's card never changes);
- a version trained before quality cards existed is judged from its stored metrics against the floor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from scoring.ml import quality as ml_quality
from scoring.models import ModelVersion

KINDS = ml_quality.KINDS
CODE = "model_unavailable"
TIER_BASIS_MODEL = "clv_model"
TIER_BASIS_ESTIMATE = "clv_estimate_from_attributes"
TIER_BASIS_NAIVE = "historical_spend"

_lock = threading.Lock()
_cards: dict[int, dict[str, dict[str, Any]]] = {}


def floor_auc() -> float:
    return float(getattr(settings, "SCORING_QUALITY_FLOOR_AUC", ml_quality.DEFAULT_FLOOR_AUC))


def cache_clear() -> None:
    with _lock:
        _cards.clear()


def version_quality(*, kind: str, card: dict[str, Any] | None, metrics: dict[str, Any] | None
                    ) -> dict[str, dict[str, Any]]:
    """The per-kind quality of a version: its card's, else assessed from its metrics (older versions)."""
    stored = (card or {}).get("quality")
    if isinstance(stored, dict) and stored:
        return {k: dict(stored.get(k) or ml_quality.not_trained(k, "Not in this model version.")) for k in KINDS}
    kinds = ("churn",) if kind == ModelVersion.Kind.CHURN_TABLE else KINDS
    return ml_quality.assess(metrics or {}, floor=floor_auc(), kinds=kinds)


def quality_of(version_id: int) -> dict[str, dict[str, Any]]:
    cached = _cards.get(version_id)
    if cached is not None:
        return cached
    row = ModelVersion.objects.filter(pk=version_id).values("kind", "card__quality", "metrics").first()
    if row is None:
        return {}
    card = {"quality": row["card__quality"]} if row["card__quality"] else {}
    value = version_quality(kind=row["kind"], card=card, metrics=row["metrics"])
    with _lock:
        _cards[version_id] = value
    return value


def activation_refusal(version: ModelVersion) -> str | None:
    """Why ``version`` may never be activated (None: the quality floors allow it)."""
    q = version_quality(kind=version.kind, card=version.card, metrics=version.metrics)
    if version.kind == ModelVersion.Kind.CHURN_TABLE:
        entry = q["churn"]
        return None if entry.get("status") == ml_quality.OK else str(entry.get("reason") or "below the floor")
    if any(q[k].get("status") == ml_quality.OK for k in KINDS):
        return None
    return "No score kind of this model passes its quality floor and baseline: " + " ".join(
        str(q[k].get("reason", "")) for k in KINDS)


def unavailable_kinds(full_id: int, churn_id: int | None) -> dict[str, str]:
    """The kinds not served with these active versions, each with its reason. Churn is judged on the churn-table
    version when one is active; the other kinds on the full version (for attribute-only serving, the table
    version is both)."""
    full = quality_of(full_id)
    churn = quality_of(churn_id) if churn_id is not None else full
    out: dict[str, str] = {}
    for kind in KINDS:
        entry = (churn if kind == "churn" else full).get(kind) or {}
        if entry.get("status") != ml_quality.OK:
            out[kind] = str(entry.get("reason") or "No model of this kind passed its quality floor.")
    return out


def unavailable_list(unavailable: dict[str, str]) -> list[dict[str, str]]:
    """The API form: ``[{"kind", "code": "model_unavailable", "reason"}]`` in kind order."""
    return [{"kind": k, "code": CODE, "reason": unavailable[k]} for k in KINDS if k in unavailable]


def tier_basis(unavailable: Mapping[str, str], *, table_only: bool) -> dict[str, str]:
    """What the tiers rank by, in words (the response's ``tier_basis`` and its explanation's ``tiers``)."""
    if "clv" not in unavailable:
        if table_only:
            return {"method": TIER_BASIS_ESTIMATE,
                    "text": "Tiers rank customers by a CLV estimated from their monthly charges and churn risk."}
        return {"method": TIER_BASIS_MODEL, "text": "Tiers rank customers by the CLV model."}
    return {"method": TIER_BASIS_NAIVE,
            "text": "No CLV model passed its quality floor: tiers fall back to the naive ranking by historical "
                    "spend (CLV unavailable: " + unavailable["clv"] + ")"}


#: An "ok" AUC within this margin of the floor is flagged as weak on the console (served, but watch it).
WEAK_MARGIN = 0.05


def active_quality() -> list[dict[str, Any]]:
    """The console's side-by-side view: per active version, each kind's metric, the naive baseline's, the floor,
    the status and a warning where the score is weak (not served, or close to the floor)."""
    out = []
    for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).order_by("kind", "-id"):
        q = version_quality(kind=v.kind, card=v.card, metrics=v.metrics)
        rows = []
        for kind in KINDS:
            e = q[kind]
            value, floor = e.get("value"), e.get("floor")
            warning = ""
            if e.get("status") != ml_quality.OK:
                warning = f"Not served ({e.get('status')}): {e.get('reason')}"
            elif value is not None and floor is not None and value < floor + WEAK_MARGIN:
                warning = f"Weak: {e.get('metric')} {value:.3f} is close to the floor {floor:.2f}."
            rows.append({"kind": kind, **e, "warning": warning})
        out.append({"version": v.version, "kind": v.kind, "rows": rows})
    return out
