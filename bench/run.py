"""Benchmark harness entry point.

    python -m bench.run --quick                 # small run (< 5 minutes; CI runs it)
    python -m bench.run --full                  # headline figures (use a PostgreSQL DATABASE_URL)
    python -m bench.run --full --sections 2 --scale 10000,100000
    python -m bench.run --quick --sections 3,4 --repeats 5

Each section runs in its own child process (``--child N``) so that a crash, a missing piece of an app or
a timeout in one section is recorded in its JSON (``errors``) and the harness goes on with the next one.
Results: ``bench/results/<section>-<timestamp>.json`` per section, plus ``latest.json`` (full runs) or
``latest-quick.json`` (quick runs) holding the latest result of every section. Missed targets are reported,
never fatal: the exit status is non-zero only when the harness itself crashes (or with ``--strict`` when a
section recorded an error).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import common
from .common import REPO, RESULTS_DIR, SectionContext, SectionResult

# number -> (module, slug, quick time cap seconds, full time cap seconds)
SECTIONS: dict[int, tuple[str, str, int, int]] = {
    1: ("bench.s1_realtime", "s1-realtime", 110, 1800),
    2: ("bench.s2_rescore", "s2-rescore", 90, 3 * 3600),
    3: ("bench.s3_pseudonymize", "s3-pseudonymize", 45, 1800),
    4: ("bench.s4_cdnow", "s4-cdnow", 90, 900),  # 90: + the quality floors on CDNOW (issue 16)
    5: ("bench.s5_subject_audit", "s5-subject-audit", 80, 2 * 3600),
    6: ("bench.s6_import", "s6-import", 40, 1800),
    7: ("bench.s7_webhooks", "s7-webhooks", 90, 1800),
    8: ("bench.s8_sentiment", "s8-sentiment", 30, 600),  # issue 18: ticket sentiment per language
    11: ("bench.s7_schedule", "s11-schedule", 120, 3600),  # issue 16: scheduled rescore and retrain on the demo
    10: ("bench.s7_demo", "s10-demo-signal", 90, 1800),  # issue 16: the demo's out-of-time AUCs
    9: ("bench.s9_kpis", "s9-kpis", 240, 8 * 3600),  # issue 17: KPI query time
}
QUICK_BUDGET_SECONDS = 540  # every section (1-11) gets its quick run within CI time


def _parse_ints(value: str) -> list[int]:
    out = []
    for part in value.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        mult = 1
        if part.endswith("k"):
            mult, part = 1000, part[:-1]
        elif part.endswith("m"):
            mult, part = 1_000_000, part[:-1]
        out.append(int(float(part) * mult))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small scales, < 5 minutes (default)")
    mode.add_argument("--full", action="store_true", help="full scales (headline figures)")
    p.add_argument("--sections", default=",".join(str(n) for n in SECTIONS),
                   help="comma-separated section numbers (default all)")
    p.add_argument("--scale", default=None,
                   help="section-specific sizes, e.g. 10k,100k (section 2 customers, 5 decision records, "
                        "6 rows, 3 English texts, 1 seconds per load step, 7 customers,events)")
    p.add_argument("--repeats", type=int, default=3, help="repetitions of each timed measurement (default 3)")
    p.add_argument("--budget", type=int, default=None,
                   help="overall seconds; sections not started in time are skipped (quick default "
                        f"{QUICK_BUDGET_SECONDS})")
    p.add_argument("--time-limit", type=int, default=None, help="per-section cap in seconds (overrides default)")
    p.add_argument("--results-dir", default=None,
                   help="default bench/results (full runs, committed) or bench/results/quick (quick runs, ignored)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a section recorded an error")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="section option (JSON value), e.g. --option workers=4")
    # internal
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    return p


def _options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# ---------------------------------------------------------------------------------------------------------
# Child: run one section in this process
# ---------------------------------------------------------------------------------------------------------


def run_child(args: argparse.Namespace) -> int:
    number = args.child
    module_name, slug, _q, _f = SECTIONS[number]
    ctx = SectionContext(section=number, mode="full" if args.full else "quick",
                         scale=_parse_ints(args.scale) if args.scale else None, repeats=max(1, args.repeats),
                         options=_options(args.option))
    out = Path(args.out)
    ctx.options["_out"] = str(out)
    result: SectionResult | None = None
    try:
        module = importlib.import_module(module_name)
        result = module.run(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded, the harness goes on
        result = getattr(ctx, "result", None) or SectionResult(number, slug)
        result.error("section", exc)
    common.write_json(out, result.as_dict())
    return 0


# ---------------------------------------------------------------------------------------------------------
# Orchestrator
# ---------------------------------------------------------------------------------------------------------


def _run_section(number: int, args: argparse.Namespace, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run section ``number`` in a child process; returns (section result dict, process facts)."""
    module_name, slug, _q, _f = SECTIONS[number]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.run", "--child", str(number), "--out", str(out),
               "--repeats", str(args.repeats), "--full" if args.full else "--quick"]
        if args.scale:
            cmd += ["--scale", args.scale]
        for item in args.option:
            cmd += ["--option", item]
        env = dict(os.environ)
        env.setdefault("BENCH_ORIGINAL_DATABASE_URL", env.get("DATABASE_URL", ""))
        env["PYTHONUNBUFFERED"] = "1"
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                time.sleep(5)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, _kill)
        timer.start()
        try:
            _pid, status, rusage = os.wait4(proc.pid, 0)
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            raise
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        # The child's session may have left grandchildren (gunicorn, loaders): end them.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        facts = {"wall_seconds": round(wall, 2), "exit_code": proc.returncode,
                 "peak_rss_mb_harness_child": round(rusage.ru_maxrss / 1024.0, 1), "timeout_seconds": timeout}
        data: dict[str, Any]
        data = json.loads(out.read_text()) if out.exists() else SectionResult(number, slug).as_dict()
        if timed_out.is_set():
            data.setdefault("errors", []).append({"where": "harness", "error": "Timeout",
                                                  "message": f"section exceeded {timeout:.0f} s and was stopped"})
        elif proc.returncode != 0 or not out.exists():
            data.setdefault("errors", []).append({"where": "harness", "error": "ChildCrashed",
                                                  "message": f"exit code {proc.returncode}"})
        return data, facts


def _print_section(data: dict[str, Any]) -> None:
    print()
    print(f"=== Section {data['section']}: {data.get('title', '')} ===")
    tab = data.get("table") or {}
    if tab.get("rows"):
        print(common.table(tab["headers"], tab["rows"]))
    if data.get("targets"):
        print()
        print(common.targets_table(data["targets"]))
    for note in data.get("notes", []):
        print(f"  note: {note}")
    for err in data.get("errors", []):
        print(f"  ERROR in {err.get('where')}: {err.get('error')}: {err.get('message', '')[:300]}")


def run_all(args: argparse.Namespace) -> int:
    mode = "full" if args.full else "quick"
    wanted = _parse_ints(args.sections)
    unknown = [n for n in wanted if n not in SECTIONS]
    if unknown:
        print(f"unknown sections: {unknown}", file=sys.stderr)
        return 2
    from . import dbutil

    started = common.utc_now()
    meta = {
        "mode": mode,
        "date": started.isoformat(timespec="seconds"),
        "machine": common.machine_info(),
        "git": common.git_info(),
        "database": {"engine": dbutil.engine(), "version": dbutil.server_version()},
        "command": (f"DATABASE_URL={dbutil.original_database_url()} " if dbutil.engine() == "postgresql" else "")
        + "python -m bench.run " + " ".join(sys.argv[1:]),
        "repeats": args.repeats,
    }
    print(f"bench: {mode} run of sections {wanted} on {meta['database']['engine']} "
          f"{meta['database']['version']}, {meta['machine']['nproc']} CPUs, load {meta['machine']['loadavg_at_start']}",
          flush=True)
    budget = args.budget if args.budget is not None else (QUICK_BUDGET_SECONDS if mode == "quick" else None)
    import uuid

    from . import prepared

    # Trained databases are shared by the sections of one invocation; with BENCH_RUN_ID given by the caller
    # they are kept for later invocations with the same id (dropped otherwise).
    own_run_id = prepared.RUN_ID_ENV not in os.environ
    if own_run_id:
        os.environ[prepared.RUN_ID_ENV] = uuid.uuid4().hex
        _quietly(prepared.drop_caches)
    t_start = time.perf_counter()
    if set(wanted) & {1, 2, 5, 6, 7}:
        try:
            spent = dbutil.ensure_template()
            if spent:
                print(f"bench: migrated the template database in {spent:.0f} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - each database section will report its own failure
            print(f"bench: could not prepare the template database: {type(exc).__name__}: {str(exc)[:300]}",
                  file=sys.stderr, flush=True)
    results_dir = Path(args.results_dir) if args.results_dir else (RESULTS_DIR if mode == "full"
                                                                    else RESULTS_DIR / "quick")
    latest_path = results_dir / ("latest.json" if mode == "full" else "latest-quick.json")
    latest: dict[str, Any] = {}
    if latest_path.exists():
        try:
            latest = json.loads(latest_path.read_text())
        except json.JSONDecodeError:
            latest = {}
    latest.setdefault("sections", {})
    errors = 0
    for number in wanted:
        module_name, slug, cap_quick, cap_full = SECTIONS[number]
        cap = args.time_limit or (cap_quick if mode == "quick" else cap_full)
        if budget is not None:
            remaining = budget - (time.perf_counter() - t_start)
            if remaining < 15:
                data = SectionResult(number, slug).as_dict()
                data["errors"].append({"where": "harness", "error": "Skipped",
                                       "message": f"overall budget of {budget} s exhausted"})
                facts: dict[str, Any] = {"wall_seconds": 0}
                print(f"\n--- section {number} skipped: budget exhausted", flush=True)
                record = {**meta, "section_process": facts, "result": data}
                _print_section(data)
                errors += 1
                continue
            cap = min(cap, remaining)
        print(f"\n--- section {number} ({slug}), cap {cap:.0f} s", flush=True)
        data, facts = _run_section(number, args, cap)
        stamp = common.stamp()
        record = {**meta, "section_process": facts, "result": data}
        common.write_json(results_dir / f"{slug}-{mode}-{stamp}.json", record)
        latest["sections"][str(number)] = {"file": f"{slug}-{mode}-{stamp}.json", **record}
        latest["updated"] = common.utc_now().isoformat(timespec="seconds")
        common.write_json(latest_path, latest)
        _print_section(data)
        print(f"  ({facts['wall_seconds']:.0f} s)", flush=True)
        if data.get("errors"):
            errors += 1
    if own_run_id:
        _quietly(prepared.drop_caches)
    if mode == "quick" and set(wanted) & {1, 2, 5, 6, 7}:
        _quietly(dbutil.drop_namespace)  # sections stopped on a time limit may have left theirs behind
    # Summary of targets.
    print("\n=== Targets ===")
    all_targets = []
    for number in wanted:
        entry = latest["sections"].get(str(number))
        if entry and entry.get("mode") == mode:
            for t in entry["result"].get("targets", []):
                all_targets.append({**t, "name": f"[{number}] {t['name']}"})
    print(common.targets_table(all_targets) if all_targets else "(none measured)")
    missed = sum(1 for t in all_targets if t.get("met") is False and t.get("kind", "target") == "target")
    print(f"\nbench: {len(wanted)} section(s) in {time.perf_counter() - t_start:.0f} s; "
          f"{missed} target(s) missed; {errors} section(s) with errors; results in {results_dir}", flush=True)
    return 1 if (args.strict and errors) else 0


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the run
        print(f"bench: cleanup skipped ({type(exc).__name__})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        return run_child(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
