"""A test that claims a real worker, broker or browser may be skipped on a laptop, never in CI.

With ``REQUIRE_REAL_SERVICES=1`` (set by ``.ci/run``) the run fails when any test marked ``integration``
(real Celery worker and broker) or ``e2e`` (real Chromium), or using the ``celery_worker`` fixture, was skipped:
a green CI then means those tests ran against the real thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

_CLAIMS = ("integration", "e2e")
_skipped: list[str] = []


def _claims_real_services(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in _CLAIMS) or "celery_worker" in getattr(
        item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _claims_real_services(item) and item.nodeid not in _skipped:
        _skipped.append(item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_REAL_SERVICES") != "1" or not _skipped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["", f"REQUIRE_REAL_SERVICES=1: {len(_skipped)} test(s) that claim a real worker, broker or browser "
             "were skipped:"] + [f"  {nodeid}" for nodeid in _skipped]
    if reporter is not None:
        for line in lines:
            reporter.write_line(line, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
