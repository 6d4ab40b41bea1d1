"""All reads of the scoring app (console, customer pages, export, CLI)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Model, Q, Subquery
from django.db.models.base import ModelState
from django.utils import timezone

from config.compiled_queries import CompiledQuery
from config.errors import NotFound, ValidationFailed
from config.uuids import as_uuid
from consent import selectors as consent_selectors
from consent.selectors import GateDecision
from profiles import selectors as profiles_selectors
from scoring import engine
from scoring.models import CustomerScore, ModelVersion, Outcome, RescoreChunk, RescoreRun, ScoreOverride
from scoring.population import tier_shares


def _found_id(value: Any) -> uuid.UUID:
    """A customer or run id from a caller: one that is no UUID names nothing, so it is not found."""
    try:
        return as_uuid(value)
    except ValueError:
        raise NotFound() from None


def _score_dict(row: CustomerScore, override: ScoreOverride | None) -> dict[str, Any]:
    data = {
        "customer_id": str(row.customer_id),
        "purpose": row.purpose,
        "clv": round(row.clv, 2),
        "currency": row.currency,
        "clv_score": row.clv_score,
        "churn_probability": round(row.churn_probability, 4),
        "risk_level": row.risk_level,
        "upsell": round(row.upsell, 4),
        "advocacy": round(row.advocacy, 4),
        "segment": row.segment,
        "tier": row.tier,
        "automated_tier": row.tier,
        "service_level": row.service_level,
        "recommendation": row.recommendation,
        "explanation": engine.explanation_in_words(row.explanation),
        "model_version": row.model_version.version,
        "churn_model_version": row.churn_model_version.version if row.churn_model_version else None,
        "computed_at": row.computed_at,
        "stale": row.stale,
        "override": None,
    }
    if override is not None:
        data["tier"] = override.tier
        data["service_level"] = override.service_level or engine.service_level_for(override.tier)
        data["override"] = {"tier": override.tier, "review_of_decision": override.decision_id,
                            "since": override.created_at, "reviewer": override.reviewer}
    return data


def score_current(*, customer_id: uuid.UUID, purpose: str) -> dict[str, Any] | None:
    """The stored score of a customer for a purpose (with the effective override), or None.

    A read for the console and the export; serving to API clients goes through ``score_serve`` (gated).
    """
    cid = _found_id(customer_id)
    row = (CustomerScore.objects.select_related("model_version", "churn_model_version")
           .filter(customer_id=cid, purpose=purpose).first())
    if row is None:
        return None
    override = ScoreOverride.objects.filter(customer_id=cid, purpose=purpose, active=True).first()
    return _score_dict(row, override)


def scores_for_customer(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every stored score of a customer (all purposes), for the export and the console."""
    cid = _found_id(customer_id)
    overrides = {o.purpose: o for o in ScoreOverride.objects.filter(customer_id=cid, active=True)}
    rows = CustomerScore.objects.select_related("model_version", "churn_model_version").filter(customer_id=cid)
    return [_score_dict(row, overrides.get(row.purpose)) for row in rows.order_by("purpose")]


def outcomes_for_customer(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {"kind": o.kind, "at": o.at, "source": o.source}
        for o in Outcome.objects.filter(customer_id=_found_id(customer_id)).order_by("at", "id")
    ]


_PURPOSE_WORDS = {
    "automated_scoring": "our automated customer scoring",
    "service_prioritization": "how quickly and by whom your requests are handled",
    "marketing": "the offers we send you",
}


def score_explanation_for_subject(*, customer_id: uuid.UUID) -> dict[str, Any]:
    """'Why am I treated this way?' in plain words, for the customer's own page (Art. 15(1)(h), 22)."""
    scores = scores_for_customer(customer_id=customer_id)
    contest = (
        "You can ask for a person to review this decision and contest it: use the 'Contest' button on this "
        f"page, or write to our data protection officer at {settings.DPO_EMAIL}. A reviewer will look at your "
        "case and can change the outcome."
    )
    if not scores:
        return {"scored": False, "summary": "We currently hold no automated score about you.", "items": [],
                "how_to_contest": contest}
    items = []
    for s in scores:
        level = s["service_level"]
        reasons: list[str] = []
        for key in ("clv", "churn"):
            exp = s["explanation"].get(key)
            if exp:
                reasons.extend(c["text"] for c in exp["contributions"][:3])
        overridden = s["override"] is not None
        text = (
            f"For {_PURPOSE_WORDS.get(s['purpose'], s['purpose'])}, you are in the {s['tier']} tier: "
            f"we aim to answer within {level.get('response_time_hours', '?')} hours, handled by "
            f"{level.get('escalation', 'our support team')}."
        )
        if overridden:
            text += " A member of staff reviewed the automated result and set this tier."
        items.append({
            "purpose": s["purpose"],
            "tier": s["tier"],
            "automated_tier": s["automated_tier"],
            "reviewed_by_a_person": overridden,
            "service_level": level,
            "summary": text,
            "main_reasons": reasons,
            "reasons_explained": (
                "Each reason shows one piece of information we used and how much it moved the result: "
                "money amounts for the expected future value, points (out of 100) for the churn risk."
            ),
            "expected_value": {"amount": s["clv"], "currency": s["currency"], "percentile": s["clv_score"]},
            "risk_level": s["risk_level"],
            "computed_at": s["computed_at"],
            "model_version": s["model_version"],
        })
    return {"scored": True, "summary": items[0]["summary"], "items": items, "how_to_contest": contest}


# --------------------------------------------------------------------------- models and drift


def _psi(expected_edges: list[float], purpose: str | None, field: str, model_version_id: int) -> float | None:
    """Population stability index of the stored scores against the training deciles (10 bins of 10 %)."""
    edges = sorted({float(e) for e in expected_edges[1:-1]})
    if not edges:
        return None
    qs = CustomerScore.objects.filter(model_version_id=model_version_id)
    if purpose:
        qs = qs.filter(purpose=purpose)
    conditions = {}
    lower = None
    for i, edge in enumerate([*edges, None]):
        cond = Q()
        if lower is not None:
            cond &= Q(**{f"{field}__gt": lower})
        if edge is not None:
            cond &= Q(**{f"{field}__lte": edge})
        conditions[f"b{i}"] = Count("id", filter=cond)
        lower = edge
    counts = qs.aggregate(total=Count("id"), **conditions)
    total = counts.pop("total")
    if not total:
        return None
    bins = len(conditions)
    psi = 0.0
    for i in range(bins):
        actual = max(counts[f"b{i}"] / total, 1e-4)
        expected = 1.0 / bins
        psi += (actual - expected) * math.log(actual / expected)
    return round(psi, 4)


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    card = v.card or {}
    return {
        "version": v.version, "kind": v.kind, "status": v.status, "created_at": v.created_at,
        "activated_at": v.activated_at, "retired_at": v.retired_at, "sha256": v.sha256, "seed": v.seed,
        "metrics": v.metrics, "training_seconds": card.get("training_seconds"),
        "data_window": card.get("data_window"), "training_population": card.get("training_population"),
        "clv_model": ((card.get("models") or {}).get("clv") or {}).get("served"),
    }


def model_list() -> list[dict[str, Any]]:
    return [_version_dict(v) for v in ModelVersion.objects.order_by("-created_at", "-id")]


def model_get(*, version: str) -> ModelVersion:
    v = ModelVersion.objects.filter(version=version).first()
    if v is None:
        raise NotFound("Model version not found.")
    return v


def model_overview() -> dict[str, Any]:
    """Active versions with metrics and training time, other versions, and score drift since training.

    Drift: PSI of the stored CLV and churn scores of the active model against the training population's
    deciles (PSI < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift: retrain).
    """
    versions = list(ModelVersion.objects.order_by("-created_at", "-id"))
    active = [v for v in versions if v.status == ModelVersion.Status.ACTIVE]
    out: dict[str, Any] = {"active": [], "versions": [_version_dict(v) for v in versions[:20]]}
    for v in active:
        item = _version_dict(v)
        dist = (v.card or {}).get("score_distribution")
        if v.kind == ModelVersion.Kind.FULL and dist:
            clv_psi = _psi(dist.get("clv_deciles", []), None, "clv", v.pk)
            churn_psi = _psi(dist.get("churn_deciles", []), None, "churn_probability", v.pk)
            item["drift"] = {"clv_psi": clv_psi, "churn_psi": churn_psi,
                             "status": _drift_status(clv_psi, churn_psi)}
        out["active"].append(item)
    return out


def _drift_status(*values: float | None) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "unknown"
    worst = max(known)
    return "stable" if worst < 0.1 else "moderate" if worst < 0.25 else "significant"


def tier_distribution(*, purpose: str | None = None) -> dict[str, Any]:
    """Count and share of stored scores per tier (per purpose), with the configured shares."""
    qs = CustomerScore.objects.all()
    if purpose:
        qs = qs.filter(purpose=purpose)
    rows = qs.values("purpose", "tier").annotate(n=Count("id")).order_by("purpose", "tier")
    configured = dict(tier_shares())
    by_purpose: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = by_purpose.setdefault(r["purpose"], {"total": 0, "tiers": {}})
        entry["tiers"][r["tier"]] = {"count": r["n"]}
        entry["total"] += r["n"]
    for entry in by_purpose.values():
        for name in configured:
            t = entry["tiers"].setdefault(name, {"count": 0})
            t["share"] = round(t["count"] / entry["total"], 4) if entry["total"] else 0.0
            t["configured_share"] = round(configured[name], 4)
    overrides = dict(ScoreOverride.objects.filter(active=True).values("purpose").annotate(n=Count("id"))
                     .values_list("purpose", "n"))
    return {"purposes": by_purpose, "configured_shares": configured, "active_overrides": overrides}


# --------------------------------------------------------------------------- rescoring runs


def _run_dict(run: RescoreRun) -> dict[str, Any]:
    skipped = {"no_consent": run.skipped_no_consent, "restricted": run.skipped_restricted,
               "objected": run.skipped_objected, "erased": run.skipped_erased}
    return {
        "id": str(run.id), "purpose": run.purpose, "status": run.status, "full": run.full,
        "requester": run.requester, "started_at": run.started_at, "finished_at": run.finished_at,
        "model_version": run.model_version.version if run.model_version is not None else None,
        "chunks_total": run.chunks_total, "chunks_planned": run.chunks_planned, "chunks_done": run.chunks_done,
        "total": run.total, "done": run.done,
        "scored": run.scored, "tier_changes": run.tier_changes, "skipped": skipped,
        "skipped_total": sum(skipped.values()),
        "percent": round(100.0 * run.done / run.total, 1) if run.total else 100.0,
    }


def rescore_run_progress(*, run_id: uuid.UUID) -> dict[str, Any]:
    run = RescoreRun.objects.select_related("model_version").filter(pk=_found_id(run_id)).first()
    if run is None:
        raise NotFound("Rescore run not found.")
    return _run_dict(run)


def rescore_run_list(*, limit: int = 20) -> list[dict[str, Any]]:
    return [_run_dict(r) for r in RescoreRun.objects.select_related("model_version").order_by("-started_at")[:limit]]


def rescore_run_latest(*, purpose: str | None = None) -> dict[str, Any] | None:
    qs = RescoreRun.objects.select_related("model_version").order_by("-started_at")
    if purpose:
        qs = qs.filter(purpose=purpose)
    run = qs.first()
    return _run_dict(run) if run is not None else None


def explanation_readable(*, explanation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A stored explanation for a person to read (the DPO's review page): per model its title, unit, baseline
    and output, and every contribution with the feature in words, its value as shown to people and the
    contribution rounded for display. The rows still add up: ``other`` carries the remainder."""
    from scoring import engine

    if not explanation:
        return []
    words = engine.explanation_in_words(explanation, top_k=10_000)
    out = []
    for key, part in words.items():
        if part is None:  # a kind not served (scoring.quality)
            continue
        unit = part["unit"]
        rows = []
        for c in part["contributions"]:
            spec = engine.feature_spec(c["feature"])
            value = c["value"]
            shown = (spec.format_value(float(value)) if isinstance(value, int | float) and not isinstance(value, bool)
                     else str(value))
            rows.append({"feature": c["feature"], "label": c["label"], "value": shown,
                         "contribution": c["contribution"], "text": c["text"]})
        out.append({"key": key, "title": part["title"], "unit": unit, "baseline": part["baseline"],
                    "output": part["output"], "rows": rows, "other": part["other_features"]})
    return out


def feature_in_words(*, name: str, value: Any = None) -> dict[str, str]:
    """A model input for a person to read (the console): its label in words and, given a value, the value as
    the explanations show it (``3 days``-style units, yes/no, percentages)."""
    spec = engine.feature_spec(name)
    shown = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        shown = spec.format_value(float(value))
    elif value is not None:
        shown = str(value)
    return {"label": spec.label, "unit": spec.unit, "value": shown}


def model_quality_active() -> list[dict[str, Any]]:
    """Per active model version and score kind: metric, naive baseline, floor, status and the console's
    warning (``scoring.quality.active_quality``); a kind below its floor is not served and says so."""
    from scoring.quality import active_quality

    return active_quality()


def model_kinds_below_floor() -> list[dict[str, Any]]:
    """The (version, kind) pairs of the active models whose quality is not "ok" (below the floor, not
    trained or not assessed): the console's work queue counts them."""
    return [{"version": v["version"], "kind": row["kind"], "status": row.get("status"), "value": row.get("value"),
             "floor": row.get("floor"), "metric": row.get("metric")}
            for v in model_quality_active() for row in v["rows"] if row.get("status") != "ok"]


def fairness_flags(*, threshold: float = 0.8) -> list[dict[str, Any]]:
    """Protected characteristics whose high-risk ratio between groups is below ``threshold`` (the
    four-fifths rule) in an active model's fairness report, one entry per version and characteristic."""
    seen: set[tuple[str, str]] = set()
    out = []
    for item in models_active_report()["models"]:
        characteristics = ((item.get("fairness") or {}).get("characteristics") or {})
        for name, report in characteristics.items():
            ratio = _finite((report or {}).get("high_risk_ratio"))
            if ratio is None or ratio >= threshold or (item["version"], name) in seen:
                continue
            seen.add((item["version"], name))
            out.append({"version": item["version"], "characteristic": name, "ratio": ratio})
    return out


def customer_current_mood(*, customer_id: Any, purpose: str) -> dict[str, Any] | None:
    """The customer's current mood as the score answer shows it (issue 18), or None when the processing gate
    refuses the purpose now (no consent, restriction, objection, erasure): the mood is part of the scored
    answer and is never shown without it."""
    from config.errors import ApplicationError
    from consent import selectors as consent_selectors
    from profiles import selectors as profiles_selectors

    try:
        cid = _found_id(customer_id)
        gate = consent_selectors.processing_gate(customer_id=cid, purpose=purpose)
    except ApplicationError:  # not a pseudonym, unknown purpose
        return None
    if not gate.allowed:
        return None
    return profiles_selectors.customer_current_mood(customer_id=cid)


# --------------------------------------------------------------------------- governance: active models report

SCORE_KINDS = ("clv", "churn", "upsell", "advocacy")
#: The headline metric of each kind when the card has no quality block (contract 1 of the team's branches).
_HEADLINE = {"clv": "top_decile_share", "churn": "auc", "upsell": "auc", "advocacy": "auc"}


def _kind_metrics(version: ModelVersion, kind: str) -> dict[str, float | None]:
    metrics = version.metrics or {}
    if version.kind == ModelVersion.Kind.CHURN_TABLE:
        return {str(k): _finite(v) for k, v in metrics.items() if not isinstance(v, dict | list)}
    prefix = f"{kind}_"
    return {k[len(prefix):]: _finite(v) for k, v in metrics.items() if k.startswith(prefix)
            and not isinstance(v, dict | list)}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _quality(version: ModelVersion, kind: str, metrics: dict[str, float | None]) -> dict[str, Any]:
    """``card["quality"][kind]`` when the card has one; otherwise the headline metric with no baseline."""
    stored = ((version.card or {}).get("quality") or {}).get(kind)
    if isinstance(stored, dict):
        return {"metric": str(stored.get("metric") or _HEADLINE[kind]), "value": _finite(stored.get("value")),
                "baseline": _finite(stored.get("baseline")), "baseline_method": stored.get("baseline_method") or "",
                "floor": _finite(stored.get("floor")), "status": str(stored.get("status") or "ok"),
                "reason": str(stored.get("reason") or "")}
    metric = _HEADLINE[kind]
    return {"metric": metric, "value": metrics.get(metric), "baseline": None, "baseline_method": "",
            "floor": None, "status": "not_assessed", "reason": "this model version predates the quality floors"}


def drift_latest(*, model_version_id: int) -> dict[str, Any] | None:
    """The latest feature-drift report of a model version (PSI per top feature, max PSI, status)."""
    from scoring.drift import status_of
    from scoring.models import DriftReport

    report = DriftReport.objects.filter(model_version_id=model_version_id).first()
    if report is None:
        return None
    importance = ((report.model_version.card or {}).get("feature_importance") or {})
    return {
        "computed_at": report.computed_at, "job": report.job, "population": report.population,
        "threshold": report.threshold, "max_psi": report.max_psi, "status": status_of(report.max_psi),
        "top_features": [{"feature": f, "psi": _finite(report.psi.get(f)), "importance": _finite(importance.get(f))}
                         for f in report.top_features],
        "drifted_features": list(report.drifted_features), "retrain_triggered": report.retrain_triggered,
    }


def models_active_report() -> dict[str, Any]:
    """Per score kind served now: the model version, training time, data window and horizon, its metrics with
    the naive baseline's beside them, the label provenance, the fairness report and the latest drift."""
    active = {v.kind: v for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)}
    full = active.get(ModelVersion.Kind.FULL)
    out: list[dict[str, Any]] = []
    drift_cache: dict[int, dict[str, Any] | None] = {}
    for kind in SCORE_KINDS:
        version = active.get(ModelVersion.Kind.CHURN_TABLE) if kind == "churn" else None
        version = version or full
        if version is None:
            continue
        card = version.card or {}
        window = card.get("data_window") or {}
        metrics = _kind_metrics(version, kind)
        labels = (card.get("labels") or {}).get("by_kind", {}).get(kind)
        if version.pk not in drift_cache:
            drift_cache[version.pk] = drift_latest(model_version_id=version.pk)
        out.append({
            "kind": kind, "version": version.version, "model_type": version.kind, "trained_at": version.created_at,
            "activated_at": version.activated_at,
            "data_window": {"first_fact_at": window.get("first_fact_at"), "as_of": window.get("as_of_at"),
                            "cutoffs": list(window.get("cutoffs_at") or []),
                            "cross_validation": window.get("cross_validation")},
            "horizon_days": window.get("horizon_days") if version.kind == ModelVersion.Kind.FULL else None,
            "quality": _quality(version, kind, metrics),
            "metrics": metrics,
            "labels": labels if isinstance(labels, dict) else None,
            "fairness": card.get("fairness"),
            "drift": drift_cache[version.pk],
        })
    return {"models": out}


def schedule_history(*, limit: int = 30) -> list[dict[str, Any]]:
    """The latest scheduled runs (rescores and retrains, newest first) for the console's training history."""
    from scoring.models import ScheduleRun

    rows = ScheduleRun.objects.select_related("model_version").order_by("-started_at", "-id")[:limit]
    return [{
        "job": r.job, "trigger": r.trigger, "status": r.status, "started_at": r.started_at,
        "finished_at": r.finished_at, "seconds": r.seconds, "activated": r.activated,
        "version": r.model_version.version if r.model_version is not None else None,
        "labels": (r.detail or {}).get("labels"), "outcome": (r.detail or {}).get("outcome"),
        "retrain_trigger": (r.detail or {}).get("retrain_trigger"), "reason": (r.detail or {}).get("reason"),
    } for r in rows]


def drift_history(*, limit: int = 30) -> list[dict[str, Any]]:
    """The latest drift reports, newest first."""
    from scoring.drift import status_of
    from scoring.models import DriftReport

    return [{
        "computed_at": r.computed_at, "version": r.model_version.version, "job": r.job, "population": r.population,
        "max_psi": r.max_psi, "status": status_of(r.max_psi), "drifted_features": list(r.drifted_features),
        "top_features": [(f, _finite(r.psi.get(f))) for f in r.top_features], "retrain_triggered": r.retrain_triggered,
    } for r in DriftReport.objects.select_related("model_version").order_by("-computed_at", "-id")[:limit]]


# --------------------------------------------------------------------------- next-best actions (engagement)

ENGAGEMENT_SCORE_FIELDS = ("customer_id", "tier", "risk_level", "clv", "churn_probability", "upsell", "advocacy",
                           "service_level", "decision_id", "explanation", "computed_at")


def scores_for_engagement(*, purpose: str, customer_ids: list[uuid.UUID] | None = None,
                          batch: int = 2000) -> Any:
    """Stored scores for ``purpose`` (effective tier of an active override), one dict per customer, streamed
    in pseudonym order, with ``reasons`` in words per model (top 3): what the next-best-action sweep reads.
    A read: the caller re-checks consent."""
    qs = CustomerScore.objects.filter(purpose=purpose)
    if customer_ids is not None:
        qs = qs.filter(customer_id__in=list(customer_ids))
    overrides = dict(ScoreOverride.objects.filter(purpose=purpose, active=True).values_list("customer_id", "tier"))
    for row in qs.order_by("customer_id").values(*ENGAGEMENT_SCORE_FIELDS).iterator(chunk_size=batch):
        words = engine.explanation_in_words(row.pop("explanation") or {}, top_k=3)
        row["reasons"] = {key: [c["text"] for c in item["contributions"]] for key, item in words.items() if item}
        tier = overrides.get(row["customer_id"])
        if tier is not None:
            row["tier"] = tier
            row["service_level"] = engine.service_level_for(tier)
        yield row


def tiers_current(*, purpose: str) -> dict[uuid.UUID, str]:
    """Pseudonym -> effective tier of the stored scores for ``purpose`` (KPIs per tier)."""
    tiers = dict(CustomerScore.objects.filter(purpose=purpose).values_list("customer_id", "tier"))
    tiers.update(dict(ScoreOverride.objects.filter(purpose=purpose, active=True).values_list("customer_id", "tier")))
    return tiers


def tier_population_queryset(*, purpose: str) -> Any:
    """The customers of ``tiers_current`` as one queryset of ``(customer_id, kpi_tier, clv, model_version_id)``
    (set-based readers: the KPI rollup): the active override's tier wins; a customer with an active override and
    no stored score has CLV 0 and no model version."""
    from django.db.models import F, FloatField, IntegerField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    overrides = ScoreOverride.objects.filter(purpose=purpose, active=True).order_by()
    scored = (CustomerScore.objects.filter(purpose=purpose)
              .annotate(kpi_tier=Coalesce(Subquery(overrides.filter(customer_id=OuterRef("customer_id"))
                                                   .order_by("-id").values("tier")[:1]), "tier"))
              .values_list("customer_id", "kpi_tier", "clv", "model_version_id"))
    unscored = (overrides.exclude(customer_id__in=CustomerScore.objects.filter(purpose=purpose).values("customer_id"))
                .annotate(kpi_tier=F("tier"), kpi_clv=Value(0.0, output_field=FloatField()),
                          kpi_mv=Value(None, output_field=IntegerField()))
                .values_list("customer_id", "kpi_tier", "kpi_clv", "kpi_mv"))
    return scored.union(unscored, all=True)


def clv_predictions(*, purpose: str) -> dict[uuid.UUID, tuple[float, int | None]]:
    """Pseudonym -> (predicted CLV, model version id) of the stored scores (KPI calibration)."""
    return {cid: (float(clv), mv) for cid, clv, mv in
            CustomerScore.objects.filter(purpose=purpose).values_list("customer_id", "clv", "model_version_id")}


def outcomes_between(*, start: Any, end: Any, kinds: list[str] | None = None) -> list[tuple[uuid.UUID, str, Any]]:
    """Explicit outcomes ``(customer_id, kind, at)`` with ``start <= at < end`` (KPIs, uplift)."""
    qs = Outcome.objects.filter(at__gte=start, at__lt=end)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return list(qs.values_list("customer_id", "kind", "at"))


def clv_horizon_days(*, model_version_id: int) -> int:
    """The CLV horizon (days) of a full model version (what its CLV amounts mean)."""
    from scoring import registry

    return int(registry.horizon_days(model_version_id))


def first_response_hours(*, tier: str) -> float:
    """The first-response time (hours) of a tier's service level (Standard's for an unknown tier)."""
    return float(engine.service_level_for(tier)["response_time_hours"])


def score_currency() -> str:
    return engine.currency()


# --------------------------------------------------------------------------- reads of the scoring services
#
# What serving reads of a stored score: its own columns, the registry fields of its model versions (not
# their large card/metrics/population JSON), the active override and the customer's wrapped data key.
_SCORE_COLUMNS = tuple(f.attname for f in CustomerScore._meta.concrete_fields)
_VERSION_FIELDS = ("id", "version", "sha256", "kind", "status")
_VERSION_RELATIONS = ("model_version", "churn_model_version")
_OVERRIDE_FIELDS = ("id", "decision_id", "tier", "service_level", "created_at")


@dataclass
class StoredScore:
    """A stored score as serving reads it (``score_stored_get``)."""

    row: CustomerScore
    override: ScoreOverride | None
    wrapped_key: dict[str, Any]  # the customer's wrapped data key (profiles' expressions), for sealing
    mood: dict[str, Any] | None = None  # the customer's current mood (profiles' expressions), read with it


def _stored_score_query(*, customer_id: uuid.UUID, purpose: str, mood_since: datetime, now: datetime) -> Any:
    override = ScoreOverride.objects.filter(customer_id=customer_id, purpose=purpose, active=True).order_by()
    return (
        CustomerScore.objects.filter(customer_id=customer_id, purpose=purpose)
        .annotate(**{f"override_{name}": Subquery(override.values(name)[:1]) for name in _OVERRIDE_FIELDS})
        .annotate(**profiles_selectors.customer_key_expressions(customer_id=customer_id))
        .annotate(**profiles_selectors.customer_mood_expressions(customer_id=customer_id, since=mood_since, now=now))
        .values(
            *_SCORE_COLUMNS,
            *(f"{relation}__{name}" for relation in _VERSION_RELATIONS for name in _VERSION_FIELDS),
            *(f"override_{name}" for name in _OVERRIDE_FIELDS),
            *profiles_selectors.KEY_EXPRESSION_NAMES,
            *profiles_selectors.MOOD_EXPRESSION_NAMES,
        )
        .order_by()
    )


#: Compiled once per thread; every call runs the query with this call's customer, purpose and time.
STORED_SCORE_QUERY = CompiledQuery(_stored_score_query, customer_id="uuid", purpose="text", mood_since="datetime",
                                   now="datetime")


def score_stored_get(*, customer_id: uuid.UUID, purpose: str, now: datetime | None = None) -> StoredScore | None:
    """One query: the stored score with its model versions' registry fields and, through correlated index
    lookups, the active override, the customer's wrapped data key and the scores of their latest tickets
    (profiles' expressions: the current mood as of ``now``). ``None`` when no score is stored."""
    values = STORED_SCORE_QUERY.first(**_stored_score_arguments(customer_id, purpose, now or timezone.now()))
    return None if values is None else _stored_score_of(values, customer_id, purpose)


def score_gate_held_and_stored(*, customer_id: uuid.UUID, purpose: str, now: datetime
                               ) -> tuple[GateDecision, StoredScore | None]:
    """The processing gate held (``consent.selectors.processing_gate_held``: the consent state locked
    ``FOR SHARE`` until the caller's transaction ends) and, only if it allows, ``score_stored_get``: one
    statement on PostgreSQL (``processing_gate_held_then``). Must run inside ``transaction.atomic()``."""
    gate, values = consent_selectors.processing_gate_held_then(
        customer_id=customer_id, purpose=purpose, then=STORED_SCORE_QUERY,
        then_arguments=_stored_score_arguments(customer_id, purpose, now))
    return gate, (None if values is None else _stored_score_of(values, customer_id, purpose))


def _stored_score_arguments(customer_id: uuid.UUID, purpose: str, now: datetime) -> dict[str, Any]:
    since, now = profiles_selectors.mood_window(now)
    return {"customer_id": customer_id, "purpose": purpose, "mood_since": since, "now": now}


_DEFAULTED: dict[tuple[type, frozenset[str]], list[tuple[str, Any]]] = {}


def _instance(model: type[Model], values: dict[str, Any]) -> Any:
    """``model(**values)`` (``values`` by attribute name), without ``Model.__init__``'s generic walk over
    every field and its ``pre_init``/``post_init`` signals (neither model has receivers): the given values and
    each other field's default are set directly, on a fresh ``ModelState`` as ``__init__`` leaves it. A test
    compares the two instances field by field (tests/scoring/test_realtime_fast.py)."""
    key = (model, frozenset(values))
    defaulted = _DEFAULTED.get(key)
    if defaulted is None:
        defaulted = _DEFAULTED[key] = [(f.attname, f) for f in model._meta.concrete_fields
                                       if f.attname not in values]
    obj = model.__new__(model)
    attributes = obj.__dict__
    attributes["_state"] = ModelState()
    attributes.update(values)
    for attname, f in defaulted:
        attributes[attname] = f.get_default()
    return obj


def _stored_score_of(values: dict[str, Any], customer_id: uuid.UUID, purpose: str) -> StoredScore:
    row = _instance(CustomerScore, {name: values[name] for name in _SCORE_COLUMNS})
    for relation in _VERSION_RELATIONS:
        version_id = values[f"{relation}__id"]
        setattr(row, relation, None if version_id is None else _instance(
            ModelVersion, {name: values[f"{relation}__{name}"] for name in _VERSION_FIELDS}))
    wrapped_key = {name: values[name] for name in profiles_selectors.KEY_EXPRESSION_NAMES}
    found = None
    if values["override_id"] is not None:
        found = _instance(ScoreOverride, {"customer_id": customer_id, "purpose": purpose, "active": True,
                                          **{name: values[f"override_{name}"] for name in _OVERRIDE_FIELDS}})
    return StoredScore(row, found, wrapped_key, profiles_selectors.customer_mood_from_values(values))


def score_override_active(*, customer_id: uuid.UUID, purpose: str) -> ScoreOverride | None:
    return ScoreOverride.objects.filter(customer_id=customer_id, purpose=purpose, active=True).first()


def _run_uuid(value: Any) -> uuid.UUID:
    try:
        return as_uuid(value)
    except ValueError:
        raise ValidationFailed("Invalid customer id.", extra={"errors": {"run": [{"code": "invalid"}]}}) from None


def rescore_pending_chunks(*, run_id: uuid.UUID) -> list[list[str]]:
    return list(rescore_pending_chunk_ids(run_ids=[run_id]))


def rescore_pending_chunk_ids(*, run_ids: Sequence[uuid.UUID], page: int = 50, worker: int = 0, workers: int = 1
                              ) -> Iterator[list[str]]:
    """Customer ids of each chunk not yet done in any of ``run_ids`` (chunk order), read ``page`` chunks
    at a time (the whole plan is never in memory). With ``workers > 1``, only the chunks whose number is
    ``worker`` modulo ``workers`` (so parallel workers share the plan without overlap)."""
    return _chunk_ids(run_ids=run_ids, flag="done", page=page, worker=worker, workers=workers)


def rescore_unplanned_chunk_ids(*, run_ids: Sequence[uuid.UUID], page: int = 50, worker: int = 0, workers: int = 1
                                ) -> Iterator[list[str]]:
    """As ``rescore_pending_chunk_ids``, for the chunks not yet planned (pass 1) in any of ``run_ids``."""
    return _chunk_ids(run_ids=run_ids, flag="planned", page=page, worker=worker, workers=workers)


def _chunk_ids(*, run_ids: Sequence[uuid.UUID], flag: str, page: int, worker: int, workers: int
               ) -> Iterator[list[str]]:
    keys = [_run_uuid(r) for r in run_ids]
    last = -1
    while True:
        qs = RescoreChunk.objects.filter(run_id__in=keys, chunk_no__gt=last, **{flag: False})
        if workers > 1:
            qs = qs.annotate(_slot=F("chunk_no") % workers).filter(_slot=worker)
        rows = list(qs.order_by("chunk_no").values_list("chunk_no", "customer_ids")[: page * len(keys)])
        if not rows:
            return
        seen: set[int] = set()
        for chunk_no, ids in rows:
            if chunk_no not in seen:
                seen.add(chunk_no)
                yield list(ids)
        last = rows[-1][0]


def scores_previous_many(*, customer_ids: list[uuid.UUID], purposes: list[str]
                         ) -> dict[tuple[uuid.UUID, str], tuple[str, str]]:
    """(tier, risk level) of the stored scores of these customers for these purposes (a chunk's "before")."""
    from config.lookups import ids_in

    return {
        (cid, purpose): (tier, risk) for cid, purpose, tier, risk in CustomerScore.objects.filter(
            ids_in("customer_id", customer_ids), purpose__in=purposes).values_list(
                "customer_id", "purpose", "tier", "risk_level")
    }


def score_overrides_active_many(*, customer_ids: list[uuid.UUID], purposes: list[str]
                                ) -> dict[tuple[uuid.UUID, str], ScoreOverride]:
    """The active reviewer overrides of these customers for these purposes."""
    from config.lookups import ids_in

    return {(o.customer_id, o.purpose): o for o in ScoreOverride.objects.filter(
        ids_in("customer_id", customer_ids), purpose__in=purposes, active=True)}
