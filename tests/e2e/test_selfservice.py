"""Browser test of the customer pages (headless Debian Chromium via Playwright): a customer files an
access request with their e-mail, enters the one-time code from the e-mail, follows the request to
completion, downloads the JSON export, reads it as a web page, and sees "why am I treated this way"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.scoring.conftest import synthetic_artifact  # noqa: F401 - the session's small trained model

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium "
                                                     "(CI installs it: apt-get install chromium)"),
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Any:
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


@pytest.fixture
def scored_customer(transactional_db: None, settings: Any, tmp_path: Path) -> Any:
    """Purposes seeded and a model registrar; the live server's request threads close their database
    connections after each request (so none outlives the test and blocks dropping the test database)."""
    import importlib

    from django.apps import apps
    from django.db import connections

    from tests.scoring.helpers import register_model

    settings.ERASURE_LEDGER_DIR = str(tmp_path / "ledger")
    importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed(apps, None)
    db_settings = connections.settings["default"]
    max_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    yield register_model
    db_settings["CONN_MAX_AGE"] = max_age


def _code(outbox: list[Any], address: str) -> str:
    [mail] = [m for m in outbox if m.to == [address]]
    return re.search(r"\b(\d{8})\b", mail.body).group(1)


def test_customer_files_verifies_follows_and_downloads_their_export(
    live_server: Any, browser: Any, scored_customer: Any, tmp_path: Path, request: Any,
) -> None:
    from django.db import connections

    try:
        _self_service_flow(live_server, browser, scored_customer, tmp_path, request)
    finally:
        connections.close_all()  # this context's connection (see the browser fixture)


def _self_service_flow(live_server: Any, browser: Any, scored_customer: Any, tmp_path: Path, request: Any) -> None:
    from django.core import mail

    from scoring import registry
    from tests.subject_rights.canary import make_canary, new_tag

    registry.cache_clear()
    scored_customer(request.getfixturevalue("synthetic_artifact"))
    canary = make_canary(new_tag(), 7)
    other = make_canary(new_tag(), 8)
    mail.outbox = []

    context = browser.new_context(accept_downloads=True, locale="en-GB")
    page = context.new_page()
    page.goto(f"{live_server.url}/me/")
    assert page.locator("html").get_attribute("lang") == "en-gb" or page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("See a copy of my data (access, Art. 15)").check()
    page.get_by_label("Your e-mail address").fill(canary.email)
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url("**/me/verify/")
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()
    assert canary.name not in page.content()  # nothing is revealed before verification

    page.get_by_label("One-time code").fill(_code(mail.outbox, canary.email))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/me/status/**")
    assert page.get_by_test_id("status").inner_text() == "Completed"
    assert page.get_by_test_id("outcome").inner_text() == "Export delivered"

    with page.expect_download() as download_info:
        page.get_by_test_id("download").click()
    download = download_info.value
    target = tmp_path / "export.json"
    download.save_as(target)
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["personal_data"]["name"] == canary.name
    assert document["personal_data"]["iban"] == canary.iban
    assert document["facts"]["tickets"][0]["text_original"].count(canary.phrase) == 1
    assert other.email not in target.read_text(encoding="utf-8")
    target.unlink()

    status_url = page.url
    page.get_by_role("link", name="Read it here (web page)").click()
    assert page.get_by_role("heading", name="Your data", exact=True).is_visible()
    assert canary.name in page.content()

    page.goto(status_url)
    page.get_by_role("link", name="See your tier, the main reasons, and how to contest it").click()
    assert page.get_by_role("heading", name="Why am I treated this way?").is_visible()
    tier = page.get_by_test_id("tier").first.inner_text()
    assert tier in {"VIP", "Premium", "Standard", "Basic"}
    assert page.get_by_role("button", name=re.compile("Contest the decision")).count() == 1
    context.close()
