"""Render the figures of ``bench/results/latest.json`` into ``docs/BENCHMARKS.md``.

    python -m bench.report                 # rewrites the generated block of docs/BENCHMARKS.md
    python -m bench.report --stdout        # prints it instead

Only the block between ``<!-- bench:auto:start -->`` and ``<!-- bench:auto:end -->`` is generated; the
analysis around it (profiles of missed targets, what would fix them) is written by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import REPO, RESULTS_DIR, fmt

START, END = "<!-- bench:auto:start -->", "<!-- bench:auto:end -->"
DOC = REPO / "docs" / "BENCHMARKS.md"


def _md_table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(out)


def _targets(targets: list[dict[str, Any]]) -> str:
    rows = []
    for t in targets:
        met = t.get("met")
        if t.get("kind") == "comparison":
            status = "better" if met else ("not measured" if met is None else "worse")
        else:
            status = "**met**" if met else ("not measured" if met is None else "**MISSED**")
        rows.append([t["name"], t.get("value"), f"{t['op']} {fmt(t['limit'])} {t.get('unit', '')}".strip(),
                     "stated target" if t.get("kind", "target") == "target" else "vs baseline", status])
    return _md_table(["target", "measured", "goal", "kind", "status"], rows)


def _extra(section: int, r: dict[str, Any]) -> str:
    """Section-specific detail tables from the metrics."""
    m = r.get("metrics", {})
    if section == 3 and "accuracy" in m:
        acc = m["accuracy"]
        engines = [("service", "service"), ("stock", "stock"), ("stock_threshold_0_5", "stock @0.5")]
        types = sorted(set(acc["service"]["support"]) | set(acc["service"]["precision"]) | set(acc["stock"]["precision"]))
        rows = []
        for t in types:
            row: list[Any] = [t, acc["service"]["support"].get(t)]
            for key, _label in engines:
                row += [acc[key]["recall"].get(t), acc[key]["precision"].get(t)]
            rows.append(row)
        headers = ["entity type", "gold", *[f"{label} {w}" for _k, label in engines for w in ("recall", "precision")]]
        langs = sorted(acc["service"]["author_recall"])
        author = _md_table(["author identifiers recall", *langs],
                           [[label, *[acc[key]["author_recall"].get(lang) for lang in langs]] for key, label in engines])
        return _md_table(headers, rows) + "\n\n" + author
    return ""


def render(latest: dict[str, Any]) -> str:
    parts: list[str] = []
    sections = latest.get("sections", {})
    first = next(iter(sections.values()), None)
    if first:
        m = first["machine"]
        cpus = sorted({s["machine"]["cpu_model"] for s in sections.values()})
        cpu = cpus[0] if len(cpus) == 1 else "CPU model per section below"
        databases = sorted({f"{s['database']['engine']} {s['database']['version']}" for s in sections.values()
                            if s.get("database") and s["result"].get("params", {}).get("database")})
        parts.append(
            f"Machine: {m['nproc']} CPUs ({cpu}), {m['memory_gb']} GB RAM, Python {m['python']}; "
            f"database sections on {', '.join(databases) or 'none'}.")
    for key in sorted(sections, key=int):
        entry = sections[key]
        r = entry["result"]
        parts.append(f"### {key}. {r.get('title', '')}")
        parts.append(f"Command: `{entry.get('command', '')}` — run {entry.get('date', '')}, commit "
                     f"`{(entry.get('git') or {}).get('commit', '')[:12]}`"
                     f"{' (uncommitted changes)' if (entry.get('git') or {}).get('dirty') else ''}, "
                     f"{entry['machine']['cpu_model']}, load average at start {entry['machine'].get('loadavg_at_start')}; "
                     f"result file "
                     f"`bench/results/{entry.get('file', '')}`.")
        params = {k: v for k, v in r.get("params", {}).items() if k not in ("corpus",)}
        if params:
            parts.append("Parameters: " + ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in params.items()))
        table = r.get("table") or {}
        if table.get("rows"):
            parts.append(_md_table(table["headers"], table["rows"]))
        extra = _extra(int(key), r)
        if extra:
            parts.append(extra)
        if r.get("targets"):
            parts.append(_targets(r["targets"]))
        for note in r.get("notes", []):
            parts.append(f"- {note}")
        for err in r.get("errors", []):
            parts.append(f"- error in {err.get('where')}: `{err.get('error')}`: {err.get('message', '')[:300]}")
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report")
    p.add_argument("--latest", default=str(RESULTS_DIR / "latest.json"))
    p.add_argument("--stdout", action="store_true")
    args = p.parse_args(argv)
    latest = json.loads(Path(args.latest).read_text())
    block = render(latest)
    if args.stdout:
        sys.stdout.write(block)
        return 0
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{block}{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
