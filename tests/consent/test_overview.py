"""The DPO console's consent overview: counts per purpose and a daily trend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from consent import selectors, services
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db


def test_overview_counts_granted_withdrawn_reconsent_and_never_asked(new_customer, grant, withdraw):
    granted, withdrawn, stale, never = (new_customer() for _ in range(4))
    now = timezone.now()
    grant(granted)
    grant(withdrawn, at=now - timedelta(days=10))
    withdraw(withdrawn)
    grant(stale, at=now - timedelta(days=120))  # outside the 90-day trend window
    services.notice_publish(purpose="automated_scoring", text="v2", requires_reconsent=True, actor=ACTOR)
    grant(granted, "marketing")

    overview = selectors.consent_overview(days=90)
    assert overview["live_customers"] == 4
    by_code = {p["code"]: p for p in overview["purposes"]}
    scoring = by_code["automated_scoring"]
    # `granted` granted on v1 before v2 (re-consent) was published, so it needs re-consent as well.
    assert (scoring["granted"], scoring["withdrawn"], scoring["reconsent_required"], scoring["never_asked"]) == (
        0, 1, 2, 1)
    marketing = by_code["marketing"]
    assert (marketing["granted"], marketing["withdrawn"], marketing["never_asked"]) == (1, 0, 3)
    assert by_code["service_prioritization"]["never_asked"] == 4

    trend = overview["trend"]["automated_scoring"]
    assert len(trend) == 90
    assert trend[-1]["date"] == now.date().isoformat()
    assert (trend[-1]["grants"], trend[-1]["withdrawals"]) == (1, 1)
    ten_days_ago = (now - timedelta(days=10)).date().isoformat()
    assert {d["date"]: d["grants"] for d in trend}[ten_days_ago] == 1
    assert sum(d["grants"] for d in trend) == 2  # the 120-day-old grant is outside the window
    assert overview["trend"]["marketing"][-1] == {"date": now.date().isoformat(), "grants": 1, "withdrawals": 0}


def test_consented_customer_ids_lists_only_customers_whose_gate_is_open(new_customer, grant, withdraw):
    open_, closed, restricted = (new_customer() for _ in range(3))
    grant(open_)
    grant(closed)
    withdraw(closed)
    grant(restricted)
    services.processing_restrict(customer_id=restricted, actor=ACTOR, reason="accuracy_contested")
    assert selectors.consented_customer_ids(purpose="automated_scoring") == [open_]
