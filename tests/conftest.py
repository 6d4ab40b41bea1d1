"""Shared fixtures.

- Database: SQLite by default; PostgreSQL when DATABASE_URL is set (as in CI).
- Celery: tasks run in-process (eager) unless a test asks for ``celery_worker``. With
  CELERY_BROKER_URL set and PostgreSQL, that fixture starts a real ``celery worker`` process against the
  test database and the Redis broker; without them the test is skipped (never run in-process while claiming
  a worker), and in CI (REQUIRE_REAL_SERVICES=1, tests/skip_guard.py) such a skip fails the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# presidio_analyzer and spacy are imported for their side effect: they import pydantic, whose class definitions
# fail if first imported while freezegun has replaced ``datetime.date`` (a test that freezes time and then
# scrubs a DPO's text through Presidio).
import presidio_analyzer  # noqa: F401
import pytest
import spacy  # noqa: F401
from django.conf import settings
from rest_framework.test import APIClient

pytest_plugins = ["tests.skip_guard"]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The resilience suite (own servers, ~20 minutes) runs only when named: ``pytest tests/resilience``."""
    if collection_path.name == "resilience" and collection_path.parent == Path(__file__).parent:
        named = any("resilience" in str(arg) for arg in config.args)
        return None if named else True
    return None

ROOT = Path(__file__).resolve().parent.parent
ALL_SCOPES = [
    "ingest:write", "consent:read", "consent:write", "score:read", "outcome:write", "route:read", "dsr:read",
    "dsr:write", "actions:read", "actions:write", "kpis:read", "webhooks:admin",
]
ALL_PURPOSES = ["automated_scoring", "service_prioritization", "marketing"]


@pytest.fixture(autouse=True)
def _eager_celery(settings: Any) -> Iterator[None]:
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True)
def _own_checkpoint_dir(settings: Any, tmp_path: Path) -> None:
    """Each test signs audit checkpoints into its own directory, so one test's checkpoints never make
    another test's chain verification fail."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "audit-checkpoints")


@pytest.fixture(autouse=True)
def _seeded_purposes(request: pytest.FixtureRequest) -> None:
    """Re-seed the purposes and notices of the data migration for every database test: a transactional
    test's flush deletes migration data, and later tests rely on the purposes existing."""
    import importlib

    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    transactional = transactional or bool({"transactional_db", "live_server", "celery_worker"} & names)
    if marker is None and not ({"db", "transactional_db", "live_server"} & names):
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.apps import apps

    importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed(apps, None)


@pytest.fixture
def governance() -> Callable[[str], list[Any]]:
    """``governance(kind)`` -> the governance records of that kind, oldest first (one home for every app's
    tests)."""
    from audit.models import GovernanceEvent

    return lambda kind: list(GovernanceEvent.objects.filter(kind=kind).order_by("id"))


@pytest.fixture
def task_messages(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Every Celery task message of the test: as handed to ``apply_async``, as published to a broker and as run
    in-process (``tests.task_messages``)."""
    from tests.task_messages import capture_task_messages

    yield from capture_task_messages(monkeypatch)


@pytest.fixture
def make_api_client(db: None) -> Callable[..., APIClient]:
    """``make_api_client(scopes=[...], purposes=[...])`` -> DRF test client with a bearer token."""
    from audit.api_clients import api_client_create

    counter = {"n": 0}

    def factory(scopes: list[str] | None = None, purposes: list[str] | None = None, name: str | None = None) -> APIClient:
        counter["n"] += 1
        created = api_client_create(
            name=name or f"test-client-{counter['n']}-{os.getpid()}-{time.monotonic_ns()}",
            scopes=ALL_SCOPES if scopes is None else scopes,
            purposes=ALL_PURPOSES if purposes is None else purposes,
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.token}")
        client.api_client = created.client  # type: ignore[attr-defined]
        return client

    return factory


@pytest.fixture
def api(make_api_client: Callable[..., APIClient]) -> APIClient:
    """An API client with every scope and purpose."""
    return make_api_client()


@pytest.fixture
def dpo_user(db: None) -> Any:
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username="dpo", password="dpo-password-123")
    group, _ = Group.objects.get_or_create(name="dpo")
    user.groups.add(group)
    return user


@pytest.fixture
def dpo_client(client: Any, dpo_user: Any) -> Any:
    client.force_login(dpo_user)
    return client


def _database_url_for_worker() -> str | None:
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] != "django.db.backends.postgresql":
        return None
    user = s.get("USER") or "postgres"
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: Any, django_db_blocker: Any) -> Iterator[subprocess.Popen | None]:
    """A real Celery worker process, when a broker and PostgreSQL are configured (CI)."""
    broker = settings.CELERY_BROKER_URL
    with django_db_blocker.unblock():
        db_url = _database_url_for_worker()
    if not broker or not db_url:
        yield None
        return
    from config.celery import app

    app.control.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "AUDIT_CHECKPOINT_DIR": settings.AUDIT_CHECKPOINT_DIR,
        "EXPORT_DIR": settings.EXPORT_DIR,
    }
    log = open(Path(settings.VAR_DIR_TEST) / "worker.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--concurrency=1",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if app.control.inspect(timeout=1.0).ping():
                break
        except Exception:  # noqa: BLE001, S110
            pass
        if proc.poll() is not None:
            raise RuntimeError("celery worker exited at start-up; see worker.log")
        time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("celery worker did not answer a ping within 60 s")
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def celery_worker(celery_worker_process: subprocess.Popen | None, transactional_db: None) -> Iterator[Any]:
    """Route tasks to the real worker for this test (needs committed data: transactional_db).

    Yields an object with ``.real`` (always True: without a broker and PostgreSQL the test is skipped) and
    ``.wait(predicate, timeout)``.
    """
    from config.celery import app

    if celery_worker_process is None:
        pytest.skip("needs a real Celery worker: set CELERY_BROKER_URL and a PostgreSQL DATABASE_URL (CI does)")

    class Worker:
        real = celery_worker_process is not None
        process = celery_worker_process

        @staticmethod
        def wait(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if predicate():
                    return True
                time.sleep(0.2)
            return predicate()

    if Worker.real:
        app.conf.task_always_eager = False
    yield Worker
    app.conf.task_always_eager = True
    if Worker.real:
        _worker_quiesce(app)


def _worker_quiesce(app: Any, timeout: float = 30.0) -> None:
    """Wait until the worker holds no task and its queue is empty: tasks a test set off (sealing queued on
    commit, a late chunk) must not run while the test database is flushed (the flush's TRUNCATE and a
    task's transaction would deadlock)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with app.connection_for_write() as conn:
            try:
                queued = conn.default_channel.queue_declare(queue=app.conf.task_default_queue,
                                                            passive=True).message_count
            except conn.channel_errors:  # no such queue: nothing was ever queued, or it was drained
                queued = 0
            inspect = app.control.inspect(timeout=1.0, limit=1, connection=conn)
            held = [inspect.active(), inspect.reserved(), inspect.scheduled()]
        if not queued and all(reply and not any(reply.values()) for reply in held):
            return
        time.sleep(0.1)
