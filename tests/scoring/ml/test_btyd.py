from __future__ import annotations

import numpy as np
import pytest

from scoring.ml.btyd import BetaGeo, GammaGamma, ParetoNBD, customer_lifetime_value


@pytest.fixture(scope="module")
def cdnow_summary():
    pytest.importorskip("lifetimes")
    from scoring.ml.cdnow import CAL_END, load_cdnow, rfm

    return rfm(load_cdnow(), CAL_END)


def test_bgnbd_matches_lifetimes(cdnow_summary) -> None:
    from lifetimes import BetaGeoFitter

    s = cdnow_summary
    ref = BetaGeoFitter().fit(s["x"], s["t_x"], s["T"])
    ours = BetaGeo().fit(s["x"], s["t_x"], s["T"])
    np.testing.assert_allclose(ours.params, ref.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-2)
    for t in (13.0, 39.0):
        np.testing.assert_allclose(
            ours.conditional_expected_number_of_purchases_up_to_time(t, s["x"], s["t_x"], s["T"]),
            np.asarray(ref.conditional_expected_number_of_purchases_up_to_time(t, s["x"], s["t_x"], s["T"])),
            rtol=1e-2,
        )
    np.testing.assert_allclose(
        ours.conditional_probability_alive(s["x"], s["t_x"], s["T"]),
        np.asarray(ref.conditional_probability_alive(s["x"], s["t_x"], s["T"])),
        rtol=1e-2,
    )
    assert ours.expected_number_of_purchases_up_to_time(39.0) == pytest.approx(
        float(ref.expected_number_of_purchases_up_to_time(39.0)), rel=1e-2
    )


def test_gamma_gamma_and_clv_match_lifetimes(cdnow_summary) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    s = cdnow_summary
    rep = s["x"] > 0
    ref = GammaGammaFitter().fit(s["x"][rep], s["monetary"][rep])
    ours = GammaGamma().fit(s["x"], s["monetary"])
    np.testing.assert_allclose(ours.params, ref.params_[["p", "q", "v"]].to_numpy(), rtol=1e-2)
    np.testing.assert_allclose(
        ours.conditional_expected_average_profit(s["x"][rep], s["monetary"][rep]),
        np.asarray(ref.conditional_expected_average_profit(s["x"][rep], s["monetary"][rep])),
        rtol=1e-2,
    )
    bg_ref = BetaGeoFitter().fit(s["x"], s["t_x"], s["T"])
    bg = BetaGeo().fit(s["x"], s["t_x"], s["T"])
    import pandas as pd

    idx = pd.RangeIndex(int(rep.sum()))
    clv_ref = ref.customer_lifetime_value(
        bg_ref,
        pd.Series(s["x"][rep], idx),
        pd.Series(s["t_x"][rep], idx),
        pd.Series(s["T"][rep], idx),
        pd.Series(s["monetary"][rep], idx),
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    clv = customer_lifetime_value(
        bg,
        ours,
        s["x"][rep],
        s["t_x"][rep],
        s["T"][rep],
        s["monetary"][rep],
        months=12,
        discount_rate=0.01,
        units_per_month=4.345,
    )
    np.testing.assert_allclose(clv, clv_ref.to_numpy(), rtol=1e-2)


def test_bgnbd_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(0)
    n, T = 8000, 52.0
    r, alpha, a, b = 0.5, 5.0, 0.8, 2.5
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    for _ in range(200):  # simulate purchase by purchase (vectorized over customers)
        t = t + rng.exponential(1 / lam)
        buy = alive & (t < T)
        x[buy] += 1
        t_x[buy] = t[buy]
        alive &= buy & (rng.random(n) >= p)
        if not alive.any():
            break
    fit = BetaGeo().fit(x, t_x, np.full(n, T))
    np.testing.assert_allclose(fit.params, [r, alpha, a, b], rtol=0.35)
    e = fit.conditional_expected_number_of_purchases_up_to_time(np.array([4.0, 12.0, 52.0]), 3, 40.0, T)
    assert np.all(np.diff(e) > 0)


@pytest.mark.parametrize("as_of", [160, 181])
def test_bgnbd_fit_avoids_spurious_optimum(as_of: int) -> None:
    """At these CDNOW cutoffs an unbounded search drifted to a -> 0, b -> inf, where the likelihood loses
    all precision (forecasts of ~1e16); the bounded two-start fit must find lifetimes' optimum."""
    pytest.importorskip("lifetimes")
    from lifetimes import BetaGeoFitter

    from scoring.ml.cdnow import load_cdnow, rfm

    s = rfm(load_cdnow(), as_of)
    ref = BetaGeoFitter().fit(s["x"], s["t_x"], s["T"])
    ours = BetaGeo().fit(s["x"], s["t_x"], s["T"])
    np.testing.assert_allclose(ours.params, ref.params_[["r", "alpha", "a", "b"]].to_numpy(), rtol=1e-2)
    assert BetaGeo.log_likelihood(ours.params, s["x"], s["t_x"], s["T"]).sum() == pytest.approx(
        BetaGeo.log_likelihood(
            ref.params_[["r", "alpha", "a", "b"]].to_numpy(), s["x"], s["t_x"], s["T"]
        ).sum(),
        abs=1e-3,
    )


def test_conditional_tail_probabilities_match_expectation(cdnow_summary) -> None:
    s = cdnow_summary
    bg = BetaGeo().fit(s["x"], s["t_x"], s["T"])
    tail = bg.conditional_tail_probabilities(39.0, s["x"], s["t_x"], s["T"], max_count=400)
    assert tail.shape == (len(s["x"]), 400)
    assert np.all((tail >= 0) & (tail <= 1))
    assert np.all(np.diff(tail, axis=1) <= 1e-15)  # P(Y >= k) is non-increasing in k
    alive = bg.conditional_probability_alive(s["x"], s["t_x"], s["T"])
    assert np.all(tail[:, 0] <= alive + 1e-12)  # buying again needs being alive
    # E[Y] = sum_k P(Y >= k) reproduces the closed-form conditional expectation (FHL 2005, eq. 10)
    expected = bg.conditional_expected_number_of_purchases_up_to_time(39.0, s["x"], s["t_x"], s["T"])
    np.testing.assert_allclose(tail.sum(axis=1), expected, rtol=1e-6, atol=1e-9)
    # and a one-customer call agrees with the vectorized one
    one = bg.conditional_tail_probabilities(39.0, s["x"][5], s["t_x"][5], s["T"][5], max_count=400)
    np.testing.assert_allclose(one[0], tail[5])


@pytest.mark.parametrize("as_of", [160, 272])
def test_pareto_nbd_matches_lifetimes(as_of: int) -> None:
    """Day 160 has a large drop-out shape (s ~ 15) and alpha < beta; day 272 (end of calibration) the
    textbook fit (r, alpha, s, beta ~ 0.55, 10.6, 0.61, 11.7 weeks)."""
    pytest.importorskip("lifetimes")
    from lifetimes import ParetoNBDFitter

    from scoring.ml.cdnow import load_cdnow, rfm

    s = rfm(load_cdnow(), as_of)
    x, t_x, T = s["x"], s["t_x"], s["T"]
    ref = ParetoNBDFitter().fit(x, t_x, T)
    ref_params = ref.params_[["r", "alpha", "s", "beta"]].to_numpy()
    ours = ParetoNBD().fit(x, t_x, T)
    np.testing.assert_allclose(ours.params, ref_params, rtol=1e-3)
    # our log-likelihood is lifetimes' (eq. 18), and our optimum is at least as good as its
    np.testing.assert_allclose(
        ParetoNBD.log_likelihood(ref_params, x, t_x, T),
        np.asarray(ParetoNBDFitter._conditional_log_likelihood(ref_params, x, t_x, T)),
        rtol=1e-10,
    )
    assert ParetoNBD.log_likelihood(ours.params, x, t_x, T).sum() >= (
        ParetoNBD.log_likelihood(ref_params, x, t_x, T).sum() - 1e-6
    )
    for t in (13.0, 39.0):
        np.testing.assert_allclose(
            ours.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            np.asarray(ref.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)),
            rtol=1e-3,
        )
    np.testing.assert_allclose(
        ours.conditional_probability_alive(x, t_x, T),
        np.asarray(ref.conditional_probability_alive(x, t_x, T)),
        atol=1e-4,
    )


def test_pareto_nbd_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(1)
    n, T = 8000, 52.0
    r, alpha, s, beta = 0.6, 4.0, 0.8, 12.0
    lam = rng.gamma(r, 1 / alpha, n)
    lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n))
    end = np.minimum(lifetime, T)
    x = rng.poisson(lam * end).astype(np.float64)
    # given x purchases in (0, end], they are uniform there: the last is the max of x uniforms
    t_x = np.where(x > 0, end * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    fit = ParetoNBD().fit(x, t_x, np.full(n, T))
    np.testing.assert_allclose(fit.params, [r, alpha, s, beta], rtol=0.35)
    # a customer who bought often and recently is more likely alive, and expects more, than one who
    # bought as often but long ago
    recent = fit.conditional_probability_alive(5, 50.0, T)
    lapsed = fit.conditional_probability_alive(5, 10.0, T)
    assert 0 < lapsed < recent <= 1
    e = fit.conditional_expected_number_of_purchases_up_to_time(np.array([4.0, 12.0, 52.0]), 5, 50.0, T)
    assert np.all(np.diff(e) > 0)
    assert fit.conditional_expected_number_of_purchases_up_to_time(12.0, 5, 10.0, T) < e[1]
