"""The compiled mood read (one statement, prepared on PostgreSQL; the real-time score's hot path) gives exactly
the answer of the plain ORM query it replaces, on random ticket histories: ties on ``opened_at`` broken by
id, unscored tickets skipped, the window's edges, fewer tickets than ``MOOD_TICKETS``, none at all."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _reference(customer_id, now):
    """The plain query (the implementation before compiling), kept here as the reference."""
    from profiles.models import Ticket
    from profiles.selectors import MOOD_TICKETS, MOOD_WINDOW_DAYS, _mood_of

    scores = list(
        Ticket.objects.filter(customer_id=customer_id, opened_at__gt=now - timedelta(days=MOOD_WINDOW_DAYS),
                              opened_at__lte=now, sentiment_score__isnull=False)
        .order_by("-opened_at", "-id").values_list("sentiment_score", flat=True)[:MOOD_TICKETS]
    )
    return _mood_of(scores)


def test_compiled_mood_equals_the_plain_query_on_random_histories():
    from profiles.models import Ticket
    from profiles.selectors import MOOD_WINDOW_DAYS, customer_current_mood
    from tests.factories import make_customer, make_ticket

    rng = random.Random(21)
    now = timezone.now().replace(microsecond=0)
    seen_counts = set()
    for _ in range(12):
        cid = make_customer(orders=0, interactions=0)
        n = rng.randrange(0, 7)
        ids = [make_ticket(cid, days_ago=1, now=now) for _ in range(n)]
        for tid in ids:
            day = rng.choice([0, 1, 5, 5, 30, MOOD_WINDOW_DAYS, MOOD_WINDOW_DAYS + 1, 200])  # ties and both edges
            score = None if rng.random() < 0.2 else round(rng.uniform(-1, 1), 6)
            Ticket.objects.filter(pk=tid).update(opened_at=now - timedelta(days=day), sentiment_score=score)
        expected = _reference(cid, now)
        seen_counts.add(expected["tickets"])
        assert customer_current_mood(customer_id=cid, now=now) == expected
        assert customer_current_mood(customer_id=cid, now=now - timedelta(days=3)) == _reference(
            cid, now - timedelta(days=3))
    assert {0, 3} <= seen_counts  # the sample covers no mood and a full one


def test_an_id_without_a_customer_row_reads_its_tickets_the_plain_way():
    import uuid

    from profiles.selectors import customer_current_mood

    mood = customer_current_mood(customer_id=uuid.uuid4())
    assert mood == {"label": "unknown", "score": None, "tickets": 0, "window_days": 90}
