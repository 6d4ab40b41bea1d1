"""Differential test of the set-based consent path (issue 21 §2, ``consent.bulk``): on random batches mixing good
records, bad ones, duplicates (in the batch and against stored events), back-dated events, notice versions,
withdrawals and unknown customers, the fast path stores exactly what the reference path (one savepoint and one
``_bulk_one`` per record) stores, from the same starting state: the same events in the same order, the same
current state, the same governance records (content; each hash matching its content) with their outbox rows,
the same ``consent_changed`` signals, and the same outcome per record."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

pytestmark = pytest.mark.django_db

ACTOR = "job:test-bulk"
PURPOSES = ["automated_scoring", "service_prioritization", "marketing"]


def _random_batch(rng: random.Random, customers: list[uuid.UUID], base) -> list:
    records = []
    for _ in range(rng.randrange(20, 60)):
        rec = {
            "customer": str(rng.choice(customers)), "purpose": rng.choice(PURPOSES),
            "action": rng.choice(["grant", "grant", "withdraw"]), "source": rng.choice(["web", "crm"]),
            "channel": rng.choice(["web", "email", "app"]),
            "occurred_at": (base - timedelta(days=rng.randrange(0, 30), seconds=rng.randrange(0, 5))).isoformat(),
            "evidence": rng.choice([{}, {"form_id": "f-1", "ip": "192.0.2.7"}, {"double_opt_in": True}]),
        }
        roll = rng.random()
        if roll < 0.04:
            rec["customer"] = str(uuid.uuid4())  # unknown customer
        elif roll < 0.07:
            rec["customer"] = "not-a-uuid"
        elif roll < 0.10:
            rec["purpose"] = "astrology"
        elif roll < 0.13:
            rec["action"] = "maybe"
        elif roll < 0.15:
            rec["occurred_at"] = (timezone.now() + timedelta(days=2)).isoformat()
        elif roll < 0.17:
            rec["evidence"] = {"name": "Jane"}  # refused evidence key
        elif roll < 0.19:
            rec["notice_version"] = "v9"  # unknown version
        elif roll < 0.22:
            rec["notice_version"] = "v1"
        elif roll < 0.24:
            del rec["source"]
        elif roll < 0.26:
            rec["extra"] = 1
        elif roll < 0.36 and records:
            rec = dict(rng.choice(records))  # the same record again in the batch
        records.append(rec)
    if rng.random() < 0.5:
        records.append("not a record")
    return records


def _snapshot(before_event: int, before_gov: int, results, signals_seen):
    from audit import canonical
    from audit.models import GovernanceEvent, PendingSeal
    from consent.models import ConsentEvent, ConsentStateCurrent

    events = list(ConsentEvent.objects.filter(id__gt=before_event).order_by("id").values(
        "id", "customer_id", "purpose_id", "action", "notice_id", "source", "channel", "occurred_at", "evidence",
        "actor", "dedupe_key"))
    rank = {e["id"]: f"new{i}" for i, e in enumerate(events)}

    def norm(event_id):
        return rank.get(event_id, f"old{event_id}")

    for e in events:
        e["id"] = norm(e["id"])
    state = sorted(
        (str(r["customer_id"]), r["purpose_id"], norm(r["event_id"]), r["granted"], r["notice_id"], r["occurred_at"])
        for r in ConsentStateCurrent.objects.values("customer_id", "purpose_id", "event_id", "granted", "notice_id",
                                                    "occurred_at"))
    gov = []
    for g in GovernanceEvent.objects.filter(id__gt=before_gov, kind__startswith="consent.").order_by("id"):
        assert g.content_hash == canonical.content_hash(g)  # the stored hash is the hash of the stored content
        seal = PendingSeal.objects.get(record_type="governance", row_id=g.id)
        assert seal.entry_hash == g.content_hash
        gov.append((g.kind, g.actor, str(g.subject), {**g.details, "event_id": norm(g.details["event_id"])}))
    outcomes = [(r.index, r.status, None if r.event_id is None else norm(r.event_id), r.field, r.code)
                for r in results]
    return {"events": events, "state": state, "governance": gov, "outcomes": outcomes,
            "signals": [(str(c), p, k) for c, p, k in signals_seen]}


def _run(path: str, records, before_event: int, before_gov: int):
    from consent import services
    from consent.signals import consent_changed

    seen = []

    def receiver(sender, customer_id, purpose, kind, **kwargs):
        seen.append((customer_id, purpose, kind))

    consent_changed.connect(receiver, dispatch_uid="test-bulk-diff")
    try:
        with transaction.atomic():
            if path == "reference":
                results = services._record_one_by_one(records, actor=ACTOR)
            else:
                results = services.consent_record_many(records=records, actor=ACTOR)
    finally:
        consent_changed.disconnect(dispatch_uid="test-bulk-diff")
    return _snapshot(before_event, before_gov, results, seen)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_set_based_path_stores_exactly_what_the_reference_path_stores(seed, new_customer, grant, withdraw):
    from audit.models import GovernanceEvent
    from consent.models import ConsentEvent

    rng = random.Random(seed)
    customers = [new_customer() for _ in range(5)]
    base = timezone.now() - timedelta(days=1)
    # Stored history first: some records of the batch will repeat it (unchanged) or be older (back-dated).
    for cid in customers[:3]:
        grant(cid, at=base - timedelta(days=10))
    withdraw(customers[0], purpose="marketing", at=base - timedelta(days=3))
    records = _random_batch(rng, customers, base)
    stored = ConsentEvent.objects.order_by("id").first()
    records.append({"customer": str(stored.customer_id), "purpose": "automated_scoring", "action": "grant",
                    "source": "web", "channel": "web", "occurred_at": stored.occurred_at.isoformat()})
    before_event = ConsentEvent.objects.order_by("-id").values_list("id", flat=True).first()
    before_gov = GovernanceEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    sid = transaction.savepoint()
    reference = _run("reference", records, before_event, before_gov)
    transaction.savepoint_rollback(sid)
    fast = _run("fast", records, before_event, before_gov)

    assert fast == reference
    statuses = {o[1] for o in reference["outcomes"]}
    assert {"created", "rejected", "unchanged"} <= statuses  # the sample exercised every outcome
    assert reference["signals"] and any(k == "withdrawn" for _, _, k in reference["signals"])


def test_a_chunk_the_database_refuses_is_recorded_the_reference_way(new_customer, monkeypatch):
    from django.db import IntegrityError

    from consent import bulk, services
    from consent.models import ConsentEvent

    cid = new_customer()
    at = (timezone.now() - timedelta(days=1)).isoformat()
    records = [{"customer": str(cid), "purpose": "marketing", "action": "grant", "source": "web", "channel": "web",
                "occurred_at": at}, {"customer": "bad", "purpose": "marketing", "action": "grant",
                                     "source": "web", "channel": "web"}]

    def refuse(chunk, *, actor):
        ConsentEvent.objects.create(customer_id=cid, purpose_id=1, action="grant", notice_id=1, source="x",
                                    channel="web", occurred_at=timezone.now(), actor=ACTOR)  # rolled back below
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(bulk, "record_many", refuse)
    with transaction.atomic():
        results = services.consent_record_many(records=records, actor=ACTOR)
    assert [(r.status, r.code) for r in results] == [("created", None), ("rejected", "invalid")]
    assert ConsentEvent.objects.filter(customer_id=cid).count() == 1  # the refused chunk's write rolled back
    assert ConsentEvent.objects.get(customer_id=cid).source == "web"


@pytest.mark.parametrize("seed", [5, 6])
def test_the_csv_importer_chunk_gives_the_outcomes_and_rows_of_one_row_at_a_time(seed, new_customer):
    from audit.models import GovernanceEvent
    from consent.importer import ConsentCsvImporter
    from consent.models import ConsentEvent
    from profiles.imports import CsvRow, RowImporter

    rng = random.Random(seed)
    refs = []
    for i in range(4):
        new_customer(source="crm", external_id=f"C-{seed}-{i}", email=f"person{seed}{i}@example.com")
        refs.append({"source": "crm", "external_id": f"C-{seed}-{i}"})
        refs.append({"source": "web", "email": f"person{seed}{i}@example.com"})
    refs += [{"source": "crm", "external_id": "nobody"}, {"source": "mars", "external_id": "C-1"}, {"source": "crm"},
             {"source": "web", "email": "not an address"}]
    base = timezone.now() - timedelta(days=1)
    rows = []
    for line in range(2, 2 + rng.randrange(30, 60)):
        values = {**rng.choice(refs), "purpose": rng.choice(PURPOSES + ["astrology"]),
                  "action": rng.choice(["grant", "GRANT", "withdraw", "maybe"]),
                  "channel": rng.choice(["web", "email", "fax"]),
                  "occurred_at": rng.choice([(base - timedelta(days=rng.randrange(0, 9))).isoformat(), "", "yesterday"]),
                  "notice_version": rng.choice(["", "", "v1", "v7"])}
        rows.append(CsvRow(line=line, values={k: str(v) for k, v in values.items()}))
    rows += [CsvRow(line=rows[-1].line + 1, values=dict(rows[0].values))]  # a repeated row
    importer = ConsentCsvImporter()
    before_event = ConsentEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    before_gov = GovernanceEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def run(fast: bool):
        with transaction.atomic():
            if fast:
                outcomes = importer.process_rows(rows, kind="consents", source="consent", actor=ACTOR)
            else:
                outcomes = RowImporter.process_rows(importer, rows, kind="consents", source="consent", actor=ACTOR)
        return outcomes, _snapshot(before_event, before_gov, [], [])

    sid = transaction.savepoint()
    reference = run(fast=False)
    transaction.savepoint_rollback(sid)
    fast = run(fast=True)
    assert fast == reference
    assert {o.outcome for o in reference[0]} >= {"created", "rejected"}
    assert {o.code for o in reference[0]} >= {"unknown_customer", "required"}
