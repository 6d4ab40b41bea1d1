"""``manage.py demo_seed [--customers 2000] [--seed 42] [--if-empty]``: load the demo data set.

Realistic multi-locale customers (en_GB, de_DE, nl_NL, pl_PL, fi_FI, sv_SE), 18 months of orders with a
skewed value distribution (VIPs), driven by a hidden per-customer state that evolves week by week (see
``consent.demo``): declines after poor support lead to fewer orders, late payments, negative tickets and churn;
growth leads to upsell; advocates answer NPS high, review and refer. Support tickets in the customer's language,
some naming their author (pseudonymized on the way in), with first-response times; web/app events, reviews,
NPS answers, referrals, and consent for about 80 % of customers. Everything goes
through the real services: encryption, blind indexes, Presidio, consent ledger and audit records.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from consent import demo


class Command(BaseCommand):
    help = "Load a deterministic, realistic demo data set through the services (fake people only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=2000, help="number of customers (default 2000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when customers already exist")
        parser.add_argument("--chunk-size", type=int, default=100, help="customers per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        from profiles import selectors as profiles_selectors

        n = options["customers"]
        if n < 1 or n > 1_000_000:
            raise CommandError("--customers must be between 1 and 1,000,000")
        if options["if_empty"] and next(profiles_selectors.customer_id_chunks(chunk_size=1), None):
            self.stdout.write("demo_seed: customers already exist, nothing to do (--if-empty).")
            return
        self.stdout.write(f"demo_seed: planning {n} customers (seed {options['seed']}) ...")
        plan = demo.build_plan(customers=n, seed=options["seed"])
        with tqdm(total=n, unit="customer", desc="demo_seed", disable=True if options["verbosity"] == 0 else None) as bar:
            summary = demo.load_plan(plan, chunk_size=max(1, options["chunk_size"]), progress=bar.update)
        lines = [
            f"customers      {summary.customers}",
            f"orders         {summary.orders}",
            f"interactions   {summary.interactions}",
            f"tickets        {summary.tickets}",
            f"reviews        {summary.reviews}",
            f"nps answers    {summary.nps}",
            f"referrals      {summary.referrals}",
            f"consent events {summary.consent_events}",
            f"rejected       {summary.rejected}",
        ]
        for purpose in ("automated_scoring", "service_prioritization", "marketing"):
            granted = plan.expected_granted(purpose)
            lines.append(f"consent {purpose:<24} {granted} granted ({granted / n:.0%}), "
                         f"{plan.expected_withdrawn(purpose)} withdrawn")
        lines.append(f"elapsed        {summary.elapsed_s} s")
        self.stdout.write("demo_seed: done\n  " + "\n  ".join(lines))
