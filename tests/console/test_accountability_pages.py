"""DPO console pages: only the DPO group gets in; filters, detail with decrypted inputs and explanation,
exports; every read of personal data and every export is an access record; sign-ins are recorded."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit import services
from audit.models import AccessRecord, GovernanceEvent, VerificationRun
from tests.scoring.conftest import active_model, seed_population, synthetic_artifact  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

PAGES = [
    ("console:home", {}), ("console:decisions", {}), ("console:access-log", {}), ("console:governance", {}),
    ("console:consent-overview", {}), ("console:model-overview", {}), ("console:rescore-runs", {}),
    ("console:chain-status", {}),
    ("console:ropa", {}), ("console:decisions-export", {"fmt": "csv"}), ("console:access-export", {"fmt": "json"}),
    ("console:ropa-export", {"fmt": "json"}),
]


@pytest.fixture
def staff_client(db):
    """Signed in, staff even, but not in the DPO group."""
    user = User.objects.create_user(username="agent", password="agent-password-123", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
@pytest.mark.parametrize("role", ["anonymous", "non_dpo", "dpo"])
def test_console_access_matrix(client, staff_client, dpo_user, role, name, kwargs):
    url = reverse(name, kwargs=kwargs)
    if role == "dpo":
        client.force_login(dpo_user)
    http = staff_client if role == "non_dpo" else client
    response = http.get(url)
    expected = {"anonymous": 302, "non_dpo": 403, "dpo": 200}[role]
    assert response.status_code == expected
    if role == "anonymous":
        assert response["Location"].startswith(reverse("console:login"))
    if role != "dpo":
        assert AccessRecord.objects.count() == 0


def test_decision_detail_requires_dpo(staff_client, sealed_decision):
    response = staff_client.get(reverse("console:decision-detail", args=[sealed_decision.pk]))
    assert response.status_code == 403
    assert b"Ada" not in response.content and AccessRecord.objects.count() == 0


def test_login_and_logout_are_governance_events(client, dpo_user):
    response = client.post(reverse("console:login"), {"username": "dpo", "password": "dpo-password-123"})
    assert response.status_code == 302 and response["Location"] == "/console/"
    client.post(reverse("console:logout"))
    assert list(GovernanceEvent.objects.order_by("id").values_list("kind", "actor")) == [
        ("console.login", "user:dpo"), ("console.logout", "user:dpo")]
    assert client.get(reverse("console:home")).status_code == 302


def test_failed_login_is_not_recorded_and_does_not_sign_in(client, dpo_user):
    response = client.post(reverse("console:login"), {"username": "dpo", "password": "wrong"})
    assert response.status_code == 200 and b"did not match" in response.content
    assert GovernanceEvent.objects.count() == 0


def test_decisions_page_filters_by_every_criterion(dpo_client, make_decision):
    target = uuid.uuid4()
    wanted = make_decision(customer=target, decision_type="routing", requester="api:support-desk",
                           outputs={"tier": "Premium"}, purpose="service_prioritization",
                           model_versions={"clv": "v9", "churn": "v9"})
    others = [make_decision(), make_decision(decision_type="batch_rescore", requester="job:rescore_nightly")]
    url = reverse("console:decisions")
    for query in [{"customer": str(target)}, {"decision_type": "routing"}, {"tier": "Premium"},
                  {"purpose": "service_prioritization"}, {"model_version": "v9"},
                  {"requester": "api:support-desk", "tier": "Premium"},
                  {"date_from": wanted.created_at.date().isoformat(), "date_to": wanted.created_at.date().isoformat(),
                   "customer": str(target)}]:
        response = dpo_client.get(url, query)
        assert response.status_code == 200
        shown = [row["record"].pk for row in response.context["rows"]]
        assert shown == [wanted.pk], query
    all_rows = dpo_client.get(url).context["rows"]
    assert [r["record"].pk for r in all_rows] == [others[1].pk, others[0].pk, wanted.pk]


def test_decisions_page_is_cursor_paginated(dpo_client, make_decision):
    made = [make_decision() for _ in range(55)]
    first = dpo_client.get(reverse("console:decisions"))
    page = first.context["page"]
    assert len(page.items) == 50 and page.next_cursor and page.prev_cursor is None
    second = dpo_client.get(reverse("console:decisions"), {"cursor": page.next_cursor})
    assert [r["record"].pk for r in second.context["rows"]] == [d.pk for d in reversed(made[:5])]
    assert "OFFSET" not in str(second.context["page"])


def test_email_search_is_a_post_resolved_through_the_blind_index(dpo_client, sealed_decision, customer):
    response = dpo_client.post(reverse("console:decisions-email"), {"email": "ADA.Lovelace@example.com"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('console:decisions')}?customer={customer}"
    assert "ada" not in response["Location"].lower()
    page = dpo_client.get(response["Location"])
    assert [r["record"].pk for r in page.context["rows"]] == [sealed_decision.pk]
    assert b"ada.lovelace" not in page.content.lower()
    lookup = AccessRecord.objects.get(what="customer.lookup")
    assert (lookup.actor, lookup.subject, lookup.details) == ("user:dpo", customer, {"by": "email", "found": True})


def test_email_search_without_match_says_so_without_echoing_the_address(dpo_client, sealed_decision):
    response = dpo_client.post(reverse("console:decisions-email"), {"email": "nobody@example.com"}, follow=True)
    assert b"No customer matches" in response.content and b"nobody@example.com" not in response.content
    assert AccessRecord.objects.get().details == {"by": "email", "found": False}


def test_decision_detail_shows_inputs_explanation_and_records_the_access(dpo_client, sealed_decision, customer):
    services.decision_review_record(decision_id=sealed_decision.pk, reviewer="user:dpo", outcome="overridden",
                                    override={"tier": "Premium"}, rationale="Escalations were the carrier's fault.")
    services.chain_seal()
    response = dpo_client.get(reverse("console:decision-detail", args=[sealed_decision.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["seq"] == 1 and response.context["inputs_state"] == "ok"
    assert dict(response.context["features"]) == {"orders_90d": 7, "support_escalations": 3, "tenure_days": 800,
                                                   "days_since_last_order": 12}
    charts = {c["model"]: c for c in response.context["charts"]}
    assert [(b["label"], b["contribution"]) for b in charts["clv"]["bars"]] == [
        ("orders_90d", 310.0), ("tenure_days", 150.0), ("support_escalations", -60.0), ("(all other features)", 12.5)]
    assert charts["clv"]["baseline"] + sum(b["contribution"] for b in charts["clv"]["bars"]) == charts["clv"]["output"]
    assert "<svg" in html and "Bar chart of feature contributions for clv" in html
    assert "Escalations were the carrier&#x27;s fault." in html and "Tier: Premium" in html
    assert "Ada" not in html and "ada.lovelace" not in html
    access = AccessRecord.objects.get(what="decision.inputs")
    assert (access.actor, access.purpose, access.subject, access.details) == (
        "user:dpo", "accountability", customer, {"decision_id": sealed_decision.pk})


def test_decision_detail_after_erasure_shows_facts_but_no_inputs(dpo_client, sealed_decision, customer):
    from profiles.services import customer_erase

    customer_erase(customer_id=customer, actor="cli")
    response = dpo_client.get(reverse("console:decision-detail", args=[sealed_decision.pk]))
    assert response.status_code == 200 and response.context["inputs_state"] == "erased"
    assert b"crypto-shredded" in response.content and b"orders_90d" not in response.content
    assert AccessRecord.objects.filter(what="decision.inputs").count() == 0


def test_decision_detail_of_unknown_decision_is_404(dpo_client):
    assert dpo_client.get(reverse("console:decision-detail", args=[999])).status_code == 404


def test_csv_export_of_filtered_decisions_is_exact_and_recorded(dpo_client, make_decision):
    target = uuid.uuid4()
    a = make_decision(customer=target, outputs={"tier": "VIP", "clv": 10.5})
    b = make_decision(customer=target, decision_type="routing", outputs={"tier": "=HYPERLINK(1)"})
    make_decision()
    services.chain_seal()
    response = dpo_client.get(reverse("console:decisions-export", kwargs={"fmt": "csv"}), {"customer": str(target)})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-store" and "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["id", "seq", "created_at", "customer", "purpose", "decision_type", "requester", "tier",
                       "model_version", "model_versions", "consent_event_id", "notice_version", "features_hash",
                       "outputs", "content_hash"]

    def expected(record, seq):
        return [str(record.pk), str(seq), record.created_at.isoformat(), str(target), "automated_scoring",
                record.decision_type, "api:support-desk", record.tier if not record.tier.startswith("=") else "'" + record.tier,
                "2025.01.1", '{"churn": "2025.01.1", "clv": "2025.01.1"}', "41", "v3", record.features_hash,
                json.dumps(record.outputs, sort_keys=True), record.content_hash]

    assert rows[1:] == [expected(b, 2), expected(a, 1)]
    export = AccessRecord.objects.get(what="export.decisions")
    assert (export.actor, export.subject, export.details) == (
        "user:dpo", target, {"format": "csv", "filters": {"customer": str(target)}, "max_rows": 100_000})


def test_json_export_of_the_access_log_is_itself_recorded(dpo_client):
    subject = uuid.uuid4()
    services.access_record(actor="api:crm", purpose="automated_scoring", subject=subject, what="score.read")
    response = dpo_client.get(reverse("console:access-export", kwargs={"fmt": "json"}), {"subject": str(subject)})
    data = json.loads(b"".join(response.streaming_content))
    assert [(r["actor"], r["subject"], r["what"]) for r in data] == [("api:crm", str(subject), "score.read")]
    assert AccessRecord.objects.filter(what="export.access_log", actor="user:dpo").count() == 1


def test_access_log_and_governance_pages_filter(dpo_client):
    subject = uuid.uuid4()
    services.access_record(actor="api:crm", purpose="automated_scoring", subject=subject, what="score.read")
    services.access_record(actor="api:web", purpose="marketing", subject=uuid.uuid4(), what="score.read")
    services.governance_record(kind="consent.withdrawn", actor="api:crm", subject=subject)
    services.governance_record(kind="model.activated", actor="cli")
    page = dpo_client.get(reverse("console:access-log"), {"subject": str(subject)}).context["page"]
    assert [a.actor for a in page.items] == ["api:crm"]
    page = dpo_client.get(reverse("console:governance"), {"kind": "model.activated"}).context["page"]
    assert [g.kind for g in page.items] == ["model.activated"]


def test_verify_now_button_runs_a_verification(dpo_client, mixed_chain):
    mixed_chain(6)
    response = dpo_client.post(reverse("console:chain-verify"), follow=True)
    assert response.status_code == 200
    run = VerificationRun.objects.get()
    assert (run.ok, run.checked, run.actor) == (True, 6, "user:dpo")
    assert b"intact" in response.content
    assert dpo_client.get(reverse("console:chain-verify")).status_code == 405


def test_records_of_processing_list_the_api_clients_as_recipients(dpo_client, make_api_client):
    make_api_client(name="support-desk", scopes=["score:read"], purposes=["service_prioritization"])
    response = dpo_client.get(reverse("console:ropa"))
    assert b"support-desk" in response.content
    data = json.loads(dpo_client.get(reverse("console:ropa-export", kwargs={"fmt": "json"})).content)
    assert [(r["name"], r["scopes"], r["purposes"]) for r in data["recipients"]] == [
        ("support-desk", ["score:read"], ["service_prioritization"])]


def test_model_overview_shows_active_version_and_tier_distribution_chart(dpo_client, active_model):  # noqa: F811
    from scoring import services as scoring_services
    from tests.scoring.helpers import SCORING, customer_with_history

    for seed in range(3):
        scoring_services.score_serve(customer_id=customer_with_history(seed=seed), purpose=SCORING,
                                     requester="api:support-desk")
    response = dpo_client.get(reverse("console:model-overview"))
    assert response.status_code == 200
    assert [a["version"] for a in response.context["active"]] == ["test-model-1"]
    [chart] = response.context["charts"]
    assert chart["purpose"] == SCORING and chart["total"] == 3
    assert sum(b["count"] for b in chart["bars"]) == 3
    assert {b["tier"] for b in chart["bars"]} == {"VIP", "Premium", "Standard", "Basic"}
    assert b"Tier distribution for automated_scoring" in response.content


def test_rescore_runs_page_shows_progress_and_skips_of_a_finished_run(dpo_client, active_model, seed_population):  # noqa: F811
    from django.core.management import call_command

    from consent.services import processing_restrict
    from scoring.models import RescoreRun
    from tests.scoring.helpers import SCORING, withdraw

    ids = seed_population(12)
    withdraw(ids[0])
    processing_restrict(customer_id=ids[1], actor="job:test", reason="accuracy_contested")
    call_command("rescore", "--all", "--purpose", SCORING, "--chunk-size", "5", "--no-progress")
    run = RescoreRun.objects.get()

    response = dpo_client.get(reverse("console:rescore-runs"))
    assert response.status_code == 200
    [row] = response.context["runs"]
    assert row["id"] == str(run.id)
    assert (row["status"], row["purpose"], row["model_version"]) == ("completed", SCORING, "test-model-1")
    assert (row["done"], row["total"], row["chunks_done"], row["chunks_total"]) == (12, 12, 3, 3)
    assert (row["scored"], row["skipped"]) == (10, {"no_consent": 1, "restricted": 1, "objected": 0, "erased": 0})
    assert response.context["refresh"] is None
    html = response.content.decode()
    assert "12 of 12 customers (100.0 %)" in html
    assert '<progress value="12" max="12"' in html
    assert 'http-equiv="refresh"' not in html  # nothing in progress: no reload


def test_rescore_runs_page_shows_a_run_in_progress_and_reloads(dpo_client, active_model, seed_population):  # noqa: F811
    from scoring import services
    from tests.scoring.helpers import SCORING

    seed_population(9)
    run = services.rescore_run_start(purpose=SCORING, requester="job:rescore_nightly", chunk_size=3)
    first = next(iter(services.rescore_pending_chunks(run_id=run.id)))
    services.rescore_chunk(run_id=run.id, customer_ids=first)  # one chunk of three done

    response = dpo_client.get(reverse("console:rescore-runs"))
    [row] = response.context["runs"]
    assert (row["status"], row["chunks_done"], row["chunks_total"], row["done"], row["total"]) == (
        "running", 1, 3, 3, 9)
    assert row["finished_at"] is None
    html = response.content.decode()
    assert "3 of 9 customers (33.3 %)" in html and '<progress value="3" max="9"' in html
    assert '<meta http-equiv="refresh" content="10">' in html
    assert "job:rescore_nightly" in html


def test_consent_overview_shows_counts_and_a_trend_chart_per_purpose(dpo_client, customer):
    from tests.scoring.helpers import SCORING, grant

    grant(customer, SCORING)
    response = dpo_client.get(reverse("console:consent-overview"), {"days": 30})
    assert response.status_code == 200
    purposes = {p["code"]: p for p in response.context["purposes"]}
    assert purposes[SCORING]["granted"] == 1
    assert purposes[SCORING]["chart"]["total_grants"] == 1
    assert b"Consent trend for" in response.content and b"<polyline" in response.content
