"""Section 8: offline ticket sentiment per language (issue 18 §4) — macro-F1 against two baselines, and cost.

Data: ``bench/data/sentiment/<lang>.jsonl`` (210 labelled customer-service texts per language, 70 per label;
how they were made: ``bench/data/sentiment/README.md``). Nothing was tuned on them.

* model: ``profiles.sentiment.sentiment_analyze(text, language=lang)`` (the labels the service stores);
* majority-class baseline: every text gets the set's most frequent label (ties: the first of
  negative/neutral/positive) — on a balanced three-class set its macro-F1 is 1/6;
* plain lexicon baseline: the same language's word list, unweighted: (#positive words - #negative words),
  > 0 positive, < 0 negative, 0 neutral; no negation, intensifiers, contrast or thresholds.

Cost: analyser build time per language (once per process) and texts per second through the ingestion hook's
work per ticket (language detection with the locale as prior, then the analyser), median of the repetitions.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .common import SectionContext, SectionResult, step, summarize

TITLE = "Ticket sentiment per language: macro-F1 vs majority and plain-lexicon baselines"
DATA = Path(__file__).resolve().parent / "data" / "sentiment"
LANGUAGES = ("en", "de", "nl", "pl", "fi", "sv")
LABELS = ("negative", "neutral", "positive")


def load(language: str) -> list[dict[str, str]]:
    with (DATA / f"{language}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def macro_f1(gold: list[str], predicted: list[str]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(g == p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, predicted, strict=True))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def majority(gold: list[str]) -> list[str]:
    counts = Counter(gold)
    top = max(LABELS, key=lambda label: (counts[label], -LABELS.index(label)))
    return [top] * len(gold)


def plain_lexicon(analyzer: Any, texts: list[str]) -> list[str]:
    out = []
    for text in texts:
        polarity = analyzer.plain_polarity(text)
        out.append("positive" if polarity > 0 else "negative" if polarity < 0 else "neutral")
    return out


def evaluate(language: str) -> dict[str, Any]:
    from profiles.sentiment import analyzer_get, sentiment_analyze

    rows = load(language)
    gold = [r["label"] for r in rows]
    texts = [r["text"] for r in rows]
    t0 = time.perf_counter()
    analyzer = analyzer_get(language)
    build = time.perf_counter() - t0
    model = [sentiment_analyze(t, language=language).label for t in texts]
    return {
        "n": len(rows), "balance": dict(sorted(Counter(gold).items())),
        "model": macro_f1(gold, model), "majority": macro_f1(gold, majority(gold)),
        "lexicon": macro_f1(gold, plain_lexicon(analyzer, texts)),
        "accuracy": sum(g == p for g, p in zip(gold, model, strict=True)) / len(gold),
        "build_seconds": build,
    }


def throughput(language: str, repeats: int) -> dict[str, Any]:
    from profiles.language import language_detect
    from profiles.sentiment import sentiment_analyze

    texts = [r["text"] for r in load(language)]
    language_detect(texts[0], prior=language)  # the detector's model loads once per process: not timed
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for text in texts:
            sentiment_analyze(text, language=language_detect(text, prior=language))
        rates.append(len(texts) / (time.perf_counter() - t0))
    return summarize(rates)


def run(ctx: SectionContext) -> SectionResult:
    result = SectionResult(8, TITLE)
    result.params = {"languages": list(LANGUAGES), "repeats": ctx.repeats if ctx.mode == "full" else 1}
    result.headers = ["language", "texts (neg/neu/pos)", "model macro-F1", "majority", "plain lexicon",
                      "accuracy", "texts/s (detect+score)", "build s"]
    repeats = result.params["repeats"]
    for language in LANGUAGES:
        with step(result, language):
            ev = evaluate(language)
            rate = throughput(language, repeats)
            result.metrics[language] = {**ev, "texts_per_second": rate}
            balance = ev["balance"]
            result.rows.append([
                language, f"{ev['n']} ({balance.get('negative', 0)}/{balance.get('neutral', 0)}/"
                          f"{balance.get('positive', 0)})",
                f"{ev['model']:.3f}", f"{ev['majority']:.3f}", f"{ev['lexicon']:.3f}", f"{ev['accuracy']:.3f}",
                f"{rate.get('median', 0):.0f}", f"{ev['build_seconds']:.2f}",
            ])
            best = max(ev["majority"], ev["lexicon"])
            result.target(f"{language}: macro-F1 beats both baselines (n={ev['n']})", round(ev["model"], 4),
                          ">=", round(best + 0.001, 4))
    result.notes.append("Sets written and labelled by the engineer, parallel across languages, balanced, "
                        "clear-cut messages: an upper bound for a live queue (bench/data/sentiment/README.md).")
    return result
