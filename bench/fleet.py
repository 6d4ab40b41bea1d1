"""Real Celery workers for a benchmark step, and what they cost: CPU and summed RSS of process trees, and the
CPU of the PostgreSQL backends serving one database.

``Fleet`` starts W ``celery -A config worker -c 1`` processes (as the README deploys them, one process pool
each) on a bench database, each consuming its own queue name (``BENCH_CELERY_QUEUE``: a message left over
from an earlier run never reaches them), waits until every one answers a ping, and stops them with SIGTERM
(warm shutdown). ``Sampler`` follows process trees and database backends every 0.2 s from ``/proc`` (CPU per
pid, last value seen, so a process that exits mid-run still counts up to its last sample).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import dbutil
from .common import REPO

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of the process and of its reaped children) from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), sum(int(fields[i]) for i in (11, 12, 13, 14)) / _CLK_TCK


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [root]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def postgres_backends(database: str) -> list[int]:
    """Pids of the PostgreSQL backends connected to ``database`` (their process title names it)."""
    marker = f" {database} ".encode()
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and marker in title:
            pids.append(int(p))
    return pids


class Sampler:
    """Every 0.2 s: the summed RSS of the trees of ``roots()`` (peak kept, per group) and the CPU of every
    process seen in them and of the backends of ``database`` (per pid, first and last value)."""

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]], *, database: str | None = None,
                 interval: float = 0.2) -> None:
        self.groups = groups
        self.database = database
        self.interval = interval
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.peak_kb: dict[str, int] = {}
        self.peak_total_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        total = 0
        groups: dict[str, list[int]] = {name: [p for root in roots() for p in tree_pids(root)]
                                        for name, roots in self.groups.items()}
        if self.database:
            groups["postgres"] = postgres_backends(self.database)
        for name, pids in groups.items():
            kb = 0
            for pid in pids:
                got = _stat(pid)
                if got is None:
                    continue
                self.first.setdefault((name, pid), got[1])
                self.last[(name, pid)] = got[1]
                if name != "postgres":
                    kb += _rss_kb(pid)
            if name != "postgres":
                self.peak_kb[name] = max(self.peak_kb.get(name, 0), kb)
                total += kb
        self.peak_total_kb = max(self.peak_total_kb, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cpu_seconds(self, name: str, *, since_first: bool = True) -> float:
        """CPU of group ``name`` while sampled (a pid first seen mid-run counts from 0 when ``since_first``
        is false: a process started during the step)."""
        return round(sum(v - (self.first[k] if since_first else 0.0)
                         for k, v in self.last.items() if k[0] == name), 2)

    def peak_mb(self, name: str | None = None) -> float:
        kb = self.peak_total_kb if name is None else self.peak_kb.get(name, 0)
        return round(kb / 1024.0, 1)


def redis_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


def redis_reachable(url: str) -> bool:
    try:
        redis_client(url).ping()
        return True
    except Exception:  # noqa: BLE001 - no broker: the celery executor is skipped with a note
        return False


class Fleet:
    """W real Celery worker processes on bench database ``db`` (broker ``broker``, cache ``cache``)."""

    def __init__(self, db: str, workers: int, *, broker: str, cache: str, log_dir: Path,
                 env_extra: dict[str, str] | None = None) -> None:
        self.db = db
        self.broker = broker
        self.queue = f"bench-{dbutil.db_name(db)}-{uuid.uuid4().hex[:8]}"
        self.names = [f"bench{k}-{self.queue[-8:]}@%h" for k in range(workers)]
        self.env = dbutil.child_env(db, BENCH_CELERY_BROKER_URL=broker, BENCH_CACHE_URL=cache,
                                    BENCH_CELERY_QUEUE=self.queue, **(env_extra or {}))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.logs = [log_dir / f"celery-{self.queue}-{k}.log" for k in range(workers)]
        self.procs: list[subprocess.Popen] = []

    def start(self, timeout: float = 240.0) -> float:
        """Start the workers and wait until each answers a ping; returns the seconds that took."""
        t0 = time.perf_counter()
        for name, log in zip(self.names, self.logs, strict=True):
            argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-c", "1", "-Q", self.queue, "-n", name,
                    "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
            with log.open("w") as fh:
                self.procs.append(subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=fh, stderr=fh))
        app = self._app()
        expected = {n.replace("%h", os.uname().nodename) for n in self.names}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.returncode for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"celery worker exited at start-up ({dead}); see {self.logs[0]}")
            with contextlib.suppress(Exception):
                replies = app.control.ping(timeout=1.0, destination=sorted(expected))
                if {name for reply in replies for name in reply} >= expected:
                    return time.perf_counter() - t0
            time.sleep(0.5)
        raise RuntimeError(f"celery workers did not all answer a ping within {timeout:.0f} s")

    def _app(self) -> Any:
        from celery import Celery

        return Celery("bench-fleet", broker=self.broker)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def idle(self) -> bool:
        """The queue is empty and no worker holds a task (active or reserved)."""
        if redis_client(self.broker).llen(self.queue):
            return False
        inspect = self._app().control.inspect(timeout=1.0, destination=[n.replace("%h", os.uname().nodename)
                                                                          for n in self.names])
        held = [inspect.active(), inspect.reserved()]
        return all(reply is not None and not any(reply.values()) for reply in held)

    def wait_idle(self, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if self.idle():
                    break
            time.sleep(0.25)
        return time.perf_counter() - t0

    def stop(self) -> list[int | None]:
        """Warm shutdown (SIGTERM: the task in hand finishes), SIGKILL after 60 s; the queue key is deleted."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        with contextlib.suppress(Exception):
            redis_client(self.broker).delete(self.queue)
        return [p.returncode for p in self.procs]
