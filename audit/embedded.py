"""Embedded mode (``make run``: no broker, tasks run in-process): a daemon thread of the ``runserver``
process seals the audit chain and signs its head every ``AUDIT_HEAD_SIGN_SECONDS``, as Celery beat does in
production. Commits already seal and sign in-process (the eager ``audit.tasks.seal_chain``), but at most once
per ``AUDIT_SEAL_REQUEST_INTERVAL_S`` per process; this timer picks up what such a throttled commit left
waiting, so the tamper window stays bounded when traffic stops. Never started in tests or other commands.
The thread itself is ``config.inprocess_timer``."""

from __future__ import annotations

import logging

from django.conf import settings

from config.inprocess_timer import InProcessTimer, serving_embedded

logger = logging.getLogger("audit")


def run_once() -> int:
    """One pass: seal waiting records, sign the head, write a permanent checkpoint when due."""
    from audit import services

    return services.chain_seal_and_sign()


_timer = InProcessTimer(name="audit-head-signer", run=run_once, logger=logger,
                        failure_message="embedded audit seal-and-sign pass failed",
                        failure_event="audit.embedded.failed")


def running() -> bool:
    return _timer.running()


def start(interval: float | None = None) -> None:
    _timer.start(float(interval if interval is not None else getattr(settings, "AUDIT_HEAD_SIGN_SECONDS", 5.0)))


def stop() -> None:
    _timer.stop()


def should_start(argv: list[str] | None = None, *, testing: bool | None = None) -> bool:
    """Only the serving ``runserver`` process of embedded mode (eager tasks, no beat), never under pytest."""
    return serving_embedded("AUDIT_HEAD_SIGN_SECONDS", 5.0, argv, testing=testing)


def start_if_embedded() -> None:
    if should_start():
        start()
