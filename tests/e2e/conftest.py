"""Browser tests: one home for the headless Chromium fixture (Playwright driving Debian's Chromium).

Playwright's sync API runs an event loop in the test thread, and Django refuses sync database calls inside
one. Allow them for these tests only (never in deployment: check --deploy refuses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Every browser test module carries this mark (with ``e2e``): without Chromium the tests are skipped, and with
# REQUIRE_REAL_SERVICES=1 (CI) a skipped e2e test fails the run (tests/skip_guard.py).
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (CI installs it: apt-get install chromium)",
)


@pytest.fixture(autouse=True)
def _allow_sync_db_inside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium. Playwright's sync API switches the context the test body runs in, so Django
    opens another database connection there: close connections on both sides, or one outlives the test
    and blocks dropping the PostgreSQL test database."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    connections.close_all()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    connections.close_all()
