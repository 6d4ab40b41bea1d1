"""Scenario 2: Redis, then PostgreSQL, stopped mid-run, for 10 s and for 5 minutes. While Redis is down scores
are still served (from PostgreSQL, the source of truth); while PostgreSQL is down the API answers 503 with a clear
body; never a 500, never an answer slower than the configured timeout (gunicorn's --timeout); the nightly runs
finish by themselves afterwards with every score and decision exactly once.

The two long outages are one test (about 12 minutes, mostly waiting); ``.ci/run`` runs this suite in the
background next to ``make test``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.resilience.client import Api, Db
from tests.resilience.runs import (
    CONSENTED_SQL,
    Run,
    assert_exactly_once,
    progress,
    start_nightly,
    wait_completed,
)
from tests.resilience.servers import WEB_TIMEOUT_S, Stack, wait_for

REQUEST_TIMEOUT_S = WEB_TIMEOUT_S  # gunicorn --timeout of the suite's web server
# Retries of a task interrupted by a database outage outlast 5 minutes (config.celery.db_retry_policy); after the
# outage a run still waits at most for its next retry (<= CELERY_RETRY_BACKOFF_MAX_S, 120 s) or the watchdog.
RECOVERY_BUDGET_S = 900


def _probe(api: Api, customer: str) -> list[dict[str, Any]]:
    out = []
    for path in (f"/api/v1/customers/{customer}/score?purpose=automated_scoring", "/api/v1/purposes"):
        started = time.monotonic()
        try:
            r = api.get(path, timeout=REQUEST_TIMEOUT_S + 5)
            status, body = r.status_code, (r.json() if r.headers.get("Content-Type", "").startswith(
                "application/json") else {"raw": r.text[:200]})
        except Exception as exc:  # noqa: BLE001 - a hang or a dropped connection is a finding
            status, body = 0, {"error": type(exc).__name__}
        out.append({"path": path.split("?")[0], "status": status, "body": body,
                    "elapsed": time.monotonic() - started})
    return out


def _outage(stack: Stack, api: Api, sql: Db, service: str, seconds: float, customer: str) -> list[dict[str, Any]]:
    server = stack.redis if service == "redis" else stack.pg
    server.stop()
    probes: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            probes.extend(_probe(api, customer))
            time.sleep(1.0 if seconds <= 30 else 5.0)
    finally:
        server.start()
    assert probes, "no request was made during the outage"
    slow = [p for p in probes if p["elapsed"] > REQUEST_TIMEOUT_S or p["status"] == 0]
    assert not slow, slow[:3]
    assert not [p for p in probes if p["status"] >= 500 and p["status"] != 503], probes[:5]
    if service == "redis":
        assert all(p["status"] == 200 for p in probes), [p for p in probes if p["status"] != 200][:3]
    else:
        assert all(p["status"] == 503 for p in probes), [p for p in probes if p["status"] != 503][:3]
        for p in probes:
            assert p["body"].get("code") == "unavailable" and p["body"].get("detail"), p
    return probes


def _mid_run(stack: Stack, sql: Db, runs: list[Run]) -> list[Run]:
    """The runs in progress (a new nightly run if the last one has finished), after some progress."""
    chunks = int(sql.value("SELECT max(chunks_total) FROM scoring_rescorerun WHERE id = ANY(%s::uuid[])",
                           [[r.id for r in runs]])) if runs else 0
    if not runs or progress(sql, runs) >= 2 * chunks - 4:
        wait_completed(sql, runs, RECOVERY_BUDGET_S) if runs else None
        runs = start_nightly(stack, sql)
    seen = progress(sql, runs)
    wait_for(lambda: progress(sql, runs) > seen, RECOVERY_BUDGET_S, "the run to make progress", interval=0.2)
    return runs


def _scenario(stack: Stack, api: Api, sql: Db, seconds: float) -> dict[str, Any]:
    [customer] = [str(c) for (c,) in sql.rows(CONSENTED_SQL + " ORDER BY c.id LIMIT 1",
                                              {"purpose": "automated_scoring"})]
    assert api.score(customer).status_code == 200
    all_runs: list[Run] = []
    runs: list[Run] = []
    figures: dict[str, Any] = {}
    for service in ("redis", "postgres"):
        runs = _mid_run(stack, sql, runs)
        all_runs.extend(r for r in runs if r not in all_runs)
        running = sql.value("SELECT count(*) FROM scoring_rescorerun WHERE id = ANY(%s::uuid[]) AND status = "
                            "'running'", [[r.id for r in runs]])
        assert running == 2, "the outage must start mid-run"
        probes = _outage(stack, api, sql, service, seconds, customer)
        figures[service] = {"requests": len(probes), "max_s": round(max(p["elapsed"] for p in probes), 2)}
    elapsed = wait_completed(sql, runs, RECOVERY_BUDGET_S)
    figures["completed_after_s"] = round(elapsed)
    earlier = [r for r in all_runs if r not in runs]
    if earlier:
        wait_completed(sql, earlier, RECOVERY_BUDGET_S)
        for run in earlier:  # superseded by the later run's scores; each decision of theirs exactly once
            n, distinct = sql.rows("SELECT count(*), count(DISTINCT customer) FROM audit_decisionrecord "
                                   "WHERE decision_key LIKE %s", [f"{run.id}:%"])[0]
            assert n == distinct == sql.value("SELECT scored FROM scoring_rescorerun WHERE id = %s", [run.id])
    figures["exact"] = assert_exactly_once(sql, runs)
    # after the outages the service answers normally again
    assert api.score(customer).status_code == 200
    return figures


def test_redis_then_postgres_down_for_ten_seconds_mid_run(stack: Stack, api: Api, sql: Db) -> None:
    figures = _scenario(stack, api, sql, 10)
    print(f"\nscenario 2 (10 s): {figures}")


@pytest.mark.slow
def test_redis_then_postgres_down_for_five_minutes_mid_run(stack: Stack, api: Api, sql: Db) -> None:
    figures = _scenario(stack, api, sql, 300)
    print(f"\nscenario 2 (5 min): {figures}")
