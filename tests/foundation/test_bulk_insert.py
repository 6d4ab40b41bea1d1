"""``config.bulk_insert``: ``COPY`` on PostgreSQL (``bulk_create`` elsewhere) writes all rows or none, gives
automatic ids in order, and stores JSON and custom fields as ``save()`` does."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import GovernanceEvent
from config.bulk_insert import instances_insert, json_text, rows_insert
from profiles.models import BlindIndexEntry, Customer

pytestmark = pytest.mark.django_db


def _customer() -> Customer:
    customer = Customer(feature_attributes=["plan"])
    customer.save()
    return customer


def test_instances_get_ascending_ids_and_store_custom_fields_as_save_does() -> None:
    now = timezone.now()
    events = [GovernanceEvent(kind="test.bulk", actor="job:test", details={"n": i, "codes": ["a", "b"]},
                              created_at=now) for i in range(5)]
    saved = GovernanceEvent(kind="test.bulk", actor="job:test", details={"n": 9, "codes": ["a", "b"]},
                            created_at=now)
    saved.save()

    instances_insert(GovernanceEvent, events)

    ids = [e.pk for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 5 and min(ids) > saved.pk
    assert all(not e._state.adding for e in events)
    stored = {e.pk: e for e in GovernanceEvent.objects.filter(pk__in=ids)}
    assert [stored[i].details for i in ids] == [{"n": n, "codes": ["a", "b"]} for n in range(5)]
    again = GovernanceEvent.objects.get(pk=saved.pk)
    assert type(stored[ids[0]].details) is type(again.details)


def test_value_rows_with_json_text_and_a_conflict_write_nothing() -> None:
    customer = _customer()
    now = timezone.now()
    rows_insert(BlindIndexEntry, ("kind", "digest", "customer_id", "created_at"), [("email", "d1", customer.id, now)])
    before = BlindIndexEntry.objects.count()

    with pytest.raises(IntegrityError), transaction.atomic():  # (kind, digest) is unique
        rows_insert(BlindIndexEntry, ("kind", "digest", "customer_id", "created_at"),
                    [("phone", "d2", customer.id, now), ("email", "d1", customer.id, now)])

    assert BlindIndexEntry.objects.count() == before
    assert not BlindIndexEntry.objects.filter(digest="d2").exists()
    other = Customer.objects.create()
    rows_insert(Customer, ("id", "created_at", "updated_at", "country", "feature_attributes"),
                [(Customer().id, now, now, "GB", json_text(["plan", "tenure"]))])
    assert Customer.objects.exclude(id__in=[customer.id, other.id]).get().feature_attributes == ["plan", "tenure"]
