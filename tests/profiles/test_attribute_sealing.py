"""Issue 20, fault 6: a customer's plain CRM attributes are encrypted under the customer's own data key, so
erasure crypto-shreds them; nothing of them is in clear in the customer row; scoring still reads them in
batches with one query; the data migration encrypts existing rows (and the reverse restores them)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.utils import timezone

from config.envelope import DecryptionError
from profiles import data_keys, services
from profiles.attribute_sealing import (
    KEY_COLUMNS,
    attributes_from_values,
    attributes_many,
    attributes_of,
)
from profiles.models import Customer, CustomerKey

ACTOR = "job:test"
CANARY = "zq-canary-lifecycle-7731"


def _raw_row(customer_id: uuid.UUID) -> list:
    """The customer row as the database holds it (every column, bytes as bytes)."""
    value = customer_id if connection.vendor == "postgresql" else customer_id.hex
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM profiles_customer WHERE id = %s", [value])
        return [bytes(v) if isinstance(v, memoryview) else v for v in cursor.fetchone()]


@pytest.mark.django_db
def test_attributes_are_stored_only_as_ciphertext_under_the_customers_key_and_read_back():
    cid = services.customer_ingest(source="crm", external_id="S-1", personal={}, actor=ACTOR,
                                   attributes={"lifecycle_stage": CANARY, "seats": 12},
                                   feature_attributes=["seats"]).customer_id
    row = _raw_row(cid)
    text = " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    assert CANARY not in text
    assert "lifecycle_stage" not in text
    assert attributes_of(cid) == {"lifecycle_stage": CANARY, "seats": 12}
    customer = Customer.objects.get(id=cid)
    assert customer.attributes_key_version == 1 and bytes(customer.attributes_encrypted)[:1] == b"\x01"
    assert customer.feature_attributes == ["seats"]  # names of declared features stay in clear (no values)
    # Bound to its customer: the same blob under another customer's key does not open.
    other = services.customer_ingest(source="crm", external_id="S-2", personal={}, actor=ACTOR).customer_id
    other_key = CustomerKey.objects.get(customer_id=other)
    with pytest.raises(DecryptionError):
        attributes_from_values(other, customer.attributes_encrypted, 1, other_key.kek_id, other_key.wrapped,
                               other_key.key_version)
    assert Customer.objects.get(id=other).attributes_encrypted is None  # no attributes: no blob


@pytest.mark.django_db
def test_an_update_merges_attributes_and_re_encrypts_only_when_something_changed():
    cid = services.customer_ingest(source="crm", external_id="U-1", personal={}, actor=ACTOR,
                                   attributes={"plan": "gold", "seats": 3}).customer_id
    before = bytes(Customer.objects.get(id=cid).attributes_encrypted)
    same = services.customer_ingest(source="crm", external_id="U-1", personal={}, actor=ACTOR,
                                    attributes={"plan": "gold"})
    assert same.outcome == "unchanged" and bytes(Customer.objects.get(id=cid).attributes_encrypted) == before
    changed = services.customer_ingest(source="crm", external_id="U-1", personal={}, actor=ACTOR,
                                       attributes={"plan": "silver"})
    assert changed.outcome == "updated" and attributes_of(cid) == {"plan": "silver", "seats": 3}


@pytest.mark.django_db
def test_a_merge_moves_the_attributes_under_the_survivors_key():
    a = services.customer_ingest(source="crm", external_id="M-1", personal={"email": "m1@example.com"},
                                 actor=ACTOR, attributes={"plan": "gold"}).customer_id
    b = services.customer_ingest(source="erp", external_id="M-2", personal={"phone": "+358401234567"},
                                 actor=ACTOR, attributes={"region": "north", "plan": "basic"}).customer_id
    merged = services.customer_ingest(source="web", external_id="M-3", actor=ACTOR,
                                      personal={"email": "m1@example.com", "phone": "+358401234567"})
    assert merged.outcome == "merged" and merged.customer_id == a
    assert attributes_of(a) == {"plan": "gold", "region": "north"}  # the survivor's own value wins
    assert attributes_of(b) == {"region": "north", "plan": "basic"}  # the alias keeps its own (its own key)


@pytest.mark.django_db
def test_erasure_crypto_shreds_the_attributes():
    from profiles.services import customer_erase

    cid = services.customer_ingest(source="crm", external_id="E-1", personal={}, actor=ACTOR,
                                   attributes={"lifecycle_stage": CANARY}).customer_id
    keep = services.customer_ingest(source="crm", external_id="E-2", personal={}, actor=ACTOR,
                                    attributes={"lifecycle_stage": "kept"}).customer_id
    sealed = Customer.objects.filter(id=cid).values_list(*KEY_COLUMNS).get()
    customer_erase(customer_id=cid, actor=ACTOR)
    data_keys.cache_clear()  # a fresh process: no DEK left anywhere
    assert not CustomerKey.objects.filter(customer_id=cid).exists()
    # A copy of the row taken before erasure (a backup, a dead tuple, the WAL) holds ciphertext only, and with
    # the key gone it opens for nobody; the wrapped key copied along with it was shredded too in every
    # backup restored later (manage.py replay_erasures).
    assert CANARY.encode() not in bytes(sealed[0])
    with pytest.raises(DecryptionError):
        attributes_from_values(cid, sealed[0], sealed[1], None, None, None)
    assert attributes_many([cid, keep]) == {keep: {"lifecycle_stage": "kept"}}


@pytest.mark.django_db
def test_feature_code_decrypts_a_whole_chunk_with_one_customer_query(django_assert_num_queries):
    from scoring.features.aggregates import customer_attribute_table, fact_aggregates

    ids = [services.customer_ingest(source="crm", external_id=f"F-{i}", personal={}, actor=ACTOR,
                                    attributes={"plan": ["a", "b"][i % 2], "seats": i, "note": "x"},
                                    feature_attributes=["plan", "seats"]).customer_id for i in range(12)]
    plain = services.customer_ingest(source="crm", external_id="F-plain", personal={}, actor=ACTOR,
                                     attributes={"plan": "c"}).customer_id  # no declared features: not decrypted
    now = timezone.now()
    with django_assert_num_queries(1):
        table = customer_attribute_table(customer_ids=[*ids, plain])
    assert table["plan"].tolist() == ["a", "b"] * 6 + [None] and table["seats"].tolist()[:3] == [0.0, 1.0, 2.0]
    small = _count_queries(lambda: fact_aggregates(customer_ids=ids[:2], as_of=now))
    large = _count_queries(lambda: fact_aggregates(customer_ids=[*ids, plain], as_of=now))
    assert small == large  # per chunk, not per customer
    cols = fact_aggregates(customer_ids=[*ids, plain], as_of=now)
    assert cols["attr:plan"].tolist() == ["a", "b"] * 6 + [None]
    assert "attr:note" not in cols


def _count_queries(fn) -> int:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_the_data_migration_encrypts_existing_attributes_and_the_reverse_restores_them():
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("profiles", "0002_ticket_response_language_sentiment")], [
        ("profiles", "0003_customer_attributes_encrypted")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        OldCustomer, OldKey = old.get_model("profiles", "Customer"), old.get_model("profiles", "CustomerKey")
        from config import envelope

        ids = []
        for i, attributes in enumerate([{"stage": CANARY, "n": 1}, {}, {"stage": "lead"}]):
            customer = OldCustomer.objects.create(attributes=attributes)
            dek = envelope.new_data_key()
            wrapped = envelope.wrap_data_key(dek, customer_id=customer.id)
            OldKey.objects.create(customer=customer, kek_id=wrapped.kek_id, wrapped=wrapped.wrapped, key_version=1)
            ids.append((customer.id, attributes, i))
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        data_keys.cache_clear()
        for cid, attributes, _ in ids:
            assert attributes_of(cid) == attributes
            assert CANARY not in json.dumps([str(v) for v in _raw_row(cid)])
        assert Customer.objects.get(id=ids[1][0]).attributes_encrypted is None
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        restored = {c.id: c.attributes for c in old.get_model("profiles", "Customer").objects.all()}
        assert restored == {cid: attributes for cid, attributes, _ in ids}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
