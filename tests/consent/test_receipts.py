"""Consent receipts: a JSON proof of one consent event that the service can verify later."""

from __future__ import annotations

import copy

import pytest

from config.errors import NotFound
from consent import selectors, services
from consent.models import ConsentNotice
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db


def test_receipt_proves_purpose_notice_hash_time_source_and_channel(customer, grant):
    event = grant(customer, source="app", channel="app", evidence={"form_id": "onboarding-3"})
    notice = ConsentNotice.objects.get(purpose__code="automated_scoring", version="v1")
    receipt = selectors.consent_receipt(event_id=event.id)
    signature = receipt.pop("signature")
    assert receipt == {
        "format": "consent-receipt/1",
        "event_id": event.id,
        "customer": str(customer),
        "action": "grant",
        "purpose": {"code": "automated_scoring", "name": "Automated customer scoring", "lawful_basis": "consent"},
        "notice": {"version": "v1", "text_hash": notice.text_hash, "hash_algorithm": "sha256",
                   "published_at": notice.published_at.isoformat()},
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "source": "app",
        "channel": "app",
        "evidence": {"form_id": "onboarding-3"},
    }
    assert len(signature) == 64


def test_receipt_verifies_and_any_alteration_fails(customer, withdraw):
    receipt = selectors.consent_receipt(event_id=withdraw(customer).id)
    assert selectors.consent_receipt_verify(receipt=receipt) is True
    for path, value in ((("action",), "grant"), (("notice", "text_hash"), "0" * 64), (("occurred_at",), "2020-01-01")):
        forged = copy.deepcopy(receipt)
        target = forged
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        assert selectors.consent_receipt_verify(receipt=forged) is False
    assert selectors.consent_receipt_verify(receipt={**receipt, "signature": "0" * 64}) is False


def test_receipt_of_an_erased_subject_no_longer_exists(customer, grant):
    event = grant(customer)
    receipt = selectors.consent_receipt(event_id=event.id)
    services.consent_erase_subject(customer_id=customer, actor=ACTOR)
    with pytest.raises(NotFound):
        selectors.consent_receipt(event_id=event.id)
    assert selectors.consent_receipt_verify(receipt=receipt) is False
