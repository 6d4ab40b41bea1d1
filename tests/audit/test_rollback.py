"""An audit write that fails rolls back the change it describes (same transaction)."""

from __future__ import annotations

import contextlib
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction

from audit import services
from audit.models import ApiClient, DecisionRecord, GovernanceEvent, PendingSeal
from tests.scoring.conftest import active_model, synthetic_artifact  # noqa: F401 - fixtures
from tests.scoring.helpers import SCORING, customer_with_history

pytestmark = pytest.mark.django_db


def test_failing_governance_record_rolls_back_the_api_client_creation():
    from audit.api_clients import api_client_create

    with mock.patch.object(services, "governance_record", side_effect=DatabaseError("audit table unavailable")), \
            pytest.raises(DatabaseError):
        api_client_create(name="crm", scopes=["score:read"], purposes=[SCORING])
    assert ApiClient.objects.count() == 0 and GovernanceEvent.objects.count() == 0
    api_client_create(name="crm", scopes=["score:read"], purposes=[SCORING])
    assert ApiClient.objects.count() == 1 and GovernanceEvent.objects.get().kind == "api_client.created"


def _failing_outbox_insert() -> Any:
    """The sealing-queue insert fails for real on PostgreSQL (where the decision and its outbox row are one
    statement), through a mock elsewhere."""
    if connection.vendor != "postgresql":
        return mock.patch.object(PendingSeal.objects, "create", side_effect=DatabaseError("disk full"))
    with connection.cursor() as cursor:  # DDL in the test's transaction: rolled back after the test
        cursor.execute(f"ALTER TABLE {PendingSeal._meta.db_table} ADD CONSTRAINT test_outbox_full CHECK (false) "
                       "NOT VALID")
    return contextlib.nullcontext()


def test_failing_sealing_queue_insert_rolls_back_the_decision_record():
    from tests.audit.conftest import decision_kwargs

    with _failing_outbox_insert(), pytest.raises(DatabaseError), transaction.atomic():
        services.decision_record(**decision_kwargs())
    assert DecisionRecord.objects.count() == 0 and PendingSeal.objects.count() == 0


def test_failing_decision_record_rolls_back_the_served_score(active_model):  # noqa: F811
    from scoring import services as scoring_services
    from scoring.models import CustomerScore

    cid = customer_with_history()
    failing = DatabaseError("audit write failed")
    # Both entry points of a single decision (the real-time path records through decision_record_id).
    with mock.patch.object(services, "decision_record", side_effect=failing), \
            mock.patch.object(services, "decision_record_id", side_effect=failing), pytest.raises(DatabaseError):
        scoring_services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert CustomerScore.objects.filter(customer_id=cid).count() == 0
    assert DecisionRecord.objects.count() == 0
    result = scoring_services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert CustomerScore.objects.filter(customer_id=cid).count() == 1
    assert list(DecisionRecord.objects.values_list("id", flat=True)) == [result.decision_id]


@pytest.mark.django_db(transaction=True)
def test_a_warm_served_score_outside_any_transaction_writes_its_decision_and_outbox_row_or_neither(
        active_model):  # noqa: F811
    """The warm real-time path opens no transaction (autocommit): on PostgreSQL the decision and its sealing
    outbox row are one statement, so a failing outbox insert leaves neither."""
    if connection.vendor != "postgresql":
        pytest.skip("the single-statement decision insert is PostgreSQL's")
    from scoring import services as scoring_services

    cid = customer_with_history()
    first = scoring_services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert connection.get_autocommit() and not connection.in_atomic_block
    table = PendingSeal._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT test_outbox_full CHECK (false) NOT VALID")
    try:
        with pytest.raises(DatabaseError):
            scoring_services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT test_outbox_full")
    assert list(DecisionRecord.objects.values_list("id", flat=True)) == [first.decision_id]
    # no outbox row of a decision that was not written (the first one may be sealed already)
    assert not PendingSeal.objects.filter(record_type="decision").exclude(row_id=first.decision_id).exists()
    second = scoring_services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert sorted(DecisionRecord.objects.values_list("id", flat=True)) == [first.decision_id, second.decision_id]
