"""Writes the example data sets of docs/examples (deterministic; run from the repository root):

    python docs/examples/make_examples.py

Three shapes of customer data, each a complete set of CSV files for ``manage.py import_csv``:

- ``attributes_only/``: a CRM table (plan, contract, tenure, monthly charges, support calls) with an explicit
  churn flag (``attr_churned``), no orders;
- ``orders_only/``: customers known only by their id, and their orders;
- ``both/``: CRM attributes and orders together.

Every customer consents to automated scoring (``consents.csv``). The data are synthetic, with cause and
effect: month-to-month contracts, short tenure and many support calls lead to churn; customers who stop
ordering stop for good. The histories end on ``END`` (2026-11-30).
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
END = date(2026, 11, 30)
HISTORY_DAYS = 900
CONSENTED_AT = "2024-01-01T00:00:00+00:00"


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _consents(folder: Path, ids: list[str]) -> None:
    _write(folder / "consents.csv", ["source", "external_id", "purpose", "action", "channel", "occurred_at"],
           [["crm", cid, "automated_scoring", "grant", "web", CONSENTED_AT] for cid in ids])


def _attributes(rng: np.random.Generator, n: int) -> tuple[list[dict[str, object]], np.ndarray]:
    """CRM attributes and the churn probability they imply."""
    contract = rng.choice(["month-to-month", "one_year", "two_year"], n, p=[0.55, 0.25, 0.2])
    plan = rng.choice(["basic", "standard", "premium"], n, p=[0.4, 0.4, 0.2])
    tenure = rng.integers(1, 73, n)
    monthly = np.round(np.select([plan == "basic", plan == "standard"], [25.0, 55.0], 95.0)
                       + rng.normal(0, 8, n), 2)
    calls = rng.poisson(1.5, n)
    logit = (-1.6 + 1.6 * (contract == "month-to-month") - 0.8 * (contract == "two_year") - 0.035 * tenure
             + 0.45 * calls + 0.012 * (monthly - 55))
    p = 1 / (1 + np.exp(-logit))
    rows = [{"plan": plan[i], "contract": contract[i], "tenure_months": int(tenure[i]),
             "monthly_charges": float(monthly[i]), "support_calls": int(calls[i])} for i in range(n)]
    return rows, p


def _orders(rng: np.random.Generator, ids: list[str], churn_scale: np.ndarray | None = None,
            spend: np.ndarray | None = None) -> list[list[object]]:
    """Orders with heterogeneous rates and amounts; a customer who leaves orders no more."""
    start = END - timedelta(days=HISTORY_DAYS)
    rows: list[list[object]] = []
    for i, cid in enumerate(ids):
        first = int(rng.integers(0, HISTORY_DAYS - 120))
        rate = float(rng.lognormal(np.log(1 / 30), 0.6))  # orders per day
        amount = float(rng.lognormal(np.log(40 if spend is None else spend[i]), 0.4))
        hazard = float(rng.lognormal(np.log(1 / 500), 0.8)) * (1.0 if churn_scale is None else churn_scale[i])
        leaves = first + int(rng.exponential(1 / hazard))
        day, k = first, 0
        while True:
            day += int(rng.exponential(1 / rate)) + 1
            if day >= min(leaves, HISTORY_DAYS):
                break
            k += 1
            rows.append([f"{cid}-O{k}", (start + timedelta(days=day)).isoformat(),
                         f"{amount * rng.lognormal(0, 0.3):.2f}", rng.choice(["books", "games", "music", "tools"]),
                         "crm", cid])
    return rows


ORDER_HEADER = ["external_id", "ordered_at", "amount", "category", "customer_source", "customer_external_id"]


def main() -> None:
    rng = np.random.default_rng(2026)

    # attribute-only: a churn table (the label is the explicit flag)
    n = 500
    ids = [f"A{i:04d}" for i in range(n)]
    attrs, p = _attributes(rng, n)
    churned = rng.random(n) < p
    _write(HERE / "attributes_only" / "customers.csv",
           ["external_id", "country", "feature_plan", "feature_contract", "feature_tenure_months",
            "feature_monthly_charges", "feature_support_calls", "attr_churned"],
           [[cid, "DE", a["plan"], a["contract"], a["tenure_months"], a["monthly_charges"], a["support_calls"],
             "yes" if c else "no"] for cid, a, c in zip(ids, attrs, churned, strict=True)])
    _consents(HERE / "attributes_only", ids)

    # orders only
    n = 400
    ids = [f"T{i:04d}" for i in range(n)]
    _write(HERE / "orders_only" / "customers.csv", ["external_id", "country"], [[cid, "NL"] for cid in ids])
    _write(HERE / "orders_only" / "orders.csv", ORDER_HEADER, _orders(rng, ids))
    _consents(HERE / "orders_only", ids)

    # both: attributes drive the leaving hazard and the spend; the flag records who has left by END
    n = 400
    ids = [f"B{i:04d}" for i in range(n)]
    attrs, p = _attributes(rng, n)
    scale = 0.3 + 3.0 * p
    spend = np.array([a["monthly_charges"] for a in attrs], dtype=float)
    orders = _orders(rng, ids, churn_scale=scale, spend=spend)
    last = {}
    for row in orders:
        last[row[-1]] = max(last.get(row[-1], ""), row[1])
    cutoff = (END - timedelta(days=120)).isoformat()
    _write(HERE / "both" / "customers.csv",
           ["external_id", "country", "feature_plan", "feature_contract", "feature_monthly_charges",
            "feature_support_calls", "attr_churned"],
           [[cid, "FI", a["plan"], a["contract"], a["monthly_charges"], a["support_calls"],
             "yes" if last.get(cid, "") < cutoff else "no"] for cid, a in zip(ids, attrs, strict=True)])
    _write(HERE / "both" / "orders.csv", ORDER_HEADER, orders)
    _consents(HERE / "both", ids)


if __name__ == "__main__":
    main()
