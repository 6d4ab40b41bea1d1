"""Audit tables are append-only: the ORM refuses changes on any database, PostgreSQL's trigger refuses
UPDATE, DELETE and TRUNCATE even for raw SQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from audit import services
from audit.models import (
    AccessRecord,
    AppendOnlyViolation,
    ChainLink,
    Checkpoint,
    DecisionRecord,
    GovernanceEvent,
    HumanReview,
    VerificationRun,
)

pytestmark = pytest.mark.django_db
AUDIT_MODELS = [DecisionRecord, HumanReview, AccessRecord, GovernanceEvent, ChainLink, Checkpoint, VerificationRun]
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists only on PostgreSQL (SQLite: ORM guard)"
)


@pytest.fixture
def some_of_each(mixed_chain):
    mixed_chain(8)
    services.checkpoint_write(force=True)
    services.chain_verify_run(actor="cli")


def test_orm_refuses_to_save_an_existing_decision_record(make_decision):
    record = make_decision()
    record.tier = "Basic"
    with pytest.raises(AppendOnlyViolation):
        record.save()
    assert DecisionRecord.objects.get(pk=record.pk).tier == "VIP"


@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m.__name__)
def test_orm_refuses_update_and_delete_on_every_audit_model(some_of_each, model):
    count = model.objects.count()
    assert count > 0
    instance = model.objects.first()
    with pytest.raises(AppendOnlyViolation):
        model.objects.all().update(pk=instance.pk)
    with pytest.raises(AppendOnlyViolation):
        model.objects.filter(pk=instance.pk).delete()
    with pytest.raises(AppendOnlyViolation):
        instance.delete()
    with pytest.raises(AppendOnlyViolation):
        instance.save()
    with pytest.raises(AppendOnlyViolation):
        model.objects.bulk_update([instance], fields=[model._meta.fields[1].name])
    assert model.objects.count() == count


@postgres_only
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {pk} = {pk}", "DELETE FROM {t}"])
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m.__name__)
def test_postgres_trigger_refuses_raw_update_and_delete(some_of_each, model, statement):
    count = model.objects.count()
    table = connection.ops.quote_name(model._meta.db_table)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.format(t=table, pk=connection.ops.quote_name(model._meta.pk.column)))
    assert model.objects.count() == count


@postgres_only
def test_postgres_trigger_refuses_truncate_outside_test_flush(some_of_each):
    table = connection.ops.quote_name(AccessRecord._meta.db_table)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL audit.allow_truncate = 'off'")
        cursor.execute(f"TRUNCATE {table}")
    assert AccessRecord.objects.count() > 0
