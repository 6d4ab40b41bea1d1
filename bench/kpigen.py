"""Section 9's data: what the KPI report reads, for N customers, bulk-loaded with COPY (minutes at 1M customers).

Facts come from :func:`bench.datagen.population` (the same deterministic synthetic population as the other
sections: ~10 orders per customer over three years, ~1 ticket, NPS answers, referrals, consent draws), written
without the per-customer encryption and consent ledger that the KPI report never reads:

- customers (no personal fields: the report reads none), orders, NPS answers, referrals;
- tickets with ``first_response_at`` (80 % answered after a lognormal delay, median ~6 h; 10 % closed without a
  recorded response; the rest open, unanswered) and ``closed_at``;
- **synthetic current scores** (``CustomerScore`` rows written directly, labelled by a model version named
  ``bench-kpi-synthetic``): CLV = 1.1 x the customer's order value over a year-long horizon, tiers by CLV rank
  within each chunk of 10,000 customers at the ``TIER_SHARES`` shares. Not a model's output: how fast scores are
  computed is section 2's concern, this section times the KPI report over them;
- **synthetic holdout assignments** for the customers who consented to scoring (``datagen``'s draw): 10 % in
  the holdout by a seeded draw (not the product's keyed hash, which is section-independent and tested), assigned
  before the data starts.

Runs inside a Django process against the configured (bench) database.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import datagen

MODEL_VERSION = "bench-kpi-synthetic"
HOLDOUT_SHARE = 0.10


def load(n_customers: int, *, seed: int = 42, progress: bool = False) -> dict[str, Any]:
    import datetime as dt

    from django.conf import settings
    from django.db import connection, transaction

    from engagement.models import HoldoutAssignment
    from profiles.models import Customer, NpsAnswer, Order, Referral, Ticket
    from scoring.models import CustomerScore, ModelVersion

    from .dbutil import analyze, pg_deferred_indexes

    t_start = time.perf_counter()
    pg = connection.vendor == "postgresql"
    if pg:
        enc_bool: Any = ("f", "t").__getitem__
        null: Any = "\\N"
    else:
        enc_bool, null = bool, None
    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = datagen._Clock(end)
    now = clock(datagen.DAYS)
    mv, _ = ModelVersion.objects.get_or_create(
        version=MODEL_VERSION, defaults={"status": "retired", "sha256": "0" * 64, "actor": "job:bench",
                                         "card": {"data_window": {"horizon_days": 365},
                                                  "note": "synthetic scores written by bench.kpigen"}})
    shares = dict(getattr(settings, "TIER_SHARES", {}) or {"VIP": 0.1, "Premium": 0.2, "Standard": 0.6,
                                                             "Basic": 0.1})
    order = [t for t in ("VIP", "Premium", "Standard", "Basic") if t in shares] + sorted(
        set(shares) - {"VIP", "Premium", "Standard", "Basic"})
    cuts = np.cumsum([shares[t] for t in order]) / sum(shares.values())

    t_customer = datagen._Table(Customer, ["id", "created_at", "updated_at", "country", "stale_since"])
    t_order = datagen._Table(Order, ["customer_id", "source", "external_digest", "created_at", "kind", "ordered_at",
                                     "amount", "margin", "returned", "days_late"])
    t_ticket = datagen._Table(Ticket, ["customer_id", "source", "external_digest", "created_at", "opened_at",
                                       "escalated", "satisfaction", "channel", "first_response_at", "closed_at"])
    t_nps = datagen._Table(NpsAnswer, ["customer_id", "source", "external_digest", "created_at", "at", "score"])
    t_ref = datagen._Table(Referral, ["customer_id", "source", "external_digest", "created_at", "at"])
    t_score = datagen._Table(CustomerScore, ["customer_id", "purpose", "model_version_id", "clv", "clv_score",
                                             "churn_probability", "risk_level", "upsell", "advocacy", "tier",
                                             "features_hash", "as_of"])
    t_hold = datagen._Table(HoldoutAssignment, ["customer_id", "holdout", "share", "bucket", "assigned_at"])
    tables = [t_customer, t_order, t_ticket, t_nps, t_ref, t_score, t_hold]
    for t in tables:
        t.raw = pg
    counts: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        counts[key] = counts.get(key, 0) + n

    assigned_at = clock(0)
    purpose = str(getattr(settings, "ENGAGEMENT_SCORE_PURPOSE", "automated_scoring"))
    with pg_deferred_indexes([t.table for t in tables]) as index_timings:
        for pop in datagen.population(n_customers, seed=seed):
            rng = np.random.default_rng([seed, 9, pop.start])
            g0 = pop.start
            uid = [datagen._uuid_value(u, pg) for u in pop.ids]
            with transaction.atomic():
                signup = [clock(d) for d in pop.signup_day]
                add("customers", t_customer.write((uid[i], signup[i], now, "GB", null) for i in range(pop.n)))
                oc = pop.order_customer
                amount = [f"{a:.2f}" for a in pop.order_amount]
                margin = [f"{m:.2f}" for m in pop.order_margin]
                add("orders", t_order.write(
                    (uid[c], "erp", f"kpi-o-{g0 + c}-{k}", now, "order", clock(d, 36000), amount[k], margin[k],
                     enc_bool(r), late)
                    for k, (c, d, r, late) in enumerate(zip(oc.tolist(), pop.order_day.tolist(),
                                                            pop.order_returned.tolist(),
                                                            pop.order_days_late.tolist(), strict=True))))
                # Tickets: answered (lognormal delay), closed without a response, or still open.
                nt = len(pop.ticket_customer)
                kind = rng.random(nt)
                delay = np.minimum(rng.lognormal(np.log(6 * 3600), 1.1, nt), 30 * 86400).astype(np.int64)
                rows = []
                for k, (c, d, e, s) in enumerate(zip(pop.ticket_customer.tolist(), pop.ticket_day.tolist(),
                                                     pop.ticket_escalated.tolist(),
                                                     pop.ticket_satisfaction.tolist(), strict=True)):
                    opened = 40000 + int(d) * 86400
                    if kind[k] < 0.8:
                        responded = clock(0, opened + int(delay[k]))
                        closed = clock(0, opened + int(delay[k]) + 2 * 86400)
                    elif kind[k] < 0.9:
                        responded, closed = null, clock(0, opened + 3 * 86400)
                    else:
                        responded, closed = null, null
                    rows.append((uid[c], "support", f"kpi-t-{g0 + c}-{k}", now, clock(0, opened), enc_bool(e),
                                 s if s else null, "email", responded, closed))
                add("tickets", t_ticket.write(rows))
                add("nps_answers", t_nps.write(
                    (uid[c], "web", f"kpi-n-{g0 + c}", now, clock(d, 56000), int(s))
                    for c, d, s in zip(pop.nps_customer.tolist(), pop.nps_day.tolist(), pop.nps_score.tolist(),
                                       strict=True)))
                add("referrals", t_ref.write(
                    (uid[c], "crm", f"kpi-f-{g0 + c}", now, clock(d, 57000))
                    for c, d in zip(pop.referral_customer.tolist(), pop.referral_day.tolist(), strict=True)))
                # Synthetic scores: CLV from the order history, tiers by rank within the chunk.
                value = np.bincount(oc, weights=pop.order_amount, minlength=pop.n) * 1.1 * 365 / datagen.DAYS
                rank = np.argsort(np.argsort(-value, kind="stable"), kind="stable") / max(pop.n, 1)
                tier_i = np.searchsorted(cuts, rank, side="right").clip(0, len(order) - 1)
                churn = rng.beta(2, 5, pop.n)
                upsell = rng.random(pop.n)
                advocacy = rng.random(pop.n)
                add("scores", t_score.write(
                    (uid[i], purpose, mv.id, float(round(value[i], 2)), int(min(100, value[i] / 20)),
                     float(round(churn[i], 4)), "high" if churn[i] > 0.5 else "low", float(round(upsell[i], 4)),
                     float(round(advocacy[i], 4)), order[tier_i[i]], f"{g0 + i:064x}", now)
                    for i in range(pop.n)))
                # Synthetic holdout assignments (consented to scoring and not withdrawn).
                consented = pop.consent["automated_scoring"] & ~pop.withdrawn["automated_scoring"]
                bucket = rng.random(pop.n)
                add("holdout_assignments", t_hold.write(
                    (uid[i], enc_bool(bool(bucket[i] < HOLDOUT_SHARE)), HOLDOUT_SHARE, float(bucket[i]), assigned_at)
                    for i in np.flatnonzero(consented).tolist()))
            if progress and (pop.start // datagen.CHUNK) % 10 == 9:
                print(f"    kpi data: {pop.start + pop.n:,} customers ({time.perf_counter() - t_start:.0f} s)",
                      flush=True)
    t0 = time.perf_counter()
    analyze()
    return {"seconds": time.perf_counter() - t_start, "analyze_seconds": time.perf_counter() - t0,
            "counts": counts, "index_seconds": dict(index_timings)}
