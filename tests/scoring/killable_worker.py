"""A Celery worker for the kill -9 test (started by tests/scoring/test_worker_integration.py).

With ``KILLTEST_PAUSE_MARKER`` set, the first chunk it processes pauses *inside* the chunk transaction, after
the decision records and scores are written and before the commit, and creates the marker file (holding the
worker's pid only) so the test knows when to ``kill -9`` it. A short broker visibility timeout lets the
next worker restore the unacknowledged message quickly.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from config.celery import app  # noqa: E402

app.conf.broker_transport_options = {
    "visibility_timeout": int(os.environ.get("KILLTEST_VISIBILITY_TIMEOUT", "4")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
app.conf.task_always_eager = False

marker = os.environ.get("KILLTEST_PAUSE_MARKER")
if marker:
    from profiles import services as profiles_services

    real_mark_fresh = profiles_services.customer_mark_fresh

    def pause_mid_chunk(**kwargs):  # type: ignore[no-untyped-def]
        if not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            time.sleep(300)
        return real_mark_fresh(**kwargs)

    profiles_services.customer_mark_fresh = pause_mid_chunk

app.worker_main([
    "worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
    "--without-heartbeat", "-Q", os.environ["KILLTEST_QUEUE"], "-n", f"killtest-{os.getpid()}@%h",
])
