"""The console's work queue (home), the Customer 360 (search by POST, reveal logged as an access), the
erasure preview and its typed confirmation, and the readable-value filters."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone, translation
from freezegun import freeze_time

from tests.hardening.test_headers import _inline_findings
from tests.privacy_scan import scan_text
from tests.subject_rights.canary import make_canary, new_tag

pytestmark = pytest.mark.django_db


def _quality(kind: str, status: str, value: float) -> dict[str, Any]:
    return {"metric": "auc", "value": value, "baseline": 0.5, "baseline_method": "prior", "floor": 0.6,
            "status": status, "reason": "below the floor" if status != "ok" else ""}


def _weak_unfair_card() -> dict[str, Any]:
    """A model card whose upsell AUC (0.44) is below the floor and whose gender ratio (0.5) fails 4/5."""
    group = {"n": 40, "tier_shares": {"VIP": 0.1, "Basic": 0.9}}
    card = {"quality": {"clv": {"metric": "top_decile_share", "value": 0.3, "baseline": 0.2, "floor": None,
                                "status": "ok", "baseline_method": "spend", "reason": ""},
                        "churn": _quality("churn", "ok", 0.8), "upsell": _quality("upsell", "below_floor", 0.44),
                        "advocacy": _quality("advocacy", "ok", 0.7)},
            "fairness": {"characteristics": {"gender": {
                "groups": {"f": {**group, "high_risk_rate": 0.1}, "m": {**group, "high_risk_rate": 0.2}},
                "high_risk_ratio": 0.5, "lowest_group": "f", "highest_group": "m", "suppressed_groups": 0,
                "suppressed_customers": 0, "missing": 0}}}}
    return card


def _weak_unfair_model() -> Any:
    from scoring.models import ModelVersion

    return ModelVersion.objects.create(version="wq-weak-1", status=ModelVersion.Status.ACTIVE, sha256="0" * 64,
                                       card=_weak_unfair_card(), metrics={"upsell_auc": 0.44})


def _dead_letter(customer_id: uuid.UUID | None = None) -> Any:
    from events.models import OutboxEvent
    from webhooks.models import Delivery, WebhookSubscription

    sub = WebhookSubscription.objects.create(url="https://hooks.example.net/in", events=["score.tier_changed"],
                                             purpose="automated_scoring", secret_sealed=b"x", secret_kek_id="k1",
                                             created_by="api:test")
    event = OutboxEvent.objects.create(type="score.tier_changed", customer_id=customer_id,
                                       purpose="automated_scoring", payload={})
    now = timezone.now()
    return Delivery.objects.create(subscription=sub, event=event, seq=event.pk, customer_id=customer_id,
                                   event_type=event.type, state=Delivery.State.DEAD, attempts=9,
                                   next_attempt_at=now, window_started_at=now, reason="retry_window_over")


def _counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-testid="count-([a-z_]+)">(\d+)<', html)}


def test_work_queue_counts_every_kind_of_work_and_links_to_it(dpo_client, customer_factory):
    from audit import breach
    from audit.models import VerificationRun
    from subject_rights.services import request_submit

    cid = customer_factory()
    received = timezone.now() - timedelta(days=45)
    with freeze_time(received):
        late = request_submit(type="access", channel="api", requester="api:crm", customer_id=cid).request
    on_time = request_submit(type="erasure", channel="api", requester="api:crm", customer_id=customer_factory()).request
    _dead_letter(cid)
    now = timezone.now()
    VerificationRun.objects.create(started_at=now, finished_at=now, ok=False, first_bad_seq=7, actor="job:test")
    _weak_unfair_model()
    breach.breach_record(actor="user:dpo", nature=["confidentiality"], description="Bucket was public.",
                         detected_at=now - timedelta(hours=80), subjects_estimate=10, records_estimate=20,
                         data_categories=["contact details"], consequences="Phishing.", measures="Closed.",
                         risk="risk")

    response = dpo_client.get("/console/")
    assert response.status_code == 200
    html = response.content.decode()
    assert _counts(html) == {"requests": 2, "reviews": 0, "contests": 0, "dead_letters": 1, "chain": 1,
                             "models": 1, "fairness": 1, "breaches": 1}
    levels = {item.key: item.level for item in response.context["queue"]["items"]}
    assert levels == {"requests": "bad", "reviews": "ok", "contests": "ok", "dead_letters": "bad", "chain": "bad",
                      "models": "bad", "fairness": "bad", "breaches": "bad"}
    # requests by deadline, the overdue one first and in red, each linking to its page
    rows = response.context["queue"]["requests"]
    assert [(r["req"].id, r["alert"]) for r in rows] == [(late.id, "overdue"), (on_time.id, "")]
    overdue_row = html.split('<tr class="overdue">', 1)[1].split("</tr>", 1)[0]
    assert f"/console/requests/{late.id}/" in overdue_row and "overdue" in overdue_row
    for link in ("/console/requests/", "/console/reviews/", "/console/webhooks/", "/console/chain/",
                 "/console/models/", "/console/models/governance/", "/console/breaches/"):
        assert f'href="{link}' in html
    assert "upsell (wq-weak-1)" in html and "gender (wq-weak-1)" in html


def test_work_queue_counts_open_reviews_and_contests(dpo_client, active_model, purposes, api):
    canary = make_canary(new_tag(), 0)
    from audit.models import DecisionRecord

    decision = DecisionRecord.objects.filter(customer=canary.customer_id).first()
    response = api.post("/api/v1/subject-requests", {"type": "contest", "customer": str(canary.customer_id),
                                                     "decision_id": decision.pk}, format="json")
    assert response.status_code == 201
    html = dpo_client.get("/console/").content.decode()
    counts = _counts(html)
    assert (counts["reviews"], counts["contests"]) == (1, 1)


# ------------------------------------------------------------------------------------------ Customer 360

@pytest.fixture
def canary(active_model, purposes):
    return make_canary(new_tag(), 0)


def test_customer_360_shows_everything_but_personal_fields_until_revealed(dpo_client, canary):
    from audit.models import AccessRecord

    page = dpo_client.get(f"/console/customers/{canary.customer_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert scan_text(html, canary.identifiers()) == set()  # plain identifiers and blind-index digests
    assert "Reveal personal fields" in html
    assert 'data-testid="consent-timeline"' in html and "Consent grant" in html
    assert 'data-testid="score-automated_scoring"' in html
    assert "<svg" in html and 'role="img"' in html and "<script" not in html
    assert "Churn probability" in html and re.search(r"\d+\.\d %", html)  # a probability as a percentage
    assert re.search(r"\d+\.\d\d EUR", html)  # money with its currency
    assert "{'" not in html and "&#x27;" not in html  # no Python dict anywhere
    assert "call me on &lt;PHONE_1&gt;" in html and "Negative (-0.48)" in html  # pseudonymized ticket, its mood
    assert list(AccessRecord.objects.values_list("what", "subject")) == [("customer.360", canary.customer_id)]
    assert _inline_findings(html) == [] and "no-store" in page["Cache-Control"]  # the CSP holds: no inline code

    revealed = dpo_client.post(f"/console/customers/{canary.customer_id}/reveal/")
    assert revealed.status_code == 200
    body = revealed.content.decode()
    assert canary.email in body and canary.name in body
    assert revealed["Cache-Control"].startswith("max-age=0") or "no-store" in revealed["Cache-Control"]
    reveal = AccessRecord.objects.get(what="customer.reveal")
    assert (reveal.subject, reveal.actor, reveal.purpose) == (canary.customer_id, "user:dpo", "accountability")
    assert scan_text(reveal.details, canary.needles()) == set()


def test_reveal_is_post_only_and_dpo_only(client, dpo_client, django_user_model, canary):
    from audit.models import AccessRecord

    assert dpo_client.get(f"/console/customers/{canary.customer_id}/reveal/").status_code == 405
    clerk = django_user_model.objects.create_user(username="clerk", password="clerk-password-123")
    client.force_login(clerk)
    response = client.post(f"/console/customers/{canary.customer_id}/reveal/")
    assert response.status_code == 403 and scan_text(response.content, canary.needles()) == set()
    assert not AccessRecord.objects.filter(what="customer.reveal").exists()


@pytest.mark.parametrize("by", ["pseudonym", "email", "phone"])
def test_search_by_post_finds_the_customer(dpo_client, canary, by):
    from audit.models import AccessRecord

    query = {"pseudonym": str(canary.customer_id), "email": canary.email.upper(), "phone": canary.phone}[by]
    response = dpo_client.post("/console/customers/", {"q": query})
    assert response.status_code == 302
    assert response["Location"] == f"/console/customers/{canary.customer_id}/"
    lookups = list(AccessRecord.objects.filter(what="customer.lookup").values_list("subject", "details"))
    assert lookups == ([] if by == "pseudonym" else [(canary.customer_id, {"by": by, "found": True})])


def test_search_never_takes_the_identifier_from_the_url(dpo_client, canary):
    from audit.models import AccessRecord

    response = dpo_client.get("/console/customers/", {"q": canary.email})
    assert response.status_code == 200 and "Find a customer" in response.content.decode()
    assert response.context["form"].is_bound is False
    assert not AccessRecord.objects.exists()


def test_search_for_an_unknown_or_erased_customer_is_404(dpo_client, canary):
    assert dpo_client.post("/console/customers/", {"q": "nobody@example.org"}).status_code == 404
    assert dpo_client.post("/console/customers/", {"q": str(uuid.uuid4())}).status_code == 404
    assert dpo_client.get(f"/console/customers/{uuid.uuid4()}/").status_code == 404


# ------------------------------------------------------------------------------------ confirmed erasure

def _verified_erasure(customer_id: uuid.UUID) -> Any:
    from subject_rights.services import request_submit

    return request_submit(type="erasure", channel="api", requester="api:crm", customer_id=customer_id).request


def test_erasure_preview_counts_what_will_be_destroyed(dpo_client, canary):
    req = _verified_erasure(canary.customer_id)
    detail = dpo_client.get(f"/console/requests/{req.id}/").content.decode()
    assert f"/console/requests/{req.id}/erase/" in detail and "Execute erasure" not in detail
    page = dpo_client.get(f"/console/requests/{req.id}/erase/")
    assert page.status_code == 200
    preview = page.context["preview"]
    assert (preview["facts"]["orders"], preview["facts"]["tickets"]) == (2, 1)
    assert preview["profile_fields"] >= 4  # name, e-mail, phone, IBAN at least
    assert (preview["scores"], preview["decisions_kept"], preview["legal_holds"]) == (1, 1, 0)
    html = page.content.decode()
    assert 'data-testid="preview-scores">1<' in html and 'data-testid="preview-decisions">1<' in html


def _snapshot(customer_id: uuid.UUID, request_id: Any) -> tuple:
    from audit.models import GovernanceEvent
    from profiles.models import PersonalField, Tombstone
    from profiles.selectors import customer_exists
    from scoring.models import CustomerScore
    from subject_rights.models import SubjectRequest

    req = SubjectRequest.objects.get(pk=request_id)
    return (customer_exists(customer_id=customer_id), PersonalField.objects.filter(customer_id=customer_id).count(),
            CustomerScore.objects.filter(customer_id=customer_id).count(),
            Tombstone.objects.filter(customer_id=customer_id).exists(), req.status, req.outcome,
            GovernanceEvent.objects.filter(kind="customer.erased").count())


@pytest.mark.parametrize("typed", ["", "not-the-pseudonym", str(uuid.uuid4())])
def test_a_wrong_pseudonym_erases_nothing(dpo_client, canary, typed, django_capture_on_commit_callbacks):
    req = _verified_erasure(canary.customer_id)
    before = _snapshot(canary.customer_id, req.id)
    assert before[0] is True and before[3] is False
    with django_capture_on_commit_callbacks(execute=True):
        response = dpo_client.post(f"/console/requests/{req.id}/execute/", {"confirm_pseudonym": typed},
                                   follow=True)
    assert "Nothing was changed" in response.content.decode()
    assert _snapshot(canary.customer_id, req.id) == before


def test_the_typed_pseudonym_confirms_the_erasure(dpo_client, canary, django_capture_on_commit_callbacks):
    req = _verified_erasure(canary.customer_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = dpo_client.post(f"/console/requests/{req.id}/execute/",
                                   {"confirm_pseudonym": f"  {str(canary.customer_id).upper()} "}, follow=True)
    assert "Carried out." in response.content.decode()
    exists, fields, scores, tombstone, status, outcome, erased = _snapshot(canary.customer_id, req.id)
    assert (exists, fields, scores, tombstone, status, outcome, erased) == (False, 0, 0, True, "completed",
                                                                           "erased", 1)


# ---------------------------------------------------------------------------------------- readable values

def test_filters_render_money_percentages_dates_and_features_for_people():
    from datetime import UTC, datetime

    from console.templatetags.console_format import feature, money, percent, readable_value, signed, when

    assert money(1234.5, "EUR") == "1,234.50 EUR"
    assert percent(0.12345) == "12.3 %" and percent(1) == "100.0 %" and percent(None) == "-"
    assert signed(-60) == "-60.00" and signed(310.004) == "+310.00"
    assert feature("orders_90d") != "orders_90d" and "_" not in feature("orders_90d")
    moment = datetime(2025, 3, 4, 15, 6, tzinfo=UTC)
    with translation.override("en"):
        assert when(moment) == "03/04/2025 3:06 p.m."
        assert readable_value({"tier": "VIP", "clv": 650.456, "churn_probability": 0.0812}) == (
            "Tier: VIP; Customer lifetime value: 650.46 EUR; Churn probability: 8.1 %")
    with translation.override("de"):
        assert money(1234.5, "EUR") == "1.234,50 EUR"
        assert percent(0.12345) == "12,3 %"
        assert when(moment) == "04.03.2025 15:06"


# ------------------------------------------------------------------------------ records and model pages

def test_records_of_processing_show_retention_per_data_category(dpo_client, settings):
    settings.RETENTION_DAYS = {"orders": 3650, "interactions": 730, "tickets": 1095, "reviews": 1825, "nps": 400}
    page = dpo_client.get("/console/records-of-processing/")
    assert page.status_code == 200
    rows = {r["category"]: r["retention"] for r in page.context["ropa"]["retention"]["per_category"]}
    assert rows["customer facts: orders"].startswith("3650 days")
    assert rows["customer facts: notes"] == "1095 days after the fact's date, then deleted by the nightly purge " \
                                            "(follows tickets)"
    assert rows["customer facts: nps"].startswith("400 days") and "follows" not in rows["customer facts: nps"]
    assert rows["subject-request exports"].startswith("24 hours")
    assert "shredded" in rows["personal fields (name, e-mail, phone, address, ...)"]
    html = page.content.decode()
    assert 'data-testid="retention-per-category"' in html and "customer facts: referrals" in html
    exported = dpo_client.get("/console/records-of-processing/export.csv").content.decode()
    assert "data_category,retention,setting" in exported and 'customer facts: tickets,"1095 days' in exported


def test_model_page_flags_a_kind_below_its_floor(dpo_client):
    _weak_unfair_model()
    html = dpo_client.get("/console/models/").content.decode()
    row = html.split('<th scope="row">upsell</th>', 1)[1].split("</tr>", 1)[0]
    assert 'role="alert"' in row and "Not served (below_floor)" in row and "0.440" in row
    churn = html.split('<th scope="row">churn</th>', 1)[1].split("</tr>", 1)[0]
    assert 'role="alert"' not in churn


def _visible_text(html: str) -> str:
    body = html.split("<main", 1)[-1]
    body = re.sub(r"<svg.*?</svg>", " ", body, flags=re.S)  # chart geometry (coordinates) is not text
    return re.sub(r"<[^>]+>", " ", body)


def test_no_console_page_shows_a_python_dict_or_an_unrounded_float(dpo_client, console_objects, active_model,
                                                                    purposes):
    """Every HTML page of the console, with real objects behind it (a scored customer, a decision, a review,
    a breach, a dead letter, an active model and one with a fairness flag): no ``{'...'}``, no float with more
    than three decimals, no ``None``/``True``/``False`` in the visible text."""
    from django.urls import reverse

    from scoring.models import ModelVersion
    from tests.foundation.test_authorization_matrix import CONSOLE_ROUTES

    canary = make_canary(new_tag(), 0)
    model = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    model.card = {**model.card, "fairness": _weak_unfair_card()["fairness"]}
    model.save(update_fields=["card"])
    objects = {**console_objects, "customer_id": canary.customer_id}
    checked = 0
    for name, keys, method, _body, status in CONSOLE_ROUTES:
        if method != "get" or status != 200 or "fmt" in keys or "table" in keys:
            continue
        response = dpo_client.get(reverse(f"console:{name}", kwargs={k: objects[k] for k in keys}))
        assert response.status_code == 200, name
        text = _visible_text(response.content.decode())
        assert "{'" not in text and "{&#x27;" not in text, name
        assert not re.search(r"(?<![\w.-])\d+\.\d{4,}(?![\w.-])", text), (name, re.findall(r"\S*\d+\.\d{4,}\S*", text))
        assert not re.search(r"\b(None|True|False)\b", text), (name, re.findall(r".{0,60}\b(?:None|True|False)\b.{0,20}", text))
        checked += 1
    assert checked == 23
