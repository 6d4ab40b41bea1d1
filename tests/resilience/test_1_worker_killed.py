"""Scenario 1: the Celery worker's main process is SIGKILLed three times during a nightly rescore and restarted.
The run completes by itself (the stale-run watchdog run by beat re-queues the chunks whose messages the killed
worker held unacknowledged; the Redis visibility timeout is hours), with every score and decision exactly once."""

from __future__ import annotations

import time

from tests.resilience.client import Db
from tests.resilience.conftest import APP_SETTINGS
from tests.resilience.runs import assert_exactly_once, progress, start_nightly, wait_completed
from tests.resilience.servers import Stack, wait_for

# The configured bound: the watchdog notices a run without progress after RESCORE_WATCHDOG_STALE_MINUTES, at its
# next beat tick (RESCORE_WATCHDOG_INTERVAL_S); the rest of the run is scoring time.
STALE_S = int(APP_SETTINGS["RESCORE_WATCHDOG_STALE_MINUTES"]) * 60 + float(APP_SETTINGS["RESCORE_WATCHDOG_INTERVAL_S"])
SCORING_BUDGET_S = 600


def test_worker_main_process_killed_three_times_run_completes_exactly_once(stack: Stack, sql: Db) -> None:
    runs = start_nightly(stack, sql)
    assert sorted(r.purpose for r in runs) == ["automated_scoring", "service_prioritization"]
    chunks_total = int(sql.value("SELECT max(chunks_total) FROM scoring_rescorerun WHERE id = ANY(%s::uuid[])",
                                 [[r.id for r in runs]]))
    assert chunks_total >= 10, chunks_total  # enough chunks to be interrupted three times
    killed_at: list[int] = []
    for _ in range(3):
        seen = progress(sql, runs)
        # kill while the worker is busy: right after it finished a chunk (the next one is in its hands)
        wait_for(lambda seen=seen: progress(sql, runs) > seen, SCORING_BUDGET_S, "the worker to make progress",
                 interval=0.1)
        stack.kill_main("worker")
        killed_at.append(progress(sql, runs))
        time.sleep(1)
        stack.start_worker()
    assert max(killed_at) < 2 * chunks_total, "the run finished before the third kill"
    elapsed = wait_completed(sql, runs, timeout=STALE_S + SCORING_BUDGET_S)
    figures = assert_exactly_once(sql, runs)
    # the killed workers' messages were picked up by the watchdog, not by a manual resume
    assert sql.value("SELECT count(*) FROM scoring_rescorerun WHERE id = ANY(%s::uuid[]) AND status = 'completed'",
                     [[r.id for r in runs]]) == 2
    print(f"\nscenario 1: killed after {[k // 2 for k in killed_at]} of {chunks_total} chunk tasks; completed {elapsed:.0f} s after the last restart; "
          f"{figures}")
