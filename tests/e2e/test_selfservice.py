"""Browser tests of the customer pages (headless Debian Chromium via Playwright).

- A customer files an access request with their e-mail, enters the one-time code from the e-mail, follows the
  request to completion, downloads the JSON export, reads it as a web page, and sees "why am I treated this way"
  with their own tier and reasons.
- A customer in Polish walks from the start of a request through the e-mailed code to a readable export, then
  contests a decision with a statement; a reviewer decides, and the outcome e-mail arrives in Polish with an
  absolute link that opens the request. Screenshots of every step go to ``E2E_ARTIFACTS_DIR`` (default
  ``tests/e2e/artifacts/``, git-ignored), which CI keeps as artifacts.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import requires_chromium
from tests.scoring.conftest import synthetic_artifact  # noqa: F401 - the session's small trained model

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), requires_chromium]


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
    page.get_by_role("heading", name="Your data", exact=True).wait_for()
    assert canary.name in page.content()

    page.goto(status_url)
    page.get_by_role("link", name="See your tier, the main reasons, and how to contest it").click()
    page.get_by_role("heading", name="Why am I treated this way?").wait_for()
    _assert_why_page_is_this_customers(page, canary.customer_id)
    assert page.get_by_role("button", name=re.compile("Contest the decision")).count() == 1
    context.close()


def _assert_why_page_is_this_customers(page: Any, customer_id: Any) -> None:
    """The page shows this customer's stored tier per purpose and, in order, the features of their own stored
    explanation as reasons, each moving the result the way its stored contribution says."""
    from scoring import selectors as scoring_selectors
    from subject_rights.selfservice import readable

    scores = scoring_selectors.scores_for_customer(customer_id=customer_id)
    assert scores
    for score in scores:
        section = page.get_by_test_id(f"purpose-{score['purpose']}")
        assert section.get_by_test_id("tier").inner_text() == score["tier"]
        expected = [(readable.label(c["feature"]), c["contribution"])
                    for key in ("clv", "churn") if (exp := (score["explanation"] or {}).get(key))
                    for c in exp["contributions"][:3]]
        shown = section.get_by_test_id("reasons").locator("li").all_inner_texts()
        assert len(shown) == len(expected) > 0
        for text, (label, contribution) in zip(shown, expected, strict=True):
            assert text.startswith(f"{label}: ")
            assert ("raised the result" if contribution >= 0 else "lowered the result") in text


def _artifacts() -> Path:
    directory = Path(os.environ.get("E2E_ARTIFACTS_DIR") or Path(__file__).resolve().parent / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_a_customer_in_polish_gets_a_readable_export_and_the_outcome_of_a_contest_by_email(
    live_server: Any, browser: Any, scored_customer: Any, request: Any,
) -> None:
    from django.db import connections

    try:
        _polish_walk(live_server, browser, scored_customer, request)
    finally:
        connections.close_all()


def _polish_walk(live_server: Any, browser: Any, scored_customer: Any, request: Any) -> None:
    from django.conf import settings
    from django.core import mail

    from scoring import registry
    from subject_rights.models import ReviewTask
    from subject_rights.services import review_decide
    from tests.subject_rights.canary import make_canary, new_tag

    registry.cache_clear()
    scored_customer(request.getfixturevalue("synthetic_artifact"))
    canary = make_canary(new_tag(), 3)
    mail.outbox = []
    shots = _artifacts()

    context = browser.new_context(locale="pl-PL")
    page = context.new_page()
    page.goto(f"{live_server.url}/me/")
    assert page.locator("html").get_attribute("lang") == "pl"
    assert page.get_by_role("heading", name="Złóż żądanie dotyczące prywatności").is_visible()
    page.screenshot(path=str(shots / "pl-1-start.png"), full_page=True)
    page.get_by_label("Zobaczyć kopię moich danych (dostęp, art. 15)").check()
    page.get_by_label("Twój adres e-mail").fill(canary.email)
    page.get_by_role("button", name="Wyślij mi kod").click()
    page.wait_for_url("**/me/verify/")
    assert page.get_by_role("heading", name="Sprawdź swoją skrzynkę e-mail").is_visible()
    page.screenshot(path=str(shots / "pl-2-verify.png"), full_page=True)

    [code_mail] = [m for m in mail.outbox if m.to == [canary.email]]  # read from the mail backend
    assert code_mail.subject == "Twój kod weryfikacyjny"
    page.get_by_label("Kod jednorazowy").fill(_code(mail.outbox, canary.email))
    page.get_by_role("button", name="Potwierdź").click()
    page.wait_for_url("**/me/status/**")
    assert page.get_by_test_id("status").inner_text() == "Zakończono"
    assert page.get_by_test_id("outcome").inner_text() == "Kopia danych przekazana"
    page.screenshot(path=str(shots / "pl-3-status.png"), full_page=True)
    status_url = page.url

    page.get_by_role("link", name="Przeczytaj tutaj (strona internetowa)").click()
    page.get_by_role("heading", name="Twoje dane", exact=True).wait_for()
    for title in ("Twoje dane osobowe", "Twoje zgody", "Zamówienia, kontakty i zgłoszenia do obsługi klienta",
                  "Zautomatyzowane decyzje dotyczące Ciebie"):
        assert page.get_by_role("heading", name=title, exact=True).is_visible(), title
    details = page.get_by_test_id("section-personal_data").inner_text()
    assert canary.name in details and canary.email in details and "Imię i nazwisko" in details
    orders = page.get_by_test_id("section-facts").inner_text()
    assert "Zamówienia (2)" in orders and "Kwota" in orders and "ordered_at" not in orders
    consents = page.get_by_test_id("section-consent_history").inner_text()
    assert "zgoda udzielona" in consents and "automatyczna ocena klientów" in consents
    page.screenshot(path=str(shots / "pl-4-export.png"), full_page=True)

    page.goto(status_url)
    page.get_by_role("link", name="Zobacz swój poziom obsługi, główne powody i sposób zakwestionowania").click()
    page.get_by_role("heading", name="Dlaczego jestem tak traktowany?").wait_for()
    reasons = page.get_by_test_id("reasons").first.locator("li").all_inner_texts()
    assert reasons and all(re.search(r" – (podwyższyło|obniżyło) wynik o ", r) for r in reasons)
    page.screenshot(path=str(shots / "pl-5-why.png"), full_page=True)
    statement = "Moje zamówienia z ostatnich tygodni nie zostały uwzględnione."
    page.get_by_label("Twoje stanowisko (opcjonalnie)").fill(statement)
    page.get_by_role("button", name=re.compile("Zakwestionuj decyzję")).click()
    page.wait_for_url("**/me/status/**")
    contest_url = page.url
    page.get_by_text("Pracownik sprawdza decyzję, którą zakwestionowałeś.").wait_for()
    page.screenshot(path=str(shots / "pl-6-contested.png"), full_page=True)

    review = ReviewTask.objects.get(subject=canary.customer_id)
    sent = len(mail.outbox)
    review_decide(review_id=review.pk, reviewer="user:dpo", outcome="confirmed",
                  rationale="Poziom wynika z wartości zamówień; sprawdziliśmy je ponownie.")
    [outcome] = [m for m in mail.outbox[sent:] if m.to == [canary.email]]
    assert "Decyzja potwierdzona przez człowieka" in outcome.body
    assert "Wyjaśnienie osoby weryfikującej: Poziom wynika z wartości zamówień" in outcome.body
    [link] = re.findall(r"https?://\S+/me/status/\S+/", outcome.body)
    token = link.rstrip("/").split("/")[-1]  # a fresh signed token for the contest's own request
    assert link.startswith(settings.SITE_URL + "/me/status/")
    assert token.split(":")[0] == contest_url.rstrip("/").split("/")[-1].split(":")[0] == str(review.request_id)
    page.goto(f"{live_server.url}/me/status/{token}/")
    assert page.get_by_test_id("outcome").inner_text() == "Decyzja potwierdzona przez człowieka"
    page.screenshot(path=str(shots / "pl-7-outcome.png"), full_page=True)
    context.close()
