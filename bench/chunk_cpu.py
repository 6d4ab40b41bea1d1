"""Python CPU of the rescore's chunk scoring alone (a measuring aid, not a harness section).

``bench.pg_cpu_trace`` (same environment, same output) with ``scoring.services.rescore_chunks`` wrapped:
the process CPU spent inside it (``time.process_time``: the chunks' features, models, explanations,
sealing, gate re-check and writes, without start-up, model loading and the planning pass) is summed and
printed per customer (``N``). Run from the checkout being measured (it imports that checkout's code):

    DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=postgres://.../<copy> AUDIT_CHECKPOINT_DIR=<dir> \\
    ENGAGEMENT_SCORE_PURPOSE=none N=20000 python -m bench.chunk_cpu
"""

from __future__ import annotations

import json
import os
import runpy
import time
from typing import Any


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from scoring import services

    spent = [0.0, 0]
    original = services.rescore_chunks

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start
            spent[1] += 1

    services.rescore_chunks = timed  # type: ignore[assignment]
    try:
        runpy.run_module("bench.pg_cpu_trace", run_name="__main__")
    finally:
        n = int(os.environ.get("N", "1"))
        print(json.dumps({"chunk_calls": spent[1], "chunk_python_cpu": spent[0],
                          "chunk_py_ms_per_cust": 1000 * spent[0] / n}))


if __name__ == "__main__":
    main()
