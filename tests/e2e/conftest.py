"""Browser tests: Playwright's sync API runs an event loop in the test thread, and Django refuses sync
database calls inside one. Allow them for these tests only (never in deployment: check --deploy refuses)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _allow_sync_db_inside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
