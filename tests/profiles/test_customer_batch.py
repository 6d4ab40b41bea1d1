"""Set-based customer ingestion (``customer_ingest_batch``) against the per-row path (``customer_ingest``).

The differential tests ingest the same randomized records (new customers, repeats, e-mail and phone matches,
intra-batch duplicates, source-id corrections, conflicts, invalid records) one by one into one database
state and as a batch into another (a rolled-back savepoint separates them), then compare per-record outcomes
and errors, and the resulting customers: decrypted fields, blind-index entries, source identities, aliases,
merge records and governance events. Customer ids differ between the two states; customers are compared by
their source identities.
"""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

import pytest
from django.db import IntegrityError, transaction

from audit.models import GovernanceEvent
from config.errors import ApplicationError
from profiles import selectors, services
from profiles.imports import rejected_outcome, run_import
from profiles.models import BlindIndexEntry, Customer, CustomerKey, MergeRecord, PersonalField, SourceIdentity
from profiles.services import customer_batch

pytestmark = pytest.mark.django_db
ACTOR = "job:test"
NAMES = ("Maria Virtanen", "Jan Kowalski", "Emma de Vries", "Liam Brown", "Aino Korhonen")


def _records(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    emails: list[str] = []
    phones: list[str] = []
    counter = 0

    def fresh() -> dict[str, Any]:
        nonlocal counter
        counter += 1
        email = f"person{seed}-{counter}@example.com"
        phone = f"+4479{seed:02d}{counter:06d}" if rng.random() < 0.7 else None
        emails.append(email)
        if phone:
            phones.append(phone)
        return {"source": rng.choice(("crm", "crm", "erp")), "external_id": f"X{seed}-{counter}",
                "personal": {"name": rng.choice(NAMES), "email": email, "phone": phone,
                             "date_of_birth": f"19{rng.randrange(40, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}"},
                "attributes": {"segment": rng.choice(("retail", "smb"))}, "feature_attributes": ["segment"],
                "country": "GB"}

    for _ in range(n):
        roll = rng.random()
        if not out or roll < 0.35:
            out.append(fresh())
        elif roll < 0.45:  # exact repeat of an earlier record (intra-batch duplicate)
            out.append(dict(rng.choice(out)))
        elif roll < 0.52:  # the previous record again, with a changed name, country or attributes
            prev = dict(out[-1])
            prev["personal"] = {**prev["personal"], "name": rng.choice(NAMES)}
            prev["country"] = rng.choice(("GB", "IE"))
            prev["attributes"] = {"segment": rng.choice(("retail", "smb")), "extra": rng.randrange(3)}
            prev["feature_attributes"] = rng.choice((None, ["segment"], ["extra", "segment"]))
            out.append(prev)
        elif roll < 0.62:  # another system's record with an earlier e-mail (and nothing else strong)
            counter += 1
            out.append({"source": "support", "external_id": f"S{seed}-{counter}",
                        "personal": {"email": rng.choice(emails).upper(), "company": "Acme"}, "country": "GB"})
        elif roll < 0.70 and phones:  # phone match, written in national format
            counter += 1
            phone = rng.choice(phones)
            out.append({"source": "erp", "external_id": f"P{seed}-{counter}",
                        "personal": {"phone": "0" + phone[3:], "address": "1 Station Road"}, "country": "GB"})
        elif roll < 0.76 and phones:  # conflict: e-mail of one earlier record, phone of another
            counter += 1
            out.append({"source": "web", "external_id": f"W{seed}-{counter}",
                        "personal": {"email": rng.choice(emails), "phone": rng.choice(phones)}, "country": "GB"})
        elif roll < 0.82:  # the source system corrects its own contact e-mail
            prev = dict(rng.choice(out))
            prev["personal"] = {**prev["personal"], "email": f"changed{counter}-{rng.randrange(9)}@example.com"}
            out.append(prev)
        elif roll < 0.88:  # e-mail of an earlier record under a new id with a different phone: refused
            counter += 1
            out.append({"source": "crm", "external_id": f"Y{seed}-{counter}",
                        "personal": {"email": rng.choice(emails), "phone": f"+4479{seed:02d}9{counter:05d}"},
                        "country": "GB"})
        else:  # invalid records
            bad = rng.choice([
                {"personal": {"email": "not-an-email"}},
                {"personal": {"date_of_birth": "2999-01-01"}},
                {"external_id": "  "},
                {"country": "GBR"},
                {"personal": {"Bad Field": "x"}},
                {"attributes": {"k": {"nested": 1}}},
                {"source": "nope"},
            ])
            counter += 1
            out.append({"source": "crm", "external_id": f"B{seed}-{counter}", "personal": {"name": "X"}, **bad})
    return out


def _error(exc: Exception) -> tuple[str, str | None, str | None]:
    o = rejected_outcome(exc, 0)
    return (type(exc).__name__, o.column, o.code)


def _per_row(records: list[dict[str, Any]]) -> list[tuple[str, UUID | None, Any]]:
    out: list[tuple[str, UUID | None, Any]] = []
    for record in records:
        try:
            with transaction.atomic():
                res = services.customer_ingest(actor=ACTOR, **record)
        except (ApplicationError, IntegrityError) as exc:
            out.append(("rejected", None, _error(exc)))
            continue
        out.append((res.outcome, res.customer_id, None))
    return out


def _batch(records: list[dict[str, Any]]) -> list[tuple[str, UUID | None, Any]]:
    results = services.customer_ingest_batch(records=records, actor=ACTOR)
    assert [r.index for r in results] == list(range(len(records)))
    return [(r.outcome, r.customer_id, None if r.error is None else _error(r.error)) for r in results]


def _identity_key(customer_id: UUID) -> tuple[tuple[str, str], ...]:
    live = selectors.customer_resolve(customer_id=customer_id)
    assert live is not None
    return tuple(sorted((i["source"], i["external_id"]) for i in selectors.customer_source_identities(customer_id=live)))


def _state(outcomes: list[tuple[str, UUID | None, Any]], governance_after: int) -> dict[str, Any]:
    customers: dict[tuple, dict[str, Any]] = {}
    for c in Customer.objects.filter(merged_into__isnull=True):
        key = _identity_key(c.id)
        customers[key] = {
            "personal": selectors.customer_personal_data(customer_id=c.id),
            "index": sorted(BlindIndexEntry.objects.filter(customer=c).values_list("kind", "digest")),
            "attributes": c.attributes, "features": sorted(c.feature_attributes), "country": c.country,
            "aliases": len(selectors.customer_aliases(customer_id=c.id)),
            "stale": c.stale_since is not None,
        }
    merges = sorted((_identity_key(m.survivor_id), tuple(m.matched_on), m.source)
                    for m in MergeRecord.objects.all())
    events = [(e.kind, e.details.get("matched_on"), e.details.get("source"))
              for e in GovernanceEvent.objects.filter(id__gt=governance_after).order_by("id")]
    rows = [(outcome, None if cid is None else _identity_key(cid), error) for outcome, cid, error in outcomes]
    return {
        "rows": rows, "customers": customers, "merges": merges, "events": events,
        "counts": (Customer.objects.count(), CustomerKey.objects.count(), PersonalField.objects.count(),
                   BlindIndexEntry.objects.count(), SourceIdentity.objects.count()),
    }


def _both(records: list[dict[str, Any]], repeat: int = 1) -> tuple[list[dict], list[dict]]:
    start = GovernanceEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    before = (Customer.objects.count(), SourceIdentity.objects.count(), BlindIndexEntry.objects.count())
    sid = transaction.savepoint()
    per_row = [_state(_per_row(records), start) for _ in range(repeat)]
    transaction.savepoint_rollback(sid)
    assert (Customer.objects.count(), SourceIdentity.objects.count(), BlindIndexEntry.objects.count()) == before
    batch = [_state(_batch(records), start) for _ in range(repeat)]
    return per_row, batch


@pytest.mark.parametrize(("seed", "chunk"), [(1, 500), (2, 500), (3, 7), (4, 13)])
def test_batch_matches_per_row_ingestion(seed: int, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(customer_batch, "_BATCH_CHUNK", chunk)
    bulk_updates: list[int] = []
    real_flush = customer_batch._flush_updates

    def counting_flush(pending: list[Any], *args: Any) -> None:
        bulk_updates.append(len(pending))
        real_flush(pending, *args)

    monkeypatch.setattr(customer_batch, "_flush_updates", counting_flush)
    # A few customers already exist (both states), so records also match the database.
    existing = _records(seed + 100, 15)
    for r in existing:
        r["external_id"] = f"E-{r['external_id']}"
    _per_row(existing)
    records = _records(seed, 140) + [dict(r) for r in existing[:5]]
    per_row, batch = _both(records, repeat=2)

    outcomes = [row[0] for row in per_row[0]["rows"]]
    for wanted in ("created", "updated", "merged", "unchanged", "rejected"):
        assert wanted in outcomes, wanted  # the mix exercises every path
    codes = {row[2][2] for row in per_row[0]["rows"] if row[2] is not None}
    assert {"merge_conflict", "invalid"} <= codes
    assert per_row[0] == batch[0]
    # Re-importing the same records changes nothing, with the same outcomes on both paths.
    assert per_row[1] == batch[1]
    assert per_row[1]["customers"] == per_row[0]["customers"]
    assert "created" not in [row[0] for row in batch[1]["rows"]]
    assert sum(bulk_updates) >= 10  # records matching their own customer were updated/confirmed in bulk


def test_new_customers_are_written_in_bulk_with_the_per_row_rows(facts_changed: list[list[Any]]) -> None:
    records = [{"source": "crm", "external_id": f"N-{i}", "country": "FI",
                "personal": {"name": f"Name {i}", "email": f"n{i}@example.fi", "phone": f"+35840{i:07d}"},
                "attributes": {"tier": i}, "feature_attributes": ["tier"]} for i in range(30)]
    results = services.customer_ingest_batch(records=records, actor=ACTOR)

    assert [r.outcome for r in results] == ["created"] * 30
    assert facts_changed == [[r.customer_id for r in results]]
    first = results[0].customer_id
    data = selectors.customer_personal_data(customer_id=first)
    assert {k: v for k, v in data.items() if v is not None} == {
        "name": "Name 0", "email": "n0@example.fi", "phone": "+358400000000"}
    assert selectors.customer_find(source="crm", external_id="N-7") == results[7].customer_id
    assert selectors.customer_find(email="N7@EXAMPLE.fi") == results[7].customer_id
    created = list(Customer.objects.order_by("created_at", "id").values_list("id", flat=True))
    assert created == [r.customer_id for r in results]  # creation order is record order
    assert (CustomerKey.objects.count(), PersonalField.objects.count(), BlindIndexEntry.objects.count(),
            SourceIdentity.objects.count()) == (30, 90, 60, 30)
    # Ciphertexts are bound to their customer: no plaintext at rest.
    for row in PersonalField.objects.all():
        assert b"example.fi" not in bytes(row.ciphertext)


def test_invalid_records_are_rejected_and_nothing_is_written_for_them() -> None:
    records = [
        {"source": "crm", "external_id": "OK-1", "personal": {"email": "ok@example.com"}},
        {"source": "crm", "external_id": "BAD-1", "personal": {"email": "nope"}},
        {"source": "crm", "external_id": "", "personal": {"name": "x"}},
        {"source": "crm", "external_id": "BAD-3", "personal": {"name": "x"}, "country": "1"},
    ]
    results = services.customer_ingest_batch(records=records, actor=ACTOR)

    assert [r.outcome for r in results] == ["created", "rejected", "rejected", "rejected"]
    assert [_error(r.error) for r in results[1:]] == [
        ("RecordInvalid", "email", "invalid"), ("RecordInvalid", "external_id", "required"),
        ("RecordInvalid", "country", "invalid")]
    assert Customer.objects.count() == 1
    assert SourceIdentity.objects.count() == 1


def test_identifier_taken_concurrently_falls_back_to_per_record_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the identity lookup and the bulk INSERT another writer takes an e-mail: the bulk write is
    rolled back and the records are decided one by one (the one with the taken e-mail joins that customer)."""
    records = [{"source": "crm", "external_id": f"R-{i}", "personal": {"email": f"r{i}@example.com"}}
               for i in range(3)]
    real = customer_batch._known_identifier_keys

    def lookup_then_concurrent_write(items: list[Any]) -> set[tuple[str, ...]]:
        known = real(items)
        services.customer_ingest(source="erp", external_id="OTHER", personal={"email": "r1@example.com"},
                                 actor=ACTOR)
        return known

    monkeypatch.setattr(customer_batch, "_known_identifier_keys", lookup_then_concurrent_write)
    results = services.customer_ingest_batch(records=records, actor=ACTOR)

    assert [r.outcome for r in results] == ["created", "merged", "created"]
    other = selectors.customer_find(source="erp", external_id="OTHER")
    assert results[1].customer_id == other
    assert Customer.objects.count() == 3


def test_csv_import_of_customers_uses_the_batch_with_per_row_outcomes(tmp_path: Any) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "external_id,first_name,email,phone,country\n"
        "C-1,Anna,anna@example.com,,GB\n"
        "C-2,Jan,bad-email,,GB\n"
        ",Nobody,nobody@example.com,,GB\n"
        "C-1,Anna,anna@example.com,,GB\n"
        "C-3,Anna,ANNA@example.com,,GB\n",
        encoding="utf-8",
    )
    with path.open("rb") as f:
        job = run_import(stream=f, source="crm", actor=ACTOR, background=False)

    assert (job.created, job.updated, job.merged, job.unchanged, job.rejected) == (1, 0, 1, 1, 2)
    assert job.rejections == [{"line": 3, "column": "email", "code": "invalid"},
                              {"line": 4, "column": "external_id", "code": "required"}]
    cid = selectors.customer_find(source="crm", external_id="C-3")
    assert cid == selectors.customer_find(source="crm", external_id="C-1")


def test_reimport_is_set_based_and_reports_unchanged_and_updated(facts_changed: list[list[Any]]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    records = [{"source": "crm", "external_id": f"U-{i}", "country": "GB",
                "personal": {"name": f"Name {i}", "email": f"u{i}@example.com"}, "attributes": {"tier": 1}}
               for i in range(40)]
    created = services.customer_ingest_batch(records=records, actor=ACTOR)
    Customer.objects.update(stale_since=None)
    facts_changed.clear()
    records[3] = {**records[3], "personal": {"name": "Renamed", "email": "u3@example.com"}}
    records[5] = {**records[5], "attributes": {"tier": 2}}
    records[7] = {**records[7], "personal": {**records[7]["personal"], "company": "Acme"}}

    with CaptureQueriesContext(connection) as queries:
        results = services.customer_ingest_batch(records=records, actor=ACTOR)

    changed = {3, 5, 7}
    assert [r.outcome for r in results] == ["updated" if i in changed else "unchanged" for i in range(40)]
    assert [r.customer_id for r in results] == [r.customer_id for r in created]
    assert len(queries) <= 15  # lookups, lock, keys, fields, and the writes: not per record
    assert sorted(facts_changed[0], key=str) == sorted((created[i].customer_id for i in changed), key=str)
    stale = set(Customer.objects.filter(stale_since__isnull=False).values_list("id", flat=True))
    assert stale == {created[i].customer_id for i in changed}
    assert selectors.customer_personal_data(customer_id=created[3].customer_id)["name"] == "Renamed"
    assert selectors.customer_personal_data(customer_id=created[7].customer_id)["company"] == "Acme"
    assert Customer.objects.get(id=created[5].customer_id).attributes == {"tier": 2}
    assert PersonalField.objects.count() == 81
