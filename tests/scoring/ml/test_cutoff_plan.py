"""``planned_cutoffs``: the labelled snapshots ``scoring.training`` precomputes are exactly the ones the
training plan reads, so training from the database plans the same folds as training from a flat history."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scoring.ml.models import ModelConfig, Snapshot, TrainingData, planned_cutoffs
from scoring.ml.models.evaluation import evaluation_plan
from scoring.ml.synthetic import generate_events

N = 6


def _snapshots(cutoffs: list[int]) -> list[Snapshot]:
    zeros = np.zeros(N)
    return [Snapshot(c, np.zeros((N, 3)), zeros, zeros, zeros) for c in cutoffs]


def _as_tuples(plan):
    folds, final, kind = plan
    return [(f.train, f.val, None if f.split is None else f.split.tolist()) for f in folds], final, kind


@pytest.mark.parametrize(
    ("n_folds", "final_cutoffs", "min_history_days", "fold_step_days"),
    list(itertools.product([1, 3], [1, 2], [0, 180], [None, 45])),
)
def test_snapshots_at_the_planned_cutoffs_give_the_same_plan_as_the_flat_history(
    n_folds, final_cutoffs, min_history_days, fold_step_days
):
    log = generate_events(N, seed=5, days=30)
    cfg = ModelConfig(n_folds=n_folds, final_cutoffs=final_cutoffs, min_history_days=min_history_days,
                      fold_step_days=fold_step_days)
    compared = 0
    for horizon, now_day in itertools.product([30, 180, 365], [400, 900, 2000]):
        if now_day - horizon < min_history_days:
            continue  # the flat-history plan refuses such a short history (planned_cutoffs falls back)
        cutoffs = planned_cutoffs(now_day=now_day, first_day=0, horizon=horizon, cfg=cfg)
        from_history = evaluation_plan(TrainingData(events=log, as_of=now_day, first_day=0), horizon, cfg, 0)
        from_snapshots = evaluation_plan(
            TrainingData(snapshots=_snapshots(cutoffs), as_of=now_day, first_day=0), horizon, cfg, 0
        )
        assert _as_tuples(from_snapshots) == _as_tuples(from_history)
        used = {c for f in from_history[0] for c in (*f.train, f.val)} | set(from_history[1])
        assert used <= set(cutoffs)
        assert cutoffs == sorted(cutoffs, reverse=True)
        compared += 1
    assert compared == (9 if min_history_days == 0 else 8)


def test_planned_cutoffs_are_the_validation_cutoffs_and_each_folds_training_cutoffs():
    # latest = 400 - 100 = 300, step 30: validation at 300 and 270, each trained on the two cutoffs whose
    # label window ends by then (<= 200 and <= 170).
    cfg = ModelConfig(n_folds=2, final_cutoffs=2, min_history_days=0, fold_step_days=30)

    assert planned_cutoffs(now_day=400, first_day=0, horizon=100, cfg=cfg) == [300, 270, 180, 150, 120]


def test_history_shorter_than_the_horizon_plans_no_cutoffs_and_too_short_for_cv_plans_the_latest():
    cfg = ModelConfig(n_folds=2, final_cutoffs=2, min_history_days=180, fold_step_days=30)

    assert planned_cutoffs(now_day=99, first_day=0, horizon=100, cfg=cfg) == []
    assert planned_cutoffs(now_day=150, first_day=0, horizon=100, cfg=cfg) == [50]
