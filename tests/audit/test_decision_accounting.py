"""Every decision made anywhere has exactly one decision record: served scores and routings through the
real API, and a batch rescoring chunk, counted against the records; refusals leave none."""

from __future__ import annotations

import pytest

from audit.models import DecisionRecord
from tests.audit.accounting import DecisionLedger
from tests.scoring.conftest import active_model, synthetic_artifact  # noqa: F401 - fixtures
from tests.scoring.helpers import SCORING, customer_with_history, withdraw

pytestmark = pytest.mark.django_db
ROUNDS = 4


def test_each_served_score_and_routing_through_the_api_has_exactly_one_record(api, active_model):  # noqa: F811
    consented = [customer_with_history(seed=i) for i in range(3)]
    refused = customer_with_history(seed=9)
    withdraw(refused)
    ledger = DecisionLedger()
    reported: list[int] = []
    refusals = 0
    for _ in range(ROUNDS):
        for cid in [*consented, refused]:
            response = api.get(f"/api/v1/customers/{cid}/score?purpose={SCORING}")
            if cid == refused:
                assert response.status_code == 403 and response.json()["code"] == "no_consent"
                refusals += 1
                continue
            assert response.status_code == 200, response.content
            reported.append(response.json()["decision_id"])
        route = api.post("/api/v1/route", {"customer": str(consented[0]), "ticket_category": "billing",
                                           "purpose": SCORING}, format="json")
        assert route.status_code == 200, route.content
        reported.append(route.json()["decision_id"])
    assert len(reported) == ROUNDS * (len(consented) + 1) and refusals == ROUNDS
    ledger.assert_exactly(reported)
    types = list(DecisionRecord.objects.filter(id__in=reported).values_list("decision_type", flat=True))
    assert types.count("served_score") == ROUNDS * len(consented) and types.count("routing") == ROUNDS
    assert DecisionRecord.objects.filter(customer=refused).count() == 0


def test_a_batch_chunk_records_one_decision_per_scored_customer_even_when_retried(active_model):  # noqa: F811
    from scoring import services as scoring_services

    customers = [customer_with_history(seed=20 + i) for i in range(4)]
    withdraw(customers[-1])
    run = scoring_services.rescore_run_start(purpose=SCORING, requester="job:rescore_nightly", customer_ids=customers)
    ledger = DecisionLedger()
    chunks = scoring_services.rescore_pending_chunks(run_id=run.id)
    counts = [scoring_services.rescore_chunk(run_id=run.id, customer_ids=chunk) for chunk in chunks]
    retried = [scoring_services.rescore_chunk(run_id=run.id, customer_ids=chunk) for chunk in chunks]
    scored = sum(c.scored for c in counts)
    assert scored == 3 and all(c.already_done for c in retried)
    new = DecisionRecord.objects.filter(id__in=ledger.new_records())
    assert new.count() == scored
    assert sorted(new.values_list("customer", flat=True)) == sorted(customers[:3])
    assert set(new.values_list("decision_type", flat=True)) <= {"batch_rescore", "tier_change"}
    assert all(key.startswith(f"{run.id}:") for key in new.values_list("decision_key", flat=True))
