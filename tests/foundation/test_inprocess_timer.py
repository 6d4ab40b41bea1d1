"""The one in-process timer of embedded mode (``config.inprocess_timer``), used by the audit head signer and
the webhook relay: it runs passes, survives a failing pass (logged with its event), runs at once when woken,
and stops."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from config.inprocess_timer import InProcessTimer, serving_embedded


def test_a_failing_pass_is_logged_and_the_next_pass_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []
    second = threading.Event()

    def run() -> None:
        passes.append(len(passes) + 1)
        if len(passes) == 1:
            raise RuntimeError("first pass fails")
        second.set()

    timer = InProcessTimer(name="test-timer", run=run, logger=logging.getLogger("tests.timer"),
                           failure_message="test pass failed", failure_event="tests.timer.failed")
    caplog.set_level(logging.ERROR, logger="tests.timer")
    timer.start(0.01)
    try:
        assert second.wait(10)
    finally:
        timer.stop()
    timer._thread.join(10)  # noqa: SLF001 - the test waits for its own thread
    assert timer.running() is False
    assert passes[:2] == [1, 2]
    [record] = [r for r in caplog.records if r.name == "tests.timer"]
    assert (record.getMessage(), record.event) == ("test pass failed", "tests.timer.failed")


def test_wake_runs_a_pass_at_once_and_is_refused_when_no_timer_runs() -> None:
    ran = threading.Event()
    timer = InProcessTimer(name="test-wake", run=ran.set, logger=logging.getLogger("tests.timer"),
                           failure_message="x", failure_event="tests.timer.failed")
    assert timer.wake() is False and not ran.is_set()  # not started: nothing runs
    timer.start(3600)  # the interval never elapses in this test: only the wake can run the pass
    try:
        assert timer.wake() is True
        assert ran.wait(10)
    finally:
        timer.stop()


@pytest.mark.parametrize(("argv", "testing", "eager", "interval", "expected"), [
    (["manage.py", "runserver", "--noreload"], False, True, 5.0, True),
    (["manage.py", "runserver", "--noreload"], True, True, 5.0, False),   # never under pytest
    (["manage.py", "runserver", "--noreload"], False, False, 5.0, False),  # a broker: beat does it
    (["manage.py", "runserver", "--noreload"], False, True, 0, False),     # switched off
    (["manage.py", "migrate"], False, True, 5.0, False),
])
def test_only_the_serving_runserver_of_embedded_mode_starts_a_timer(
    settings: Any, argv: list[str], testing: bool, eager: bool, interval: float, expected: bool,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = eager
    settings.TEST_TIMER_SECONDS = interval
    assert serving_embedded("TEST_TIMER_SECONDS", 5.0, argv, testing=testing) is expected
