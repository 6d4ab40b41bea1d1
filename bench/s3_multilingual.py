"""Section 3, multilingual part (issue 18): per language, recall per entity type on general text, the
author's own identifiers caught, over-redaction on clean text, and throughput against stock Presidio on
the same texts. Corpus: :mod:`bench.corpus_multilingual`. Scoring: as :mod:`bench.s3_pseudonymize`."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from . import corpus_multilingual as cm

GOALS = {"PERSON": 0.85, "PHONE_NUMBER": 0.95, "CREDIT_CARD": 0.99, "STREET_ADDRESS": 0.80, "NATIONAL_ID": 0.99,
         "EMAIL_ADDRESS": 1.0, "IBAN_CODE": 1.0, "IP_ADDRESS": 1.0}
WORD = re.compile(r"[^\W\d_]+")


def _covered(spans: Sequence[tuple[int, int, str]]) -> set[int]:
    out: set[int] = set()
    for s, e, _t in spans:
        out.update(range(s, e))
    return out


def evaluate(samples: Sequence[cm.Sample], preds: Sequence[Sequence[tuple[int, int, str]]]) -> dict[str, Any]:
    """Per language: recall per type (general), author recall (own), over-redaction (clean)."""
    out: dict[str, Any] = {}
    for sample, spans in zip(samples, preds, strict=True):
        lang = out.setdefault(sample.lang, {"gold": {}, "hit": {}, "author_n": 0, "author_hit": 0,
                                            "author_leaks": {}, "clean_words": 0, "clean_redacted": 0})
        covered = _covered(spans)
        if sample.kind == "clean":
            for m in WORD.finditer(sample.text):
                lang["clean_words"] += 1
                lang["clean_redacted"] += int(any(p in covered for p in range(m.start(), m.end())))
            continue
        for g in sample.entities:
            masked = all(p in covered for p in range(g.start, g.end) if sample.text[p].isalnum())
            if sample.kind == "own":
                lang["author_n"] += 1
                lang["author_hit"] += int(masked)
                if not masked:
                    lang["author_leaks"][g.type] = lang["author_leaks"].get(g.type, 0) + 1
            else:
                lang["gold"][g.type] = lang["gold"].get(g.type, 0) + 1
                lang["hit"][g.type] = lang["hit"].get(g.type, 0) + int(masked)
    result = {}
    for code, d in out.items():
        result[code] = {
            "recall": {t: round(d["hit"][t] / n, 4) for t, n in sorted(d["gold"].items())},
            "support": dict(sorted(d["gold"].items())),
            "author_recall": round(d["author_hit"] / d["author_n"], 4) if d["author_n"] else None,
            "author_identifiers": d["author_n"],
            "author_leaks_by_type": d["author_leaks"],
            "over_redaction": round(d["clean_redacted"] / d["clean_words"], 4) if d["clean_words"] else None,
            "clean_words": d["clean_words"],
        }
    return result


def service_spans(pseudonymizer, known_cls, samples: Sequence[cm.Sample]) -> tuple[list[Any], float]:
    from .s3_pseudonymize import spans_from_rewrite

    known = [known_cls(**s.known) if s.known else None for s in samples]
    t0 = time.perf_counter()
    out = pseudonymizer.pseudonymize_batch([s.text for s in samples], known=known)
    elapsed = time.perf_counter() - t0
    return [spans_from_rewrite(s.text, o.text) for s, o in zip(samples, out, strict=True)], elapsed


def stock_spans(analyzer, samples: Sequence[cm.Sample]) -> tuple[list[Any], float]:
    from .s3_pseudonymize import STOCK_ENTITIES, STOCK_TYPE_MAP

    t0 = time.perf_counter()
    results = [analyzer.analyze(s.text, language="en", entities=STOCK_ENTITIES) for s in samples]
    elapsed = time.perf_counter() - t0
    return [[(r.start, r.end, STOCK_TYPE_MAP.get(r.entity_type, r.entity_type)) for r in rs] for rs in results], elapsed


def run_multilingual(res, ctx, pseudonymizer, known_cls, analyzer) -> None:
    """Adds the per-language tables and targets to section 3's result."""
    general = 20 if ctx.quick else 100
    own = 10 if ctx.quick else 50
    samples = cm.generate(general=general, own=own, seed=int(ctx.options.get("seed", 18)))
    res.params["multilingual_corpus"] = cm.stats(samples)
    svc_pred, _ = service_spans(pseudonymizer, known_cls, samples)
    stock_pred, _ = stock_spans(analyzer, samples)
    svc = evaluate(samples, svc_pred)
    stock = evaluate(samples, stock_pred)
    speed: dict[str, float] = {}
    for code in cm.LOCALES:
        part = [s for s in samples if s.lang == code]
        ratios = []
        for _ in range(1 if ctx.quick else max(1, ctx.repeats)):
            _, t_svc = service_spans(pseudonymizer, known_cls, part)
            _, t_stock = stock_spans(analyzer, part)
            ratios.append(t_stock / t_svc)
        speed[code] = round(sorted(ratios)[len(ratios) // 2], 2)
    res.metrics["multilingual"] = {"service": svc, "stock": stock, "speedup_vs_stock": speed}
    types = list(GOALS)
    for code in cm.LOCALES:
        s = svc[code]
        for t in types:
            if t in s["recall"]:
                res.target(f"{code} recall {t}", s["recall"][t], ">=", GOALS[t])
        res.target(f"{code} author identifiers caught", s["author_recall"], ">=", 1.0)
        res.target(f"{code} ordinary words redacted (clean text)", s["over_redaction"], "<=", 0.03)
        res.target(f"{code} throughput vs stock (x)", speed[code], ">=", 4.0, "x")
