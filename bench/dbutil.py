"""Bench databases: provisioning (fresh, from a migrated template), child-process environment, fast inserts.

PostgreSQL when the harness was started with a PostgreSQL ``DATABASE_URL`` (databases ``bench_<name>`` on
the same server), otherwise SQLite files under ``var/bench/``. Never the developer's or the test database.

The orchestrator-side functions (:func:`engine`, :func:`provision`, :func:`child_env`, ...) import no
Django; :func:`copy_rows` runs inside a Django process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .common import REPO, VAR_BENCH

TEMPLATE = "template"
_MIGRATION_APPS = ("audit", "profiles", "consent", "scoring", "subject_rights")


def original_database_url() -> str:
    """The DATABASE_URL the harness was started with (kept in BENCH_ORIGINAL_DATABASE_URL for children)."""
    return os.environ.get("BENCH_ORIGINAL_DATABASE_URL", os.environ.get("DATABASE_URL", ""))


def engine() -> str:
    url = original_database_url()
    return "postgresql" if url.startswith(("postgres://", "postgresql://", "pgsql://")) else "sqlite"


def namespace() -> str:
    """Short tag of the database the harness was started with (``scoring_ci`` -> ``scoring_ci``), so that two
    harness runs against different databases (a developer's full run, CI's quick run) never share or drop
    each other's bench databases and files. ``BENCH_NAMESPACE`` overrides it (two harness runs sharing one
    DATABASE_URL, e.g. two lanes' full runs on one server, set different ones)."""
    override = os.environ.get("BENCH_NAMESPACE", "").strip()
    if override:
        return re.sub(r"[^a-z0-9]+", "_", override.lower())[:24].strip("_") or "default"
    if engine() != "postgresql":
        return "sqlite"
    name = urlsplit(original_database_url()).path.lstrip("/") or "default"
    return re.sub(r"[^a-z0-9]+", "_", name.lower())[:24].strip("_") or "default"


def db_name(name: str) -> str:
    return f"bench_{namespace()}_{name}"


def work_dir(*parts: str) -> Path:
    """A folder of this harness namespace under var/bench/ (import files, logs)."""
    path = VAR_BENCH / namespace()
    for part in parts:
        path = path / part
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_url(name: str) -> str:
    """URL of bench database ``name`` (same PostgreSQL server as DATABASE_URL, or a var/bench file)."""
    if engine() == "postgresql":
        parts = urlsplit(original_database_url())
        return urlunsplit((parts.scheme, parts.netloc, "/" + db_name(name), parts.query, ""))
    return f"sqlite:///{VAR_BENCH / (db_name(name) + '.sqlite3')}"


def _pg_conninfo(dbname: str = "postgres") -> str:
    parts = urlsplit(original_database_url())
    return urlunsplit(("postgresql", parts.netloc, "/" + dbname, parts.query, ""))


def pg_admin(sql: str, params: Sequence[Any] | None = None, *, dbname: str = "postgres") -> list[tuple]:
    import psycopg

    with psycopg.connect(_pg_conninfo(dbname), autocommit=True) as conn:
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def child_env(name: str, **extra: str) -> dict[str, str]:
    """Environment for a Django child process working on bench database ``name``."""
    env = dict(os.environ)
    env["BENCH_ORIGINAL_DATABASE_URL"] = original_database_url()
    env["DATABASE_URL"] = db_url(name)
    env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    env["AUDIT_CHECKPOINT_DIR"] = str(checkpoint_dir(name))
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("CELERY_BROKER_URL", "CACHE_URL", "CELERY_RESULT_BACKEND"):
        env.pop(var, None)
    # A deployed service starts from byte-compiled modules; with PYTHONDONTWRITEBYTECODE inherited (some
    # shells and CI images set it) every child would compile its imports again, 3-9 s of CPU per process
    # counted in the CPU figures. Children write and reuse the caches (``__pycache__``, ignored by git).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def migrations_fingerprint() -> str:
    h = hashlib.sha256()
    apps = sorted({*_MIGRATION_APPS, *(p.parent.name for p in REPO.glob("*/migrations") if p.is_dir())})
    for app in apps:
        folder = REPO / app / "migrations"
        for path in sorted(folder.glob("*.py")) if folder.exists() else []:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _migrate(name: str) -> None:
    proc = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                          env=child_env(name), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("migrate failed: " + (proc.stderr or proc.stdout)[-2000:])


def checkpoint_dir(name: str) -> Path:
    """Each bench database has its own audit checkpoint store (a chain's checkpoints belong to its DB)."""
    return VAR_BENCH / "checkpoints" / db_name(name)


def drop(name: str) -> None:
    shutil.rmtree(checkpoint_dir(name), ignore_errors=True)
    if engine() == "postgresql":
        pg_admin(f'DROP DATABASE IF EXISTS "{db_name(name)}" WITH (FORCE)')
    else:
        path = VAR_BENCH / (db_name(name) + ".sqlite3")
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def exists(name: str) -> bool:
    if engine() == "postgresql":
        return bool(pg_admin("SELECT 1 FROM pg_database WHERE datname = %s", [db_name(name)]))
    return (VAR_BENCH / (db_name(name) + ".sqlite3")).exists()


def _template_current() -> bool:
    fp = migrations_fingerprint()
    if engine() == "postgresql":
        rows = pg_admin("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        [db_name(TEMPLATE)])
        return bool(rows) and rows[0][0] == fp
    marker = VAR_BENCH / (db_name(TEMPLATE) + ".fingerprint")
    return exists(TEMPLATE) and marker.exists() and marker.read_text() == fp


def ensure_template() -> float:
    """A migrated empty bench database to clone from; rebuilt when any migration changed. Seconds spent."""
    t0 = time.perf_counter()
    # The harness's files live here; a fresh checkout may find a current template left in PostgreSQL by an
    # earlier run, so the directory is made before the early return.
    VAR_BENCH.mkdir(parents=True, exist_ok=True)
    if _template_current():
        return 0.0
    drop(TEMPLATE)
    if engine() == "postgresql":
        pg_admin(f'CREATE DATABASE "{db_name(TEMPLATE)}"')
    _migrate(TEMPLATE)
    fp = migrations_fingerprint()
    if engine() == "postgresql":
        pg_admin(f"COMMENT ON DATABASE \"{db_name(TEMPLATE)}\" IS '{fp}'")
    else:
        (VAR_BENCH / (db_name(TEMPLATE) + ".fingerprint")).write_text(fp)
    return time.perf_counter() - t0


def provision(name: str) -> str:
    """A fresh, migrated, empty bench database ``name`` (cloned from the template); returns its URL."""
    ensure_template()
    drop(name)
    if engine() == "postgresql":
        pg_admin(f'CREATE DATABASE "{db_name(name)}" TEMPLATE "{db_name(TEMPLATE)}"')
    else:
        shutil.copyfile(VAR_BENCH / (db_name(TEMPLATE) + ".sqlite3"), VAR_BENCH / (db_name(name) + ".sqlite3"))
    return db_url(name)


def clone(src: str, dst: str) -> str:
    """Copy bench database ``src`` (no open connections) to ``dst``, with its checkpoint store."""
    drop(dst)
    if engine() == "postgresql":
        pg_admin(f'CREATE DATABASE "{db_name(dst)}" TEMPLATE "{db_name(src)}"')
    else:
        shutil.copyfile(VAR_BENCH / (db_name(src) + ".sqlite3"), VAR_BENCH / (db_name(dst) + ".sqlite3"))
    if checkpoint_dir(src).exists():
        shutil.copytree(checkpoint_dir(src), checkpoint_dir(dst))
    return db_url(dst)


def server_version() -> str:
    try:
        if engine() == "postgresql":
            return str(pg_admin("SHOW server_version")[0][0])
        import sqlite3

        return sqlite3.sqlite_version
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"unknown ({type(exc).__name__})"


def drop_namespace(*, keep: Sequence[str] = (TEMPLATE,)) -> list[str]:
    """Drop every bench database of this namespace except ``keep`` (end of a quick run: CI leaves nothing)."""
    prefix = db_name("")
    dropped = []
    if engine() == "postgresql":
        names = [r[0] for r in pg_admin("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])]
    else:
        names = [p.name[: -len(".sqlite3")] for p in VAR_BENCH.glob(prefix + "*.sqlite3")]
    for full in names:
        short = full[len(prefix):]
        if short in keep:
            continue
        drop(short)
        dropped.append(short)
    return dropped


def database_size(name: str) -> int | None:
    try:
        if engine() == "postgresql":
            return int(pg_admin("SELECT pg_database_size(%s)", [db_name(name)])[0][0])
        return (VAR_BENCH / (db_name(name) + ".sqlite3")).stat().st_size
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------------------
# Inside a Django process
# ---------------------------------------------------------------------------------------------------------


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"})


def pg_text(value: Any) -> str:
    """One value in PostgreSQL COPY text format."""
    if value is None:
        return "\\N"
    t = type(value)
    if t is str:
        return value.translate(_ESCAPES) if ("\\" in value or "\n" in value or "\t" in value
                                             or "\r" in value) else value
    if t is bool:
        return "t" if value else "f"
    if t is int or t is float:
        return repr(value)
    if t is bytes or t is memoryview or t is bytearray:
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    obj = getattr(value, "obj", _MISSING)  # psycopg Json/Jsonb wrappers (JSONField defaults)
    if obj is not _MISSING:
        return json.dumps(obj).translate(_ESCAPES)
    return str(value).translate(_ESCAPES)


_MISSING = object()


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, batch: int = 5000,
              suffix: Sequence[Any] = (), raw: bool = False) -> int:
    """Insert many rows fast: COPY (text format) on PostgreSQL, executemany on SQLite. Returns the row count.

    ``suffix`` holds constant values appended to every row (formatted once). ``raw`` (PostgreSQL only): the
    row values are already in COPY text form (``str()`` of each is used as is: the caller encodes booleans,
    NULLs and bytes, see :func:`pg_text`).
    """
    from django.db import connection

    n = 0
    cols = ", ".join(f'"{c}"' for c in columns)
    if connection.vendor == "postgresql":
        tail = "".join("\t" + pg_text(v) for v in suffix) + "\n"
        with connection.cursor() as cursor:
            pg_cursor = cursor.cursor
            with pg_cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
                lines: list[str] = []
                for row in rows:
                    if raw:
                        lines.append("\t".join(map(str, row)) + tail)
                    else:
                        lines.append("\t".join([pg_text(v) for v in row]) + tail)
                    if len(lines) >= batch:
                        copy.write("".join(lines))
                        n += len(lines)
                        lines = []
                if lines:
                    copy.write("".join(lines))
                    n += len(lines)
        return n
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f'INSERT INTO "{table}" ({cols}) VALUES ({placeholders})'
    consts = tuple(suffix)
    buf: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        for row in rows:
            buf.append(tuple(row) + consts)
            if len(buf) >= batch:
                cursor.executemany(sql, buf)
                n += len(buf)
                buf = []
        if buf:
            cursor.executemany(sql, buf)
            n += len(buf)
    return n


@contextlib.contextmanager
def pg_deferred_indexes(tables: Sequence[str]) -> Iterator[dict[str, float]]:
    """PostgreSQL bulk load: drop secondary indexes, unique and foreign-key constraints of ``tables``
    (primary keys stay), yield, then recreate exactly the same definitions and ANALYZE. No-op elsewhere."""
    from django.db import connection

    timings = {"drop_seconds": 0.0, "rebuild_seconds": 0.0}
    if connection.vendor != "postgresql" or not tables:
        yield timings
        return
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u') ORDER BY contype", [list(tables)])
        constraints = cur.fetchall()
        cur.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)", [list(tables)])
        indexes = cur.fetchall()
        for table, name, _def, _type in constraints:  # 'f' first, then 'u'
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _def in indexes:
            cur.execute(f"DROP INDEX {name}")
    timings["drop_seconds"] = time.perf_counter() - t0
    try:
        yield timings
    finally:
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '512MB'")
            for _name, definition in indexes:
                cur.execute(definition)
            for table, name, definition, _type in sorted(constraints, key=lambda c: c[3] != "u"):
                cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            for table in tables:
                cur.execute(f"ANALYZE {table}")
        timings["rebuild_seconds"] = time.perf_counter() - t0


def analyze() -> None:
    """Refresh planner statistics after a bulk load."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
