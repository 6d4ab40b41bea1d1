"""Training, temporal validation and vectorized prediction of all scoring models, one module per family.

Labels come from the history itself: features are computed as of a cutoff day ``c`` and targets
from the window ``(c, c + horizon]``. Temporal cross-validation: for fold j the validation cutoff is
``v_j = as_of - horizon - j * step`` and the models are trained on cutoffs ``<= v_j - horizon``, so no
training label overlaps a validation window. The served models are refitted on the most recent
labelled cutoffs; BTYD and the segments are fitted on the features as of ``as_of``.

Models: CLV (BTYD vs random forest vs gradient boosting vs a BTYD/ML blend, chosen by holdout RMSE),
churn / upsell / advocacy (gradient boosting + sigmoid calibration, ``ensemble=False``) and KMeans
segments. Every served model has an exact additive explanation (:mod:`scoring.ml.explain`).

- ``data``: configuration, training data and snapshots, explicit outcomes (shared);
- ``value``: the CLV family (BTYD, tree regressors, the blend, the prospect model);
- ``trees``: calibrated tree classifiers and the CRM-table churn model;
- ``segments``: k-means segments;
- ``evaluation``: metrics, the activation rule, baselines, labels, temporal folds and cutoffs (shared);
- ``bundle``: the trained bundle and vectorized prediction with explanations;
- ``training``: ``train_all`` and the model card.

Stored model files hold plain dicts and scikit-learn objects (``scoring.ml.registry_io``), so they load
whatever module a class lives in (``tests/scoring/ml/test_stored_models.py`` loads files written before
the split). The public names are re-exported here.
"""

from .bundle import Predictions, TrainedBundle, predict_all
from .data import CLV_CANDIDATES, ModelConfig, Outcomes, Snapshot, TrainingData
from .evaluation import (
    ACTIVATION_METRICS,
    classifier_labels,
    expected_calibration_error,
    is_better,
    mae,
    planned_cutoffs,
    rmse,
    top_share,
    worse_metrics,
)
from .segments import SEGMENT_COLUMNS, SEGMENT_NAMES, SegmentModel, fit_segments, name_segments
from .training import train_all
from .trees import ClassifierModel, TableEncoder, fit_classifier, train_churn_from_table
from .value import MIN_PROSPECT_ROWS, ValueModel

__all__ = [
    "ACTIVATION_METRICS",
    "CLV_CANDIDATES",
    "ClassifierModel",
    "MIN_PROSPECT_ROWS",
    "ModelConfig",
    "Outcomes",
    "Predictions",
    "SEGMENT_COLUMNS",
    "SEGMENT_NAMES",
    "SegmentModel",
    "Snapshot",
    "TableEncoder",
    "TrainedBundle",
    "TrainingData",
    "ValueModel",
    "classifier_labels",
    "expected_calibration_error",
    "fit_classifier",
    "fit_segments",
    "is_better",
    "mae",
    "name_segments",
    "planned_cutoffs",
    "predict_all",
    "rmse",
    "top_share",
    "train_all",
    "train_churn_from_table",
    "worse_metrics",
]
