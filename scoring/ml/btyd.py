"""Buy-till-you-die baselines: BG/NBD (Fader, Hardie & Lee 2005), Pareto/NBD (Schmittlein, Morrison &
Colombo 1987) and the Gamma-Gamma spend model.

Pure numpy/scipy, fitted by maximum likelihood; formulas follow the papers (and match the
``lifetimes`` package, which the tests use as a reference). Inputs are vectorized:
``frequency`` = repeat transactions x, ``recency`` = age at last purchase t_x, ``T`` = age now,
all in one time unit (days or weeks; parameters are in that unit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

ArrayLike = np.ndarray | float
_LOG_BOUND = 12.0  # |log parameter| search bound of the BG/NBD fit


def _minimize(fun, x0: np.ndarray) -> np.ndarray:
    """Robust MLE on log-parameters: Nelder-Mead start, BFGS polish."""
    res = optimize.minimize(
        fun,
        x0,
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000, "maxfev": 8000},
    )
    res2 = optimize.minimize(fun, res.x, method="BFGS", options={"gtol": 1e-8, "maxiter": 500})
    best = res2.x if np.isfinite(res2.fun) and res2.fun <= res.fun else res.x
    if not np.all(np.isfinite(best)):
        raise RuntimeError("BTYD maximum likelihood did not converge")
    return best


def _fit_purchase_process(
    log_likelihood: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray | None,
    *,
    penalizer: float = 0.0,
    second_start: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """The maximum-likelihood fit both purchase processes (BG/NBD, Pareto/NBD) share: time rescaled so that
    max(T) = 1, the weighted mean negative log-likelihood on bounded log-parameters (plus an optional L2
    penalty), a unit start and, when ``second_start`` is given and the first search ends near the bound, a
    second start keeping the better optimum. Returns the parameters (time ones in rescaled units) and the
    scale (divide the time parameters by it)."""
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    scale = 1.0 / max(float(T.max()), 1e-12)
    t_x, T_s = np.asarray(recency, dtype=np.float64) * scale, T * scale
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    wsum = w.sum()

    def nll(log_p: np.ndarray) -> float:
        # Bounded log-parameters: near a -> 0, b -> inf the likelihood loses all precision and a
        # naive search "finds" spurious optima there (seen on CDNOW at some cutoffs).
        if not np.all(np.abs(log_p) <= _LOG_BOUND):
            return 1e100
        p = np.exp(log_p)
        val = -(w * log_likelihood(p, x, t_x, T_s)).sum() / wsum
        if penalizer:
            val = val + penalizer * float(np.sum(p**2))
        return float(val) if np.isfinite(val) else 1e100

    best = _minimize(nll, np.zeros(4))
    if second_start is not None and np.max(np.abs(best)) > _LOG_BOUND - 2.0:
        other = _minimize(nll, np.log(second_start))
        best = other if nll(other) < nll(best) else best
    return np.exp(best), scale


@dataclass
class BetaGeo:
    """BG/NBD model; parameters ``r, alpha, a, b`` (alpha in the time unit of the fit data)."""

    r: float = 1.0
    alpha: float = 1.0
    a: float = 1.0
    b: float = 1.0

    @property
    def params(self) -> np.ndarray:
        return np.array([self.r, self.alpha, self.a, self.b])

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood (FHL 2005, eq. 6)."""
        r, alpha, a, b = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore"):
            a4 = np.where(
                x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    def fit(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray | None = None,
        penalizer: float = 0.0,
    ) -> BetaGeo:
        """Maximum-likelihood fit (time rescaled so that max(T) = 1 for conditioning)."""
        # Unit start; if that ends at the search bound (the degenerate no-drop-out corner), a second start
        # (short-lifetime / slow-buyer prior) and keep the better optimum. Interior fits cost one search.
        (r, alpha, a, b), scale = _fit_purchase_process(
            self.log_likelihood, frequency, recency, T, weights, penalizer=penalizer,
            second_start=np.array([0.5, 0.2, 1.0, 3.0]),
        )
        self.r, self.alpha, self.a, self.b = float(r), float(alpha / scale), float(a), float(b)
        return self

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units (FHL 2005, eq. 10)."""
        r, alpha, a, b = self.params
        x = np.asarray(frequency, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        t_x = np.asarray(recency, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        _a, _b, _c = r + x, b + x, a + b + x - 1
        z = t / (alpha + T + t)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ln_h = np.log(special.hyp2f1(_a, _b, _c, z))
            alt = np.log(special.hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z)
            ln_h = np.where(np.isfinite(ln_h), ln_h, alt)
            first = (
                (a + b + x - 1)
                / (a - 1)
                * (1 - np.exp(ln_h + (r + x) * np.log((alpha + T) / (alpha + t + T))))
            )
            second = 1 + (x > 0) * (a / np.maximum(b + x - 1, 1e-300)) * ((alpha + T) / (alpha + t_x)) ** (
                r + x
            )
        return first / second

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(alive | x, t_x, T)."""
        r, alpha, a, b = self.params
        x = np.asarray(frequency, dtype=np.float64)
        t_x = np.asarray(recency, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        with np.errstate(divide="ignore", over="ignore"):
            log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
                a / np.maximum(b + x - 1, 1e-300)
            )
        return np.where(x == 0, 1.0, special.expit(-log_div))

    def conditional_tail_probabilities(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, max_count: int = 80
    ) -> np.ndarray:
        """P(Y(t) >= k | x, t_x, T) for k = 1..max_count, shape (n, max_count).

        Given alive, lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x) independently; the future
        count is min(N, G) with N | lambda ~ Poisson(lambda t) and G ~ Geometric(p) on {1, 2, ...}
        (drop-out after a purchase), so P(Y >= k | alive) = P(N >= k) E[(1 - p)^(k - 1)] with N
        negative binomial. Summing over k gives :meth:`conditional_expected_number_of_purchases_up_to_time`.
        """
        r, alpha, a, b = self.params
        x = np.atleast_1d(np.asarray(frequency, dtype=np.float64))
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        alive = self.conditional_probability_alive(x, recency, T)
        k = np.arange(1, int(max_count) + 1, dtype=np.float64)[None, :]
        n_ge_k = stats.nbinom.sf(k - 1, (r + x)[:, None], ((alpha + T) / (alpha + T + t))[:, None])
        survive = np.exp(special.betaln(a, (b + x)[:, None] + k - 1) - special.betaln(a, (b + x)[:, None]))
        return np.atleast_1d(alive)[:, None] * n_ge_k * survive

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> np.ndarray:
        """E[X(t)] for a new customer."""
        r, alpha, a, b = self.params
        t = np.asarray(t, dtype=np.float64)
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)


@dataclass
class ParetoNBD:
    """Pareto/NBD model; parameters ``r, alpha`` (purchase rate ~ Gamma) and ``s, beta`` (drop-out rate
    ~ Gamma), alpha and beta in the time unit of the fit data. Unlike BG/NBD a customer can drop out at
    any time, not only right after a purchase. Formulas from Fader & Hardie, "A Note on Deriving the
    Pareto/NBD Model and Related Expressions" (2005), eq. 18-20, 36-37 and 41.
    """

    r: float = 1.0
    alpha: float = 1.0
    s: float = 1.0
    beta: float = 1.0

    @property
    def params(self) -> np.ndarray:
        return np.array([self.r, self.alpha, self.s, self.beta])

    @staticmethod
    def _log_a0(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """log A_0 (eq. 19/20), by whichever of alpha, beta is larger; the difference of the two terms is
        taken in log space."""
        r, alpha, s, beta = params
        hi, lo = max(alpha, beta), min(alpha, beta)
        b = s + 1.0 if alpha >= beta else r + x
        rsx = r + s + x
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            l1 = np.log(special.hyp2f1(rsx, b, rsx + 1.0, (hi - lo) / (hi + t_x))) - rsx * np.log(hi + t_x)
            l2 = np.log(special.hyp2f1(rsx, b, rsx + 1.0, (hi - lo) / (hi + T))) - rsx * np.log(hi + T)
            return l1 + np.log1p(-np.exp(l2 - l1))

    @classmethod
    def log_likelihood(cls, params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood (eq. 18)."""
        r, alpha, s, beta = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive_now = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            gone = np.log(s) - np.log(r + s + x) + cls._log_a0(params, x, t_x, T)
            # x = 0: t_x = 0 < T still gives A_0 > 0; equal t_x = T (bought today) only leaves the first term
            gone = np.where(t_x < T, gone, -np.inf)
        return a1 + np.logaddexp(alive_now, gone)

    def fit(
        self,
        frequency: np.ndarray,
        recency: np.ndarray,
        T: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> ParetoNBD:
        """Maximum-likelihood fit on log-parameters (time rescaled so that max(T) = 1)."""
        (r, alpha, s, beta), scale = _fit_purchase_process(self.log_likelihood, frequency, recency, T, weights)
        self.r, self.alpha, self.s, self.beta = float(r), float(alpha / scale), float(s), float(beta / scale)
        return self

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """P(alive | x, t_x, T) (eq. 36-37)."""
        r, alpha, s, beta = self.params
        x = np.asarray(frequency, dtype=np.float64)
        t_x = np.asarray(recency, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_odds_gone = (
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + T)
                + s * np.log(beta + T)
                + self._log_a0(self.params, x, t_x, T)
            )
            log_odds_gone = np.where(t_x < T, log_odds_gone, -np.inf)
        return special.expit(-log_odds_gone)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """E[Y(t) | x, t_x, T] = P(alive) (r + x)/(alpha + T) E[remaining lifetime within t] (eq. 41)."""
        r, alpha, s, beta = self.params
        x = np.asarray(frequency, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64)
        ratio = (beta + T) / (beta + T + t)
        if abs(s - 1.0) < 1e-9:
            lifetime = -np.log(ratio) * (beta + T)
        else:
            lifetime = (beta + T) * (1.0 - ratio ** (s - 1.0)) / (s - 1.0)
        alive = self.conditional_probability_alive(x, recency, T)
        return alive * (r + x) / (alpha + T) * lifetime


@dataclass
class GammaGamma:
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005b); parameters ``p, q, v``."""

    p: float = 1.0
    q: float = 1.0
    v: float = 1.0

    @property
    def params(self) -> np.ndarray:
        return np.array([self.p, self.q, self.v])

    @staticmethod
    def log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, v = params
        px = p * x
        return (
            special.gammaln(px + q)
            - special.gammaln(px)
            - special.gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(x * m + v)
        )

    def fit(
        self,
        frequency: np.ndarray,
        monetary_value: np.ndarray,
        weights: np.ndarray | None = None,
        penalizer: float = 0.0,
    ) -> GammaGamma:
        """Fit on customers with ``frequency > 0`` and positive average spend ``monetary_value``."""
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        sel = (x > 0) & (m > 0)
        if sel.sum() < 3:
            raise ValueError("Gamma-Gamma needs at least 3 repeat customers with positive spend")
        x, m = x[sel], m[sel]
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)[sel]
        wsum = w.sum()

        def nll(log_p: np.ndarray) -> float:
            p = np.exp(log_p)
            val = -(w * self.log_likelihood(p, x, m)).sum() / wsum + penalizer * float(np.sum(p**2))
            return float(val) if np.isfinite(val) else 1e100

        x0 = np.log(np.array([1.0, 2.0, max(float(np.median(m)), 1e-6)]))
        self.p, self.q, self.v = (float(v) for v in np.exp(_minimize(nll, x0)))
        return self

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> np.ndarray:
        """E[M | x, m]: shrinks the observed average spend towards the population mean."""
        p, q, v = self.params
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary_value, dtype=np.float64)
        pop = v * p / (q - 1) if q > 1 else np.nan
        w = p * x / (p * x + q - 1)
        return np.where(x > 0, (1 - w) * pop + w * m, pop)


def customer_lifetime_value(
    bgnbd: BetaGeo,
    gg: GammaGamma,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    units_per_month: float = 30.0,
) -> np.ndarray:
    """Discounted CLV: sum over months of E[spend] * E[purchases in month] / (1 + d)^month.

    ``units_per_month`` converts months to the fit's time unit (30 for days, 4.345 for weeks), as in
    ``lifetimes.GammaGammaFitter.customer_lifetime_value``.
    """
    spend = gg.conditional_expected_average_profit(frequency, monetary_value)
    out = np.zeros(np.broadcast(np.asarray(frequency), np.asarray(T)).shape)
    prev: np.ndarray | float = 0.0
    for month in range(1, months + 1):
        cum = bgnbd.conditional_expected_number_of_purchases_up_to_time(
            month * units_per_month, frequency, recency, T
        )
        out = out + spend * (cum - prev) / (1 + discount_rate) ** month
        prev = cum
    return out


#: Inventory columns a :class:`BTYDValue` reads, in Shapley player order.
BTYD_INPUTS = ("frequency", "recency_days", "tenure_days", "monetary_avg")


@dataclass
class BTYDValue:
    """Expected revenue over ``horizon_days`` from inventory features (BG/NBD x Gamma-Gamma).

    Mapping (weeks internally): x = max(frequency - 1, 0), T = tenure/7, t_x = clip(tenure - recency, 0, T)/7,
    spend = Gamma-Gamma E[M | x, monetary_avg]. Undiscounted so it is comparable with the ML targets.
    """

    bgnbd: BetaGeo
    gg: GammaGamma
    horizon_days: int
    columns: tuple[int, int, int, int]  # column indices of BTYD_INPUTS in the feature matrix
    baseline_inputs: np.ndarray  # population mean of the 4 inputs (Shapley reference point)
    fallback_spend: float = 0.0

    @staticmethod
    def btyd_inputs(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, t_x, T, monetary) in weeks from the 4 raw inputs (n, 4)."""
        freq, rec, ten, mon = z[..., 0], z[..., 1], z[..., 2], z[..., 3]
        T = np.maximum(ten, 0.0) / 7.0
        x = np.maximum(freq - 1.0, 0.0)
        t_x = np.clip(ten - rec, 0.0, None) / 7.0
        return x, np.minimum(t_x, T), T, np.maximum(mon, 0.0)

    def value_from_inputs(self, z: np.ndarray) -> np.ndarray:
        x, t_x, T, mon = self.btyd_inputs(z)
        trans = self.bgnbd.conditional_expected_number_of_purchases_up_to_time(
            self.horizon_days / 7.0, x, t_x, T
        )
        spend = self.gg.conditional_expected_average_profit(x, np.where(mon > 0, mon, 1.0))
        spend = np.where(np.isfinite(spend), spend, self.fallback_spend)
        return np.nan_to_num(trans * spend, nan=0.0, posinf=0.0, neginf=0.0)

    def inputs(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, list(self.columns)]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.value_from_inputs(self.inputs(X))

    def expected_transactions(self, X: np.ndarray, horizon_days: float | None = None) -> np.ndarray:
        x, t_x, T, _ = self.btyd_inputs(self.inputs(X))
        h = self.horizon_days if horizon_days is None else horizon_days
        return self.bgnbd.conditional_expected_number_of_purchases_up_to_time(h / 7.0, x, t_x, T)


def fit_btyd_value(
    X: np.ndarray, feature_names: tuple[str, ...], horizon_days: int, max_rows: int = 200_000, seed: int = 0
) -> BTYDValue:
    """Fit BG/NBD + Gamma-Gamma on the (customers with orders) rows of ``X``."""
    i0, i1, i2, i3 = (feature_names.index(c) for c in BTYD_INPUTS)
    cols = (i0, i1, i2, i3)
    z = np.asarray(X, dtype=np.float64)[:, list(cols)]
    z = z[(z[:, 0] > 0) & (z[:, 2] > 0)]
    if len(z) > max_rows:
        z = z[np.sort(np.random.default_rng(seed).choice(len(z), max_rows, replace=False))]
    x, t_x, T, mon = BTYDValue.btyd_inputs(z)
    bg = BetaGeo().fit(x, t_x, T)
    fallback = float(np.mean(mon)) if len(mon) else 0.0
    try:
        gg = GammaGamma().fit(x, np.where(x > 0, mon, 0.0))
    except ValueError:  # too few repeat buyers: population mean spend for everyone
        gg = GammaGamma(p=1.0, q=1e6, v=max(fallback, 1e-9) * (1e6 - 1))
    return BTYDValue(bg, gg, int(horizon_days), cols, z.mean(axis=0) if len(z) else np.zeros(4), fallback)
