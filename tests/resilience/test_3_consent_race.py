"""Scenario 3: score requests on 8 threads over HTTP while the customer's consent is withdrawn through the API,
20 times. No decision is committed after the withdrawal's commit: the commit timestamps of the decision records
and of the withdrawal's consent event are compared (the suite's cluster runs with track_commit_timestamp=on)."""

from __future__ import annotations

import threading
import time

from tests.resilience.client import Api, Db
from tests.resilience.runs import CONSENTED_SQL

PURPOSE = "automated_scoring"
REPEATS = 20
THREADS = 8


def _race(api: Api, sql: Db, customer: str) -> dict[str, int]:
    stop = threading.Event()
    statuses: list[int] = []
    lock = threading.Lock()
    started = sql.value("SELECT now()")

    def scorer() -> None:
        while not stop.is_set():
            r = api.score(customer, PURPOSE)
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=scorer) for _ in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # the scorers are in full flow
    r = api.post("/api/v1/consents/withdraw", {"customer": customer, "purpose": PURPOSE, "source": "web",
                                               "channel": "web"})
    assert r.status_code in (200, 201), r.text
    event_id = r.json()["event_id"]
    time.sleep(0.3)  # and keep going after the withdrawal
    stop.set()
    for t in threads:
        t.join(60)
    withdrawn_at = sql.value("SELECT pg_xact_commit_timestamp(xmin) FROM consent_consentevent WHERE id = %s",
                             [event_id])
    assert withdrawn_at is not None
    decisions = sql.rows(
        "SELECT id, pg_xact_commit_timestamp(xmin) FROM audit_decisionrecord WHERE customer = %s AND purpose = %s "
        "AND created_at >= %s", [customer, PURPOSE, started])
    late = [(i, ts) for i, ts in decisions if ts is None or ts >= withdrawn_at]
    assert not late, f"decisions committed after the withdrawal ({withdrawn_at}): {late}"
    assert set(statuses) <= {200, 403}, sorted(set(statuses))
    return {"decisions": len(decisions), "served": statuses.count(200), "refused": statuses.count(403)}


def test_no_decision_commits_after_a_withdrawal_twenty_races(api: Api, sql: Db) -> None:
    customers = [str(c) for (c,) in sql.rows(CONSENTED_SQL + " ORDER BY c.id DESC LIMIT %(n)s",
                                              {"purpose": PURPOSE, "n": REPEATS})]
    assert len(customers) == REPEATS
    results = [_race(api, sql, customer) for customer in customers]
    # the races were real: decisions were served before each withdrawal and refusals came after it
    assert all(r["decisions"] >= 1 and r["refused"] >= 1 for r in results), results
    for customer in customers:
        # and the withdrawn customers have no current score for the purpose
        assert sql.value("SELECT count(*) FROM scoring_customerscore WHERE customer_id = %s AND purpose = %s",
                         [customer, PURPOSE]) == 0
    print(f"\nscenario 3: {sum(r['decisions'] for r in results)} decisions, "
          f"{sum(r['refused'] for r in results)} refusals over {REPEATS} races")
