"""Child-process tasks of the harness: ``python -m bench.worker TASK '{json args}'``.

Run by :func:`bench.proc.run_worker` with ``DATABASE_URL`` pointing at a bench database and
``DJANGO_SETTINGS_MODULE=bench.settings``. Each task prints one ``BENCH_RESULT`` line (see
:func:`bench.proc.emit`); timings inside a task exclude interpreter and Django start-up.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .proc import emit

TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def task(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    TASKS[fn.__name__] = fn
    return fn


def _setup() -> None:
    """Django, plus the apps' service and task modules (a one-off import cost of several seconds, which a
    long-running process has paid already; ``wall_seconds`` of the parent still includes it)."""
    import importlib

    import django

    django.setup()
    for app in ("audit", "profiles", "consent", "scoring", "subject_rights"):
        for module in ("services", "selectors", "tasks"):
            with contextlib.suppress(ImportError):
                importlib.import_module(f"{app}.{module}")


@task
def load(args: dict[str, Any]) -> dict[str, Any]:
    """Synthetic population into the database (bench.datagen)."""
    from . import datagen

    rep = datagen.load(int(args["customers"]), seed=int(args.get("seed", 42)), progress=bool(args.get("progress")),
                       start=int(args.get("start", 0)))
    return {"seconds": rep.seconds, "seconds_crypto": rep.seconds_crypto, "counts": rep.counts,
            "index_seconds": rep.index_seconds}


@task
def import_csv(args: dict[str, Any]) -> dict[str, Any]:
    """``manage.py import_csv --inline`` on one file, timed around the command only."""
    from django.core.management import call_command

    out = io.StringIO()
    c0, t0 = time.process_time(), time.perf_counter()
    argv = ["import_csv", "--source", args["source"], args["file"], "--inline", "--actor", "job:bench"]
    if args.get("kind"):
        argv += ["--kind", args["kind"]]
    call_command(*argv, verbosity=0, stdout=out, stderr=io.StringIO())
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    pool_cpu = text_pool_cpu_seconds()
    text = out.getvalue()
    counts = {}
    first = text.splitlines()[0] if text else ""
    for part in first.split():
        key, sep, value = part.partition("=")
        if sep and value.isdigit():
            counts[key] = int(value)
    return {"seconds": seconds, "task_cpu_seconds": cpu_seconds + pool_cpu, "pool_cpu_seconds": pool_cpu,
            "counts": counts}


def text_pool_cpu_seconds() -> float:
    """CPU seconds (user + system) of the free-text worker processes of this process (``TEXT_WORKERS``), read
    from ``/proc``: they are forked during the import, so all their CPU is the import's."""
    try:
        from profiles import text_pool
    except ImportError:  # a commit without the pool
        return 0.0
    pool = getattr(text_pool, "_pool", None)
    total = 0
    for pid in list(getattr(pool, "_processes", None) or {}):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


@task
def command(args: dict[str, Any]) -> dict[str, Any]:
    """Any management command, timed around ``call_command`` (stdout kept, tail only)."""
    from django.core.management import call_command

    out = io.StringIO()
    t0 = time.perf_counter()
    call_command(*args["argv"], stdout=out, stderr=io.StringIO())
    return {"seconds": time.perf_counter() - t0, "stdout": out.getvalue()[-2000:]}


def main(argv: list[str]) -> int:
    name = argv[1]
    args = json.loads(argv[2]) if len(argv) > 2 else {}
    _setup()
    fn = TASKS.get(name)
    if fn is None:
        from importlib import import_module

        module, _, attr = name.rpartition(".")
        fn = getattr(import_module(module), attr)
    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
        try:
            result = fn(args)
        finally:
            profiler.stop()
            with open(profile_to, "w") as fh:
                fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
        result["profile"] = profile_to
    else:
        result = fn(args)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
