"""Free text typed by the DPO (rejection and extension reasons, review rationales, legal-hold justifications,
breach descriptions) is pseudonymized before it is stored, like any customer text: the subject's own
identifiers always, other names and contact data as Presidio finds them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from subject_rights.models import LegalHold, ReviewTask, SubjectRequest
from tests.privacy_scan import Canary, scan_text
from tests.subject_rights.canary import make_canary, new_tag

URL = "/api/v1/subject-requests"


def _leaks(text: str, canary: Canary) -> list[str]:
    """The canary's identifiers and blind-index digests found in a stored text (the ticket phrase and the CRM
    attribute are no identifiers the DPO would type)."""
    needles = {k: v for k, v in canary.needles().items() if k not in ("phrase", "attribute")}
    return sorted(scan_text(text, needles))


@pytest.fixture
def canary(active_model: Any, purposes: None) -> Canary:
    return make_canary(new_tag(), 0)


@pytest.mark.django_db
def test_rejection_reason_naming_the_subject_is_stored_pseudonymized(api: Any, canary: Canary) -> None:
    from subject_rights.services import request_reject

    request_id = api.post(URL, {"type": "erasure", "customer": str(canary.customer_id)}, format="json").json()["id"]
    reason = f"{canary.name} asked twice; called back on {canary.phone} and wrote from {canary.email}."
    request_reject(request_id=request_id, actor="user:dpo", code="other", reason=reason)

    stored = SubjectRequest.objects.get(pk=request_id).rejection_reason
    assert _leaks(stored, canary) == []
    assert "<PERSON_1>" in stored and "<PHONE_1>" in stored and "asked twice" in stored


@pytest.mark.django_db
def test_extension_reason_is_stored_pseudonymized(api: Any, canary: Canary) -> None:
    from subject_rights.services import request_extend

    request_id = api.post(URL, {"type": "access", "customer": str(canary.customer_id)}, format="json").json()["id"]
    request_extend(request_id=request_id, actor="user:dpo", months=1, code="complexity",
                   reason=f"Archive of {canary.name} is on tape; IBAN {canary.iban} needs a bank check.")

    stored = SubjectRequest.objects.get(pk=request_id).extension_reason
    assert _leaks(stored, canary) == []
    assert stored.startswith("Archive of <PERSON_1> is on tape")


@pytest.mark.django_db
def test_review_rationale_is_pseudonymized_in_the_task_and_in_the_audit_review(api: Any, canary: Canary) -> None:
    from audit.models import DecisionRecord, HumanReview
    from subject_rights.services import review_decide

    decision = DecisionRecord.objects.get(customer=canary.customer_id)
    request_id = api.post(URL, {"type": "contest", "customer": str(canary.customer_id), "decision_id": decision.pk},
                          format="json").json()["id"]
    review = ReviewTask.objects.get(request_id=request_id)
    review_decide(review_id=review.pk, reviewer="user:dpo", outcome="overridden", tier="VIP",
                  rationale=f"Spoke with {canary.name} ({canary.phone}): long-standing account, tier too low.")

    review.refresh_from_db()
    audit_review = HumanReview.objects.get(decision_id=decision.pk)
    for stored in (review.rationale, audit_review.rationale):
        assert _leaks(stored, canary) == []
        assert "long-standing account, tier too low." in stored


@pytest.mark.django_db
def test_legal_hold_justification_is_stored_pseudonymized(canary: Canary) -> None:
    from django.conf import settings

    from subject_rights.services import legal_hold_place

    hold = legal_hold_place(customer_id=canary.customer_id, reason=settings.LEGAL_HOLD_REASONS[0], actor="user:dpo",
                            justification=f"Invoice dispute with {canary.name}, court file 12/2026.")
    stored = LegalHold.objects.get(pk=hold.pk).justification
    assert _leaks(stored, canary) == []
    assert stored.endswith("court file 12/2026.")


@pytest.mark.django_db
def test_breach_description_is_stored_pseudonymized(purposes: None) -> None:
    from audit.breach import breach_record
    from audit.models import BreachIncident

    incident = breach_record(
        actor="user:dpo", nature=["confidentiality"], detected_at=timezone.now() - timedelta(hours=1),
        description="A laptop of Margaret Thornbury was stolen; her number +44 20 7946 0958 was on a sticker.",
        subjects_estimate=10, records_estimate=10, data_categories=["contact details"],
        consequences="Possible phishing calls.", measures="Remote wipe requested.", risk="risk",
    )
    stored = BreachIncident.objects.get(pk=incident.pk)
    assert "Thornbury" not in stored.description and "7946" not in stored.description
    assert "<PERSON_1>" in stored.description and "<PHONE_1>" in stored.description
    assert (stored.consequences, stored.measures) == ("Possible phishing calls.", "Remote wipe requested.")
