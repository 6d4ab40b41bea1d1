"""No decision exists for a customer without consent at execution time (Art. 6, 7(3), 18, 21, 22).

A hypothesis state machine interleaves grant, withdraw, restrict, lift, object, lift-objection and scoring
(real time and batch chunk) for one customer, and checks after every step that
- a decision was written exactly when the machine's model of the gate allowed it at that moment, and
- every decision record passes the consent ledger's own gate evaluated at the record's creation time.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from tests.scoring.helpers import ACTOR, SCORING, decisions_for, grant, withdraw


@pytest.mark.django_db
@pytest.mark.slow
def test_decisions_exist_only_while_the_gate_allows_scoring(active_model):
    from consent import selectors as consent_selectors
    from consent import services as consent_services
    from profiles.services import customer_ingest
    from scoring import services
    from tests.factories import make_order

    seen = {"allowed": 0, "refused": 0}

    class ConsentGating(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.cid = customer_ingest(source="crm", external_id=f"SM-{uuid.uuid4().hex}", personal={},
                                       actor=ACTOR).customer_id
            make_order(self.cid, amount="80.00", days_ago=40)
            make_order(self.cid, amount="20.00", days_ago=3)
            self.granted = self.restricted = self.objected = False
            self.expected = 0

        @initialize(granted=st.booleans())
        def start(self, granted: bool) -> None:
            if granted:
                self.grant()

        def allowed(self) -> bool:
            return self.granted and not self.restricted and not self.objected

        @rule()
        def grant(self) -> None:
            grant(self.cid)
            self.granted = True

        @rule()
        def withdraw(self) -> None:
            withdraw(self.cid)
            self.granted = False

        @rule()
        def restrict(self) -> None:
            consent_services.processing_restrict(customer_id=self.cid, actor=ACTOR, reason="accuracy_contested")
            self.restricted = True

        @rule()
        def lift_restriction(self) -> None:
            consent_services.processing_restriction_lift(customer_id=self.cid, actor=ACTOR)
            self.restricted = False

        @rule()
        def object(self) -> None:
            consent_services.processing_object(customer_id=self.cid, actor=ACTOR, purpose=SCORING)
            self.objected = True

        @rule()
        def lift_objection(self) -> None:
            consent_services.processing_objection_lift(customer_id=self.cid, actor=ACTOR, purpose=SCORING)
            self.objected = False

        @rule()
        def score_in_real_time(self) -> None:
            from config.errors import Forbidden

            seen["allowed" if self.allowed() else "refused"] += 1
            if self.allowed():
                services.score_serve(customer_id=self.cid, purpose=SCORING, requester="api:test")
                self.expected += 1
            else:
                with pytest.raises(Forbidden):
                    services.score_serve(customer_id=self.cid, purpose=SCORING, requester="api:test")

        @rule()
        def score_in_a_batch_chunk(self) -> None:
            seen["allowed" if self.allowed() else "refused"] += 1
            run = services.rescore_run_start(purpose=SCORING, requester="job:test", customer_ids=[self.cid])
            counts = services.rescore_chunk(run_id=run.id, customer_ids=[self.cid])
            assert counts.scored == int(self.allowed())
            self.expected += int(self.allowed())

        @invariant()
        def decisions_match_the_gate(self) -> None:
            records = decisions_for(self.cid)
            assert len(records) == self.expected
            for record in records:
                gate = consent_selectors.processing_gate(customer_id=self.cid, purpose=SCORING,
                                                         at=record.created_at)
                assert gate.allowed, (record.pk, gate.code)
                assert record.consent_event_id == gate.consent_event_id

    run_state_machine_as_test(
        ConsentGating,
        settings=settings(max_examples=20, stateful_step_count=10, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    assert seen["allowed"] > 0 and seen["refused"] > 0  # both branches were exercised
