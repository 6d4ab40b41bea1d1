"""Consent services: audit in the same transaction, append-only ledger, evidence without PII, validation."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import GovernanceEvent
from config.blind_index import blind_index
from config.errors import NotFound, ValidationFailed
from consent import selectors, services
from consent.models import (
    AppendOnlyViolation,
    ConsentEvent,
    ConsentNotice,
    ConsentStateCurrent,
    ProcessingFlag,
    ProcessingFlagCurrent,
)
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db

SCORING = "automated_scoring"


def test_grant_writes_its_governance_record_with_pii_free_details(customer, grant):
    event = grant(customer, channel="app", source="app")
    record = GovernanceEvent.objects.get(kind="consent.granted", subject=customer)
    assert record.actor == ACTOR
    assert record.details == {"event_id": event.id, "purpose": SCORING, "notice_version": "v1", "source": "app",
                              "channel": "app"}


def test_withdrawal_has_the_same_shape_as_a_grant_and_is_audited(customer, grant, withdraw):
    grant(customer)
    event = withdraw(customer, channel="email", source="crm")
    assert (event.action, event.channel, event.source, event.notice.version) == ("withdraw", "email", "crm", "v1")
    record = GovernanceEvent.objects.get(kind="consent.withdrawn", subject=customer)
    assert record.details["event_id"] == event.id


def test_failed_audit_write_rolls_back_the_consent_event(customer, monkeypatch):
    import audit.services

    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit.services, "governance_record", broken)
    with pytest.raises(RuntimeError):
        services.consent_grant(customer_id=customer, purpose=SCORING, source="web", channel="web", actor=ACTOR)
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 0
    assert ConsentStateCurrent.objects.filter(customer_id=customer).count() == 0
    with pytest.raises(RuntimeError):
        services.processing_restrict(customer_id=customer, actor=ACTOR, reason="accuracy_contested")
    assert ProcessingFlag.objects.filter(customer_id=customer).count() == 0
    assert ProcessingFlagCurrent.objects.filter(customer_id=customer).count() == 0
    assert selectors.processing_gate(customer_id=customer, purpose=SCORING).code == "no_consent"


def test_consent_events_are_append_only(customer, grant):
    event = grant(customer)
    event.action = "withdraw"
    with pytest.raises(AppendOnlyViolation):
        event.save()
    with pytest.raises(AppendOnlyViolation):
        event.delete()
    with pytest.raises(AppendOnlyViolation):
        ConsentEvent.objects.filter(pk=event.pk).update(action="withdraw")
    with pytest.raises(AppendOnlyViolation):
        ConsentEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyViolation):
        ConsentEvent.objects.bulk_update([event], ["action"])
    assert ConsentEvent.objects.get(pk=event.pk).action == "grant"


def test_processing_flags_and_published_notices_are_immutable(customer):
    flag = services.processing_object(customer_id=customer, actor=ACTOR)
    with pytest.raises(AppendOnlyViolation):
        ProcessingFlag.objects.filter(pk=flag.pk).delete()
    with pytest.raises(AppendOnlyViolation):
        flag.save()
    notice = ConsentNotice.objects.get(purpose__code=SCORING, version="v1")
    notice.text = "something else"
    with pytest.raises(AppendOnlyViolation):
        notice.save()


def test_erasure_deletes_every_consent_row_of_the_subject_only(new_customer, grant, withdraw):
    subject, other = new_customer(), new_customer()
    for cid in (subject, other):
        grant(cid)
        withdraw(cid, "marketing")
        services.processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested")
    assert services.consent_erase_subject(customer_id=subject, actor=ACTOR) == 3
    assert ConsentEvent.objects.filter(customer_id=subject).count() == 0
    assert ProcessingFlag.objects.filter(customer_id=subject).count() == 0
    assert ConsentStateCurrent.objects.filter(customer_id=subject).count() == 0
    assert ProcessingFlagCurrent.objects.filter(customer_id=subject).count() == 0
    assert ConsentEvent.objects.filter(customer_id=other).count() == 2
    assert ProcessingFlagCurrent.objects.filter(customer_id=other).count() == 1


def test_evidence_keeps_only_references_hashes_and_keyed_hmacs(customer, grant):
    event = grant(customer, evidence={
        "form_id": "signup-2024", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "checkbox_text": "I agree",
        "double_opt_in": True,
    })
    assert event.evidence == {
        "form_id": "signup-2024",
        "ip_hmac": blind_index("ip", "203.0.113.7"),
        "user_agent_hmac": blind_index("user_agent", "Mozilla/5.0"),
        "checkbox_text_hash": hashlib.sha256(b"I agree").hexdigest(),
        "double_opt_in": True,
    }
    stored = ConsentEvent.objects.get(pk=event.pk)
    assert "203.0.113.7" not in str(stored.evidence)


@pytest.mark.parametrize("evidence", [
    {"email": "someone@example.com"},
    {"form_id": "someone@example.com"},
    {"ip": "not-an-ip"},
    {"double_opt_in": "yes"},
    "free text",
])
def test_evidence_that_could_carry_personal_data_is_refused_and_nothing_is_written(customer, grant, evidence):
    with pytest.raises(ValidationFailed) as exc:
        grant(customer, evidence=evidence)
    assert exc.value.extra["errors"] == {"evidence": [{"code": "invalid", "message": "Invalid value."}]}
    assert "example.com" not in str(exc.value.extra)
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 0
    assert GovernanceEvent.objects.filter(subject=customer, kind="consent.granted").count() == 0


@pytest.mark.parametrize(("kwargs", "field", "code"), [
    ({"purpose": "astrology"}, "purpose", "invalid_choice"),
    ({"channel": "pigeon"}, "channel", "invalid_choice"),
    ({"source": "Web Form"}, "source", "invalid"),
    ({"notice_version": "v9"}, "notice_version", "unknown_version"),
    ({"at": timezone.now() + timedelta(days=1)}, "occurred_at", "in_future"),
])
def test_invalid_consent_input_is_rejected_with_field_and_code(customer, grant, kwargs, field, code):
    with pytest.raises(ValidationFailed) as exc:
        grant(customer, **kwargs)
    assert exc.value.code == "invalid"
    assert exc.value.extra["errors"][field][0]["code"] == code
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 0


def test_grant_on_a_notice_published_after_the_decision_is_refused(customer, grant):
    services.notice_publish(purpose=SCORING, text="v2 text", requires_reconsent=False, actor=ACTOR)
    with pytest.raises(ValidationFailed) as exc:
        grant(customer, notice_version="v2", at=timezone.now() - timedelta(days=1))
    assert exc.value.extra["errors"]["notice_version"][0]["code"] == "not_yet_published"


def test_unknown_and_erased_customers_cannot_grant(customer, grant):
    from profiles.services import customer_erase

    with pytest.raises(NotFound):
        grant(uuid.uuid4())
    customer_erase(customer_id=customer, actor=ACTOR)
    with pytest.raises(NotFound):
        grant(customer)
    assert ConsentEvent.objects.count() == 0


def test_recording_the_same_dated_event_twice_returns_the_first(customer, grant):
    at = timezone.now() - timedelta(hours=2)
    first = grant(customer, at=at)
    again = grant(customer, at=at)
    assert again.pk == first.pk
    assert ConsentEvent.objects.filter(customer_id=customer).count() == 1
    assert GovernanceEvent.objects.filter(kind="consent.granted", subject=customer).count() == 1


def test_backdated_event_changes_history_but_not_the_current_state(customer, grant, withdraw):
    latest = grant(customer)
    older = withdraw(customer, at=timezone.now() - timedelta(days=3))
    state = selectors.consent_state(customer_id=customer, purpose=SCORING)
    assert (state.status, state.event_id) == ("granted", latest.id)
    past = selectors.consent_state(customer_id=customer, purpose=SCORING, at=timezone.now() - timedelta(days=1))
    assert (past.status, past.event_id) == ("withdrawn", older.id)


def test_notice_publish_versions_hashes_and_audits(customer):
    notice = services.notice_publish(purpose="marketing", text="New marketing text", requires_reconsent=True,
                                     actor="user:dpo")
    assert (notice.version, notice.text_hash) == ("v2", hashlib.sha256(b"New marketing text").hexdigest())
    record = GovernanceEvent.objects.get(kind="notice.published")
    assert record.details == {"purpose": "marketing", "version": "v2", "text_hash": notice.text_hash,
                              "requires_reconsent": True}
    with pytest.raises(ValidationFailed):
        services.notice_publish(purpose="marketing", text="x", requires_reconsent=False, actor=ACTOR, version="v2")


@pytest.mark.parametrize(("operation", "kind"), [
    (lambda cid: services.processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested"),
     "processing.restricted"),
    (lambda cid: services.processing_restriction_lift(customer_id=cid, actor=ACTOR), "processing.restriction_lifted"),
    (lambda cid: services.processing_object(customer_id=cid, actor=ACTOR, purpose="marketing"), "processing.objected"),
    (lambda cid: services.processing_objection_lift(customer_id=cid, actor=ACTOR, purpose="marketing"),
     "processing.objection_lifted"),
])
def test_processing_flag_changes_are_audited(customer, operation, kind):
    flag = operation(customer)
    record = GovernanceEvent.objects.get(kind=kind, subject=customer)
    assert record.details["flag_id"] == flag.id
    assert record.actor == ACTOR


def test_restriction_reason_must_be_a_code_not_free_text(customer):
    with pytest.raises(ValidationFailed):
        services.processing_restrict(customer_id=customer, actor=ACTOR, reason="Ada Lovelace disputes her address")
    assert ProcessingFlag.objects.count() == 0
