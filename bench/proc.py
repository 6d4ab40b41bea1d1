"""Run a measured step in a fresh child process (``python -m bench.worker TASK``) against a bench database.

The child prints one ``BENCH_RESULT {json}`` line; the parent adds the wall time and the child's peak RSS
(``ru_maxrss`` from ``wait4``, i.e. the whole process, imports included).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from .common import REPO
from .dbutil import child_env

MARKER = "BENCH_RESULT "


class WorkerFailed(RuntimeError):
    pass


def run_worker(db: str, task: str, args: dict[str, Any] | None = None, *, timeout: float = 3600,
               env_extra: dict[str, str] | None = None, cmd: list[str] | None = None) -> dict[str, Any]:
    """Run ``bench.worker`` task ``task`` (or an explicit ``cmd``) on bench database ``db``.

    Returns the worker's result dict plus ``wall_seconds`` and ``peak_rss_mb``. Raises WorkerFailed on a
    non-zero exit or a timeout (with the tail of its output).
    """
    argv = cmd or [sys.executable, "-m", "bench.worker", task, json.dumps(args or {})]
    env = child_env(db, **(env_extra or {}))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        # Same process group as the section: stopping a section (timeout) stops its workers too.
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            _pid, status, rusage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if timed_out.is_set():
        raise WorkerFailed(f"{task}: timed out after {timeout:.0f} s; stderr tail: {stderr[-1500:]}")
    if proc.returncode != 0:
        raise WorkerFailed(f"{task}: exit {proc.returncode}; stderr tail: {stderr[-3000:]}")
    result: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
    result["wall_seconds"] = wall
    result["peak_rss_mb"] = round(rusage.ru_maxrss / 1024.0, 1)
    result["stdout_tail"] = stdout[-1500:] if not cmd else stdout[-3000:]
    return result


#: A Celery worker as production runs it (one process here), for sections that seal the audit chain where
#: the service does. Its environment names the bench database and the broker.
CELERY_WORKER_ARGV = [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "1", "--loglevel", "WARNING",
                      "--without-gossip", "--without-mingle", "--without-heartbeat"]


def emit(result: dict[str, Any]) -> None:
    """Worker side: print the result line."""
    from .common import _json_default

    print(MARKER + json.dumps(result, default=_json_default), flush=True)
