"""Browser tests of the DPO console (headless Debian Chromium via Playwright): a DPO signs in, filters
decisions, opens one and sees its explanation chart, exports CSV; a signed-in non-DPO is refused; the DPO
walks from the work queue to a Customer 360, a logged reveal, a review's explanation numbers and a confirmed
erasure (screenshots in ``E2E_ARTIFACTS_DIR``, default ``tests/e2e/artifacts/``)."""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import requires_chromium
from tests.privacy_scan import scan_text
from tests.scoring.conftest import _registry_cache_clear, active_model, synthetic_artifact  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), requires_chromium]


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


# ------------------------------------------------------------------------------ the DPO's walk (issue 19)

ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS_DIR") or Path(__file__).parent / "artifacts")


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-dpo-walk-{name}.png"), full_page=True)


@pytest.fixture
def walk_data(settings, tmp_path, active_model):  # noqa: F811 - the imported fixture
    """A scored customer (real model, real decision with its sealed explanation), a contest of that decision
    (an open human review) and a verified erasure request; the DPO and a signed-in console session."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group, User

    from audit.models import DecisionRecord
    from subject_rights.services import request_submit
    from tests.subject_rights.canary import make_canary, new_tag

    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.ERASURE_LEDGER_DIR = str(tmp_path / "ledger")
    importlib.import_module("consent.migrations.0002_seed_purposes_and_notices").seed(apps, None)
    dpo = User.objects.create_user(username="dpo-walk", password="dpo-walk-password-1")
    dpo.groups.add(Group.objects.get_or_create(name="dpo")[0])
    canary = make_canary(new_tag(), 0)
    decision = DecisionRecord.objects.get(customer=canary.customer_id)
    contest = request_submit(type="contest", channel="api", requester="api:crm", customer_id=canary.customer_id,
                             decision_id=decision.pk).request
    erasure = request_submit(type="erasure", channel="api", requester="api:crm",
                             customer_id=canary.customer_id).request
    return {"canary": canary, "decision": decision, "contest": contest, "erasure": erasure}


def test_dpo_walks_from_the_work_queue_to_a_confirmed_erasure(live_server, browser, walk_data):
    """Work queue -> Customer 360 -> reveal (then found in the access log) -> the human review, whose
    explanation numbers are read from the page and checked against the stored explanation -> the erasure
    preview, a wrong pseudonym that erases nothing, and the typed pseudonym that erases."""
    from audit.models import AccessRecord
    from audit.services import DECISION_DETAILS_LABEL
    from profiles.selectors import customer_exists, customer_unseal
    from subject_rights.models import SubjectRequest

    canary, decision = walk_data["canary"], walk_data["decision"]
    cid = str(canary.customer_id)
    stored = customer_unseal(customer_id=canary.customer_id, label=DECISION_DETAILS_LABEL,
                             blob=bytes(decision.sealed_details))["explanation"]
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)

    # 1. the work queue: counts and the requests by deadline
    sign_in(page, live_server.url, "dpo-walk", "dpo-walk-password-1", "/console/")
    page.get_by_role("heading", name="Work queue").wait_for()
    assert page.get_by_test_id("count-requests").inner_text() == "2"
    assert page.get_by_test_id("count-reviews").inner_text() == "1"
    assert page.get_by_test_id("count-contests").inner_text() == "1"
    _shot(page, "1-work-queue")

    # 2. the Customer 360, without personal fields
    page.get_by_role("link", name=cid).first.click()
    page.get_by_role("heading", name=re.compile("Customer 360")).wait_for()
    html = page.content()
    assert scan_text(html, canary.identifiers()) == set()  # plain identifiers and blind-index digests
    assert page.get_by_test_id("consent-timeline").is_visible()
    assert page.get_by_role("img", name=re.compile("^Customer lifetime value: 1 values")).is_visible()
    _shot(page, "2-customer-360")

    # 3. reveal: the personal fields appear, and the access log shows the reveal
    page.get_by_role("button", name="Reveal personal fields").click()
    page.get_by_test_id("revealed").wait_for()
    assert canary.email in page.get_by_test_id("revealed").inner_text()
    _shot(page, "3-revealed")
    page.get_by_role("link", name="Access log").click()
    page.get_by_role("heading", name="Access log").wait_for()
    row = page.locator("tbody tr", has_text="customer.reveal")
    assert row.count() == 1
    assert "user:dpo-walk" in row.inner_text() and cid in row.inner_text()
    assert scan_text(page.content(), canary.identifiers()) == set()
    _shot(page, "4-access-log")

    # 4. the review page: read the explanation numbers and check them against the stored explanation
    page.get_by_role("link", name="Human reviews").click()
    page.locator(f'a[href$="/console/reviews/{walk_data["contest"].review.pk}/"]').first.click()
    page.get_by_role("heading", name="Explanation").wait_for()
    for key in ("clv", "churn"):
        cells = page.get_by_test_id(f"explanation-{key}").locator("td.num").all_inner_texts()
        nonzero = [c for _, _, c in stored[key]["contributions"] if c != 0.0]
        assert cells[:-1] == [f"{c:.2f}" for c in nonzero]
        assert cells[-1] == f"{float(stored[key].get('remainder', 0.0)):.2f}".replace("-0.00", "0.00")
        assert all(re.fullmatch(r"-?\d+\.\d\d", cell) for cell in cells)
    _shot(page, "5-review-explanation")

    # 5. the erasure: preview, a wrong pseudonym erases nothing, the typed pseudonym erases
    page.goto(f"{live_server.url}/console/requests/{walk_data['erasure'].id}/")
    page.get_by_role("link", name="Preview and confirm the erasure").click()
    page.get_by_test_id("erasure-preview").wait_for()
    assert page.get_by_test_id("preview-facts").inner_text() == "3"  # two orders and one ticket
    assert page.get_by_test_id("preview-scores").inner_text() == "1"
    assert page.get_by_test_id("preview-decisions").inner_text() == "1"
    _shot(page, "6-erasure-preview")
    page.get_by_label("Type the customer's pseudonym to confirm").fill(str(uuid.uuid4()))
    page.get_by_role("button", name="Erase this customer").click()
    page.get_by_text("Nothing was changed").wait_for()
    assert customer_exists(customer_id=canary.customer_id)
    assert SubjectRequest.objects.get(pk=walk_data["erasure"].id).status == "verified"
    page.get_by_role("link", name="Preview and confirm the erasure").click()
    page.get_by_label("Type the customer's pseudonym to confirm").fill(cid)
    page.get_by_role("button", name="Erase this customer").click()
    page.get_by_text("Carried out.").wait_for()
    assert page.get_by_test_id("status").inner_text() == "Completed"
    _shot(page, "7-erased")
    context.close()

    assert not customer_exists(customer_id=canary.customer_id)
    erased = SubjectRequest.objects.get(pk=walk_data["erasure"].id)
    assert (erased.status, erased.outcome) == ("completed", "erased")
    assert AccessRecord.objects.filter(what="customer.reveal", subject=canary.customer_id,
                                       actor="user:dpo-walk").count() == 1
