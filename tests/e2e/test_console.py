"""Browser test of the DPO console (headless Debian Chromium via Playwright): a DPO signs in, filters
decisions, opens one and sees its explanation chart, exports CSV; a signed-in non-DPO is refused."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest

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
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_data(settings, tmp_path):
    from django.contrib.auth.models import Group, User

    from audit.services import DECISION_DETAILS_LABEL, chain_seal, decision_record
    from profiles.services import customer_ingest, customer_seal

    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    dpo = User.objects.create_user(username="dpo-e2e", password="dpo-e2e-password-1")
    dpo.groups.add(Group.objects.get_or_create(name="dpo")[0])
    User.objects.create_user(username="agent-e2e", password="agent-e2e-password-1", is_staff=True)
    customer = customer_ingest(source="crm", external_id="E2E-1", actor="cli",
                               personal={"email": "grace.hopper@example.com", "name": "Grace Hopper"}).customer_id
    blob = customer_seal(customer_id=customer, label=DECISION_DETAILS_LABEL, payload={
        "features": {"orders_90d": 7, "support_escalations": 3},
        "explanation": {"clv": {"unit": "currency", "baseline": 400.0, "output": 650.0, "remainder": 0.0,
                                "contributions": [["orders_90d", 7, 310.0], ["support_escalations", 3, -60.0]]}},
    })
    common = {"purpose": "service_prioritization", "consent_event_id": None, "notice_version": None,
              "model_versions": {"clv": "2025.02.1"}, "features_hash": "f" * 64, "decision_key": None}
    routed = decision_record(customer=customer, decision_type="routing", requester="api:support-desk",
                             outputs={"tier": "VIP", "queue": "senior"}, sealed_details=blob, **common)
    decision_record(customer=uuid.uuid4(), decision_type="served_score", requester="api:crm",
                    outputs={"tier": "Basic"}, sealed_details=None, **common)
    chain_seal()
    return {"customer": customer, "routed": routed}


def sign_in(page, base_url: str, username: str, password: str, path: str) -> None:
    page.goto(base_url + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_dpo_filters_decisions_opens_one_sees_explanation_and_exports_csv(live_server, browser, console_data):
    from audit.models import AccessRecord, GovernanceEvent

    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, live_server.url, "dpo-e2e", "dpo-e2e-password-1", "/console/decisions/")
    page.get_by_role("heading", name="Automated decisions").wait_for()
    rows = page.locator("table tbody tr")
    assert rows.count() == 2

    page.get_by_label("Decision type").select_option("routing")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**decision_type=routing**")
    assert rows.count() == 1
    assert str(console_data["customer"]) in rows.first.inner_text()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    content = Path(download_info.value.path()).read_text()
    exported = list(csv.DictReader(io.StringIO(content)))
    assert [(r["id"], r["decision_type"], r["customer"], r["tier"]) for r in exported] == [
        (str(console_data["routed"].pk), "routing", str(console_data["customer"]), "VIP")]

    page.get_by_role("link", name=f"Open decision {console_data['routed'].pk}").click()
    page.get_by_role("heading", name="Explanation").wait_for()
    chart = page.get_by_role("img", name="Bar chart of feature contributions for clv")
    assert chart.is_visible()
    assert "orders in last 90 days" in chart.inner_html() and "+310.00" in chart.inner_html()
    assert page.get_by_role("cell", name="-60.00").first.is_visible()
    assert "Grace" not in page.content()
    context.close()

    assert set(AccessRecord.objects.values_list("what", "actor")) == {
        ("export.decisions", "user:dpo-e2e"), ("decision.inputs", "user:dpo-e2e")}
    assert GovernanceEvent.objects.filter(kind="console.login", actor="user:dpo-e2e").count() == 1


def test_non_dpo_user_is_refused(live_server, browser, console_data):
    from audit.models import AccessRecord

    page = browser.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, live_server.url, "agent-e2e", "agent-e2e-password-1", "/console/decisions/")
    page.get_by_role("heading", name="Not allowed").wait_for()
    response = page.goto(f"{live_server.url}/console/decisions/{console_data['routed'].pk}/")
    assert response.status == 403
    assert "orders_90d" not in page.content()
    assert AccessRecord.objects.count() == 0
    page.close()
