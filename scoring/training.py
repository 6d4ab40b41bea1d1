"""Training data from the database for ``scoring.ml.models`` (used by ``manage.py train``).

Lawful basis: training is a processing purpose of its own. Only customers for whom the processing gate
allows ``SCORING_TRAINING_PURPOSE`` (default ``automated_scoring``) *at training time* are used, and never
erased, restricted or objecting ones. Only pseudonymized numbers are read (``profiles.facts``, derived by ``scoring.features.aggregates``).

Labels come from the history itself: features as of a cutoff and what happened in the following horizon
(``scoring.features.aggregates.window_outcomes``), at the cutoffs ``scoring.ml.models.planned_cutoffs`` gives for its
temporal cross-validation (``as_of - horizon - j * step``); explicit outcomes reported through the API
(``Outcome``) override the derived labels in the most recent labelled window. Days are counted backwards
from ``as_of``: cutoff day ``c`` is ``as_of - (now_day - c)`` days.

The CRM attributes the training population's imports declared as features (``declared_feature_attributes``,
special categories excluded) are features of the full models too: their raw values are read once (they have
no history) and ``scoring.ml.models.TrainingData`` encodes them and appends them to every cutoff's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from django.conf import settings
from django.utils import timezone

from config.errors import Unprocessable
from consent import selectors as consent_selectors
from profiles import selectors as profiles_selectors
from scoring.features import aggregates
from scoring.ml import attribute_clv
from scoring.ml.features import ATTRIBUTE_PURPOSE, build_matrix, feature_names
from scoring.ml.models import (
    ClassifierModel,
    ModelConfig,
    Outcomes,
    Snapshot,
    TrainedBundle,
    TrainingData,
    planned_cutoffs,
    train_all,
    train_churn_from_table,
)
from scoring.ml.quality import assess as assess_quality
from scoring.ml.quality import not_trained
from scoring.models import Outcome
from scoring.population import reference_from_population

logger = logging.getLogger("scoring.training")
CHUNK = 5000


def training_purpose() -> str:
    return str(getattr(settings, "SCORING_TRAINING_PURPOSE", "automated_scoring"))


def max_training_customers() -> int:
    return int(getattr(settings, "SCORING_TRAINING_MAX_CUSTOMERS", 200_000))


def configured_model_config() -> ModelConfig:
    """``ModelConfig`` with the overrides of ``SCORING_MODEL_CONFIG`` (a dict, e.g. fewer trees)."""
    overrides = dict(getattr(settings, "SCORING_MODEL_CONFIG", None) or {})
    known = set(ModelConfig.__dataclass_fields__)
    return ModelConfig(**{k: v for k, v in overrides.items() if k in known})


@dataclass
class TrainingResult:
    bundle: TrainedBundle
    card: dict[str, Any]
    population: dict[str, Any]
    customer_ids: list[UUID] = field(default_factory=list)


@dataclass
class TableTrainingResult:
    model: ClassifierModel
    card: dict[str, Any]
    population: dict[str, Any] = field(default_factory=dict)


def consented_customers(*, purpose: str, seed: int = 0, limit: int | None = None) -> list[UUID]:
    """Live customers the gate allows for ``purpose`` now (a seeded sample when more than ``limit``)."""
    allowed: list[UUID] = []
    for ids in profiles_selectors.customer_id_chunks(chunk_size=CHUNK):
        gates = consent_selectors.processing_gate_bulk(customer_ids=ids, purpose=purpose)
        allowed.extend(c for c in ids if gates[c].allowed)
    allowed.sort(key=str)
    if limit is not None and len(allowed) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(allowed), limit, replace=False))
        allowed = [allowed[i] for i in pick]
    return allowed


def _columns(ids: Sequence[UUID], as_of: datetime, attributes: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The feature columns as of ``as_of``, plus the raw columns of the declared ``attributes`` (``attr:<name>``;
    a chunk without any value of one gives missing values)."""
    parts: list[dict[str, np.ndarray]] = [aggregates.fact_aggregates(customer_ids=ids[i:i + CHUNK], as_of=as_of)
                                          for i in range(0, len(ids), CHUNK)]
    keys = set(feature_names()) | {aggregates.KNOWN_COLUMN}
    cols = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    for name in attributes:
        key = aggregates.ATTRIBUTE_PREFIX + name
        cols[key] = np.concatenate([p.get(key, np.full(len(p[aggregates.KNOWN_COLUMN]), None, dtype=object))
                                    for p in parts])
    return cols


def _declared_attributes(ids: Sequence[UUID]) -> list[str]:
    """The attributes declared as features by the training population (special categories excluded)."""
    names: set[str] = set()
    for i in range(0, len(ids), CHUNK):
        names.update(aggregates.declared_feature_attributes(customer_ids=ids[i:i + CHUNK]))
    return sorted(names)


def _outcomes(ids: Sequence[UUID], start: datetime, end: datetime) -> dict[str, np.ndarray]:
    parts = [aggregates.window_outcomes(customer_ids=ids[i:i + CHUNK], start=start, end=end)
             for i in range(0, len(ids), CHUNK)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _explicit_outcomes(ids: Sequence[UUID], start: datetime, end: datetime) -> tuple[Outcomes, dict[str, int]]:
    pos = {cid: i for i, cid in enumerate(ids)}
    n = len(ids)
    arrays = {kind: np.zeros(n, dtype=bool) for kind in Outcome.Kind.values}
    counts = dict.fromkeys(Outcome.Kind.values, 0)
    for cid, kind in Outcome.objects.filter(at__gt=start, at__lte=end).values_list("customer_id", "kind"):
        i = pos.get(cid)
        if i is not None:
            arrays[kind][i] = True
            counts[kind] += 1
    return Outcomes(churned=arrays["churned"], renewed=arrays["renewed"],
                    upsell_accepted=arrays["upsell_accepted"], upsell_declined=arrays["upsell_declined"]), counts


def train_from_database(
    *, seed: int = 0, horizon_days: int = 365, as_of: datetime | None = None, purpose: str | None = None,
    config: ModelConfig | None = None, progress: Callable[[str], None] | None = None,
) -> TrainingResult:
    def say(text: str) -> None:
        if progress is not None:
            progress(text)

    cfg = config or configured_model_config()
    purpose = purpose or training_purpose()
    now = as_of or timezone.now()
    h = int(horizon_days)
    if h < 7:
        raise Unprocessable("The horizon must be at least 7 days.")
    say("selecting consented customers")
    ids = consented_customers(purpose=purpose, seed=seed, limit=max_training_customers())
    if len(ids) < 20:
        raise Unprocessable("Too few customers with consent to train on (need at least 20).", code="too_little_data")
    first, _ = aggregates.fact_time_range()
    if first is None:
        raise Unprocessable("There are no facts (orders, tickets, ...) to train on. For a CRM table with a churn "
                            "flag, train with `manage.py train --from-attributes --label <column>`.",
                            code="too_little_data")
    first_day = 0
    now_day = int((now - first).total_seconds() // 86400)
    requested = h
    h = fitted_horizon(history_days=now_day, horizon_days=h, cfg=cfg)
    if h != requested:
        say(f"history of {now_day} days: horizon shortened from {requested} to {h} days")
    cutoffs = planned_cutoffs(now_day=now_day, first_day=first_day, horizon=h, cfg=cfg)
    if not cutoffs:
        raise Unprocessable("The history is shorter than the horizon: no labels can be derived.",
                            code="too_little_data")

    def at(day: int) -> datetime:
        return now - timedelta(days=now_day - day)

    snapshots = []
    for c in cutoffs:
        say(f"features and labels as of cutoff day {c}")
        cols = _columns(ids, at(c))
        out = _outcomes(ids, at(c), at(c) + timedelta(days=h))
        snapshots.append(Snapshot(cutoff=c, X=build_matrix(cols), future_revenue=out["revenue"],
                                  future_orders=out["orders"], future_advocacy=out["advocacy"],
                                  future_new_category=out["new_category"],
                                  eligible=cols[aggregates.KNOWN_COLUMN] > 0))
    say("current features")
    declared = _declared_attributes(ids)
    columns = _columns(ids, now, declared)
    outcomes, outcome_counts = _explicit_outcomes(ids, at(cutoffs[0]), now)
    say("training")
    data = TrainingData(snapshots=snapshots, as_of=now_day, current_X=build_matrix(columns), first_day=first_day,
                        attribute_columns={k: v for k, v in columns.items() if k.startswith(aggregates.ATTRIBUTE_PREFIX)})
    bundle = train_all(data, horizon_days=h, seed=seed, outcomes=outcomes, config=cfg)
    bundle.model_card["quality"] = assess_quality(bundle.metrics, floor=quality_floor())
    current = data.current()
    rank = (np.asarray(bundle.clv.predict(current), dtype=np.float64)
            if bundle.model_card["quality"]["clv"]["status"] == "ok"
            else np.asarray(columns["monetary_total"], dtype=np.float64))  # tiers' naive fallback
    population = reference_from_population(rank, [str(c) for c in ids], source="model:training").to_json()
    card = dict(bundle.model_card)
    card["data_window"] = {
        **card.get("data_window", {}),
        "first_fact_at": first.isoformat(), "as_of_at": now.isoformat(),
        "cutoffs_at": [at(c).isoformat() for c in cutoffs],
        "history_days": now_day, "horizon_requested_days": requested, "horizon_fitted": h != requested,
    }
    card["training_population"] = {
        "customers": len(ids), "purpose": purpose,
        "rule": "live customers allowed by the processing gate for the training purpose at training time",
        "explicit_outcomes": outcome_counts,
    }
    card["score_distribution"] = _distribution(bundle, current)
    card.update(_governance_card(bundle, current, ids, population, snapshots, outcomes, seed=seed))
    return TrainingResult(bundle=bundle, card=card, population=population, customer_ids=ids)


def quality_floor() -> float:
    from scoring.quality import floor_auc

    return floor_auc()


def fitted_horizon(*, history_days: int, horizon_days: int, cfg: ModelConfig) -> int:
    """The horizon training uses: the requested one when the history covers the calibration window
    (``cfg.min_history_days``) plus the horizon, else the longest the history supports (recorded in the model
    card), but never below ``SCORING_MIN_HORIZON_DAYS``: then training refuses, saying how many days of history
    exist and how many are needed."""
    needed = cfg.min_history_days + horizon_days
    if history_days >= needed:
        return horizon_days
    shortest = max(7, int(getattr(settings, "SCORING_MIN_HORIZON_DAYS", 30)))
    fitted = history_days - cfg.min_history_days
    if fitted < shortest:
        raise Unprocessable(
            f"The history covers {max(history_days, 0)} days; training needs at least "
            f"{cfg.min_history_days + shortest} days ({cfg.min_history_days} days of calibration plus a horizon of at "
            f"least {shortest} days), and {needed} days for the requested {horizon_days}-day horizon.",
            code="history_too_short", extra={"history_days": max(history_days, 0),
                                             "needed_days": cfg.min_history_days + shortest,
                                             "needed_days_for_requested_horizon": needed})
    return fitted


def _distribution(bundle: TrainedBundle, X: np.ndarray) -> dict[str, Any]:
    """Reference distributions of CLV and churn (deciles) for drift monitoring (PSI)."""
    from scoring.ml.models import predict_all

    pred = predict_all(bundle, X, explain=False)
    grid = np.linspace(0.0, 1.0, 11)
    return {
        "clv_deciles": [float(v) for v in np.quantile(pred.clv, grid)],
        "churn_deciles": [float(v) for v in np.quantile(pred.churn_probability, grid)],
        "n": int(len(X)),
    }


def train_churn_from_attributes(
    *, label: str, seed: int = 0, purpose: str | None = None, config: ModelConfig | None = None,
) -> TableTrainingResult:
    """Churn model from a CRM import: the declared feature attributes and a label attribute."""
    purpose = purpose or training_purpose()
    ids = consented_customers(purpose=purpose, seed=seed, limit=max_training_customers())
    names = [n for n in aggregates.declared_feature_attributes(customer_ids=ids) if n != label]
    if not names:
        raise Unprocessable("No customer import declared feature attributes.", code="too_little_data")
    table: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(ids), CHUNK):
        part = aggregates.customer_attribute_table(customer_ids=ids[i:i + CHUNK], names=[*names, label])
        for k, v in part.items():
            table.setdefault(k, []).append(v)
    cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in table.items()}
    y_raw = cols.get(label)
    if y_raw is None:
        raise Unprocessable("The label attribute is missing.", code="too_little_data")
    present = np.array([not (v is None or (isinstance(v, float) and np.isnan(v))) for v in y_raw], dtype=bool)
    if present.sum() < 20:
        raise Unprocessable("Too few labelled customers (need at least 20).", code="too_little_data")
    X = np.empty((int(present.sum()), len(names)), dtype=object)
    for j, name in enumerate(names):
        X[:, j] = np.asarray(cols[name], dtype=object)[present]
    y = np.asarray(y_raw, dtype=object)[present]
    y = y.astype(str) if any(isinstance(v, str) for v in y) else y.astype(np.float64).astype(int)
    model = train_churn_from_table(X, y, names, seed=seed, config=config or configured_model_config())
    positives = int(np.sum(np.isin(np.char.lower(np.asarray(y).astype(str)),
                                   ["1", "1.0", "true", "yes", "y", "churned"])))
    horizon = int(getattr(settings, "SCORING_HORIZON_DAYS", 365))
    quality, rank = _table_quality_and_rank(model, names, cols, ids, horizon)
    card = {
        "name": "churn model from CRM attributes",
        "kind": "churn_table",
        "label": label,
        "features": [{"name": n, "source": "crm", "purpose": ATTRIBUTE_PURPOSE} for n in names],
        "special_category_data": "never used (GDPR Art. 9 / 22(4)); attribute names are checked against a denylist",
        "training_population": {"customers": int(present.sum()), "positives": positives, "purpose": purpose},
        "metrics": dict(model.metrics),
        "seed": seed,
        "quality": quality,
        "data_window": {"horizon_days": horizon, "label": "the churn flag as given by the import",
                        "validation": "stratified 25 % holdout"},
        "clv_from_attributes": {
            "monthly_charges": attribute_clv.find_column(names, attribute_clv.MONTHLY_NAMES),
            "rule": "monthly charges x horizon months x (1 - churn probability / 2)",
        },
    }
    population = reference_from_population(rank, [str(c) for c in ids], source="model:training").to_json()
    return TableTrainingResult(model=model, card=card, population=population)


def _table_quality_and_rank(model: ClassifierModel, names: list[str], cols: dict[str, np.ndarray],
                            ids: Sequence[UUID], horizon: int) -> tuple[dict[str, Any], np.ndarray]:
    """Quality of a churn model trained from a CRM table (churn judged on its holdout against the floor and
    the prior rate; the CLV an estimate from the monthly charges, else unavailable; no upsell/advocacy model)
    and the tier rank of the training population (``scoring.ml.attribute_clv``)."""
    quality = assess_quality(model.metrics, floor=quality_floor(), kinds=("churn",))
    quality["churn"]["baseline_method"] = "prior rate (no order history for a recency rank)"
    n = len(ids)
    table = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):
        table[:, j] = np.asarray(cols[name], dtype=object) if name in cols else None
    monthly = attribute_clv.find_column(names, attribute_clv.MONTHLY_NAMES)
    if monthly is not None and quality["churn"]["status"] == "ok":
        quality["clv"] = {
            "metric": "estimate", "value": None, "baseline": None, "baseline_method": "none (not validated)",
            "floor": None, "status": "ok",
            "reason": f"Estimated as {monthly} x {attribute_clv.horizon_months(horizon):.1f} months x (1 - churn "
                      "probability / 2); there are no orders to validate a CLV model against.",
        }
        churn = model.predict_proba(table)
        rank = np.asarray(attribute_clv.estimate(monthly, table[:, names.index(monthly)], churn, horizon).output)
    else:
        quality["clv"] = not_trained("clv", "No order history and no monthly-charges column: the CLV is "
                                            "unavailable and tiers rank by historical spend.",
                                     metric="top_decile_share")
        rank = attribute_clv.naive_spend(names, table, np.zeros(n))
    return quality, np.asarray(rank, dtype=np.float64)


# --------------------------------------------------------------------------- governance (issue 16 §5 §6)


def _governance_card(bundle: TrainedBundle, current: np.ndarray, ids: Sequence[UUID], population: dict[str, Any],
                     snapshots: Sequence[Snapshot], outcomes: Outcomes, *, seed: int) -> dict[str, Any]:
    """Model-card entries for drift monitoring, label provenance and fairness:

    - ``feature_distribution``: per feature, the training population's decile bins (``scoring.drift``);
    - ``feature_importance``: mean |explanation contribution| share per feature (averaged over the models);
    - ``labels``: ``{"explicit": n, "derived": n, "by_kind": ...}`` -- label rows of the final training
      cutoffs that came from explicit outcomes (``POST /api/v1/outcomes``) or were derived from the history;
    - ``fairness``: per audit-only characteristic and group (``scoring.fairness``), decrypted in memory only.
    """
    from profiles.protected import protected_category
    from scoring import drift, fairness
    from scoring.engine import risk_thresholds
    from scoring.ml.tiers import risk_level
    from scoring.population import Reference

    names = [str(n) for n in bundle.feature_names]
    out: dict[str, Any] = {
        "feature_distribution": drift.reference_distribution(current, names),
        "feature_importance": drift.feature_importance(bundle, current, seed=seed),
        "labels": _label_counts(bundle, snapshots, outcomes),
    }
    characteristics = profiles_selectors.audit_characteristics(customer_ids=list(ids))
    for name, values in characteristics.items():  # ages and birth years are reported by band
        if protected_category(name) == "age":
            banded = [fairness.age_band(v, year=timezone.now().year) for v in values]
            if sum(b is not None for b in banded) >= sum(v is not None for v in values) / 2:
                characteristics[name] = banded
    if characteristics:
        rank = np.asarray(bundle.clv.predict(current), dtype=np.float64)
        reference = Reference.from_json(population)
        tiers = reference.tiers_for(rank, [str(c) for c in ids])
        risks = np.asarray(risk_level(bundle.churn.predict_proba(current), risk_thresholds())).tolist()
        out["fairness"] = fairness.fairness_report(
            characteristics, tiers, risks, tier_names=list(reference.tiers),
            min_group=int(getattr(settings, "SCORING_FAIRNESS_MIN_GROUP", 10)))
        del characteristics  # plaintext audit values: in memory only, dropped as soon as the report is made
    else:
        out["fairness"] = {"characteristics": {}, "note": "no audit-only characteristic was imported"}
    return out


def _label_counts(bundle: TrainedBundle, snapshots: Sequence[Snapshot], outcomes: Outcomes) -> dict[str, Any]:
    """Label rows of the final training cutoffs per classifier: explicit (an outcome reported through the API
    overrode or supplied the label, at the most recent cutoff) or derived from the history."""
    from scoring.ml.models import classifier_labels

    window = bundle.model_card.get("data_window") or {}
    final = [int(c) for c in window.get("final_training_cutoffs") or []]
    h = int(window.get("horizon_days") or bundle.horizon_days)
    cfg = configured_model_config()
    names = feature_names()
    by_kind = {k: {"explicit": 0, "derived": 0} for k in ("churn", "upsell", "advocacy")}
    for snap in snapshots:
        if snap.cutoff not in final:
            continue
        n = len(snap.X)
        given = {"churn": outcomes.churn(n) >= 0, "upsell": outcomes.upsell(n) >= 0,
                 "advocacy": outcomes.advocacy(n) >= 0} if snap.cutoff == final[0] else None
        labels = classifier_labels(snap, names, cfg, h, outcomes if given is not None else None)
        for key, (mask, _) in labels.items():
            explicit = int(np.sum(mask & given[key])) if given is not None else 0
            by_kind[key]["explicit"] += explicit
            by_kind[key]["derived"] += int(np.sum(mask)) - explicit
    return {"explicit": sum(v["explicit"] for v in by_kind.values()),
            "derived": sum(v["derived"] for v in by_kind.values()), "by_kind": by_kind}
