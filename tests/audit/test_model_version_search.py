"""Decision search by model version: an indexed equality on the record's distinct model versions
(``model_version_1``/``model_version_2``, derived from the hashed ``model_versions``), matching every record
whose ``model_versions`` contain the version, paginated like every other filter; the verifier reports a
record whose search columns no longer derive from its hashed ``model_versions``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from freezegun import freeze_time

from audit import selectors, services
from audit.models import DecisionRecord, model_version_columns
from audit.verify import verify_chain
from config.errors import ValidationFailed
from tests.audit.conftest import decision_kwargs

pytestmark = pytest.mark.django_db


def test_search_columns_are_the_distinct_versions_in_code_point_order():
    assert model_version_columns({"clv": "v7", "churn": "v7", "upsell": "v7"}) == ("v7", None)
    assert model_version_columns({"clv": "v7", "churn": "churn-2", "upsell": "v7"}) == ("churn-2", "v7")
    assert model_version_columns({"clv": "V1", "churn": "v0"}) == ("V1", "v0")
    assert model_version_columns({}) == ("", None)


def test_decision_record_writes_the_search_columns_and_keeps_the_hashed_key():
    same = services.decision_record(**decision_kwargs(model_versions={"clv": "v9", "churn": "v9"}))
    mixed = services.decision_record(**decision_kwargs(model_versions={"clv": "v2", "churn": "v3"}))
    rows = dict(DecisionRecord.objects.values_list("id", "model_version_1"))
    assert rows == {same.pk: "v9", mixed.pk: "v2"}
    assert DecisionRecord.objects.get(pk=mixed.pk).model_version_2 == "v3"
    assert DecisionRecord.objects.get(pk=same.pk).model_version_2 is None
    assert (same.model_version, mixed.model_version) == ("v9", "churn=v3;clv=v2")  # hashed, unchanged


def test_bulk_records_get_the_search_columns_too():
    batch = [decision_kwargs(decision_type="batch_rescore", requester="job:rescore_nightly",
                             model_versions={"clv": "v4", "churn": "churn-1"}, decision_key=f"run-1:{i}")
             for i in range(3)]
    assert services.decision_records_bulk(records=batch) == 3
    assert set(DecisionRecord.objects.values_list("model_version_1", "model_version_2")) == {("churn-1", "v4")}
    assert len(selectors.decision_list(filters={"model_version": "v4"}).items) == 3
    assert len(selectors.decision_list(filters={"model_version": "churn-1"}).items) == 3


def test_model_version_filter_matches_every_record_containing_the_version_and_nothing_else():
    full_only = services.decision_record(**decision_kwargs(model_versions={"clv": "v1", "churn": "v1"}))
    with_churn = services.decision_record(**decision_kwargs(model_versions={"clv": "v1", "churn": "churn-5"}))
    churn_first = services.decision_record(**decision_kwargs(model_versions={"clv": "w1", "churn": "v1"}))
    newer = services.decision_record(**decision_kwargs(model_versions={"clv": "v10", "churn": "v10"}))
    mixed_newer = services.decision_record(**decision_kwargs(model_versions={"clv": "v10", "churn": "v1x"}))
    assert selectors.decision_list(filters={"model_version": "v1"}).items == [churn_first, with_churn, full_only]
    assert selectors.decision_list(filters={"model_version": "churn-5"}).items == [with_churn]
    assert selectors.decision_list(filters={"model_version": "v10"}).items == [mixed_newer, newer]
    assert selectors.decision_list(filters={"model_version": "v1x"}).items == [mixed_newer]
    assert selectors.decision_list(filters={"model_version": "v"}).items == []
    # The queryset form (CSV export of the console) selects the same records.
    assert list(selectors.decision_queryset(filters={"model_version": "v1"})) == [churn_first, with_churn, full_only]


def test_model_version_filter_combines_with_other_filters():
    a = services.decision_record(**decision_kwargs(model_versions={"clv": "v1", "churn": "churn-5"}))
    services.decision_record(**decision_kwargs(model_versions={"clv": "v1", "churn": "v1"},
                                               requester="api:crm"))
    assert selectors.decision_list(filters={"model_version": "v1", "requester": "api:support-desk"}).items == [a]
    assert selectors.decision_list(filters={"model_version": "churn-5", "requester": "api:crm"}).items == []


def test_model_version_pages_merge_both_columns_in_order_forwards_and_back():
    start = timezone.now() - timedelta(hours=1)
    made = []
    for i in range(11):
        versions = {"clv": "v3", "churn": "v3"} if i % 3 else {"clv": "v3", "churn": "churn-1"}  # 2nd column: v3
        with freeze_time(start + timedelta(minutes=i)):
            made.append(services.decision_record(**decision_kwargs(model_versions=versions)))
        if i % 4 == 0:
            services.decision_record(**decision_kwargs(model_versions={"clv": "v4", "churn": "v4"}))
    newest_first = list(reversed(made))
    page1 = selectors.decision_list(filters={"model_version": "v3"}, limit=4)
    page2 = selectors.decision_list(filters={"model_version": "v3"}, cursor=page1.next_cursor, limit=4)
    page3 = selectors.decision_list(filters={"model_version": "v3"}, cursor=page2.next_cursor, limit=4)
    assert page1.items + page2.items + page3.items == newest_first
    assert page1.prev_cursor is None and page3.next_cursor is None
    back = selectors.decision_list(filters={"model_version": "v3"}, cursor=page3.prev_cursor, limit=4)
    assert back.items == page2.items
    assert back.prev_cursor is not None and back.next_cursor is not None


def test_more_than_two_distinct_model_versions_are_refused_and_nothing_is_written():
    with pytest.raises(ValidationFailed):
        services.decision_record(**decision_kwargs(model_versions={"clv": "v1", "churn": "v2", "upsell": "v3"}))
    with pytest.raises(ValidationFailed):
        services.decision_record(**decision_kwargs(model_versions={"clv": "v" * 65}))
    assert DecisionRecord.objects.count() == 0


def _tamper_search_column(row_id: int, value: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute('UPDATE "audit_decisionrecord" SET "model_version_1" = %s WHERE "id" = %s', [value, row_id])


def test_verifier_reports_a_search_column_that_no_longer_derives_from_the_hashed_versions():
    records = [services.decision_record(**decision_kwargs(model_versions={"clv": "v5", "churn": "v5"}))
               for _ in range(4)]
    services.chain_seal()
    assert verify_chain().ok
    seq = selectors.decision_sequence_numbers(decision_ids=[records[2].pk])[records[2].pk]
    with transaction.atomic():
        _tamper_search_column(records[2].pk, "v6")  # hides the record from a search for v5
        results = [verify_chain(engine="python")]
        if connection.vendor == "postgresql":
            results.append(verify_chain(engine="sql"))
        transaction.set_rollback(True)
    for result in results:
        assert (result.ok, result.first_bad_seq, result.first_bad_record) == (False, seq, f"decision:{records[2].pk}")
        assert "search columns" in result.reason
    assert verify_chain().ok
