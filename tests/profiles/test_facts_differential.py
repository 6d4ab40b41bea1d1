"""Differential test of the set-based fact import (``COPY`` on PostgreSQL) against the per-record path: a
random sample of orders and tickets, bad records included, stores exactly the same facts (every column but
the id and the creation time), the same decrypted original texts and placeholder states, and reports the
same outcome, field and code for every record (the fallback path after a failed bulk write is the
reference: one savepoint and one ORM write per record)."""

from __future__ import annotations

import json
import random
from typing import Any
from uuid import UUID

import pytest
from django.db import DatabaseError, transaction

from profiles import data_keys, services
from profiles.models import Order, PlaceholderState, Ticket
from profiles.services import facts
from tests.factories import make_customer

pytestmark = pytest.mark.django_db
ACTOR = "job:test"
_SKIP = {"id", "created_at", "text_original_encrypted"}


def _records(kind: str, seed: int, refs: list[str], n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        ref = rng.choice(refs)
        ext = f"{kind[:1].upper()}{seed}-{rng.randrange(n)}"  # repeats: created, then updated or unchanged
        if kind == "orders":
            record: dict[str, Any] = {"source": "erp", "external_id": ext, "customer_external_id": ref,
                                      "customer_source": "crm", "ordered_at": f"2025-0{rng.randrange(1, 9)}-03T10:00:00Z",
                                      "amount": f"{rng.randrange(1, 500)}.{rng.randrange(0, 99):02d}",
                                      "category": rng.choice(("", "books", "garden"))}
        else:
            who = rng.choice(("Anna Berg", "Jan Kowalski", "someone"))
            record = {"source": "support", "external_id": ext, "customer_external_id": ref, "customer_source": "crm",
                      "opened_at": "2025-03-03T09:00:00Z", "channel": rng.choice(("email", "chat")),
                      "text": rng.choice((f"{who} here, call me on +44 7700 900{rng.randrange(100, 999)}",
                                          f"Order late again, {who}", "", "Danke, alles gut"))}
        bad = rng.random()
        if bad < 0.06:
            record["customer_external_id"] = "NOBODY"
        elif bad < 0.10:
            record["amount" if kind == "orders" else "opened_at"] = "not-a-value"
        elif bad < 0.13:
            record.pop("external_id")
        elif bad < 0.15:
            record["source"] = "nowhere"
        out.append(record)
    return out


def _state(kind: str, results: list[Any]) -> dict[str, Any]:
    model = Order if kind == "orders" else Ticket
    fields = [f.attname for f in model._meta.concrete_fields if f.attname not in _SKIP]
    rows = {}
    for fact in model.objects.all():
        values = {name: getattr(fact, name) for name in fields}
        if kind == "tickets" and fact.text_original_encrypted is not None:
            key = data_keys.key_get(fact.customer_id)
            values["original"] = key.decrypt_field(f"text:ticket:{fact.external_digest}",
                                                   fact.text_original_encrypted, fact.key_version)
        rows[fact.external_digest] = values
    states = {}
    for row in PlaceholderState.objects.all():
        state = json.loads(data_keys.key_get(row.customer_id).decrypt_field(
            "placeholder_state", row.ciphertext, row.key_version))
        # Entries are keyed by a salted hash (a random salt per state): compare counters and placeholders.
        states[row.customer_id] = ({k: v for k, v in state.items() if k.startswith("_") and k != "_salt"},
                                   sorted(v for k, v in state.items() if not k.startswith("_")))
    by_id = {f.pk: f.external_digest for f in model.objects.all()}
    outcomes = [(r.outcome, r.field, r.code, r.customer_id, by_id.get(r.fact_id)) for r in results]
    return {"facts": rows, "states": states, "outcomes": outcomes}


def _per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("reference path: record by record")

    monkeypatch.setattr(facts, "_write_facts_bulk", refuse)


@pytest.mark.parametrize(("kind", "seed"), [("orders", 1), ("orders", 2), ("tickets", 3)])
def test_bulk_fact_import_stores_what_the_per_record_path_stores(kind: str, seed: int, settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings.KEEP_ORIGINAL_TEXT = {"support": True}
    refs = [f"DIFF-{i}" for i in range(6)]
    ids: list[UUID] = [make_customer(source="crm", external_id=ref, name=name)
                       for ref, name in zip(refs, ("Anna Berg", "Jan Kowalski") * 3, strict=True)]
    assert len(set(ids)) == len(ids)
    batches = [_records(kind, seed, refs, 60), _records(kind, seed + 50, refs, 40)]

    sid = transaction.savepoint()
    with monkeypatch.context() as m:
        _per_record(m)
        reference = [_state(kind, services.facts_ingest_batch(kind=kind, records=b, actor=ACTOR)) for b in batches]
    transaction.savepoint_rollback(sid)
    assert not Order.objects.exists() and not Ticket.objects.exists() and not PlaceholderState.objects.exists()

    fast = [_state(kind, services.facts_ingest_batch(kind=kind, records=b, actor=ACTOR)) for b in batches]

    outcomes = {o[0] for state in reference for o in state["outcomes"]}
    assert {"created", "rejected"} <= outcomes and outcomes & {"updated", "unchanged"}
    assert fast == reference
