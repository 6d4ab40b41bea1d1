"""Embedded mode (no broker, tasks run in-process): a daemon thread in the web server relays the outbox and
delivers webhooks, woken at once by commits that wrote events and every ``WEBHOOK_EMBEDDED_INTERVAL_SECONDS``
for retries. Requests never wait for a receiver. Started only by ``runserver`` in embedded mode (tests and
management commands run the eager tasks instead)."""

from __future__ import annotations

import logging
import os
import sys
import threading

from django.conf import settings

logger = logging.getLogger("webhooks")

_wake = threading.Event()
_thread: threading.Thread | None = None


def running() -> bool:
    return _thread is not None and _thread.is_alive()


def wake() -> bool:
    """Wake the loop; False when no loop runs in this process."""
    if not running():
        return False
    _wake.set()
    return True


def _loop(interval: float) -> None:
    from django.db import close_old_connections

    from webhooks import services

    while True:
        _wake.wait(interval)
        _wake.clear()
        try:
            services.outbox_relay_all()
            services.deliveries_send_due()
        except Exception:  # noqa: BLE001 - the loop must survive a bad pass; the next one retries
            logger.exception("embedded webhook pass failed", extra={"event": "webhooks.embedded.failed"})
        finally:
            close_old_connections()


def start(interval: float | None = None) -> None:
    global _thread
    if running():
        return
    seconds = float(interval if interval is not None else getattr(settings, "WEBHOOK_EMBEDDED_INTERVAL_SECONDS", 2))
    _thread = threading.Thread(target=_loop, args=(seconds,), name="webhooks-embedded", daemon=True)
    _thread.start()


def start_if_configured() -> None:
    if not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return
    if float(getattr(settings, "WEBHOOK_EMBEDDED_INTERVAL_SECONDS", 2)) <= 0:
        return
    serving = len(sys.argv) > 1 and sys.argv[1] == "runserver"
    # with the autoreloader, only the child process (RUN_MAIN) serves requests
    if serving and ("--noreload" in sys.argv or os.environ.get("RUN_MAIN") == "true"):
        start()
