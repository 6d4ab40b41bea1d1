"""Decision, review, access and governance records: exactly what the services were given, hashed in
canonical form, queued for sealing, idempotent by decision key; bad input writes nothing."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection

from audit import canonical, selectors, services
from audit.models import AccessRecord, DecisionRecord, GovernanceEvent, HumanReview, PendingSeal
from config.errors import NotFound, ValidationFailed
from tests.audit.conftest import decision_kwargs

pytestmark = pytest.mark.django_db


def test_decision_record_stores_the_decision_facts_and_queues_it_for_sealing():
    kwargs = decision_kwargs(decision_type="routing", outputs={"tier": "Premium", "queue": "priority", "clv": 10.25})
    record = services.decision_record(**kwargs)

    stored = DecisionRecord.objects.get(pk=record.pk)
    assert stored.customer == kwargs["customer"]
    assert stored.purpose == "automated_scoring"
    assert stored.decision_type == "routing"
    assert stored.requester == "api:support-desk"
    assert stored.consent_event_id == 41
    assert stored.notice_version == "v3"
    assert stored.model_versions == {"clv": "2025.01.1", "churn": "2025.01.1"}
    assert stored.model_version == "2025.01.1"
    assert stored.outputs == {"tier": "Premium", "queue": "priority", "clv": 10.25}
    assert stored.tier == "Premium"
    assert bytes(stored.sealed_details) == kwargs["sealed_details"]
    assert stored.content_hash == canonical.content_hash(stored)
    assert list(PendingSeal.objects.values_list("record_type", "row_id", "entry_hash")) == [
        ("decision", record.pk, stored.content_hash)
    ]


def test_content_hash_fast_encoder_matches_the_canonical_json_specification():
    decision = services.decision_record(**decision_kwargs(
        outputs={"tier": "VIP", "ünïcode": "välue \u2603", "nested": {"b": [1, 2.5, None], "a": True}},
        notice_version=None, consent_event_id=None, sealed_details=None,
    ))
    review = services.decision_review_record(decision_id=decision.pk, reviewer="user:dpo", outcome="confirmed",
                                             override={}, rationale="Zahlungsverlauf geprüft — korrekt")
    access = services.access_record(actor="api:crm", purpose="automated_scoring", subject=None, what="score.read")
    gov = services.governance_record(kind="model.activated", actor="cli", details={"version": "2025.01.1"})
    for record in (decision, review, access, gov):
        fresh = type(record).objects.get(pk=record.pk)
        spec = canonical.canonical_json(fresh)
        assert json.loads(spec)["_type"] == record.RECORD_TYPE
        assert canonical.content_hash(fresh) == canonical.hashlib.sha256(spec.encode("utf-8")).hexdigest()
        assert fresh.content_hash == canonical.content_hash(fresh)


def test_a_partial_encoder_gives_the_full_encoders_hash_for_every_split_of_the_fields():
    import random

    rng = random.Random(7)
    columns = canonical.row_columns(DecisionRecord)
    names = [name for name, _ in columns]
    for outputs, notice, event, sealed in (({"tier": "VIP", "ünï": "välue \u2603"}, "v3", 41, b"\x00\xff"),
                                           ({}, None, None, None)):
        record = DecisionRecord(**{k: v for k, v in decision_kwargs(
            outputs=outputs, notice_version=notice, consent_event_id=event, sealed_details=sealed,
            decision_key=f"run:{rng.random()}").items() if k != "model_versions"},
            model_versions={"clv": "2025.01.1"}, created_at=services.timezone.now())
        record.outputs = canonical.canonical_text(record.outputs)
        record.model_versions = canonical.canonical_text(record.model_versions)
        values = {name: getattr(record, name) for name in names}
        full = canonical.row_encoder(DecisionRecord)([values[name] for name in names])
        for _ in range(6):
            variables = [name for name in names if rng.random() < 0.5]
            rng.shuffle(variables)
            encode = canonical.row_encoder_partial(
                DecisionRecord, {name: values[name] for name in names if name not in variables}, variables)
            assert encode(*(values[name] for name in variables)) == full
    with pytest.raises(ValueError):
        canonical.row_encoder_partial(DecisionRecord, {}, ["customer"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL content hash is PostgreSQL's")
def test_postgres_computes_the_same_content_hash_as_python_for_awkward_text():
    awkward = 'quote " backslash \\ slash / tab \t newline \n ctrl \x01 del \x7f é ☃ 𝄞 <>&'
    decision = services.decision_record(**decision_kwargs(
        requester="api:" + "x" * 10, notice_version=awkward[:64], outputs={"tier": awkward, "n": -1.5e-7},
        sealed_details=bytes(range(256)), consent_event_id=None))
    review = services.decision_review_record(decision_id=decision.pk, reviewer="user:dpo", outcome="confirmed",
                                             override={}, rationale=awkward)
    access = services.access_record(actor="user:dpo", purpose="accountability", subject=None, what=awkward[:200])
    gov = services.governance_record(kind="model.activated", actor="cli", details={"why": awkward})
    for record in (decision, review, access, gov):
        model = type(record)
        expression, params = canonical.sql_content_hash(model, "t", connection.ops.quote_name)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {expression} FROM {model._meta.db_table} t WHERE t.id = %s", [*params, record.pk])
            (in_database,) = cursor.fetchone()
        fresh = model.objects.get(pk=record.pk)
        reference = canonical.hashlib.sha256(canonical.canonical_json(fresh).encode("utf-8")).hexdigest()
        assert in_database == reference == fresh.content_hash


def test_model_versions_that_differ_are_denormalised_as_name_version_pairs():
    record = services.decision_record(**decision_kwargs(model_versions={"clv": "v2", "churn": "v3"}))
    assert record.model_version == "churn=v3;clv=v2"
    assert selectors.decision_list(filters={"model_version": "v3"}).items == [record]
    assert selectors.decision_list(filters={"model_version": "v4"}).items == []


def test_decision_key_makes_decision_record_idempotent():
    first = services.decision_record(**decision_kwargs(decision_key="run-7:cust-1", decision_type="batch_rescore"))
    second = services.decision_record(**decision_kwargs(decision_key="run-7:cust-1", decision_type="batch_rescore"))
    assert second.pk == first.pk
    assert DecisionRecord.objects.count() == 1
    assert PendingSeal.objects.count() == 1


def test_bulk_records_are_idempotent_by_decision_key_and_count_only_new_rows():
    customers = [uuid.uuid4() for _ in range(30)]
    batch = [decision_kwargs(customer=c, decision_type="batch_rescore", requester="job:rescore_nightly",
                             decision_key=f"run-1:{c}") for c in customers]
    assert services.decision_records_bulk(records=batch[:20]) == 20
    assert services.decision_records_bulk(records=batch) == 10  # a retried chunk writes only the missing ones
    assert services.decision_records_bulk(records=batch) == 0
    assert DecisionRecord.objects.count() == 30
    assert PendingSeal.objects.count() == 30
    assert set(DecisionRecord.objects.values_list("customer", flat=True)) == set(customers)
    for record in DecisionRecord.objects.all():
        assert record.content_hash == canonical.content_hash(record)
    assert set(PendingSeal.objects.values_list("row_id", "entry_hash")) == set(
        DecisionRecord.objects.values_list("id", "content_hash"))


def test_bulk_records_without_keys_are_all_written_and_duplicates_in_one_chunk_once():
    batch = [decision_kwargs(decision_type="batch_rescore") for _ in range(3)]
    keyed = decision_kwargs(decision_type="batch_rescore", decision_key="dup")
    assert services.decision_records_bulk(records=[*batch, keyed, dict(keyed)]) == 4
    assert DecisionRecord.objects.count() == 4


@pytest.mark.parametrize("override", [
    {"decision_type": "guess"},
    {"requester": "support desk"},
    {"customer": "not-a-uuid"},
    {"outputs": {"tier": "VIP", "clv": float("nan")}},
    {"outputs": {"tier": "VIP", "contact": "jane.doe@example.com"}},
    {"model_versions": {"clv": 3}},
    {"consent_event_id": "41"},
    {"sealed_details": "plaintext"},
    {"features_hash": ""},
])
def test_invalid_decisions_are_refused_and_nothing_is_written(override):
    with pytest.raises(ValidationFailed):
        services.decision_record(**decision_kwargs(**override))
    with pytest.raises(ValidationFailed):
        services.decision_records_bulk(records=[decision_kwargs(), decision_kwargs(**override)])
    assert DecisionRecord.objects.count() == 0
    assert PendingSeal.objects.count() == 0


def test_review_is_linked_to_its_decision_and_customer(make_decision):
    decision = make_decision()
    review = services.decision_review_record(decision_id=decision.pk, reviewer="user:dpo", outcome="overridden",
                                             override={"tier": "Premium"}, rationale="Late payments were a bank error.")
    stored = HumanReview.objects.get(pk=review.pk)
    assert (stored.decision_id, stored.customer, stored.outcome, stored.override) == (
        decision.pk, decision.customer, "overridden", {"tier": "Premium"})
    assert selectors.review_latest(decision_id=decision.pk) == stored


def test_review_of_unknown_decision_or_override_without_outcome_writes_nothing(make_decision):
    decision = make_decision()
    with pytest.raises(NotFound):
        services.decision_review_record(decision_id=decision.pk + 99, reviewer="user:dpo", outcome="confirmed",
                                        override={}, rationale="")
    with pytest.raises(ValidationFailed):
        services.decision_review_record(decision_id=decision.pk, reviewer="user:dpo", outcome="overridden",
                                        override={}, rationale="")
    assert HumanReview.objects.count() == 0


def test_access_and_governance_records_refuse_personal_data_in_details():
    subject = uuid.uuid4()
    access = services.access_record(actor="user:dpo", purpose="accountability", subject=subject, what="decision.inputs",
                                    details={"decision_id": 5})
    event = services.governance_record(kind="consent.withdrawn", actor="api:crm", subject=subject,
                                       details={"purpose": "marketing"})
    assert AccessRecord.objects.get().subject == subject and access.details == {"decision_id": 5}
    assert GovernanceEvent.objects.get().kind == "consent.withdrawn" and event.subject == subject
    with pytest.raises(ValidationFailed):
        services.access_record(actor="user:dpo", purpose="accountability", subject=subject, what="x",
                               details={"email": "jane@example.com"})
    with pytest.raises(ValidationFailed):
        services.governance_record(kind="Consent Withdrawn", actor="api:crm")
    assert AccessRecord.objects.count() == 1 and GovernanceEvent.objects.count() == 1


def test_decision_list_filters_and_keyset_pagination(make_decision):
    customer = uuid.uuid4()
    mine = [make_decision(customer=customer, decision_type="served_score") for _ in range(7)]
    make_decision(decision_type="routing", requester="api:crm", outputs={"tier": "Basic"}, purpose="service_prioritization")
    page1 = selectors.decision_list(filters={"customer": customer}, limit=3)
    assert page1.items == list(reversed(mine))[:3] and page1.prev_cursor is None
    page2 = selectors.decision_list(filters={"customer": customer}, cursor=page1.next_cursor, limit=3)
    assert page2.items == list(reversed(mine))[3:6]
    page3 = selectors.decision_list(filters={"customer": customer}, cursor=page2.next_cursor, limit=3)
    assert page3.items == [mine[0]] and page3.next_cursor is None
    back = selectors.decision_list(filters={"customer": customer}, cursor=page3.prev_cursor, limit=3)
    assert back.items == page2.items
    assert [d.requester for d in selectors.decision_list(filters={"requester": "api:crm"}).items] == ["api:crm"]
    assert [d.tier for d in selectors.decision_list(filters={"tier": "Basic"}).items] == ["Basic"]
    assert len(selectors.decision_list(filters={"purpose": "service_prioritization"}).items) == 1
    assert len(selectors.decision_list(filters={"decision_type": "routing"}).items) == 1
    assert len(selectors.decision_list(filters={"customers": [customer]}).items) == 7
    with pytest.raises(ValidationFailed):
        selectors.decision_list(filters={}, cursor="garbage!")
