"""Signed delivery to a real receiver: signatures, retries, dead letters, replay, consent at send time,
erasure notices to past recipients, per-customer order, and payloads free of personal data."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.webhooks.conftest import ACTOR, SCORING, relay_and_send

pytestmark = pytest.mark.django_db


def _withdraw(cid: uuid.UUID, purpose: str = SCORING) -> None:
    from consent.services import consent_withdraw

    consent_withdraw(customer_id=cid, purpose=purpose, source="web", channel="web", actor=ACTOR)


def _score_event(cid: uuid.UUID, *, tier: str = "VIP", purpose: str = SCORING) -> Any:
    from events.services import event_record

    return event_record(type="score.tier_changed", customer_id=cid, purpose=purpose, payload={
        "decision_id": 1, "tier": tier, "previous_tier": "Standard", "risk_level": "high",
        "previous_risk_level": "medium", "clv": 1200.5, "churn_probability": 0.71, "upsell": 0.2, "advocacy": 0.4,
        "service_level": {"first_response_hours": 2}, "reasons": ["Orders in the last 90 days: 0 (+12 points)"]})


def _deliveries(**filters: Any) -> list[Any]:
    from webhooks.models import Delivery

    return list(Delivery.objects.filter(**filters).order_by("id"))


def test_withdrawal_through_the_api_reaches_the_receiver_signed(api, receiver, subscribe, consented,
                                                                django_capture_on_commit_callbacks):
    from events.models import OutboxEvent

    sub, secret = subscribe(receiver.url, ["consent.withdrawn"])
    cid = consented()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/consents/withdraw", {"customer": str(cid), "purpose": SCORING,
                                                          "source": "web", "channel": "web"}, format="json")
    assert response.status_code == 201
    # the on-commit kick relayed and delivered in-process (embedded/eager mode)
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    event = OutboxEvent.objects.get(type="consent.withdrawn")
    assert request["headers"]["webhook-id"] == str(event.event_id)
    body = Webhook(secret).verify(request["body"], request["headers"])
    assert body == {"id": str(event.event_id), "type": "consent.withdrawn",
                    "timestamp": event.created_at.isoformat(),
                    "data": {"customer": str(cid), "purpose": SCORING, "kind": "withdrawn"}}
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook("whsec_" + "QUJD" * 8).verify(request["body"], request["headers"])
    tampered = request["body"].replace(b"withdrawn", b"granted__")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request["headers"])
    [delivery] = _deliveries()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)


def test_down_receiver_is_retried_with_backoff_then_dead_lettered_then_replayed_from_the_console(
        receiver, subscribe, consented, dpo_user, settings):
    from django.test import Client

    from audit.models import GovernanceEvent
    from webhooks import services

    sub, secret = subscribe(receiver.url, ["consent.withdrawn"])
    cid = consented()
    receiver.stop()
    _withdraw(cid)
    t0 = timezone.now()
    services.outbox_relay_all(now=t0)
    counts = services.deliveries_send_due(now=t0)
    assert (counts.attempted, counts.failed, counts.delivered) == (1, 1, 0)
    [d] = _deliveries()
    assert (d.state, d.attempts, d.last_error) == ("pending", 1, "connection_refused")
    gaps = []
    clock = t0
    while d.state == "pending":
        assert d.next_attempt_at > clock
        assert services.deliveries_send_due(now=d.next_attempt_at - timedelta(milliseconds=1)).attempted == 0
        gaps.append((d.next_attempt_at - clock).total_seconds())
        clock = d.next_attempt_at
        services.deliveries_send_due(now=clock)
        d.refresh_from_db()
    window = settings.WEBHOOK_RETRY_WINDOW_SECONDS
    assert (d.state, d.reason) == ("dead", "retries_exhausted")
    assert clock == t0 + timedelta(seconds=window)  # the last attempt is at the end of the 24 h window
    assert d.attempts == len(gaps) + 1 >= 15
    # exponential with jitter: each early step at least the previous one's fixed half, doubling up to the cap
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    for i, gap in enumerate(gaps[:8]):
        step = min(settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS, base * 2 ** i)
        assert step / 2 <= gap <= step
    assert max(gaps) <= settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS
    assert receiver.requests == []

    # the console lists it and replays it with one (CSRF-protected) click
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(dpo_user)
    page = browser.get("/console/webhooks/")
    assert page.status_code == 200
    assert f"delivery-{d.pk}" in page.content.decode()
    assert browser.post(f"/console/webhooks/deliveries/{d.pk}/replay/").status_code == 403  # no CSRF token
    d.refresh_from_db()
    assert d.state == "dead"
    receiver.start()  # back on the same port
    token = page.context["csrf_token"]
    response = browser.post(f"/console/webhooks/deliveries/{d.pk}/replay/", {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    d.refresh_from_db()
    assert d.state == "pending" and d.attempts == 0
    services.deliveries_send_due()
    d.refresh_from_db()
    assert (d.state, d.last_status) == ("delivered", 200)
    [request] = receiver.requests
    assert Webhook(secret).verify(request["body"], request["headers"])["type"] == "consent.withdrawn"
    replayed = GovernanceEvent.objects.get(kind="webhook.replayed")
    assert (replayed.actor, replayed.details["delivery"]) == ("user:dpo", d.pk)


def test_redirects_are_not_followed_and_count_as_failures(receiver, subscribe, consented):
    subscribe(receiver.url, ["consent.withdrawn"])
    cid = consented()
    receiver.status = 302
    _withdraw(cid)
    counts = relay_and_send()
    assert (counts.attempted, counts.failed) == (1, 1)
    [d] = _deliveries()
    assert (d.state, d.last_status, d.last_error) == ("pending", 302, "redirect_302")
    assert len(receiver.requests) == 1  # the Location was not visited


def test_consent_is_rechecked_when_sending_and_the_withdrawal_notice_still_goes_out(receiver, subscribe, consented):
    """The score event was recorded with consent; consent is withdrawn before it is sent: it is dropped with
    the reason, and the withdrawal notice reaches the endpoint (a past recipient) that did not subscribe to it."""
    sub, secret = subscribe(receiver.url, ["score.tier_changed"])
    cid = consented()
    _score_event(cid, tier="Premium")
    relay_and_send()
    assert receiver.types() == ["score.tier_changed"]  # consent active: sent; the endpoint is now a recipient

    _score_event(cid, tier="VIP")
    _withdraw(cid)  # between record and send
    counts = relay_and_send()
    assert (counts.dropped, counts.delivered) == (1, 1)
    assert counts.dropped_reasons == {"no_consent": 1}
    assert receiver.types() == ["score.tier_changed", "consent.withdrawn"]
    assert receiver.events()[1]["data"] == {"customer": str(cid), "purpose": SCORING, "kind": "withdrawn"}
    dropped = _deliveries(state="dropped")
    assert [(d.event_type, d.reason, d.attempts) for d in dropped] == [("score.tier_changed", "no_consent", 0)]


def test_restriction_stops_score_events_and_is_told_as_a_withdrawal_of_kind_restricted(
        receiver, subscribe, consented):
    from consent.services import processing_restrict

    subscribe(receiver.url, ["score.tier_changed", "consent.withdrawn"])
    cid = consented()
    _score_event(cid)
    processing_restrict(customer_id=cid, purpose=None, reason="accuracy_contested", actor=ACTOR)
    relay_and_send()
    assert receiver.types() == ["consent.withdrawn"]
    assert receiver.events()[0]["data"] == {"customer": str(cid), "purpose": None, "kind": "restricted"}
    assert [d.reason for d in _deliveries(state="dropped")] == ["restricted"]


def test_subscribers_get_only_events_of_their_purpose_and_types(receiver, subscribe, consented):
    from tests.webhooks.receiver import Receiver

    other = Receiver().start()
    try:
        subscribe(receiver.url, ["score.tier_changed"], purpose=SCORING)
        subscribe(other.url, ["score.tier_changed"], purpose="marketing")
        cid = consented(purposes=(SCORING, "marketing"))
        _score_event(cid, purpose=SCORING)
        _score_event(cid, purpose="service_prioritization")
        relay_and_send()
        assert [e["data"]["purpose"] for e in receiver.events()] == [SCORING]
        assert other.requests == []
    finally:
        other.stop()


def test_erasure_notices_reach_past_recipients_that_never_subscribed_to_them(api, receiver, subscribe, consented):
    from subject_rights.services import request_execute
    from tests.webhooks.receiver import Receiver

    later, erased_subscriber = Receiver().start(), Receiver().start()
    try:
        subscribe(receiver.url, ["score.tier_changed"])  # will receive this customer's data
        subscribe(erased_subscriber.url, ["customer.erased"])
        cid = consented()
        other_customer = consented()
        _score_event(cid)
        relay_and_send()
        assert receiver.types() == ["score.tier_changed"]
        subscribe(later.url, ["score.tier_changed"])  # subscribes later: never gets this customer's data
        _score_event(other_customer)
        relay_and_send()
        assert [e["data"]["customer"] for e in later.events()] == [str(other_customer)]

        response = api.post("/api/v1/subject-requests", {"type": "erasure", "customer": str(cid)}, format="json")
        assert response.status_code == 201
        assert request_execute(request_id=response.json()["id"], actor="user:dpo").outcome == "erased"
        relay_and_send()
        assert receiver.types() == ["score.tier_changed", "score.tier_changed", "customer.erased"]
        assert receiver.events()[-1]["data"] == {"customer": str(cid), "purpose": None, "aliases": []}
        assert erased_subscriber.types() == ["customer.erased"]
        assert later.types() == ["score.tier_changed"]  # nothing about the erased customer
        from webhooks.models import WebhookRecipient

        assert not WebhookRecipient.objects.filter(customer_id=cid).exists()  # served its purpose
        assert WebhookRecipient.objects.filter(customer_id=other_customer).count() == 2
    finally:
        later.stop()
        erased_subscriber.stop()


def test_order_is_kept_per_customer_and_endpoint(receiver, subscribe, consented, settings):
    from webhooks import services

    settings.WEBHOOK_SEND_CONCURRENCY = 1  # the receiver's script fails "the first request": make it e1
    subscribe(receiver.url, ["score.tier_changed"])
    first, second = consented(), consented()
    e1 = _score_event(first, tier="Premium")
    e2 = _score_event(first, tier="VIP")
    e3 = _score_event(second, tier="Basic")
    receiver.script = [500]  # the first request fails
    t0 = timezone.now()
    services.outbox_relay_all(now=t0)
    counts = services.deliveries_send_due(now=t0)
    # e1 failed; e2 (same customer) waits behind it; e3 (another customer) went out
    assert (counts.attempted, counts.failed, counts.delivered) == (2, 1, 1)
    assert [e["id"] for e in receiver.events()] == [str(e1.event_id), str(e3.event_id)]
    d1, d2, _ = _deliveries()
    assert (d1.state, d1.last_error, d2.state, d2.attempts) == ("pending", "http_500", "pending", 0)
    services.deliveries_send_due(now=d1.next_attempt_at)
    assert [e["id"] for e in receiver.events()] == [str(e1.event_id), str(e3.event_id), str(e1.event_id),
                                                    str(e2.event_id)]
    assert [d.state for d in _deliveries()] == ["delivered", "delivered", "delivered"]


def test_a_dead_letter_unblocks_the_next_event_of_the_customer(receiver, subscribe, consented, settings):
    from webhooks import services

    settings.WEBHOOK_RETRY_WINDOW_SECONDS = 60
    subscribe(receiver.url, ["score.tier_changed"])
    cid = consented()
    _score_event(cid, tier="Premium")
    _score_event(cid, tier="VIP")
    receiver.status = 503
    t0 = timezone.now()
    services.outbox_relay_all(now=t0)
    services.deliveries_send_due(now=t0)
    receiver.status = 200
    services.deliveries_send_due(now=t0 + timedelta(seconds=61))  # e1's last try: now 200
    assert [d.state for d in _deliveries()] == ["delivered", "delivered"]
    receiver.status = 503
    _score_event(cid, tier="Basic")
    _score_event(cid, tier="Standard")
    t1 = t0 + timedelta(seconds=120)
    services.outbox_relay_all(now=t1)
    services.deliveries_send_due(now=t1)
    services.deliveries_send_due(now=t1 + timedelta(seconds=60))  # e3 dead at the end of its window
    states = [d.state for d in _deliveries()]
    assert states[2] == "dead"
    assert states[3] == "pending"  # then e4 is tried (and fails: 503)
    assert receiver.types().count("score.tier_changed") == len(receiver.requests)


def test_payloads_hold_no_personal_data(api, receiver, subscribe, consented):
    """Every event type this branch emits, sent to a subscriber of all types: no name, e-mail or phone of
    the customer in any body or header (nor in the outbox)."""
    from events.models import OutboxEvent
    from events.services import PUBLIC_EVENT_TYPES
    from subject_rights.services import request_execute

    subscribe(receiver.url, list(PUBLIC_EVENT_TYPES))
    name, email, phone = "Ottilie Brammertz-Quellenfeld", "ottilie.brammertz@example.org", "+44 7700 900123"
    cid = consented(name=name, email=email, phone=phone)
    _score_event(cid)
    relay_and_send()
    response = api.post("/api/v1/subject-requests", {"type": "rectification", "customer": str(cid),
                                                      "fields": {"name": "Ottilie Quellenfeld"}}, format="json")
    assert response.status_code == 201
    _withdraw(cid)
    erase = api.post("/api/v1/subject-requests", {"type": "erasure", "customer": str(cid)}, format="json")
    request_execute(request_id=erase.json()["id"], actor="user:dpo")
    relay_and_send()
    assert receiver.types() == ["score.tier_changed", "consent.withdrawn", "customer.erased"]
    # rectified was dropped: the customer was erased (and consent withdrawn) before it was sent
    assert [d.reason for d in _deliveries(state="dropped")] == ["erased"]
    assert OutboxEvent.objects.get(type="customer.rectified").payload == {"fields": ["name"]}
    everything = b"".join(r["body"] + json.dumps(r["headers"]).encode() for r in receiver.requests)
    everything += json.dumps(list(OutboxEvent.objects.values_list("payload", flat=True))).encode()
    for needle in (name, "Ottilie", "Quellenfeld", "Brammertz", email, "example.org", "7700 900123", "7700900123"):
        assert needle.encode() not in everything, needle


def test_rectification_is_told_with_field_names_only(api, receiver, subscribe, consented):
    subscribe(receiver.url, ["customer.rectified"])
    cid = consented(name="Hieronymus Adebayo-Lindqvist", email="hieronymus@example.net")
    response = api.post("/api/v1/subject-requests", {"type": "rectification", "customer": str(cid),
                                                      "fields": {"name": "Hieronymus Lindqvist",
                                                                 "email": "h.lindqvist@example.net"}}, format="json")
    assert response.status_code == 201
    relay_and_send()
    assert receiver.events()[0]["type"] == "customer.rectified"
    assert receiver.events()[0]["data"] == {"customer": str(cid), "purpose": None, "fields": ["email", "name"]}
    assert b"Lindqvist" not in receiver.requests[0]["body"]


def test_deleted_subscription_gets_nothing_more_and_its_pending_deliveries_are_dropped(receiver, subscribe,
                                                                                        consented):
    from webhooks.services import subscription_delete

    sub, _ = subscribe(receiver.url, ["score.tier_changed"])
    cid = consented()
    _score_event(cid)
    from webhooks.services import outbox_relay_all

    outbox_relay_all()
    subscription_delete(subscription_id=sub.id, actor="api:test-admin")
    _score_event(cid)
    relay_and_send()
    assert receiver.requests == []
    assert [(d.state, d.reason) for d in _deliveries()] == [("dropped", "subscription_deleted")]


def test_the_secret_is_stored_encrypted_and_never_returned_again(api, make_api_client, receiver):
    from webhooks.models import WebhookSubscription

    admin = make_api_client(scopes=["webhooks:admin"])
    response = admin.post("/api/v1/webhooks", {"url": receiver.url, "events": ["consent.withdrawn"],
                                               "purpose": SCORING}, format="json")
    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    sub = WebhookSubscription.objects.get(pk=response.json()["id"])
    assert secret.encode() not in bytes(sub.secret_sealed)
    assert secret.removeprefix("whsec_").encode() not in bytes(sub.secret_sealed)
    assert "secret" not in admin.get(f"/api/v1/webhooks/{sub.id}").json()
    assert secret not in admin.get("/api/v1/webhooks").content.decode()
