"""Current mood in the score answer and the console (issue 18 §4): the mean sentiment of the customer's
last three scored tickets within 90 days, "unknown" without one, served only with the score (consent)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.scoring.helpers import SCORING, customer_with_history, decisions_for, grant, withdraw

pytestmark = pytest.mark.django_db

ANGRY = [
    "The parcel arrived broken again and nobody answers. This is terrible, I am very angry.",
    "Still no refund after three weeks. Awful service, I am extremely disappointed.",
    "Je service is slecht en ik ben erg teleurgesteld, het pakket is kapot.",  # Dutch, detected as such
]
HAPPY_OLD = "Wonderful support, thank you so much, everything works perfectly!"


def _url(cid, purpose=SCORING):
    return f"/api/v1/customers/{cid}/score?purpose={purpose}"


def _customer_with_tickets():
    from tests.factories import make_ticket

    cid = customer_with_history()
    make_ticket(cid, days_ago=200, text=HAPPY_OLD)  # outside the 90-day window
    make_ticket(cid, days_ago=40, text=HAPPY_OLD)  # inside, but not among the last three scored
    for i, text in enumerate(ANGRY):
        make_ticket(cid, days_ago=30 - 5 * i, text=text)
    make_ticket(cid, days_ago=1, text="")  # no text: no score, does not count
    return cid


def test_the_mood_is_the_mean_of_the_last_three_scored_tickets_within_90_days():
    from profiles.models import Ticket
    from profiles.selectors import customer_current_mood
    from profiles.sentiment import label_for

    cid = _customer_with_tickets()
    rows = list(Ticket.objects.filter(customer_id=cid).order_by("-opened_at", "-id")
                .values_list("sentiment_score", "sentiment_label", "language"))
    assert rows[0] == (None, "", "")  # the latest ticket has no text
    scored = [r for r in rows if r[0] is not None]
    assert len(scored) == 5 and scored[3][1] == scored[4][1] == "positive"  # older, or outside the window
    last_three = [score for score, _, _ in scored[:3]]
    assert all(s < 0 for s in last_three)
    assert [(label, lang) for _, label, lang in scored[:3]] == [("negative", "nl"), ("negative", "en"),
                                                                ("negative", "en")]
    mood = customer_current_mood(customer_id=cid)
    expected = round(sum(last_three) / 3, 4)
    assert mood == {"label": label_for(expected), "score": expected, "tickets": 3, "window_days": 90}
    assert mood["label"] == "negative"


def test_the_score_answer_carries_the_current_mood(api, active_model):
    cid = _customer_with_tickets()
    body = api.get(_url(cid)).json()
    assert body["current_mood"]["label"] == "negative"
    assert body["current_mood"]["tickets"] == 3 and body["current_mood"]["score"] < -0.2
    quiet = customer_with_history()  # a ticket without text only
    assert api.get(_url(quiet)).json()["current_mood"] == {
        "label": "unknown", "score": None, "tickets": 0, "window_days": 90}


def test_the_fast_representation_and_the_serializer_agree_on_the_mood(active_model):
    from scoring import services
    from scoring.api import serializers, views

    cid = _customer_with_tickets()
    result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    payload = views._score_payload(result, result.horizon_days)
    assert payload["current_mood"]["label"] == "negative"
    expected = serializers.ScoreOutput(payload).data
    assert views._score_output(payload) == expected
    assert json.dumps(views._score_output(payload)) == json.dumps(expected)


def test_without_consent_no_mood_is_served_or_shown(api, active_model, dpo_client):
    from scoring import selectors

    cid = _customer_with_tickets()
    assert api.get(_url(cid)).status_code == 200
    [decision] = decisions_for(cid)
    page = dpo_client.get(reverse("console:decision-detail", args=[decision.pk])).content.decode()
    assert "Current mood" in page and "<strong>negative</strong>" in page
    withdraw(cid)
    refused = api.get(_url(cid))
    assert refused.status_code == 403 and "current_mood" not in refused.json()
    assert selectors.customer_current_mood(customer_id=cid, purpose=SCORING) is None
    page = dpo_client.get(reverse("console:decision-detail", args=[decision.pk])).content.decode()
    assert "<strong>negative</strong>" not in page and "not shown: no active consent" in page
    listing = dpo_client.get(reverse("console:decisions") + f"?customer={cid}").content.decode()
    assert "Current mood" in listing and "<strong>negative</strong>" not in listing
    grant(cid)
    listing = dpo_client.get(reverse("console:decisions") + f"?customer={cid}").content.decode()
    assert "<strong>negative</strong>" in listing
