"""Deterministic synthetic customer histories (tests, benchmark harness).

Customers are generated in fixed blocks of :data:`BLOCK` customers, each block from its own seed
``(seed, block)``: ``generate_events(n, start=s)`` therefore returns exactly the customers
``[s, s + n)`` of one infinite population, whatever chunking the caller uses.

Latent model (BTYD-like): Poisson purchase process with gamma-distributed rates, drop-out after each
purchase with a customer-specific probability that grows with unhappiness, lognormal order values with
a Pareto tail; tickets, escalations and satisfaction depend on happiness; engagement events stop some
weeks after drop-out; promoters refer and review.
"""

from __future__ import annotations

import numpy as np

from .features import KIND, EventLog

BLOCK = 4096
DEFAULT_DAYS = 1095


def _uniform_events(rng: np.random.Generator, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    cust = np.repeat(np.arange(len(counts)), counts)
    span = np.maximum(hi - lo, 0.0)
    day = lo[cust] + rng.random(len(cust)) * span[cust]
    return cust, np.floor(day).astype(np.int64)


def _categories(seed: int, block: int, order_customer: np.ndarray, categories: int) -> np.ndarray:
    """Order categories from their own random stream (the other arrays do not change): each customer has
    a home category and buys elsewhere a quarter of the time."""
    rng = np.random.default_rng([seed, block, 1])
    home = rng.integers(0, categories, BLOCK)
    other = rng.integers(0, categories, len(order_customer))
    return np.where(rng.random(len(order_customer)) < 0.25, other, home[order_customer]).astype(np.int64)


def _block(seed: int, block: int, days: int) -> EventLog:
    rng = np.random.default_rng([seed, block])
    m = BLOCK
    end = float(days)
    signup = np.floor(rng.random(m) * days * 0.85)
    happy = rng.normal(0.0, 1.0, m)
    lam = rng.gamma(0.8, 1.0 / 40.0 / 0.8, m)  # orders per day
    p_drop = np.clip(rng.beta(1.2, 4.0, m) * np.exp(-0.5 * happy), 0.01, 0.95)
    value = rng.lognormal(3.8, 0.8, m) * np.where(rng.random(m) < 0.05, 1.0 + rng.pareto(2.5, m), 1.0)
    margin_rate = rng.uniform(0.15, 0.45, m)
    ret_p = rng.beta(1.0, 15.0, m) * np.exp(-0.3 * happy)
    late_p = rng.beta(1.0, 8.0, m)

    # first order at signup, then repeat candidates; alive for K repeats (geometric drop-out)
    n_rep = rng.poisson(lam * (end - signup))
    k_alive = rng.geometric(p_drop) - 1
    rc, rday = _uniform_events(rng, n_rep, signup + 1, np.full(m, end))
    order = np.lexsort((rday, rc))
    rc, rday = rc[order], rday[order]
    starts = np.concatenate([[0], np.cumsum(n_rep)[:-1]])
    rank = np.arange(len(rc)) - starts[rc]
    keep = rank < k_alive[rc]
    rc, rday = rc[keep], rday[keep]
    n_kept = np.bincount(rc, minlength=m)
    dead = n_rep > k_alive
    last_kept = signup.copy()
    np.maximum.at(last_kept, rc, rday.astype(np.float64))
    death = np.where(dead, last_kept, end)

    oc = np.concatenate([np.arange(m), rc])
    od = np.concatenate([signup.astype(np.int64), rday])
    no = len(oc)
    amount = np.round(value[oc] * rng.lognormal(0.0, 0.4, no), 2)
    returned = rng.random(no) < ret_p[oc]
    is_late = rng.random(no) < late_p[oc]
    days_late = np.where(is_late, 1 + rng.poisson(8.0, no), 0).astype(np.float64)

    active_end = np.minimum(death + 45.0, end)
    span = np.maximum(active_end - signup, 1.0)
    engage = rng.lognormal(0.0, 0.5, m) * np.sqrt(lam * 40.0)
    n_orders = 1 + n_kept

    t_rate = 0.004 * np.exp(-0.6 * happy)
    tn = rng.poisson(t_rate * span + 0.1 * n_orders)
    tc, tday = _uniform_events(rng, tn, signup, np.minimum(death + 60.0, end))
    escalated = rng.random(len(tc)) < 1.0 / (1.0 + np.exp(1.5 + happy[tc]))
    sat = np.clip(np.round(3.5 + happy[tc] + rng.normal(0, 0.8, len(tc))), 1, 5)
    sat = np.where(rng.random(len(tc)) < 0.6, sat, np.nan)

    rates = {
        "login": 0.03 * engage,
        "email_open": 0.02 * np.ones(m),
        "email_click": 0.005 * engage,
        "feature_use": 0.02 * engage,
        "cart_abandon": 0.005 * engage,
        "nps": np.full(m, 1.0 / 180.0),
        "referral": 0.002 * np.exp(happy),
    }
    parts_c, parts_d, parts_k = [], [], []
    for kind, rate in rates.items():
        cnt = rng.poisson(rate * span)
        c, d = _uniform_events(rng, cnt, signup, active_end)
        parts_c.append(c)
        parts_d.append(d)
        parts_k.append(np.full(len(c), KIND[kind], dtype=np.int64))
    ic, iday, ikind = np.concatenate(parts_c), np.concatenate(parts_d), np.concatenate(parts_k)
    ival = np.where(
        ikind == KIND["nps"],
        np.clip(np.round(7.0 + 2.0 * happy[ic] + rng.normal(0, 1.2, len(ic))), 0, 10),
        np.nan,
    )

    pick = rng.random(no) < 0.15
    rvc = oc[pick]
    rvd = np.minimum(od[pick] + rng.integers(1, 15, int(pick.sum())), days - 1)
    rating = np.clip(np.round(3.8 + 0.8 * happy[rvc] + rng.normal(0, 0.7, len(rvc))), 1, 5)

    return EventLog(
        n_customers=m,
        order_customer=oc,
        order_day=od,
        order_amount=amount,
        order_margin=np.round(amount * margin_rate[oc], 2),
        order_returned=returned,
        order_days_late=days_late,
        ticket_customer=tc,
        ticket_day=tday,
        ticket_escalated=escalated,
        ticket_satisfaction=sat,
        interaction_customer=ic,
        interaction_day=iday,
        interaction_kind=ikind,
        interaction_value=ival,
        review_customer=rvc,
        review_day=rvd,
        review_rating=rating,
        signup_day=signup.astype(np.int64),
    )


_FIELDS = {
    "order": ("customer", "day", "amount", "margin", "returned", "days_late"),
    "ticket": ("customer", "day", "escalated", "satisfaction"),
    "interaction": ("customer", "day", "kind", "value"),
    "review": ("customer", "day", "rating"),
}


def generate_events(
    n_customers: int, *, seed: int = 0, start: int = 0, days: int = DEFAULT_DAYS, categories: int = 0
) -> EventLog:
    """Events of customers ``[start, start + n_customers)``; indices in the log are ``global - start``.

    Days run from 0 to ``days - 1``; use ``as_of = days - 1`` for "now". ``categories`` > 0 gives every
    order a product category code in ``[0, categories)`` (default: no categories).
    """
    if n_customers <= 0:
        raise ValueError("n_customers must be positive")
    stop = start + n_customers
    blocks = range(start // BLOCK, (stop - 1) // BLOCK + 1)
    pieces: dict[str, list[np.ndarray]] = {}
    signups = []
    for b in blocks:
        log = _block(seed, b, days)
        if categories > 0:
            log.order_category = _categories(seed, b, log.order_customer, categories)
        lo, hi = max(start - b * BLOCK, 0), min(stop - b * BLOCK, BLOCK)
        shift = b * BLOCK - start
        signups.append(log.signup_day[lo:hi])  # type: ignore[index]
        for prefix, names in _FIELDS.items():
            if prefix == "order" and categories > 0:
                names = (*names, "category")
            cust = getattr(log, f"{prefix}_customer")
            sel = (cust >= lo) & (cust < hi)
            for name in names:
                arr = getattr(log, f"{prefix}_{name}")[sel]
                if name == "customer":
                    arr = arr + shift
                pieces.setdefault(f"{prefix}_{name}", []).append(arr)
    kwargs = {k: np.concatenate(v) for k, v in pieces.items()}
    return EventLog(n_customers=n_customers, signup_day=np.concatenate(signups), **kwargs)
