"""Nightly rescore runs of the resilience suite: started as beat starts them (the ``rescore_all_nightly`` task on
the broker), watched and checked with plain SQL."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tests.resilience.client import Db
from tests.resilience.servers import Stack, wait_for

# Consented for a purpose now: the current consent state is granted, and no restriction or objection is current
# for that purpose or for all purposes; the customer is live (not merged into another).
CONSENTED_SQL = """
SELECT c.id FROM profiles_customer c
JOIN consent_consentstatecurrent s ON s.customer_id = c.id AND s.granted
JOIN consent_purpose p ON p.id = s.purpose_id AND p.code = %(purpose)s
WHERE c.merged_into_id IS NULL
AND NOT EXISTS (SELECT 1 FROM consent_processingflagcurrent f WHERE f.customer_id = c.id
                AND (f.purpose_id IS NULL OR f.purpose_id = p.id))
"""


@dataclass
class Run:
    id: str
    purpose: str


def send_task(stack: Stack, name: str) -> None:
    """Queue ``name`` on the suite's own broker. Celery's ``broker_url`` prefers the CELERY_BROKER_URL environment
    variable over the configured one, so it is taken out of this process's environment for the call (CI exports it
    for the main test run: the task would otherwise land on CI's Redis, and no worker of the suite would see it)."""
    import os

    from celery import Celery

    saved = os.environ.pop("CELERY_BROKER_URL", None)
    app = Celery("resilience", broker=stack.redis.url(0))
    app.conf.task_serializer = "json"
    try:
        assert app.conf.broker_url == stack.redis.url(0), app.conf.broker_url
        app.send_task(name)
    finally:
        app.close()
        if saved is not None:
            os.environ["CELERY_BROKER_URL"] = saved


def start_nightly(stack: Stack, sql: Db, timeout: float = 600) -> list[Run]:
    """Queue the nightly rescore as beat does; return its runs (one per batch purpose) once planned."""
    before = sql.value("SELECT now()")
    send_task(stack, "scoring.tasks.rescore_all_nightly")

    def planned() -> list[Run] | None:
        rows = sql.rows("SELECT id, purpose, status FROM scoring_rescorerun WHERE started_at > %s", [before])
        if len(rows) == 2 and all(status in ("running", "completed") for _, _, status in rows):
            return [Run(str(r[0]), r[1]) for r in rows]
        return None

    return wait_for(planned, timeout, "the nightly rescore runs to be planned", interval=1)


def progress(sql: Db, runs: list[Run]) -> int:
    return int(sql.value("SELECT coalesce(sum(chunks_done), 0) FROM scoring_rescorerun WHERE id = ANY(%s::uuid[])",
                         [[r.id for r in runs]]))


def wait_completed(sql: Db, runs: list[Run], timeout: float) -> float:
    started = time.monotonic()

    def completed() -> bool:
        try:
            statuses = [s for (s,) in sql.rows("SELECT status FROM scoring_rescorerun WHERE id = ANY(%s::uuid[])",
                                               [[r.id for r in runs]])]
        except Exception:  # noqa: BLE001 - the database may be down on purpose
            return False
        assert "failed" not in statuses, statuses
        return statuses == ["completed"] * len(runs)

    wait_for(completed, timeout, "the runs to complete by themselves", interval=2)
    return time.monotonic() - started


def assert_exactly_once(sql: Db, runs: list[Run]) -> dict[str, Any]:
    """Every consented customer has exactly one current score for the run's purpose, written by this run, and
    exactly one decision record of the run; nobody else has either; no chunk is left pending."""
    live = int(sql.value("SELECT count(*) FROM profiles_customer WHERE merged_into_id IS NULL"))
    figures: dict[str, Any] = {}
    for run in runs:
        row = sql.rows("SELECT total, done, chunks_done, chunks_total, scored, status FROM scoring_rescorerun "
                       "WHERE id = %s", [run.id])[0]
        total, done, chunks_done, chunks_total, scored, status = row
        assert status == "completed"
        assert chunks_done == chunks_total, (chunks_done, chunks_total)
        assert total == done == live, (total, done, live)
        assert sql.value("SELECT count(*) FROM scoring_rescorechunk WHERE run_id = %s AND NOT done", [run.id]) == 0
        consented = {str(r[0]) for r in sql.rows(CONSENTED_SQL, {"purpose": run.purpose})}
        scores = sql.rows("SELECT customer_id, count(*) FROM scoring_customerscore WHERE purpose = %s AND run_id = %s "
                          "GROUP BY customer_id", [run.purpose, run.id])
        assert all(n == 1 for _, n in scores)
        scored_ids = {str(c) for c, _ in scores}
        assert scored_ids == consented, (len(scored_ids), len(consented), len(scored_ids ^ consented))
        assert scored == len(consented)
        # no current score of this purpose for anyone not consented (from this run or an older one)
        others = sql.value("SELECT count(*) FROM scoring_customerscore WHERE purpose = %s AND NOT "
                           "(customer_id = ANY(%s::uuid[]))", [run.purpose, sorted(consented)])
        assert others == 0, others
        decisions = sql.rows("SELECT customer, count(*) FROM audit_decisionrecord WHERE decision_key LIKE %s "
                             "GROUP BY customer", [f"{run.id}:%"])
        assert all(n == 1 for _, n in decisions), [d for d in decisions if d[1] != 1][:5]
        assert {str(c) for c, _ in decisions} == consented
        figures[run.purpose] = {"consented": len(consented), "live": live, "chunks": chunks_total}
    return figures
