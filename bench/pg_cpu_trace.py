"""PostgreSQL CPU per statement of a rescore (a measuring aid, not a harness section).

Runs ``manage.py rescore --all --no-progress --workers 1`` in this process on ``DATABASE_URL`` (a copy of a
bench database: it writes) and reads the CPU of the connection's server backend (utime + stime from
``/proc/<pid>/stat``: a server on this machine) before and after each statement and ``COPY``, summed by
statement text. Prints the Python CPU of this process and the backend CPU per customer (``N`` customers)
and the top statements. Linux, local server only. With ``PROFILE=<file>`` a cProfile of the command is
dumped there. Used for the "2026-12-07 night, lane rcpu" figures in docs/BENCHMARKS.md (environment there):

    DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=postgres://.../<copy> AUDIT_CHECKPOINT_DIR=<dir> \\
    ENGAGEMENT_SCORE_PURPOSE=none N=20000 python -m bench.pg_cpu_trace
"""

from __future__ import annotations

import collections
import json
import os
import re
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def _key(sql: str) -> str:
    return re.sub(r"'[^']*'", "?", re.sub(r"\s+", " ", sql.strip())[:90])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import psycopg
    from django.core.management import call_command
    from django.db import connection
    from django.db.backends.signals import connection_created

    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    backend = [0]

    def on_created(sender: Any, connection: Any, **kwargs: Any) -> None:  # a reconnect: another backend
        with connection.cursor() as c:
            c.execute("select pg_backend_pid()")
            backend[0] = int(c.fetchone()[0])

    connection_created.connect(on_created)
    connection.ensure_connection()
    if not backend[0]:
        on_created(None, connection)

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        pid = backend[0]
        c0 = _cpu(pid)
        try:
            return execute(sql, params, many, context)
        finally:
            st = stats[_key(sql)]
            st[0] += 1
            st[1] += _cpu(pid) - c0

    original_copy = psycopg.Cursor.copy

    @contextmanager
    def copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        pid = backend[0]
        c0 = _cpu(pid)
        with original_copy(self, statement, *args, **kwargs) as cp:
            yield cp
        st = stats[_key("COPY " + str(statement)[5:60])]
        st[0] += 1
        st[1] += _cpu(pid) - c0

    psycopg.Cursor.copy = copy  # type: ignore[method-assign]
    argv = ["rescore", "--all", "--no-progress", "--workers", "1"]
    b0, r0, t0 = _cpu(backend[0]), resource.getrusage(resource.RUSAGE_SELF), time.time()
    with connection.execute_wrapper(wrapper):
        if os.environ.get("PROFILE"):
            import cProfile

            prof = cProfile.Profile()
            prof.runcall(call_command, *argv)
            prof.dump_stats(os.environ["PROFILE"])
        else:
            call_command(*argv)
    r1, b1 = resource.getrusage(resource.RUSAGE_SELF), _cpu(backend[0])
    python = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    n = int(os.environ.get("N", "1"))
    print(json.dumps({"wall": time.time() - t0, "python_cpu": python, "backend_cpu": b1 - b0,
                      "py_ms_per_cust": 1000 * python / n, "pg_ms_per_cust": 1000 * (b1 - b0) / n}))
    total = sum(v[1] for v in stats.values()) or 1e-9
    for key, (count, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:30]:
        print(f"{seconds:8.2f}s {100 * seconds / total:5.1f}% {int(count):6d}  {key}")


if __name__ == "__main__":
    main()
