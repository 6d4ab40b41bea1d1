"""Shared plumbing of the benchmark harness: statistics, machine facts, result records, the table.

No Django imports here: the orchestrator (``bench.run``) and the pure sections (3, 4) use it too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
VAR_BENCH = REPO / "var" / "bench"


# ---------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------


def summarize(values: Iterable[float]) -> dict[str, Any]:
    """Median, quartiles, min and max of repeated measurements (n >= 1)."""
    xs = sorted(float(v) for v in values)
    if not xs:
        return {"n": 0}
    if len(xs) >= 2:
        q = statistics.quantiles(xs, n=4, method="inclusive")
        q1, q3 = q[0], q[2]
    else:
        q1 = q3 = xs[0]
    return {
        "n": len(xs),
        "median": statistics.median(xs),
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "min": xs[0],
        "max": xs[-1],
        "values": xs,
    }


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile (p in [0, 100]) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def repeat(fn: Callable[[], Any], *, times: int, setup: Callable[[], Any] | None = None) -> tuple[list[float], Any]:
    """Run ``fn`` ``times`` times (``setup`` before each, untimed); wall seconds of each run, last result."""
    durations: list[float] = []
    result: Any = None
    for _ in range(max(1, times)):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        result = fn()
        durations.append(time.perf_counter() - t0)
    return durations, result


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0


def peak_rss_self_mb() -> float:
    """Peak resident set size of this process in MiB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------------------
# Machine and run facts
# ---------------------------------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        nproc = os.cpu_count() or 0
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": nproc,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu_model or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stamp(now: dt.datetime | None = None) -> str:
    return (now or utc_now()).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------------------------------------
# Targets and section results
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One stated target: ``value <op> limit`` (op is "<=" or ">=")."""

    name: str
    value: float | None
    op: str
    limit: float
    unit: str = ""
    kind: str = "target"  # "target": stated in the issue; "comparison": against the baseline, no stated goal

    @property
    def met(self) -> bool | None:
        if self.value is None or self.value != self.value:  # None or NaN: not measured
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "op": self.op, "limit": self.limit, "unit": self.unit,
                "met": self.met, "kind": self.kind}


@dataclass
class SectionContext:
    """What a section gets from the orchestrator."""

    section: int
    mode: str  # "quick" | "full"
    scale: list[int] | None = None  # --scale override (section-specific meaning)
    repeats: int = 3
    options: dict[str, Any] = field(default_factory=dict)
    result: SectionResult | None = None

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def start(self, title: str) -> SectionResult:
        """Create the section's result (kept on the context so a crash still reports what was measured)."""
        self.result = SectionResult(self.section, title)
        self.result.params["mode"] = self.mode
        self.result.params["repeats"] = self.repeats
        self.save()
        return self.result

    def save(self) -> None:
        """Write what has been measured so far (a section stopped on timeout still reports it)."""
        out = self.options.get("_out")
        if out and self.result is not None:
            write_json(Path(out), self.result.as_dict())


@dataclass
class SectionResult:
    """Accumulates what a section measured. ``rows`` feed the printed table."""

    section: int
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    def target(self, name: str, value: float | None, op: str, limit: float, unit: str = "",
               kind: str = "target") -> Target:
        t = Target(name, value, op, limit, unit, kind)
        self.targets.append(t)
        return t

    def error(self, where: str, exc: BaseException) -> None:
        """Record a failure of one step (the section goes on with the next step)."""
        self.errors.append({
            "where": where,
            "error": f"{type(exc).__name__}",
            "message": str(exc)[:500],
            "traceback": "".join(traceback.format_exception(exc))[-4000:],
        })
        print(f"  ! {where}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr, flush=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "title": self.title,
            "params": self.params,
            "metrics": self.metrics,
            "targets": [t.as_dict() for t in self.targets],
            "table": {"headers": self.headers, "rows": self.rows},
            "notes": self.notes,
            "errors": self.errors,
        }


def step(result: SectionResult, where: str):
    """Context manager: run a step, record an exception as an error of ``where`` and continue."""
    return _Step(result, where)


class _Step:
    def __init__(self, result: SectionResult, where: str) -> None:
        self.result, self.where, self.ok = result, where, True

    def __enter__(self) -> _Step:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            return False
        self.ok = False
        self.result.error(self.where, exc)
        return True


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:
            return "nan"
        a = abs(value)
        if a == 0:
            return "0"
        if a >= 1000:
            return f"{value:,.0f}"
        if a >= 100:
            return f"{value:.0f}"
        if a >= 10:
            return f"{value:.1f}"
        if a >= 1:
            return f"{value:.2f}"
        if a >= 0.01:
            return f"{value:.3f}"
        return f"{value:.2e}"
    return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in cells:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)))
    return "\n".join(out)


def targets_table(targets: list[dict[str, Any]]) -> str:
    rows = []
    for t in targets:
        met = t.get("met")
        if t.get("kind") == "comparison":
            status = "better" if met else ("not measured" if met is None else "worse")
        else:
            status = "MET" if met else ("not measured" if met is None else "MISSED")
        rows.append([t["name"], t.get("value"), f"{t['op']} {fmt(t['limit'])} {t.get('unit', '')}".strip(), status])
    return table(["target", "measured", "goal", "status"], rows)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)
