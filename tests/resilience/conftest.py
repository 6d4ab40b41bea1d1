"""Fixtures of the resilience suite (tests/resilience/README.md; docs/RELIABILITY.md lists what each proves).

One session stack: its own PostgreSQL cluster and Redis on spare ports, an SMTP sink, ``RESILIENCE_CUSTOMERS``
demo customers (2,000) seeded and a model trained through the product's own commands, then gunicorn, a Celery
worker and Celery beat with production settings. Everything is stopped when the session ends (also on failure);
``RESILIENCE_KEEP=1`` keeps the temporary directory (not the servers) for a post-mortem.

The suite is not part of ``make test`` (tests/conftest.py leaves this directory out unless it is named on the
command line); ``.ci/run`` runs it with REQUIRE_REAL_SERVICES=1, where a skip fails the run.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.resilience.client import DPO_USER, Api, Db, api_token
from tests.resilience.servers import Postgres, Redis, SmtpSink, Stack

CUSTOMERS = int(os.environ.get("RESILIENCE_CUSTOMERS", "2000"))
# Settings of the suite's application processes (production settings otherwise): small chunks so that a run has
# enough of them to be interrupted; a watchdog that beat runs every 10 s and that resumes a run without progress
# for a minute (production: every 5 minutes, 15 minutes).
APP_SETTINGS = {
    "RESCORE_CHUNK_SIZE": os.environ.get("RESILIENCE_CHUNK_SIZE", "50"),
    "RESCORE_WATCHDOG_STALE_MINUTES": "1",
    "RESCORE_WATCHDOG_INTERVAL_S": "10",
    "AUDIT_SEAL_REQUEST_INTERVAL_S": "0",
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (CI stopping the background suite) tears the servers down like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.resilience)
            item.add_marker(pytest.mark.integration)  # a skip fails the run under REQUIRE_REAL_SERVICES=1


def _missing_binaries() -> list[str]:
    import glob

    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        missing.append("/usr/lib/postgresql/*/bin/initdb")
    return missing


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    missing = _missing_binaries()
    if missing:
        pytest.skip(f"the resilience suite needs {', '.join(missing)}")
    root = Path(tempfile.mkdtemp(prefix="resilience-"))
    os.chmod(root, 0o755)
    pg = Postgres(root / "pg")
    redis = Redis(root)
    smtp = SmtpSink()
    st = Stack(root=root, pg=pg, redis=redis, smtp=smtp)
    try:
        pg.init()
        pg.start()
        redis.start()
        smtp.start()
        st.configure(APP_SETTINGS)
        pg.psql("postgres", f"CREATE DATABASE {st.db}")
        st.manage("migrate", "--noinput")
        # A migrated, empty copy for the tests that build their own data (the tampering chain): cloned with
        # CREATE DATABASE ... TEMPLATE instead of migrating a second database.
        pg.psql("postgres", f"CREATE DATABASE {st.blank_db} TEMPLATE {st.db}")
        st.manage("demo_seed", "--customers", str(CUSTOMERS), "--chunk-size", "500")
        st.manage("train")
        # The DPO account and the API client in one process (each manage.py start costs seconds under load).
        st.token = api_token(st, "resilience", before=DPO_USER)
        st.start_web()
        warm = Api(st.base_url, st.token)
        for _ in range(8):  # every gunicorn worker has loaded the model before the tests time requests
            warm.get("/api/v1/purposes")
        st.start_worker()
        st.start_beat()
        yield st
    finally:
        st.stop_procs()
        redis.stop()
        pg.stop()
        smtp.stop()
        if os.environ.get("RESILIENCE_KEEP") == "1":
            print(f"\nresilience: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def api(stack: Stack) -> Api:
    return Api(stack.base_url, stack.token)


@pytest.fixture(scope="session")
def sql(stack: Stack) -> Db:
    """Plain SQL against the product's database, for assertions."""
    return Db(stack)
