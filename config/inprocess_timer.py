"""Embedded mode (no broker, tasks run in-process): a daemon thread of the serving ``runserver`` process that
runs one pass every ``interval`` seconds, or at once when woken, as Celery beat and a worker do in production.

A failing pass is logged and the next one retries; the database connections of the thread are closed after
every pass. Used by ``audit.embedded`` (seal the chain, sign its head) and ``webhooks.embedded`` (relay the
outbox, deliver webhooks)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings

__all__ = ["InProcessTimer", "serving_embedded"]


class InProcessTimer:
    def __init__(self, *, name: str, run: Callable[[], Any], logger: logging.Logger, failure_message: str,
                 failure_event: str) -> None:
        self.name = name
        self._run = run
        self._logger = logger
        self._failure_message = failure_message
        self._failure_event = failure_event
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float) -> None:
        if self.running():
            return
        self._stop.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._loop, args=(float(interval),), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> bool:
        """Run the next pass now; False when no timer runs in this process."""
        if not self.running():
            return False
        self._wake.set()
        return True

    def _loop(self, interval: float) -> None:
        from django.db import close_old_connections

        while True:
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._run()
            except Exception:  # noqa: BLE001 - the timer must survive a bad pass; the next one retries
                self._logger.exception(self._failure_message, extra={"event": self._failure_event})
            finally:
                close_old_connections()


def serving_embedded(interval_setting: str, default: float, argv: list[str] | None = None, *,
                     testing: bool | None = None) -> bool:
    """Whether this is the serving ``runserver`` process of embedded mode (eager tasks, no beat) with the timer
    enabled (``interval_setting`` > 0); never under pytest."""
    argv = list(sys.argv if argv is None else argv)
    testing = "pytest" in sys.modules if testing is None else testing
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) or testing:
        return False
    if float(getattr(settings, interval_setting, default)) <= 0:
        return False
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    # with the autoreloader, only the child process (RUN_MAIN) serves requests
    return "--noreload" in argv or os.environ.get("RUN_MAIN") == "true"
