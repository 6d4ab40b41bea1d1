"""Embedded mode (``make run``: no broker, tasks run in-process): a daemon thread of the ``runserver``
process seals the audit chain and signs its head every ``AUDIT_HEAD_SIGN_SECONDS``, as Celery beat does in
production. Commits already seal and sign in-process (the eager ``audit.tasks.seal_chain``), but at most once
per ``AUDIT_SEAL_REQUEST_INTERVAL_S`` per process; this timer picks up what such a throttled commit left
waiting, so the tamper window stays bounded when traffic stops. Never started in tests or other commands."""

from __future__ import annotations

import logging
import os
import sys
import threading

from django.conf import settings

logger = logging.getLogger("audit")

_stop = threading.Event()
_thread: threading.Thread | None = None


def running() -> bool:
    return _thread is not None and _thread.is_alive()


def run_once() -> int:
    """One pass: seal waiting records, sign the head, write a permanent checkpoint when due."""
    from audit import services

    return services.chain_seal_and_sign()


def _loop(interval: float) -> None:
    from django.db import close_old_connections

    while not _stop.wait(interval):
        try:
            run_once()
        except Exception:  # noqa: BLE001 - the timer must survive a bad pass; the next one retries
            logger.exception("embedded audit seal-and-sign pass failed", extra={"event": "audit.embedded.failed"})
        finally:
            close_old_connections()


def start(interval: float | None = None) -> None:
    global _thread
    if running():
        return
    seconds = float(interval if interval is not None else getattr(settings, "AUDIT_HEAD_SIGN_SECONDS", 5.0))
    _stop.clear()
    _thread = threading.Thread(target=_loop, args=(seconds,), name="audit-head-signer", daemon=True)
    _thread.start()


def stop() -> None:
    _stop.set()


def should_start(argv: list[str] | None = None, *, testing: bool | None = None) -> bool:
    """Only the serving ``runserver`` process of embedded mode (eager tasks, no beat), never under pytest."""
    argv = list(sys.argv if argv is None else argv)
    testing = "pytest" in sys.modules if testing is None else testing
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) or testing:
        return False
    if float(getattr(settings, "AUDIT_HEAD_SIGN_SECONDS", 5.0)) <= 0:
        return False
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    # with the autoreloader, only the child process (RUN_MAIN) serves requests
    return "--noreload" in argv or os.environ.get("RUN_MAIN") == "true"


def start_if_embedded() -> None:
    if should_start():
        start()
