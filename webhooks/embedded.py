"""Embedded mode (no broker, tasks run in-process): a daemon thread in the web server relays the outbox and
delivers webhooks, woken at once by commits that wrote events and every ``WEBHOOK_EMBEDDED_INTERVAL_SECONDS``
for retries. Requests never wait for a receiver. Started only by ``runserver`` in embedded mode (tests and
management commands run the eager tasks instead). The thread itself is ``config.inprocess_timer``."""

from __future__ import annotations

import logging

from django.conf import settings

from config.inprocess_timer import InProcessTimer, serving_embedded

logger = logging.getLogger("webhooks")


def run_once() -> None:
    """One pass: relay the outbox, send the deliveries that are due."""
    from webhooks import services

    services.outbox_relay_all()
    services.deliveries_send_due()


_timer = InProcessTimer(name="webhooks-embedded", run=run_once, logger=logger,
                        failure_message="embedded webhook pass failed", failure_event="webhooks.embedded.failed")


def running() -> bool:
    return _timer.running()


def wake() -> bool:
    """Wake the loop; False when no loop runs in this process."""
    return _timer.wake()


def start(interval: float | None = None) -> None:
    _timer.start(float(interval if interval is not None else getattr(settings,
                                                                       "WEBHOOK_EMBEDDED_INTERVAL_SECONDS", 2)))


def stop() -> None:
    _timer.stop()


def start_if_configured() -> None:
    if serving_embedded("WEBHOOK_EMBEDDED_INTERVAL_SECONDS", 2):
        start()
