"""Smoke tests of the benchmark harness (issue 7): modules import, data generators produce the expected rows.

No timing is asserted anywhere: benchmarks are not tests. The database tests load tiny synthetic data into
the test database and check that it is real product data (decryptable, verifiable chain).
"""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import pytest


def test_every_section_module_exposes_run() -> None:
    from bench.run import SECTIONS

    assert sorted(SECTIONS) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]  # 7 webhooks, 8 sentiment, 9 KPIs, 10 demo, 11 schedule
    for module_name, slug, quick_cap, full_cap in SECTIONS.values():
        module = importlib.import_module(module_name)
        assert callable(module.run)
        assert slug.startswith("s")
        assert 0 < quick_cap < full_cap


def test_bench_urlconf_adds_the_bare_endpoint_to_the_product_urls() -> None:
    from django.urls import URLResolver, get_resolver

    from config import urls as product

    resolver = get_resolver("bench.urls")
    match = resolver.resolve("/bench/bare/customers/00000000-0000-4000-8000-000000000000")
    assert match.url_name == "bench-bare"
    assert len(importlib.import_module("bench.urls").urlpatterns) == len(product.urlpatterns) + 1
    # The product URLconf itself does not carry the bench endpoint.
    assert not any(isinstance(p, URLResolver) is False and getattr(p, "name", "") == "bench-bare"
                   for p in product.urlpatterns)


def test_scale_parser_reads_k_and_m_suffixes() -> None:
    from bench.run import _parse_ints

    assert _parse_ints("10k,100k,1m") == [10_000, 100_000, 1_000_000]
    assert _parse_ints("2000, 5_000") == [2000, 5000]


def test_summarize_reports_median_quartiles_and_range() -> None:
    from bench.common import summarize

    s = summarize([3.0, 1.0, 2.0, 10.0])
    assert s["n"] == 4
    assert s["median"] == 2.5
    assert s["min"] == 1.0 and s["max"] == 10.0
    assert s["q1"] <= s["median"] <= s["q3"]


def test_target_met_and_missed_and_unmeasured() -> None:
    from bench.common import Target

    assert Target("p99", 12.0, "<=", 20.0).met is True
    assert Target("ratio", 0.4, ">=", 0.5).met is False
    assert Target("nan", float("nan"), "<=", 1.0).met is None
    assert Target("none", None, "<=", 1.0).met is None


def test_child_records_a_crashing_section_as_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import run

    monkeypatch.setitem(run.SECTIONS, 9, ("bench.no_such_module", "s9-missing", 10, 20))
    out = tmp_path / "r.json"
    args = run.build_parser().parse_args(["--quick", "--child", "9", "--out", str(out)])
    assert run.run_child(args) == 0
    data = json.loads(out.read_text())
    assert data["errors"][0]["error"] == "ModuleNotFoundError"
    assert data["section"] == 9


# --------------------------------------------------------------------------------------------- section 3


def test_corpus_has_the_requested_texts_and_exact_entity_spans() -> None:
    from bench import corpus

    samples = corpus.generate(english=40, per_language=6)
    stats = corpus.stats(samples)
    assert stats["texts"] == 40 + 4 * 6
    assert stats["by_language"] == {"en": 40, "pl": 6, "nl": 6, "fi": 6, "sv": 6}
    for sample in samples:
        for e in sample.entities:
            assert 0 <= e.start < e.end <= len(sample.text)
            assert sample.text[e.start:e.end].strip() == sample.text[e.start:e.end]
        if sample.lang != "en":
            assert any(e.author and e.type == "PERSON" for e in sample.entities)
        assert sample.known["names"][0]
    # Deterministic for a seed.
    again = corpus.generate(english=40, per_language=6)
    assert [s.text for s in again] == [s.text for s in samples]


def test_rewrite_alignment_recovers_replaced_spans() -> None:
    from bench.s3_pseudonymize import spans_from_rewrite

    original = "Hi, this is Anna Nowak, mail anna@x.pl or call +48 601 234 567."
    rewritten = "Hi, this is <PERSON_1>, mail <EMAIL_1> or call <PHONE_1>."
    spans = spans_from_rewrite(original, rewritten)
    assert [(original[s:e], t) for s, e, t in spans] == [
        ("Anna Nowak", "PERSON"), ("anna@x.pl", "EMAIL_ADDRESS"), ("+48 601 234 567", "PHONE_NUMBER")]
    assert spans_from_rewrite("nothing here", "nothing here") == []


def test_scoring_counts_masked_recall_and_overlap_precision() -> None:
    from bench import corpus
    from bench.s3_pseudonymize import score

    sample = corpus.Sample(text="Anna Nowak lives in Oslo", lang="en", entities=[
        corpus.Entity(0, 10, "PERSON", True), corpus.Entity(20, 24, "LOCATION", False)])
    result = score([sample], [[(0, 10, "PERSON"), (11, 16, "PERSON")]])
    assert result["recall"] == {"LOCATION": 0.0, "PERSON": 1.0}
    assert result["precision"] == {"PERSON": 0.5}
    assert result["author_recall"] == {"en": 1.0}


# --------------------------------------------------------------------------------------------- section 6


def test_import_csv_writers_produce_the_requested_rows(tmp_path: Path) -> None:
    from bench.s6_import import CUSTOMER_COLUMNS, csv_rows, write_customers_csv, write_orders_csv

    customers, orders = tmp_path / "c.csv", tmp_path / "o.csv"
    write_customers_csv(customers, 25)
    write_orders_csv(orders, 40, customers=25)
    assert csv_rows(customers) == 25
    assert csv_rows(orders) == 40
    with customers.open() as f:
        header = next(csv.reader(f))
    assert header == CUSTOMER_COLUMNS


# --------------------------------------------------------------------------------------- sections 1, 2


def test_population_ranges_compose() -> None:
    from bench import datagen

    whole = datagen.expected_counts(12_345)
    head = datagen.expected_counts(5_000)
    tail = datagen.expected_counts(7_345, start=5_000)
    assert whole == {k: head[k] + tail[k] for k in whole}
    assert whole["customers"] == 12_345
    assert 8 <= whole["orders"] / whole["customers"] <= 12  # ~10 orders per customer


@pytest.mark.django_db
def test_loader_writes_the_expected_rows_with_real_encryption() -> None:
    from bench import datagen
    from consent import selectors as consent_selectors
    from consent.models import ConsentEvent, ConsentStateCurrent
    from profiles import selectors as profile_selectors
    from profiles.models import (
        BlindIndexEntry,
        Customer,
        CustomerKey,
        Interaction,
        Order,
        PersonalField,
        SourceIdentity,
        Ticket,
    )

    report = datagen.load(60, seed=3, defer_indexes=False)
    expected = datagen.expected_counts(60, seed=3)
    assert report.counts == expected
    assert Customer.objects.count() == expected["customers"]
    assert CustomerKey.objects.count() == expected["customer_keys"]
    assert PersonalField.objects.count() == expected["personal_fields"]
    assert BlindIndexEntry.objects.count() == expected["blind_index_entries"]
    assert SourceIdentity.objects.count() == expected["source_identities"]
    assert Order.objects.count() == expected["orders"]
    assert Ticket.objects.count() == expected["tickets"]
    assert Interaction.objects.count() == expected["interactions"]
    assert ConsentEvent.objects.count() == expected["consent_events"]
    assert ConsentStateCurrent.objects.count() == expected["consent_current"]
    first = next(iter(datagen.population(1, seed=3)))
    cid = first.ids[0]
    personal = profile_selectors.customer_personal_data(customer_id=cid)
    assert personal["email"] == "customer0@bench.example.com"
    assert profile_selectors.customer_find(email="customer0@bench.example.com") == cid
    gate = consent_selectors.processing_gate(customer_id=cid, purpose="automated_scoring")
    expected_allowed = bool(first.consent["automated_scoring"][0] and not first.withdrawn["automated_scoring"][0]
                            and not first.restricted[0])
    assert gate.allowed is expected_allowed


# ------------------------------------------------------------------------------------------- section 5


@pytest.mark.django_db
def test_generated_decision_records_form_a_chain_that_verifies() -> None:
    from audit import selectors
    from audit.models import ChainLink, DecisionRecord
    from bench.auditgen import load_decisions

    result = load_decisions(120, chain=True, sealed_bytes=32, defer_indexes=False)
    assert result.records == 120
    assert DecisionRecord.objects.count() == 120
    assert ChainLink.objects.count() == 120
    verdict = selectors.chain_verify(seal=False)
    assert verdict.ok is True
    assert verdict.checked == 120


@pytest.mark.django_db
def test_heavy_customer_has_the_requested_history() -> None:
    from bench.datagen import heavy_counts, load_heavy_customer
    from profiles.models import Interaction, Order, Ticket

    cid, counts = load_heavy_customer(0, events=300, text_tickets=3)
    expected = heavy_counts(300)
    assert Order.objects.filter(customer_id=cid).count() == expected["orders"]
    assert Interaction.objects.filter(customer_id=cid).count() == expected["interactions"]
    assert Ticket.objects.filter(customer_id=cid).count() == expected["tickets"]
    assert sum(v for k, v in counts.items() if k in expected) == 300


def test_a_current_template_left_by_an_earlier_run_still_gets_the_harness_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh checkout (no var/bench) against a PostgreSQL that still holds a current template from an
    earlier run: the harness must still create its directory, or writing the first marker file fails."""
    from bench import dbutil

    var = tmp_path / "var" / "bench"
    monkeypatch.setattr(dbutil, "VAR_BENCH", var)
    monkeypatch.setattr(dbutil, "_template_current", lambda: True)

    assert dbutil.ensure_template() == 0.0
    assert var.is_dir()


# --------------------------------------------------------------------------------------- section 8 (issue 18)

def test_sentiment_sets_are_balanced_and_large_enough_and_macro_f1_is_right() -> None:
    from bench import s8_sentiment as s8

    for language in s8.LANGUAGES:
        rows = s8.load(language)
        counts = {label: sum(r["label"] == label for r in rows) for label in s8.LABELS}
        assert len(rows) >= 200 and len(set(counts.values())) == 1, (language, counts)
        assert len({r["text"] for r in rows}) == len(rows)  # no duplicate text
    gold = ["positive", "negative", "neutral", "neutral"]
    assert s8.macro_f1(gold, gold) == 1.0
    assert s8.macro_f1(gold, s8.majority(gold)) == pytest.approx((0 + 0 + 2 * 2 / (2 * 2 + 2)) / 3)
    assert s8.macro_f1(gold, ["negative", "positive", "positive", "negative"]) == 0.0


def test_rescore_section_reads_the_planning_line_and_reports_the_celery_scale_out() -> None:
    from bench.common import SectionResult
    from bench.s2_rescore import _celery_targets, _planning

    out = "Planned 20000 customers in 4 chunks: 12.08 s (2.62 s CPU)\nRun x (automated_scoring): completed"
    assert _planning(out) == {"planning_seconds": 12.08, "planning_cpu_seconds": 2.62}
    assert _planning("Run x: completed") == {}
    res = SectionResult(2, "rescore")
    curve = {20_000: {"celery_by_workers": {
        "1": {"rescore_seconds": {"median": 100.0}, "python_cpu_ms_per_customer": 2.0, "peak_tree_rss_mb": 1000.0},
        "2": {"rescore_seconds": {"median": 50.0}, "python_cpu_ms_per_customer": 2.5, "peak_tree_rss_mb": 1700.0},
    }}}
    _celery_targets(res, curve, [1, 2])
    assert res.metrics["celery_speedup_20000_w2_vs_w1"] == 2.0
    assert res.metrics["celery_cpu_ratio_20000_w2_vs_w1"] == 1.25
    assert res.metrics["estimated_1m_seconds_linear_celery_w2"] == 2500.0
    assert [t.name for t in res.targets] == [
        "1M customers, 1 Celery worker(s) (LINEAR EXTRAPOLATION from 20,000)",
        "peak memory at 20,000 customers, 1 Celery worker(s), all processes",
        "1M customers, 2 Celery worker(s) (LINEAR EXTRAPOLATION from 20,000)",
        "peak memory at 20,000 customers, 2 Celery worker(s), all processes",
    ]


def test_fleet_sampler_follows_a_process_tree() -> None:
    import os

    from bench.fleet import Sampler, tree_pids

    assert tree_pids(os.getpid())[0] == os.getpid()
    sampler = Sampler({"self": lambda: [os.getpid()]})
    sampler.sample()
    sampler.sample()
    assert sampler.peak_mb("self") > 0 and sampler.peak_mb() == sampler.peak_mb("self")
    assert sampler.cpu_seconds("self") >= 0.0 and sampler.cpu_seconds("missing") == 0
