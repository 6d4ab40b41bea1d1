"""Training every model of a bundle: temporal cross-validation, candidate selection, the model card."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy
import sklearn

from ..btyd import fit_btyd_value
from ..features import (
    FEATURES,
    attribute_feature_names,
    feature_spec,
)
from ..quality import assess as assess_quality
from .bundle import TrainedBundle
from .data import CLV_CANDIDATES, ModelConfig
from .evaluation import (
    baseline_metrics,
    classifier_labels,
    evaluation_plan,
    folds_stack,
    mae,
    nanmean,
    rmse,
    subsample,
    top_share,
)
from .segments import SEGMENT_COLUMNS, fit_segments
from .trees import classifier_metrics, fit_classifier, fit_regressor
from .value import ValueModel, fit_prospect

if TYPE_CHECKING:
    from .data import Outcomes, Snapshot, TrainingData
    from .segments import SegmentModel


def train_all(
    data: TrainingData,
    *,
    horizon_days: int = 365,
    seed: int = 0,
    outcomes: Outcomes | None = None,
    config: ModelConfig | None = None,
) -> TrainedBundle:
    """Temporal CV, model selection and final fit of all models. Deterministic for a fixed seed."""
    t0 = time.perf_counter()
    cfg = config or ModelConfig()
    names = data.feature_names()
    h = int(horizon_days)
    folds, final_cutoffs, cv_kind = evaluation_plan(data, h, cfg, seed)
    override_cutoff = final_cutoffs[0]

    def snap_labels(c: int) -> tuple[Snapshot, dict[str, tuple[np.ndarray, np.ndarray]]]:
        s = data.snapshot(c, h)
        return s, classifier_labels(s, names, cfg, h, outcomes if c == override_cutoff else None)

    clv_scores: dict[str, list[dict[str, float]]] = {k: [] for k in CLV_CANDIDATES}
    clf_scores: dict[str, list[dict[str, float]]] = {k: [] for k in ("churn", "upsell", "advocacy")}
    fold_cards = []
    clv_baselines: list[float] = []
    for fold in folds:
        pairs = [snap_labels(c) for c in fold.train]
        vsnap, vlab = snap_labels(fold.val)
        train_rows = [None if fold.split is None else ~fold.split for _ in pairs]
        Xtr, ytr = folds_stack([p[0] for p in pairs], [p[1] for p in pairs], None, train_rows)
        keep = subsample(len(Xtr), cfg.max_train_rows, seed)
        vmask = vsnap.mask() if fold.split is None else vsnap.mask() & fold.split
        Xva, yva = vsnap.X[vmask], vsnap.future_revenue[vmask]
        preds: dict[str, np.ndarray] = {}
        for kind in ("random_forest", "gradient_boosting"):
            preds[kind] = fit_regressor(kind, Xtr[keep], ytr[keep], cfg, seed).predict(Xva)
        btyd = fit_btyd_value(vsnap.X[vsnap.mask()], names, h, seed=seed)  # unsupervised, data up to v only
        preds["btyd"] = btyd.predict(Xva)
        best_ml = min(("random_forest", "gradient_boosting"), key=lambda k: rmse(yva, preds[k]))
        preds["blend"] = cfg.blend_weight * preds["btyd"] + (1 - cfg.blend_weight) * preds[best_ml]
        for kind, p in preds.items():
            clv_scores[kind].append(
                {"rmse": rmse(yva, p), "mae": mae(yva, p), "top_decile_share": top_share(yva, p)}
            )
        # naive baseline of the CLV ranking on the same validation rows: historical spend
        clv_baselines.append(top_share(yva, Xva[:, names.index("monetary_total")]))
        for key in clf_scores:
            Xc, yc = folds_stack([p[0] for p in pairs], [p[1] for p in pairs], key, train_rows)
            keep_c = subsample(len(Xc), cfg.max_train_rows, seed)
            model = fit_classifier(key, Xc[keep_c], yc[keep_c], names, cfg, seed)
            m, y = vlab[key]
            m = m if fold.split is None else m & fold.split
            scores = classifier_metrics(model, vsnap.X[m], y[m])
            scores.update(baseline_metrics(key, vsnap.X[m], y[m], yc[keep_c], names))
            clf_scores[key].append(scores)
        fold_cards.append(
            {
                "train_cutoffs": fold.train,
                "validation_cutoff": fold.val,
                "validation_customers": int(vmask.sum()),
            }
        )

    def mean(rows: list[dict[str, float]], k: str) -> float:
        vals = [r[k] for r in rows if np.isfinite(r[k])]
        return float(np.mean(vals)) if vals else float("nan")

    clv_rmse = {k: mean(v, "rmse") for k, v in clv_scores.items()}
    served = min(
        CLV_CANDIDATES,
        key=lambda k: (clv_rmse[k] if np.isfinite(clv_rmse[k]) else np.inf, CLV_CANDIDATES.index(k)),
    )
    metrics: dict[str, float] = {
        "clv_rmse": clv_rmse[served],
        "clv_mae": mean(clv_scores[served], "mae"),
        "clv_top_decile_share": mean(clv_scores[served], "top_decile_share"),
        "churn_auc": mean(clf_scores["churn"], "auc"),
        "churn_brier": mean(clf_scores["churn"], "brier"),
        "churn_ece": mean(clf_scores["churn"], "ece"),
        "upsell_auc": mean(clf_scores["upsell"], "auc"),
        "advocacy_auc": mean(clf_scores["advocacy"], "auc"),
        # naive baselines on the same validation windows (scoring.ml.quality compares them)
        "clv_baseline_top_decile_share": nanmean(clv_baselines),
        "churn_baseline_auc": mean(clf_scores["churn"], "baseline_auc"),
        "churn_prior_brier": mean(clf_scores["churn"], "prior_brier"),
        "upsell_brier": mean(clf_scores["upsell"], "brier"),
        "upsell_prior_brier": mean(clf_scores["upsell"], "prior_brier"),
        "advocacy_brier": mean(clf_scores["advocacy"], "brier"),
        "advocacy_prior_brier": mean(clf_scores["advocacy"], "prior_brier"),
    }
    for kind in CLV_CANDIDATES:
        metrics[f"clv_rmse_{kind}"] = clv_rmse[kind]

    # ---- final fit on the most recent labelled cutoffs (served models)
    pairs = [snap_labels(c) for c in final_cutoffs]
    current = data.current()
    Xtr, ytr = folds_stack([p[0] for p in pairs], [p[1] for p in pairs], None, [None] * len(pairs))
    keep = subsample(len(Xtr), cfg.max_train_rows, seed)
    btyd_final = fit_btyd_value(current, names, h, seed=seed) if served in ("btyd", "blend") else None
    estimator = None
    weight = 1.0 if served == "btyd" else (cfg.blend_weight if served == "blend" else 0.0)
    if served != "btyd":
        ml_kind = (
            served
            if served != "blend"
            else min(("random_forest", "gradient_boosting"), key=lambda k: clv_rmse[k])
        )
        estimator = fit_regressor(ml_kind, Xtr[keep], ytr[keep], cfg, seed)
    clv = ValueModel(served, h, names, estimator, btyd_final, weight,
                     fit_prospect([p[0] for p in pairs], names, cfg, seed))
    classifiers = {}
    for key in ("churn", "upsell", "advocacy"):
        Xc, yc = folds_stack([p[0] for p in pairs], [p[1] for p in pairs], key, [None] * len(pairs))
        keep_c = subsample(len(Xc), cfg.max_train_rows, seed)
        classifiers[key] = fit_classifier(key, Xc[keep_c], yc[keep_c], names, cfg, seed)
        classifiers[key].metrics = {k: mean(clf_scores[key], k) for k in ("auc", "brier", "ece")}
    segments = fit_segments(current, names, cfg.n_segments, seed)
    seconds = time.perf_counter() - t0
    card = _model_card(
        data,
        h,
        seed,
        cfg,
        cv_kind,
        fold_cards,
        final_cutoffs,
        served,
        clv_scores,
        metrics,
        seconds,
        len(Xtr),
        segments,
    )
    card["quality"] = assess_quality(metrics, floor=cfg.quality_floor_auc)
    return TrainedBundle(
        clv,
        classifiers["churn"],
        classifiers["upsell"],
        classifiers["advocacy"],
        segments,
        metrics,
        card,
        names,
        h,
    )


def _model_card(
    data: TrainingData,
    h: int,
    seed: int,
    cfg: ModelConfig,
    cv_kind: str,
    folds: list[dict[str, Any]],
    final_cutoffs: list[int],
    served: str,
    clv_scores: dict[str, list[dict[str, float]]],
    metrics: dict[str, float],
    seconds: float,
    n_rows: int,
    segments: SegmentModel,
) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    candidates = {
        k: {m: float(np.mean([r[m] for r in rows])) for m in ("rmse", "mae", "top_decile_share")}
        for k, rows in clv_scores.items()
    }
    return clean(
        {
            "name": "privacy-scoring customer models",
            "data_window": {
                "first_day": data.start(),
                "as_of": data.now(),
                "horizon_days": h,
                "cross_validation": cv_kind,
                "folds": folds,
                "final_training_cutoffs": final_cutoffs,
            },
            "n_customers": data.n_customers,
            "n_training_rows": n_rows,
            "features": [
                {"name": s.name, "source": s.source, "unit": s.unit, "label": s.label, "purpose": s.purpose}
                for s in (*FEATURES, *map(feature_spec, attribute_feature_names(data.attributes)))
            ],
            "attribute_encoding": [a.to_json() for a in data.attributes],
            "attribute_history": "CRM attributes have no history: the current value is used at every training "
            "cutoff (an attribute that changes over time, such as a contract status, can leak the outcome)",
            "special_category_data": "never used (GDPR Art. 9 / 22(4)); CRM attributes are checked against a denylist",
            "models": {
                "clv": {
                    "served": served,
                    "target": "net revenue (returns excluded) in (cutoff, cutoff + horizon]",
                    "candidates": candidates,
                    "selection": "lowest mean temporal-holdout RMSE",
                },
                "churn": {
                    "label": "no order in the horizon (explicit churned/renewed outcomes override)",
                    "model": "GradientBoostingClassifier + CalibratedClassifierCV(sigmoid, ensemble=False)",
                },
                "upsell": {
                    "label": f"horizon revenue > (1 + {cfg.upsell_margin}) x calibration-period average, or a "
                    "kept order in a product category the customer had not ordered from before "
                    "(explicit accepted/declined override)"
                },
                "advocacy": {
                    "label": "referral, NPS >= 9 or review rating >= 4 in the horizon (explicit referral overrides)"
                },
                "segments": {
                    "model": f"KMeans(k={segments.kmeans.n_clusters}) on standardized log1p {SEGMENT_COLUMNS}",
                    "names": list(segments.names),
                },
            },
            "explanations": {
                "clv": "exact additive contributions in currency (tree path decomposition; Shapley over BTYD inputs)",
                "classifiers": "shown in points of the 0-100 probability scale (exact allocation of p - p_base "
                "proportional to log-odds contributions); log-odds contributions kept as well",
            },
            "metrics": metrics,
            "training_seconds": seconds,
            "seed": seed,
            "config": asdict(cfg),
            "versions": {
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "python": platform.python_version(),
            },
        }
    )
