"""Contest of automated decisions (Art. 22(3)) with human review, rectification (Art. 16) with
rescoring, restriction (Art. 18) and objection (Art. 21)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from freezegun import freeze_time

from subject_rights.models import ReviewTask, SubjectRequest
from tests.subject_rights.canary import make_canary, new_tag

URL = "/api/v1/subject-requests"
SCORING = "automated_scoring"


def _score(api: Any, customer_id: Any, purpose: str = SCORING) -> Any:
    return api.get(f"/api/v1/customers/{customer_id}/score?purpose={purpose}")


@pytest.fixture
def canaries(active_model: Any, purposes: None) -> list[Any]:
    tag = new_tag()
    return [make_canary(tag, i) for i in range(2)]


@pytest.mark.django_db
def test_every_contest_creates_a_human_review(api: Any, canaries: list[Any], dsr_status_events: Any) -> None:
    from audit.models import DecisionRecord

    tag = new_tag()
    canaries = canaries + [make_canary(tag, i) for i in range(3)]
    filed = []
    for canary in canaries:
        decision = DecisionRecord.objects.get(customer=canary.customer_id)
        response = api.post(URL, {"type": "contest", "customer": str(canary.customer_id),
                                  "decision_id": decision.pk}, format="json")
        assert response.status_code == 201
        filed.append((response.json()["id"], decision.pk, canary.customer_id))
    assert ReviewTask.objects.count() == len(canaries) == len(filed)
    for request_id, decision_id, customer_id in filed:
        review = ReviewTask.objects.get(request_id=request_id)
        assert (review.decision_id, review.subject, review.purpose, review.state) == (
            decision_id, customer_id, SCORING, "open")
        assert SubjectRequest.objects.get(pk=request_id).status == "in_progress"
        assert dsr_status_events(request_id)[-1] == ("verified", "in_progress")


@pytest.mark.django_db
def test_contest_of_someone_elses_decision_is_refused_and_writes_nothing(api: Any, canaries: list[Any]) -> None:
    from audit.models import DecisionRecord

    other_decision = DecisionRecord.objects.get(customer=canaries[1].customer_id)
    response = api.post(URL, {"type": "contest", "customer": str(canaries[0].customer_id),
                              "decision_id": other_decision.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "decision_not_found")
    assert SubjectRequest.objects.count() == 0 and ReviewTask.objects.count() == 0


@pytest.mark.django_db
def test_override_changes_what_the_score_api_serves_until_the_next_review(
    api: Any, canaries: list[Any], dpo_client: Any,
) -> None:
    from audit.models import AccessRecord, DecisionRecord, HumanReview
    from audit.services import DECISION_DETAILS_LABEL
    from profiles.selectors import customer_unseal

    canary = canaries[0]
    before = _score(api, canary.customer_id)
    assert before.status_code == 200
    automated_tier = before.json()["tier"]
    new_tier = "VIP" if automated_tier != "VIP" else "Basic"
    decision = DecisionRecord.objects.filter(customer=canary.customer_id).order_by("id").first()
    request_id = api.post(URL, {"type": "contest", "customer": str(canary.customer_id),
                                "decision_id": decision.pk}, format="json").json()["id"]
    review = ReviewTask.objects.get(request_id=request_id)

    page = dpo_client.get(f"/console/reviews/{review.pk}/")  # the reviewer sees inputs and explanation
    assert page.status_code == 200
    html = page.content.decode()
    assert "Contribution" in html
    stored = customer_unseal(customer_id=canary.customer_id, label=DECISION_DETAILS_LABEL,
                             blob=bytes(decision.sealed_details))["explanation"]
    for key in ("clv", "churn"):
        table = html.split(f'data-testid="explanation-{key}"', 1)[1].split("</table>", 1)[0]
        cells = re.findall(r'<td class="num">([^<]+)</td>', table)
        nonzero = [c for _, _, c in stored[key]["contributions"] if c != 0.0]
        assert cells[:-1] == [f"{c:.2f}" for c in nonzero]  # every contribution, as stored, in display form
        assert cells and all(cell.strip() for cell in cells)
    assert AccessRecord.objects.filter(subject=canary.customer_id, what="decision.details",
                                       actor="user:dpo").count() == 1

    with freeze_time(timezone.now() + timedelta(hours=5)):
        response = dpo_client.post(f"/console/reviews/{review.pk}/", {
            "outcome": "overridden", "tier": new_tier, "response_time_hours": "2",
            "rationale": "Long-standing customer; the model under-weights the recent large orders.",
        })
    assert response.status_code == 302
    after = _score(api, canary.customer_id).json()
    assert after["tier"] == new_tier
    assert after["service_level"]["response_time_hours"] == 2
    review.refresh_from_db()
    assert (review.state, review.outcome, review.reviewer) == ("decided", "overridden", "user:dpo")
    [audit_review] = HumanReview.objects.filter(decision_id=decision.pk)
    assert audit_review.outcome == "overridden" and audit_review.override["tier"] == new_tier
    req = SubjectRequest.objects.get(pk=request_id)
    assert (req.status, req.outcome) == ("completed", "review_overridden")
    stats = dpo_client.get("/console/reviews/?state=all").content.decode()
    assert "1 decided" in stats and "1 overridden" in stats and "100 %" in stats and "5.0 h" in stats

    # A later contest confirmed by a reviewer ends the override: the automated tier is served again.
    latest = DecisionRecord.objects.filter(customer=canary.customer_id).order_by("-id").first()
    second = api.post(URL, {"type": "contest", "customer": str(canary.customer_id), "decision_id": latest.pk},
                      format="json").json()["id"]
    from subject_rights.services import review_decide

    review_decide(review_id=ReviewTask.objects.get(request_id=second).pk, reviewer="user:dpo",
                  outcome="confirmed", rationale="The automated result is right after all.")
    assert _score(api, canary.customer_id).json()["tier"] == automated_tier


@pytest.mark.django_db
def test_review_needs_a_rationale_and_an_override_needs_a_tier(api: Any, canaries: list[Any]) -> None:
    from audit.models import DecisionRecord, HumanReview
    from config.errors import ValidationFailed
    from subject_rights.services import review_decide

    canary = canaries[0]
    decision = DecisionRecord.objects.get(customer=canary.customer_id)
    request_id = api.post(URL, {"type": "contest", "customer": str(canary.customer_id),
                                "decision_id": decision.pk}, format="json").json()["id"]
    review = ReviewTask.objects.get(request_id=request_id)
    with pytest.raises(ValidationFailed):
        review_decide(review_id=review.pk, reviewer="user:dpo", outcome="confirmed", rationale=" ")
    with pytest.raises(ValidationFailed):
        review_decide(review_id=review.pk, reviewer="user:dpo", outcome="overridden", rationale="Why not.")
    review.refresh_from_db()
    assert review.state == "open" and HumanReview.objects.count() == 0


@pytest.mark.django_db
def test_rectification_re_encrypts_rescores_and_keeps_before_and_after_decisions(
    api: Any, canaries: list[Any], client: Any, dpo_client: Any,
) -> None:
    from audit.models import DecisionRecord
    from profiles.models import PersonalField
    from profiles.selectors import customer_find, customer_personal_data
    from subject_rights import links

    canary = canaries[0]
    first = DecisionRecord.objects.get(customer=canary.customer_id)
    with freeze_time(timezone.now() + timedelta(days=1)):  # a new day: a new rescore decision
        response = api.post(URL, {"type": "rectification", "customer": str(canary.customer_id),
                                  "fields": {"email": "Corrected.Address@Example.com"}}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert "corrected.address" not in response.content.decode().lower()
    assert body["result"]["changed_fields"] == ["email"]
    assert customer_personal_data(customer_id=canary.customer_id)["email"] == "corrected.address@example.com"
    assert customer_find(email="corrected.address@example.com") == canary.customer_id
    assert customer_find(email=canary.email) is None
    stored = bytes(PersonalField.objects.get(customer_id=canary.customer_id, field="email").ciphertext)
    assert b"corrected" not in stored.lower()
    assert body["result"]["decisions_before"] == [first.pk]
    [after_id] = body["result"]["decisions_after"]
    after = DecisionRecord.objects.get(pk=after_id)
    assert after.pk != first.pk and after.customer == canary.customer_id and after.outputs["tier"]
    # The customer sees both on their status page.
    page = client.get(f"/me/status/{links.status_token(body['id'])}/").content.decode()
    assert "Before" in page and "After" in page and after.outputs["tier"] in page
    # ...and so does the DPO, with links to both decision records.
    console = dpo_client.get(f"/console/requests/{body['id']}/").content.decode()
    assert f"/console/decisions/{first.pk}/" in console and f"/console/decisions/{after.pk}/" in console
    assert "corrected.address" not in console.lower()


@pytest.mark.django_db
def test_invalid_rectification_value_is_refused_and_nothing_is_written(api: Any, canaries: list[Any]) -> None:
    from profiles.selectors import customer_personal_data

    canary = canaries[0]
    response = api.post(URL, {"type": "rectification", "customer": str(canary.customer_id),
                              "fields": {"email": "not an address"}}, format="json")
    assert response.status_code == 400
    assert SubjectRequest.objects.count() == 0
    assert customer_personal_data(customer_id=canary.customer_id)["email"] == canary.email


@pytest.mark.django_db
@pytest.mark.parametrize(("request_type", "code", "lift_kind"), [
    ("restriction", "restricted", "processing.restriction_lifted"),
    ("objection", "objected", "processing.objection_lifted"),
])
def test_restriction_and_objection_stop_scoring_at_once_and_lifting_is_audited(
    api: Any, canaries: list[Any], request_type: str, code: str, lift_kind: str, governance: Any,
    dpo_client: Any,
) -> None:
    from audit.models import DecisionRecord

    canary = canaries[0]
    assert _score(api, canary.customer_id).status_code == 200
    response = api.post(URL, {"type": request_type, "customer": str(canary.customer_id)}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["outcome"]) == ("completed", code)
    decisions = DecisionRecord.objects.filter(customer=canary.customer_id).count()
    refused = _score(api, canary.customer_id)
    assert refused.status_code == 403 and refused.json()["code"] == code
    assert DecisionRecord.objects.filter(customer=canary.customer_id).count() == decisions
    # The DPO lifts it from the console: audited, and scoring works again.
    lifted = dpo_client.post(f"/console/requests/{body['id']}/lift/")
    assert lifted.status_code == 302
    assert [e.subject for e in governance(lift_kind)] == [canary.customer_id]
    assert _score(api, canary.customer_id).status_code == 200
    assert SubjectRequest.objects.get(pk=body["id"]).result["lifted_by"] == "user:dpo"


@pytest.mark.django_db
def test_customer_contests_from_the_why_page(client: Any, canaries: list[Any], mailoutbox: Any,
                                             django_capture_on_commit_callbacks: Any) -> None:
    import re

    from audit.models import DecisionRecord

    canary = canaries[0]
    client.get("/me/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"type": "restriction", "email": canary.email, "token": "why-1"})
    code = re.search(r"\b(\d{8})\b", mailoutbox[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = client.post("/me/verify/", {"code": code})["Location"]
    token = status_url.rstrip("/").split("/")[-1]
    why = client.get(f"/me/status/{token}/why/")
    assert why.status_code == 200
    html = why.content.decode()
    decision = DecisionRecord.objects.filter(customer=canary.customer_id).order_by("-id").first()
    assert decision.outputs["tier"] in html and "Contest" in html and "How to contest" in html
    response = client.post(f"/me/status/{token}/contest/", {"decision_id": decision.pk})
    assert response.status_code == 302
    review = ReviewTask.objects.get(decision_id=decision.pk)
    assert review.subject == canary.customer_id and review.request.channel == "self_service"
    assert client.get(response["Location"]).status_code == 200
    # Contesting another person's decision finds nothing.
    other = DecisionRecord.objects.get(customer=canaries[1].customer_id)
    assert client.post(f"/me/status/{token}/contest/", {"decision_id": other.pk}).status_code == 404
    assert ReviewTask.objects.count() == 1


@pytest.mark.django_db
def test_a_contest_carries_the_customers_statement_to_the_reviewer_and_emails_the_outcome(
    client: Any, canaries: list[Any], mailoutbox: Any, dpo_client: Any, django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    from audit.models import AccessRecord, DecisionRecord
    from tests.privacy_scan import BLIND_INDEX_HOMES, scan_database

    canary = canaries[0]
    statement = f"I moved house in May, {new_tag()} - the late payments were the bank's error."
    client.get("/me/", HTTP_ACCEPT_LANGUAGE="pl")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"type": "restriction", "email": canary.email, "token": "why-st"},
                    HTTP_ACCEPT_LANGUAGE="pl")
    code = re.search(r"\b(\d{8})\b", mailoutbox[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        status_url = client.post("/me/verify/", {"code": code}, HTTP_ACCEPT_LANGUAGE="pl")["Location"]
    token = status_url.rstrip("/").split("/")[-1]
    why = client.get(f"/me/status/{token}/why/", HTTP_ACCEPT_LANGUAGE="pl").content.decode()
    assert "Twoje stanowisko (opcjonalnie)" in why
    decision = DecisionRecord.objects.filter(customer=canary.customer_id).order_by("-id").first()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/me/status/{token}/contest/", {"decision_id": decision.pk, "statement": statement})
    assert response.status_code == 302
    review = ReviewTask.objects.get(decision_id=decision.pk)
    # sealed, never in clear; the canary's blind-index digests only in the index columns
    needles = {"statement": statement.split(",")[1].split(" - ")[0].strip(), **canary.digests()}
    assert scan_database(needles, allowed=BLIND_INDEX_HOMES) == set()

    page = dpo_client.get(f"/console/reviews/{review.pk}/").content.decode()
    assert 'data-testid="customer-statement"' in page and "the late payments were the bank&#x27;s error" in page
    assert AccessRecord.objects.filter(subject=canary.customer_id, what="decision.details").count() == 1

    sent_before = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True):
        decided = dpo_client.post(f"/console/reviews/{review.pk}/", {
            "outcome": "confirmed", "rationale": "The tier rests on order value, not on payments."})
    assert decided.status_code == 302
    [outcome_mail] = mailoutbox[sent_before:]
    assert outcome_mail.to == [canary.email]
    assert "Decyzja potwierdzona przez człowieka" in outcome_mail.body
    assert "Wyjaśnienie osoby weryfikującej: The tier rests on order value, not on payments." in outcome_mail.body
    assert f"{settings.SITE_URL}/me/status/" in outcome_mail.body  # an absolute link
    review.request.refresh_from_db()
    assert review.request.payload_sealed is None  # the statement is shredded with the request's close


@pytest.mark.django_db
def test_the_why_page_shows_the_decision_in_force_after_an_override_with_reasons_in_the_customers_language(
    api: Any, client: Any, canaries: list[Any], dpo_client: Any, mailoutbox: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from audit.models import DecisionRecord

    canary = canaries[0]
    automated_tier = _score(api, canary.customer_id).json()["tier"]
    new_tier = "VIP" if automated_tier != "VIP" else "Basic"
    decision = DecisionRecord.objects.filter(customer=canary.customer_id).order_by("-id").first()
    request_id = api.post(URL, {"type": "contest", "customer": str(canary.customer_id),
                                "decision_id": decision.pk}, format="json").json()["id"]
    review = ReviewTask.objects.get(request_id=request_id)
    assert dpo_client.post(f"/console/reviews/{review.pk}/", {
        "outcome": "overridden", "tier": new_tier, "response_time_hours": "2",
        "rationale": "Long-standing customer; recent large orders count more."}).status_code == 302

    client.get("/me/", HTTP_ACCEPT_LANGUAGE="pl")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/me/", {"type": "access", "email": canary.email, "token": "why-ovr"}, HTTP_ACCEPT_LANGUAGE="pl")
    code = re.search(r"\b(\d{8})\b", mailoutbox[-1].body).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        token = client.post("/me/verify/", {"code": code}, HTTP_ACCEPT_LANGUAGE="pl")["Location"].rstrip("/").split("/")[-1]
    html = client.get(f"/me/status/{token}/why/", HTTP_ACCEPT_LANGUAGE="pl").content.decode()

    section = html.split('data-testid="purpose-automated_scoring"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'data-testid="tier">([^<]+)<', section).group(1) == new_tier  # the reviewer's, in force
    assert "ustalony przez pracownika po weryfikacji" in section
    assert f"przypisała Cię do poziomu {automated_tier}" in section and f"ustalił poziom {new_tier}" in section
    assert "w ciągu 2 godzin" in section  # the overridden service level
    reasons = re.findall(r"<li>([^<]+)</li>", section.split('data-testid="reasons"', 1)[1].split("</ul>", 1)[0])
    assert reasons and all(re.search(r" – (podwyższyło|obniżyło) wynik o ", r) for r in reasons)
    assert "raised the result" not in html and "lowered the result" not in html and "points" not in html
    [row_tier] = re.findall(r'data-testid="decision-tier">([^<(]+)', html)
    assert row_tier.strip() == new_tier  # the contest table shows the decision in force, not the automated one
