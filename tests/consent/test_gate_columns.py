"""Differential test: the gate by column (``processing_gates_columns``, batch rescoring) against the gate by
customer (``processing_gates_bulk``) on a random population of every gate state, on every backend."""

from __future__ import annotations

import random
import uuid

import pytest

from consent import selectors, services
from tests.consent.conftest import ACTOR

pytestmark = pytest.mark.django_db

PURPOSES = ("automated_scoring", "service_prioritization", "marketing")


def test_the_gate_by_column_answers_exactly_as_the_gate_by_customer(new_customer, grant, withdraw, settings):
    from profiles.services import customer_erase

    rng = random.Random(21)
    ids = [new_customer() for _ in range(36)]
    for cid in ids:
        for purpose in PURPOSES:
            state = rng.random()
            if state < 0.55:
                grant(cid, purpose)
            elif state < 0.7:
                grant(cid, purpose)
                withdraw(cid, purpose)
    for cid in rng.sample(ids, 4):
        services.processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested",
                                     purpose=rng.choice([None, *PURPOSES]))
    for cid in rng.sample(ids, 4):
        services.processing_object(customer_id=cid, actor=ACTOR, purpose=rng.choice([None, *PURPOSES]))
    erased = rng.choice(ids)
    customer_erase(customer_id=erased, actor=ACTOR)
    # a notice requiring re-consent for one purpose: earlier grants of it no longer open the gate
    services.notice_publish(purpose="service_prioritization", text="v2", requires_reconsent=True, actor=ACTOR)
    grant(ids[0], "service_prioritization")
    population = [*ids, uuid.uuid4()]  # and one unknown customer
    rng.shuffle(population)
    purposes = ["service_prioritization", "automated_scoring"]
    for chunk_size in (1_000, 7):  # one id chunk, and several (the columns are concatenated in order)
        settings.DEBUG = False
        from consent.selectors import gate_columns

        original = gate_columns.bulk_chunk_size
        gate_columns.bulk_chunk_size = lambda size=chunk_size: size  # type: ignore[assignment]
        try:
            columns = selectors.processing_gates_columns(customer_ids=population, purposes=purposes)
        finally:
            gate_columns.bulk_chunk_size = original  # type: ignore[assignment]
        reference = selectors.processing_gates_bulk(customer_ids=population, purposes=purposes)
        for purpose in purposes:
            col = columns[purpose]
            assert len(col.allowed) == len(population)
            assert [col.decision(i) for i in range(len(population))] == [reference[purpose][c] for c in population]
            assert col.allowed.tolist() == [reference[purpose][c].allowed for c in population]
    codes = {code for purpose in purposes for code in columns[purpose].codes.tolist()}
    assert {"ok", "no_consent", "erased", "not_found"} <= codes
    assert codes & {"restricted", "objected"}
    # take: the positions asked for, in that order
    col = columns["automated_scoring"]
    rows = [5, 0, 3]
    assert [col.take(rows).decision(j) for j in range(3)] == [col.decision(i) for i in rows]


def test_the_held_gate_by_column_answers_as_the_gate_and_refuses_duplicates(new_customer, grant):
    from django.db import transaction

    ids = [new_customer() for _ in range(3)]
    grant(ids[0])
    with transaction.atomic():
        held = selectors.processing_gates_columns_held(customer_ids=ids, purposes=["automated_scoring"])
    assert held["automated_scoring"].allowed.tolist() == [True, False, False]
    assert held["automated_scoring"].codes.tolist() == ["ok", "no_consent", "no_consent"]
    with pytest.raises(ValueError):
        selectors.processing_gates_columns(customer_ids=[ids[0], ids[0]], purposes=["automated_scoring"])
