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
from collections.abc import Callable
from typing import Any

from .common import REPO
from .dbutil import child_env

MARKER = "BENCH_RESULT "


class WorkerFailed(RuntimeError):
    pass


def _tree_rss_kb(pid: int) -> int:
    """Resident set of ``pid`` and all its descendants (kB, from /proc; 0 where /proc is missing). Pages
    shared between forked processes are counted once per process, so this is an upper bound."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_worker(db: str, task: str, args: dict[str, Any] | None = None, *, timeout: float = 3600,
               env_extra: dict[str, str] | None = None, cmd: list[str] | None = None,
               on_start: Callable[[int], Any] | None = None, tree_rss: bool = False) -> dict[str, Any]:
    """Run ``bench.worker`` task ``task`` (or an explicit ``cmd``) on bench database ``db``.

    Returns the worker's result dict plus ``wall_seconds`` and ``peak_rss_mb``. Raises WorkerFailed on a
    non-zero exit or a timeout (with the tail of its output). ``on_start(pid)`` is called once the child
    runs (e.g. to attach a profiler). With ``tree_rss``, the summed RSS of the child and its descendants
    is sampled every 0.2 s (``peak_tree_rss_mb``: a worker that forks scoring processes).
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
        peak_tree = [0]
        sampling = threading.Event()

        def _sample() -> None:
            while not sampling.wait(0.2):
                peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=_sample, daemon=True) if tree_rss else None
        if sampler is not None:
            sampler.start()
        if on_start is not None:
            on_start(proc.pid)
        try:
            _pid, status, rusage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            sampling.set()
            if sampler is not None:
                sampler.join()
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
    # CPU of the child and the descendants it waited for (its forked workers); not the database server's
    result["cpu_seconds"] = round(rusage.ru_utime + rusage.ru_stime, 2)
    if tree_rss:
        result["peak_tree_rss_mb"] = round(max(peak_tree[0], rusage.ru_maxrss) / 1024.0, 1)
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
