import uuid

import pytest
from django.db import transaction

from config.errors import ValidationFailed
from events import selectors, services
from events.models import OutboxEvent
from events.signals import event_recorded
from profiles.language import language_detect, language_of_locale

pytestmark = pytest.mark.django_db


def test_event_is_written_in_the_callers_transaction_and_rolls_back_with_it():
    cid = uuid.uuid4()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.event_record(type="consent.withdrawn", customer_id=cid, purpose="scoring", payload={"a": 1})
        raise RuntimeError("the change fails")
    assert OutboxEvent.objects.count() == 0
    event = services.event_record(type="consent.withdrawn", customer_id=cid, purpose="scoring", payload={"a": 1})
    assert [e.event_id for e in selectors.events_after(after_id=0)] == [event.event_id]
    assert selectors.events_for_customer(customer_id=cid)[0].payload == {"a": 1}


def test_receivers_run_inside_the_transaction():
    seen = []

    def receiver(sender, event, **kwargs):
        seen.append((event.type, transaction.get_connection().in_atomic_block))

    event_recorded.connect(receiver)
    try:
        services.event_record(type="action.created", customer_id=None, purpose=None, payload={})
    finally:
        event_recorded.disconnect(receiver)
    assert seen == [("action.created", True)]


@pytest.mark.parametrize("payload", [{"email": "x"}, {"nested": {"phone": "1"}}, {"v": float("inf")},
                                     {"items": [{"text": "t"}]}])
def test_payloads_with_personal_keys_or_non_finite_numbers_are_refused(payload):
    with pytest.raises(ValidationFailed):
        services.event_record(type="score.tier_changed", customer_id=None, purpose=None, payload=payload)
    assert OutboxEvent.objects.count() == 0


@pytest.mark.parametrize(("text", "prior", "expected"), [
    ("Hej, jag heter Anna och min beställning har inte kommit", None, "sv"),
    ("Moi, tilaukseni ei ole vielä saapunut kotiin", None, "fi"),
    ("Hallo, meine Bestellung ist leider nicht angekommen", None, "de"),
    ("Hoi, mijn bestelling is helaas niet aangekomen", None, "nl"),
    ("Dzień dobry, moje zamówienie jeszcze nie dotarło", None, "pl"),
    ("Hi, my order has not arrived yet, please help", None, "en"),
    ("ok 123", "pl-PL", "pl"),
    ("ok 123", None, "und"),
    ("Hallo, meine Bestellung ist leider nicht angekommen", "sv", "de"),
])
def test_language_detection_uses_the_locale_only_as_a_prior(text, prior, expected):
    assert language_detect(text, prior=prior) == expected


def test_locale_maps_to_a_supported_language():
    assert [language_of_locale(x) for x in ("pl_PL", "de-AT", "AT", "fr-FR", None)] == ["pl", "de", "de", None, None]
