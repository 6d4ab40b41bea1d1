from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestRegressor

from scoring.ml.btyd import fit_btyd_value
from scoring.ml.explain import contributions, explain, format_contribution, shapley_values
from scoring.ml.features import feature_matrix, feature_names, window_outcomes
from scoring.ml.models import ValueModel

NAMES = feature_names()


@pytest.fixture(scope="module")
def data(small_log):
    X = feature_matrix(small_log, 600)
    w = window_outcomes(small_log, 600, 780)
    rows = np.random.default_rng(0).choice(len(X), 200, replace=False)
    return X, w.revenue, w.orders == 0, rows


def _check(c, expected_output) -> None:
    assert c.values.shape == (len(expected_output), len(NAMES))
    np.testing.assert_allclose(c.baseline + c.values.sum(axis=1), c.output, rtol=0, atol=1e-6)
    np.testing.assert_allclose(c.output, expected_output, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestRegressor(n_estimators=30, max_depth=7, min_samples_leaf=5, random_state=0),
        lambda: GradientBoostingRegressor(n_estimators=30, subsample=0.8, random_state=0),
    ],
)
def test_tree_regressors_exact(data, make) -> None:
    X, y, _, rows = data
    model = make().fit(X, y)
    c = contributions(model, X[rows], NAMES)
    _check(c, model.predict(X[rows]))
    assert c.baseline[0] == pytest.approx(np.mean(model.predict(X)), rel=0.2)  # expected value at the root


@pytest.mark.parametrize("ensemble", [False, True])
def test_calibrated_classifier_exact_in_points_and_log_odds(data, ensemble) -> None:
    X, _, y, rows = data
    cal = CalibratedClassifierCV(
        GradientBoostingClassifier(n_estimators=30, random_state=0), method="sigmoid", cv=3, ensemble=ensemble
    ).fit(X, y)
    c = contributions(cal, X[rows], NAMES)
    assert c.unit == "points"
    _check(c, 100 * cal.predict_proba(X[rows])[:, 1])
    if not ensemble:  # one sigmoid: log-odds contributions add up to logit(p) - logit(p_base)
        p = cal.predict_proba(X[rows])[:, 1]
        np.testing.assert_allclose(
            c.log_odds_baseline + c.log_odds.sum(axis=1), np.log(p / (1 - p)), atol=1e-6
        )
        assert np.all(np.sign(c.log_odds) == np.sign(c.values))


def test_btyd_shapley_exact_and_blend(data) -> None:
    X, y, _, rows = data
    btyd = fit_btyd_value(X, NAMES, 180)
    c = contributions(btyd, X[rows], NAMES)
    _check(c, btyd.predict(X[rows]))
    used = [NAMES.index(n) for n in ("frequency", "recency_days", "tenure_days", "monetary_avg")]
    assert np.all(np.delete(c.values, used, axis=1) == 0)
    rf = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(X, y)
    blend = ValueModel("blend", 180, NAMES, rf, btyd, 0.5)
    _check(blend.contributions(X[rows]), blend.predict(X[rows]))


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=5), st.integers(min_value=0, max_value=10_000))
def test_shapley_efficiency_property(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(7, m))
    base = rng.normal(size=m)
    w = rng.normal(size=(m, m))

    def f(v: np.ndarray) -> np.ndarray:
        return np.tanh(v @ w).sum(axis=1) + np.prod(v, axis=1)

    b0, phi, out = shapley_values(f, z, base)
    np.testing.assert_allclose(b0 + phi.sum(axis=1), out, atol=1e-9)
    np.testing.assert_allclose(out, f(z), atol=1e-12)


def test_explanations_sorted_truncated_and_worded(data) -> None:
    X, _, y, rows = data
    cal = CalibratedClassifierCV(
        GradientBoostingClassifier(n_estimators=20, random_state=0), method="sigmoid", cv=3, ensemble=False
    ).fit(X, y)
    full = explain(cal, X[rows[:20]], NAMES, top_k=None)
    top = explain(cal, X[rows[:20]], NAMES, top_k=5)
    for e_full, e_top in zip(full, top, strict=True):
        assert len(e_full.contributions) == len(NAMES) and len(e_top.contributions) == 5
        mags = [abs(c) for _, _, c in e_full.contributions]
        assert mags == sorted(mags, reverse=True)
        assert e_full.baseline + sum(c for _, _, c in e_full.contributions) == pytest.approx(
            e_full.output, abs=1e-6
        )
        assert e_top.baseline + sum(c for _, _, c in e_top.contributions) + e_top.remainder == pytest.approx(
            e_top.output, abs=1e-6
        )
        words = e_top.to_words()
        assert len(words) == 5 and all("points)" in w for w in words)


def test_to_words_format() -> None:
    from scoring.ml.explain import Explanation

    e = Explanation(
        50.0, 59.0, [("orders_90d", 7.0, 18.2), ("escalations", 3.0, -9.2), ("nps_last", -1.0, 0.0)], "points"
    )
    assert e.to_words() == [
        "orders in last 90 days: 7 (+18 points)",
        "support escalations: 3 (\u22129 points)",
        "last NPS answer (0-10): not answered (+0 points)",
    ]
    assert format_contribution(-1234.5, "currency") == "\u22121,234.50"
