"""``manage.py demo_engagement [--seed 17]``: after ``rescore --all``, make the value loop visible in the demo.

1. assigns every consented, scored customer to treatment or holdout (keyed hash, audited decisions);
2. if the demo data has few answered tickets, adds six months of simulated support tickets with first-response
   times by tier (and a few open ones past their tier's first-response time) through the fact ingest service;
3. runs the action sweep (the queue: retention calls, upsell offers, SLA breaches, win-backs, ...);
4. simulates the work of the account team: completes part of the open actions with outcomes drawn from the
   scores (a retention call halves the churn probability; accepted offers and renewals place an order) and,
   for every other assigned customer, churn drawn from their churn probability. The holdout's uplift in the
   KPIs comes from that simulated cause and effect. Highest-priority retention calls stay open for the queue.

Runs once: when completed actions exist already, steps 2 and 4 are skipped (the sweep still runs).
SIMULATED DATA ONLY: never run this against real customers.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

ACTOR = "job:demo_engagement"
RESPONSE_MEAN_HOURS = {"VIP": 1.2, "Premium": 4.5, "Standard": 14.0, "Basic": 30.0}


class Command(BaseCommand):
    help = "Demo: holdout assignment, simulated tickets, the action queue and simulated outcomes (fake data only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=17)
        parser.add_argument("--keep-open", type=float, default=0.4, help="share of actions left open (default 0.4)")

    def handle(self, *args: Any, **opts: Any) -> None:
        from engagement import selectors, services

        if not settings.DEBUG:
            raise CommandError("demo_engagement simulates outcomes: it runs only with DEBUG on (a demo).")
        rng = random.Random(opts["seed"])
        assigned = services.holdout_assign_consented(requester=ACTOR)
        self.stdout.write(f"demo_engagement: {assigned} customers assigned to treatment or holdout")
        simulated = any(row["completed"] for row in selectors.action_funnel())
        if not simulated:
            self._tickets(rng)
        counts = services.actions_sweep()
        self.stdout.write(f"demo_engagement: sweep {counts.to_json()}")
        if simulated:
            self.stdout.write("demo_engagement: outcomes were simulated before, nothing more to do")
            return
        self._simulate(rng, keep_open=opts["keep_open"])
        funnel = {row["type"]: (row["created"], row["completed"], row["open"]) for row in selectors.action_funnel()}
        self.stdout.write(f"demo_engagement: actions (created, completed, open) per type: {funnel}")

    # ------------------------------------------------------------------ tickets with first responses

    def _tickets(self, rng: random.Random) -> None:
        from profiles import selectors as profiles_selectors
        from profiles import services as profiles_services
        from scoring import selectors as scoring_selectors

        now = timezone.now()
        answered = sum(1 for t in profiles_selectors.tickets_between(start=now - timedelta(days=183), end=now)
                       if t[2] is not None)
        if answered >= 200:
            return
        scores = list(scoring_selectors.scores_for_engagement(purpose=services_score_purpose()))
        if not scores:
            return
        records = []
        for i in range(min(900, 3 * len(scores))):
            score = rng.choice(scores)
            tier = str(score["tier"])
            opened = now - timedelta(days=rng.uniform(1, 182), hours=rng.uniform(0, 24))
            hours = rng.expovariate(1 / RESPONSE_MEAN_HOURS.get(tier, 14.0))
            sla = float((score.get("service_level") or {}).get("response_time_hours") or 24)
            records.append({
                "customer_id": score["customer_id"], "source": "support", "external_id": f"DEMO-FR-{i:05d}",
                "opened_at": opened, "first_response_at": opened + timedelta(hours=hours),
                "closed_at": opened + timedelta(hours=hours + rng.uniform(1, 72)), "channel": "email",
                "satisfaction": max(1, min(5, round(rng.gauss(4.3 if hours <= sla else 2.8, 0.8)))),
                "category": rng.choice(["delivery", "billing", "technical"]), "text": "",
            })
        for j, score in enumerate(rng.sample(scores, min(6, len(scores)))):  # open and past the tier's SLA
            sla = float((score.get("service_level") or {}).get("response_time_hours") or 24)
            records.append({"customer_id": score["customer_id"], "source": "support",
                            "external_id": f"DEMO-OPEN-{j:03d}", "opened_at": now - timedelta(hours=sla + 3 + j),
                            "channel": "email", "category": "complaint", "text": ""})
        results = profiles_services.facts_ingest_batch(kind="tickets", records=records, actor=ACTOR)
        created = sum(1 for r in results if r.outcome == "created")
        self.stdout.write(f"demo_engagement: {created} simulated tickets with first-response times")

    # ------------------------------------------------------------------ simulated outcomes

    def _simulate(self, rng: random.Random, *, keep_open: float) -> None:
        from engagement import selectors, services
        from profiles import services as profiles_services
        from scoring import selectors as scoring_selectors
        from scoring import services as scoring_services

        now = timezone.now()
        scores = {row["customer_id"]: row for row in
                  scoring_selectors.scores_for_engagement(purpose=services_score_purpose())}
        actions = list(selectors.action_queryset(status="open"))
        kept_retention = 0
        decided: set[Any] = set()
        orders: list[dict[str, Any]] = []
        for action in actions:
            if action.type == "sla_breach":
                continue
            if action.type == "retention_call" and kept_retention < 3:
                kept_retention += 1  # the highest-priority retention calls stay open: the queue is not empty
                continue
            if rng.random() < keep_open:
                continue
            s = scores.get(action.customer_id, {})
            churn, upsell, advocacy = (float(s.get(k) or 0.0) for k in ("churn_probability", "upsell", "advocacy"))
            if action.type in ("retention_call", "win_back"):
                outcome = "retained" if rng.random() > churn * 0.5 else "churned"
            elif action.type == "upsell_offer":
                outcome = "accepted" if rng.random() < 0.2 + 0.5 * upsell else "declined"
            else:
                outcome = "accepted" if rng.random() < 0.2 + 0.5 * advocacy else "no_answer"
            services.action_claim(action_id=action.pk, actor=ACTOR)
            services.action_complete(action_id=action.pk, outcome=outcome, actor=ACTOR)
            if action.type in ("retention_call", "win_back", "upsell_offer"):
                decided.add(action.customer_id)
            if outcome in ("retained", "accepted") and action.type != "advocacy_ask":
                orders.append({"customer_id": action.customer_id, "source": "erp",
                               "external_id": f"DEMO-NBA-{action.pk}",
                               "ordered_at": now - timedelta(days=rng.uniform(0.5, 20)),
                               "amount": f"{max(20.0, float(s.get('clv') or 0.0) * 0.15):.2f}"})
        if orders:
            profiles_services.facts_ingest_batch(kind="orders", records=orders, actor=ACTOR)
        churned = 0
        for cid in sorted(selectors.holdout_groups(), key=str):
            if cid in decided or cid not in scores:
                continue
            if rng.random() < float(scores[cid].get("churn_probability") or 0.0) * 0.5:
                scoring_services.outcome_record(customer_id=cid, kind="churned",
                                                at=now - timedelta(days=rng.uniform(1, 60)),
                                                source="demo_simulation", actor=ACTOR)
                churned += 1
        self.stdout.write(f"demo_engagement: simulated {len(orders)} purchases after actions and {churned} churns")


def services_score_purpose() -> str:
    from engagement import services

    return services.score_purpose()
