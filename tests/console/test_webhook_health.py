"""The DPO console's webhook page: delivery health, dead letters, replay; DPO only."""

from __future__ import annotations

import pytest

from tests.webhooks.conftest import SCORING, relay_and_send

pytestmark = pytest.mark.django_db


def test_health_page_counts_deliveries_by_state_and_shows_no_secret_or_personal_data(
        dpo_client, receiver, subscribe, consented):
    from consent.services import consent_withdraw
    from events.services import event_record

    sub, secret = subscribe(receiver.url, ["score.tier_changed", "consent.withdrawn"])
    cid = consented(name="Perpetua Vandersloot", email="perpetua.v@example.org")
    event_record(type="score.tier_changed", customer_id=cid, purpose=SCORING, payload={"tier": "VIP"})
    relay_and_send()
    event_record(type="score.tier_changed", customer_id=cid, purpose=SCORING, payload={"tier": "Basic"})
    consent_withdraw(customer_id=cid, purpose=SCORING, source="web", channel="web", actor="job:test")
    relay_and_send()
    page = dpo_client.get("/console/webhooks/")
    assert page.status_code == 200
    health = page.context["health"]
    assert health["counts"] == {"pending": 0, "delivered": 2, "dead": 0, "dropped": 1}
    assert health["dropped_reasons"] == {"no_consent": 1}
    assert health["outbox"]["pending"] == 0
    html = page.content.decode()
    assert secret not in html and secret.removeprefix("whsec_") not in html
    assert "Vandersloot" not in html and "perpetua" not in html
    assert f"127.0.0.1:{receiver.port}" in html


@pytest.mark.parametrize("who", ["anonymous", "staff_not_dpo"])
def test_only_the_dpo_sees_and_replays(client, who, django_user_model):
    if who == "staff_not_dpo":
        client.force_login(django_user_model.objects.create_user(username="ops", password="x-password-123"))
    page = client.get("/console/webhooks/")
    replay = client.post("/console/webhooks/deliveries/1/replay/")
    if who == "anonymous":
        assert page.status_code == 302 and replay.status_code == 302
    else:
        assert page.status_code == 403 and replay.status_code == 403


def test_replaying_something_that_is_not_a_dead_letter_changes_nothing(dpo_client, receiver, subscribe, consented):
    from consent.services import consent_withdraw
    from webhooks.models import Delivery

    subscribe(receiver.url, ["consent.withdrawn"])
    cid = consented()
    consent_withdraw(customer_id=cid, purpose=SCORING, source="web", channel="web", actor="job:test")
    relay_and_send()
    [d] = Delivery.objects.all()
    response = dpo_client.post(f"/console/webhooks/deliveries/{d.pk}/replay/", follow=True)
    assert response.status_code == 200
    assert "Only dead letters can be replayed." in response.content.decode()
    d.refresh_from_db()
    assert (d.state, d.attempts) == ("delivered", 1)
    assert len(receiver.requests) == 1
    assert dpo_client.post("/console/webhooks/deliveries/999999/replay/", follow=True).status_code == 200
