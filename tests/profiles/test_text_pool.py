"""Differential test of the free-text worker pool (issue 21 item 2): tickets imported with their language,
mood and pseudonymization computed by two forked worker processes (``TEXT_WORKERS=2``) store exactly the
rows of the serial import (every column but the id and the creation time, the decrypted original texts,
the per-customer placeholder counters and placeholders), on a random sample with several tickets per
customer in six languages, bad records included."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

import pytest
from django.db import transaction

from profiles import services, text_pool
from profiles.models import PlaceholderState, Ticket
from tests.factories import make_customer
from tests.profiles.test_facts_differential import _state

pytestmark = pytest.mark.django_db
ACTOR = "job:test"
NAMES = ("Anna Berg", "Jan Kowalski", "Emma de Vries", "Aino Virtanen", "Lucas Andersson", "Sofia Brown")
TEXTS = (
    "Hi, this is {who}. Please call me back on +44 7700 900{n} about order {n}, it is late again.",
    "My colleague {who} wrote to {mail} yesterday and nobody answered. Terrible service.",
    "Thank you {who}, the replacement arrived quickly and works perfectly!",
    "Guten Tag, hier ist {who}. Meine Rechnung {n} ist falsch, bitte rufen Sie mich an: +49 30 1234{n}.",
    "Dzień dobry, nazywam się {who}. Zamówienie {n} nie dotarło, proszę o kontakt: {mail}.",
    "Hallo, ik ben {who} en mijn pakket is beschadigd. Bel me op 06 1234 5{n}.",
    "Hei, olen {who}. Tilaus {n} on myöhässä, kiitos nopeasta vastauksesta.",
    "Hej, jag heter {who} och jag bor på Storgatan {n} i Uppsala. Fakturan är fel.",
    "", "ok", "Refund please. {who}, {mail}, IBAN GB33BUKB20201555555555.",
)


def _records(seed: int, refs: list[str], n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        who = rng.choice(NAMES)
        text = rng.choice(TEXTS).format(who=who, n=rng.randrange(100, 999),
                                        mail=f"{who.split()[0].lower()}{rng.randrange(9)}@example.org")
        record: dict[str, Any] = {"source": "support", "external_id": f"T{seed}-{rng.randrange(n)}",
                                  "customer_external_id": rng.choice(refs), "customer_source": "crm",
                                  "opened_at": "2025-03-03T09:00:00Z", "channel": rng.choice(("email", "chat")),
                                  "text": text}
        bad = rng.random()
        if bad < 0.05:
            record["customer_external_id"] = "NOBODY"
        elif bad < 0.08:
            record["opened_at"] = "not-a-time"
        out.append(record)
    return out


def test_split_by_key_keeps_each_key_in_one_part_in_order() -> None:
    keys = [i % 7 for i in range(100)]
    parts = text_pool.split_by_key(keys, [1 + i % 5 for i in range(100)], 3)
    assert len(parts) == 3
    assert sorted(p for part in parts for p in part) == list(range(100))
    for part in parts:
        assert part == sorted(part)
    owner = {keys[p]: n for n, part in enumerate(parts) for p in part}
    assert all(owner[keys[p]] == n for n, part in enumerate(parts) for p in part)
    assert text_pool.split_by_key(keys[:5], [1] * 5, 4) == [[0, 1, 2, 3, 4]]  # too few texts: one part
    assert text_pool.split_contiguous(list(range(20)), 2) == [list(range(10)), list(range(10, 20))]


@pytest.mark.parametrize("seed", [11, 12])
def test_pooled_ticket_import_stores_what_the_serial_import_stores(seed: int, settings) -> None:
    settings.KEEP_ORIGINAL_TEXT = {"support": True}
    refs = [f"POOL-{i}" for i in range(8)]
    locales = ("en_GB", "pl_PL", "nl_NL", "fi_FI", "sv_SE", "de_DE", "en_US", "en_GB")
    ids: list[UUID] = [make_customer(source="crm", external_id=ref, name=name, locale=locale, seed=n)
                       for n, (ref, name, locale) in enumerate(zip(refs, NAMES + NAMES[:2], locales, strict=True))]
    assert len(set(ids)) == len(ids)
    batches = [_records(seed, refs, 90), _records(seed + 50, refs, 60)]  # the second updates and adds

    settings.TEXT_WORKERS = 1
    sid = transaction.savepoint()
    serial = [_state("tickets", services.facts_ingest_batch(kind="tickets", records=b, actor=ACTOR))
              for b in batches]
    transaction.savepoint_rollback(sid)
    assert not Ticket.objects.exists() and not PlaceholderState.objects.exists()

    settings.TEXT_WORKERS = 2
    pooled = [_state("tickets", services.facts_ingest_batch(kind="tickets", records=b, actor=ACTOR))
              for b in batches]
    pool = text_pool._pool
    assert pool is not None and len(pool._processes) == 2  # the texts really went to two worker processes

    rows = serial[-1]["facts"].values()
    assert len({r["language"] for r in rows}) >= 5 and any("<PERSON" in r["text_pseudonymized"] for r in rows)
    assert any(n > 1 for n in _tickets_per_customer(rows).values())  # placeholder numbering across texts
    assert {o[0] for o in serial[0]["outcomes"]} >= {"created", "rejected"}
    assert pooled == serial


def _tickets_per_customer(rows: Any) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for r in rows:
        counts[r["customer_id"]] = counts.get(r["customer_id"], 0) + 1
    return counts
