"""A Celery worker for the kill -9 test (started by tests/scoring/test_worker_integration.py).

With ``KILLTEST_PAUSE_MARKER`` set, the first chunk it processes pauses *inside* the chunk transaction, after
the decision records and scores are written and before the commit, and creates the marker file (holding the
worker's pid only) so the test knows when to ``kill -9`` it. A short broker visibility timeout lets the
next worker restore the unacknowledged message quickly. With ``KILLTEST_CLAIMS_DIR`` set, every chunk it
takes is recorded in ``<dir>/<pid>.jsonl`` (its customers, its runs, the runs it wrote), and every chunk it
plans in ``<dir>/<pid>.plan`` (its customers, whether it planned it).
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
app.conf.task_default_queue = os.environ["KILLTEST_QUEUE"]  # what it queues itself (sealing) stays with it

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

claims = os.environ.get("KILLTEST_CLAIMS_DIR")
if claims:  # which chunks this worker took, and whether it wrote them (test_worker_scaleout.py)
    import json

    from scoring import services as scoring_services

    real_rescore_chunks = scoring_services.rescore_chunks

    def recording_rescore_chunks(**kwargs):  # type: ignore[no-untyped-def]
        counts = real_rescore_chunks(**kwargs)
        line = {"pid": os.getpid(), "customers": sorted(str(c) for c in kwargs["customer_ids"]),
                "runs": sorted(str(r) for r in counts), "wrote": [str(r) for r, c in counts.items() if not c.already_done]}
        with open(Path(claims) / f"{os.getpid()}.jsonl", "a") as fh:
            fh.write(json.dumps(line) + "\n")
        return counts

    scoring_services.rescore_chunks = recording_rescore_chunks

    real_rescore_chunk_plan = scoring_services.rescore_chunk_plan

    def recording_rescore_chunk_plan(**kwargs):  # type: ignore[no-untyped-def]
        planned = real_rescore_chunk_plan(**kwargs)
        line = {"pid": os.getpid(), "customers": sorted(str(c) for c in kwargs["customer_ids"]), "planned": planned}
        with open(Path(claims) / f"{os.getpid()}.plan", "a") as fh:  # pass 1, apart from the chunks' claims
            fh.write(json.dumps(line) + "\n")
        return planned

    scoring_services.rescore_chunk_plan = recording_rescore_chunk_plan

app.worker_main([
    "worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-gossip", "--without-mingle",
    "--without-heartbeat", "-Q", os.environ["KILLTEST_QUEUE"], "-n", f"killtest-{os.getpid()}@%h",
])
