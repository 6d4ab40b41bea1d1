"""Shared small synthetic fixtures for the ML core tests (no database needed)."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.ml.features import EventLog, feature_matrix
from scoring.ml.models import ModelConfig, TrainedBundle, TrainingData, train_all
from scoring.ml.synthetic import generate_events

SMALL = ModelConfig(
    rf_trees=15, rf_max_depth=6, gb_trees=15, clf_trees=15, n_folds=2, calibration_cv=2, max_train_rows=3000
)
HORIZON = 180


@pytest.fixture(scope="session")
def small_log() -> EventLog:
    return generate_events(1000, seed=3, days=900)


@pytest.fixture(scope="session")
def small_bundle(small_log: EventLog) -> TrainedBundle:
    return train_all(TrainingData(events=small_log), horizon_days=HORIZON, seed=0, config=SMALL)


@pytest.fixture(scope="session")
def current_X(small_log: EventLog) -> np.ndarray:
    return feature_matrix(small_log, small_log.last_day())
