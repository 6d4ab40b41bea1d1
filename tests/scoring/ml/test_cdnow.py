from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lifetimes")

from scoring.ml.cdnow import CAL_END, HOLDOUT_END, evaluate_cdnow, load_cdnow  # noqa: E402


def test_cdnow_loads() -> None:
    data = load_cdnow()
    assert data.n_customers == 2357
    assert len(np.unique(data.customer)) == 2357
    holdout = (data.day > CAL_END) & (data.day <= HOLDOUT_END)
    assert int(holdout.sum()) == 1882
    assert data.day.min() == 0 and data.day.max() == HOLDOUT_END


@pytest.fixture(scope="module")
def results() -> dict:
    return evaluate_cdnow(seed=0)


def test_cdnow_metrics(results) -> None:
    assert results["n_customers"] == 2357 and results["actual_total"] == 1882
    ours, ref = results["ours"], results["lifetimes_bgnbd"]
    for key in ("rmse", "mae", "predicted_total", "top10_revenue_share", "fit_seconds"):
        assert np.isfinite(ours[key]) and np.isfinite(ref[key])
    # reference BG/NBD figures (and our own BG/NBD implementation reproduces them)
    assert ref["rmse"] == pytest.approx(1.608, abs=2e-3)
    assert ref["predicted_total"] == pytest.approx(1653, abs=2)
    assert ref["top10_revenue_share"] == pytest.approx(0.502, abs=2e-3)
    assert results["ours_bgnbd"]["rmse"] == pytest.approx(ref["rmse"], rel=1e-3)


def test_cdnow_served_model_beats_bgnbd_on_rmse_and_total(results) -> None:
    # Achieved with the fixed seed; MAE and top-decile capture are NOT better (see module docstring).
    assert results["beats_bgnbd"]["rmse"]
    assert results["beats_bgnbd"]["total"]
