"""Section 2: nightly batch rescoring scale curve, with lifetimes BG/NBD + Gamma-Gamma on the same data.

For each scale N (customers; ~10 orders each): a fresh bench database loaded by :mod:`bench.datagen`
(real per-customer keys, encrypted personal fields, blind indexes, consent ledger), ``manage.py train
--force`` (timed separately), then ``manage.py rescore --all --no-progress --workers W`` for W = 1 and 2
(``--option workers=1,2``), each on a fresh copy of the loaded database, in a fresh child process: both
batch purposes (``SCORING_BATCH_PURPOSES``), pass 1 (gate + population reference), pass 2 per chunk in W
processes (gate re-checked and held, features, all models, tiers, explanations, sealed details, decision
records, scores), with the chain sealed by the audit app in-process. Wall time, the child's peak RSS and
the peak summed RSS of all its processes are measured around it; ``audit_verify`` then checks the chain.
``--option profile=true``: py-spy samples the largest scale's first run (all processes).

In the same run, on the same database: ``lifetimes`` ``BetaGeoFitter`` + ``GammaGammaFitter`` fitted on the
same orders (read from the database, summarised with ``lifetimes.utils.summary_data_from_transaction_data``)
and used to predict 12-month purchases and value for every customer — what a data scientist would run
instead, without consent gating, tiers, explanations or audit.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from . import dbutil
from .common import VAR_BENCH, SectionContext, SectionResult, step, summarize
from .prepared import trained_database
from .proc import WorkerFailed, run_worker

TITLE = "Nightly batch rescoring scale curve (+ lifetimes on the same transactions)"
TARGET_SECONDS_1M = 180.0
TARGET_PEAK_MB = 4096.0
TARGET_GROWTH = 11.0
QUICK_SCALE = 1_000
#: The next-best-action sweep that a completed run queues (engagement, on a Celery worker in production)
#: would run inside the command here (tasks are eager in the bench): not part of the rescore measured.
NO_SWEEP = {"ENGAGEMENT_SCORE_PURPOSE": "none"}


def task_lifetimes(args: dict[str, Any]) -> dict[str, Any]:
    """Read the orders, summarise, fit BG/NBD + Gamma-Gamma, predict (each step timed)."""
    import warnings

    import numpy as np
    import pandas as pd
    from django.db import connection
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from profiles.models import Order

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    table = Order._meta.db_table
    cust: list[Any] = []
    day: list[Any] = []
    amount: list[Any] = []
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f'SELECT customer_id::text, (ordered_at AT TIME ZONE \'UTC\')::date, amount::float8 '  # noqa: S608
                        f'FROM "{table}"')
        else:
            cur.execute(f'SELECT customer_id, substr(ordered_at, 1, 10), amount FROM "{table}"')  # noqa: S608
        while True:
            rows = cur.fetchmany(200_000)
            if not rows:
                break
            c, d, a = zip(*rows, strict=True)
            cust.extend(c)
            day.extend(d)
            amount.extend(a)
    df = pd.DataFrame({"customer": cust, "date": pd.to_datetime(pd.Series(day)), "amount": np.asarray(amount, float)})
    del cust, day, amount
    out["read_seconds"] = time.perf_counter() - t0
    out["orders"] = len(df)
    t0 = time.perf_counter()
    observation_end = df["date"].max()
    summary = summary_data_from_transaction_data(df, "customer", "date", monetary_value_col="amount",
                                                 observation_period_end=observation_end, freq="D")
    out["summary_seconds"] = time.perf_counter() - t0
    out["customers"] = len(summary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        bgf = BetaGeoFitter(penalizer_coef=0.001).fit(summary["frequency"], summary["recency"], summary["T"])
        rep = summary[summary["frequency"] > 0]
        ggf = GammaGammaFitter(penalizer_coef=0.001).fit(rep["frequency"], rep["monetary_value"])
        out["fit_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(365, summary["frequency"],
                                                                            summary["recency"], summary["T"])
        clv = ggf.customer_lifetime_value(bgf, summary["frequency"], summary["recency"], summary["T"],
                                          summary["monetary_value"], time=12, freq="D", discount_rate=0.01)
        out["predict_seconds"] = time.perf_counter() - t0
    out["predicted_purchases_total"] = float(np.nansum(purchases))
    out["clv_mean"] = float(np.nanmean(clv))
    out["fit_predict_seconds"] = out["fit_seconds"] + out["predict_seconds"]
    out["total_seconds"] = out["read_seconds"] + out["summary_seconds"] + out["fit_predict_seconds"]
    return out


def task_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Progress of the rescore runs in this database (after a run was stopped at its time limit)."""
    from django.utils import timezone

    from scoring import selectors

    return {"runs": selectors.rescore_run_list(limit=10), "now": timezone.now().isoformat()}


def _marker(name: str):
    return VAR_BENCH / f"{dbutil.db_name(name)}.loaded.json"


def _prepare(ctx: SectionContext, n: int, base: tuple[str, int, dict[str, Any]] | None) -> tuple[str, dict[str, Any]]:
    """Database ``rescore_<n>`` with n customers and a trained, active model.

    With ``base`` = (database, customers, facts) — a copy of the previous scale's database taken before it
    was rescored — only the extra customers are loaded and the model trained there is kept (quick mode)."""
    name = f"rescore_{n}"
    facts: dict[str, Any] = {}
    fingerprint = {"customers": n, "seed": 42, "migrations": dbutil.migrations_fingerprint(), "engine": dbutil.engine()}
    marker = _marker(name)
    if ctx.options.get("reuse_databases") and dbutil.exists(name) and marker.exists() \
            and json.loads(marker.read_text()).get("fingerprint") == fingerprint:
        facts = json.loads(marker.read_text())["facts"]
        facts["reused"] = True
        return name, facts
    marker.unlink(missing_ok=True)
    start = 0
    retrain_max = int(ctx.options.get("retrain_max", 0 if ctx.quick else 100_000))
    if base is None:
        facts.update(trained_database(name, n, progress=not ctx.quick))
    else:
        base_name, start, base_facts = base
        if base_name != name:
            dbutil.clone(base_name, name)
            dbutil.drop(base_name)
        facts["loaded_on_top_of"] = start
        load = run_worker(name, "load", {"customers": n - start, "start": start, "progress": not ctx.quick},
                          timeout=4 * 3600)
        facts["load"] = {k: load[k] for k in ("seconds", "seconds_crypto", "counts", "index_seconds", "peak_rss_mb")}
        facts["load"]["customers_per_s"] = (n - start) / load["seconds"]
        totals = dict(base_facts.get("totals") or {})
        for key, value in load["counts"].items():
            totals[key] = totals.get(key, 0) + value
        facts["totals"] = totals
        ctx.save()
        if n <= retrain_max:
            train = run_worker(name, "command", {"argv": ["train", "--force", "--seed", "0"]}, timeout=3 * 3600)
            facts["train"] = {"seconds": train["seconds"], "peak_rss_mb": train["peak_rss_mb"], "customers": n,
                              "stdout": train.get("stdout", "")[-800:]}
        else:
            facts["train"] = {**base_facts.get("train", {}), "inherited": True}
    facts["database_bytes_after_load"] = dbutil.database_size(name)
    marker.write_text(json.dumps({"fingerprint": fingerprint, "facts": facts}))
    return name, facts


def _partial(name: str, n: int, limit: float) -> dict[str, Any]:
    import datetime as dt

    info = run_worker(name, "bench.s2_rescore.task_runs", {}, timeout=300)
    runs = info["runs"]
    done = sum(int(r.get("done") or 0) for r in runs)
    purposes = max(1, len({r.get("purpose") for r in runs}))
    total = n * max(purposes, 2)
    starts = [dt.datetime.fromisoformat(str(r["started_at"])) for r in runs if r.get("started_at")]
    elapsed = (dt.datetime.fromisoformat(info["now"]) - min(starts)).total_seconds() if starts else limit
    fraction = done / total if total else 0.0
    return {"limit_seconds": limit, "customer_purposes_done": done, "customer_purposes_total": total,
            "fraction": fraction, "elapsed_seconds": elapsed,
            "estimated_seconds": (elapsed / fraction) if fraction > 0 else None,
            "runs": [{k: r.get(k) for k in ("purpose", "status", "total", "done", "scored", "started_at")}
                     for r in runs]}


def _rescore(ctx: SectionContext, res: SectionResult, entry: dict[str, Any], name: str, n: int, workers: int,
             repeats: int, *, profile: bool) -> None:
    """``rescore --all`` with ``workers`` scoring processes, each repeat on a fresh copy of the loaded
    database ``name`` (a rescore writes scores and decisions: a second one on the same data would not be
    the nightly run), then ``audit_verify`` on the result. With ``profile``, py-spy samples the first run
    (all processes, ``--subprocesses``) and its summary goes to ``bench/results/profiles``."""
    by = entry.setdefault("by_workers", {}).setdefault(str(workers), {})
    runs: list[dict[str, Any]] = []
    limit = float(ctx.options.get("rescore_timeout_1m", 1500) if n >= 1_000_000
                  else ctx.options.get("rescore_timeout", 4 * 3600))
    argv = ["rescore", "--all", "--no-progress", "--workers", str(workers)]
    for attempt in range(repeats):
        copy = f"{name}_w{workers}"
        dbutil.clone(name, copy)
        spy: dict[str, Any] = {}

        def attach(pid: int, spy: dict[str, Any] = spy, attempt: int = attempt) -> None:
            if profile and attempt == 0:
                from .profiling import profile_path, pyspy_start

                spy["raw"] = profile_path(f"s2-rescore-{n}-w{workers}.raw")
                spy["proc"] = pyspy_start(pid, limit, spy["raw"], subprocesses=True, rate=20)

        from .fleet import Sampler

        postgres = Sampler({}, database=dbutil.db_name(copy))
        try:
            t0 = time.perf_counter()
            try:
                postgres.start()
                r = run_worker(copy, "command", {"argv": argv}, timeout=limit, on_start=attach, tree_rss=True,
                               env_extra=NO_SWEEP)
            except WorkerFailed:
                if time.perf_counter() - t0 < limit:
                    raise
                by["rescore_partial"] = _partial(copy, n, limit)
                part = by["rescore_partial"]
                est = part.get("estimated_seconds")
                res.notes.append(f"{n:,} customers, {workers} worker(s): rescore stopped at its {limit:.0f} s limit "
                                 f"with {part['fraction'] * 100:.1f} % of the customer-purposes scored"
                                 + (f"; at that pace the whole run would take ~{est:,.0f} s" if est else ""))
                ctx.save()
                return
            finally:
                postgres.stop()
                if spy.get("proc") is not None:
                    spy["proc"].wait(timeout=120)
                    from .profiling import summarize_collapsed

                    text = summarize_collapsed(spy["raw"], top=40)
                    out = spy["raw"].with_suffix(".txt")
                    out.write_text(f"py-spy record --subprocesses --rate 20, manage.py {' '.join(argv)}, {n:,} "
                                   f"customers\n\n{text}")
                    by["profile"] = str(out.relative_to(out.parents[2]))
                    by["profile_samples"] = _samples(spy["raw"])
                    spy["raw"].unlink(missing_ok=True)
            runs.append({"seconds": r["seconds"], "wall_seconds": r["wall_seconds"], "peak_rss_mb": r["peak_rss_mb"],
                         "peak_tree_rss_mb": r.get("peak_tree_rss_mb"), "cpu_seconds": r.get("cpu_seconds"),
                         "postgres_cpu_seconds": postgres.cpu_seconds("postgres", since_first=False),
                         **_planning(r.get("stdout", "")), "chunks_done_after_s": _chunk_timeline(copy),
                         "stdout": r.get("stdout", "")[-600:]})
            if attempt == 0:
                try:
                    verify = run_worker(copy, "command", {"argv": ["audit_verify", "--json"]}, timeout=limit)
                except WorkerFailed as exc:  # exit 1: the chain does not verify
                    by["audit_verify"] = {"result": "BROKEN", "error": str(exc)[-500:]}
                else:
                    report = json.loads(verify.get("stdout", "{}").strip().splitlines()[-1])
                    by["audit_verify"] = {"result": "intact" if report.get("ok") else "BROKEN",
                                          "checked": report.get("checked"), "seconds": verify["seconds"]}
        finally:
            dbutil.drop(copy)
        by["rescore_runs"] = runs
        ctx.save()
    if runs:
        by["rescore_seconds"] = summarize(x["seconds"] for x in runs)
        by["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs)
        by["peak_tree_rss_mb"] = max(x["peak_tree_rss_mb"] or 0 for x in runs)
        by["customers_per_s"] = n / by["rescore_seconds"]["median"]
        by["python_cpu_ms_per_customer"] = 1000.0 * min(x["cpu_seconds"] or 0 for x in runs) / n
        by["postgres_cpu_ms_per_customer"] = 1000.0 * min(x["postgres_cpu_seconds"] for x in runs) / n


def _rescore_celery(ctx: SectionContext, res: SectionResult, entry: dict[str, Any], name: str, n: int,
                    workers: int, repeats: int) -> None:
    """``rescore --all --async`` with ``workers`` real Celery worker processes (``celery -A config worker -c 1``,
    :class:`bench.fleet.Fleet`) on a fresh copy of the loaded database: the command plans the runs (pass 1,
    in its own process), queues one task per chunk and polls the run rows until every run is completed; the
    workers take the chunks (and the audit chain's sealing, queued on commit, as in production). Measured:
    the command's wall time (the workers were started and answered a ping before), the CPU of the command
    process and of every worker process (``/proc``), the CPU of the database's PostgreSQL backends, the peak
    summed RSS of all those Python processes, the time until the workers are idle afterwards (the last seals);
    then ``audit_verify`` and the workers stopped (warm shutdown). Results under ``celery_by_workers``."""
    from . import fleet

    by = entry.setdefault("celery_by_workers", {}).setdefault(str(workers), {})
    broker = str(ctx.options.get("celery_broker_url") or os.environ.get("CELERY_BROKER_URL") or "")
    cache = str(ctx.options.get("celery_cache_url") or os.environ.get("CACHE_URL") or broker)
    if not broker or not fleet.redis_reachable(broker):
        res.notes.append(f"celery executor skipped ({workers} worker(s)): no reachable Redis broker "
                         "(CELERY_BROKER_URL or --option celery_broker_url=redis://...)")
        return
    runs: list[dict[str, Any]] = []
    limit = float(ctx.options.get("rescore_timeout_1m", 1500) if n >= 1_000_000
                  else ctx.options.get("rescore_timeout", 4 * 3600))
    argv = ["rescore", "--all", "--no-progress", "--async"]
    for attempt in range(repeats):
        copy = f"{name}_c{workers}"
        dbutil.clone(name, copy)
        workers_fleet = fleet.Fleet(copy, workers, broker=broker, cache=cache, log_dir=dbutil.work_dir("logs"),
                                    env_extra=NO_SWEEP)
        try:
            start_seconds = workers_fleet.start()
            command_pid: list[int] = []
            sampler = fleet.Sampler({"command": lambda pids=command_pid: pids, "workers": workers_fleet.pids},
                                    database=dbutil.db_name(copy)).start()
            try:
                r = run_worker(copy, "command", {"argv": argv}, timeout=limit, on_start=command_pid.append,
                               env_extra={**NO_SWEEP, **{k: v for k, v in workers_fleet.env.items()
                                                         if k.startswith("BENCH_CELERY") or k == "BENCH_CACHE_URL"}})
                drain = workers_fleet.wait_idle()
            finally:
                sampler.stop()
            worker_cpu = sampler.cpu_seconds("workers")
            command_cpu = float(r.get("cpu_seconds") or 0.0)
            runs.append({"seconds": r["seconds"], "wall_seconds": r["wall_seconds"], "drain_seconds": round(drain, 2),
                         "workers_start_seconds": round(start_seconds, 2), "command_cpu_seconds": command_cpu,
                         "workers_cpu_seconds": worker_cpu, "cpu_seconds": round(command_cpu + worker_cpu, 2),
                         "postgres_cpu_seconds": sampler.cpu_seconds("postgres", since_first=False),
                         "peak_tree_rss_mb": sampler.peak_mb(), "peak_workers_rss_mb": sampler.peak_mb("workers"),
                         "peak_rss_mb": r["peak_rss_mb"], **_planning(r.get("stdout", "")),
                         "chunks_done_after_s": _chunk_timeline(copy), "stdout": r.get("stdout", "")[-600:]})
            if attempt == 0:
                try:
                    verify = run_worker(copy, "command", {"argv": ["audit_verify", "--json"]}, timeout=limit)
                except WorkerFailed as exc:
                    by["audit_verify"] = {"result": "BROKEN", "error": str(exc)[-500:]}
                else:
                    report = json.loads(verify.get("stdout", "{}").strip().splitlines()[-1])
                    by["audit_verify"] = {"result": "intact" if report.get("ok") else "BROKEN",
                                          "checked": report.get("checked"), "seconds": verify["seconds"]}
        except (WorkerFailed, RuntimeError) as exc:
            by["error"] = str(exc)[-800:]
            res.notes.append(f"{n:,} customers, celery executor, {workers} worker(s): {str(exc)[:300]}")
            raise
        finally:
            by["worker_exit_codes"] = workers_fleet.stop()
            dbutil.drop(copy)
        by["rescore_runs"] = runs
        ctx.save()
    if runs:
        by["rescore_seconds"] = summarize(x["seconds"] for x in runs)
        by["peak_rss_mb"] = max(x["peak_rss_mb"] for x in runs)
        by["peak_tree_rss_mb"] = max(x["peak_tree_rss_mb"] for x in runs)
        by["customers_per_s"] = n / by["rescore_seconds"]["median"]
        by["python_cpu_ms_per_customer"] = 1000.0 * min(x["cpu_seconds"] for x in runs) / n
        by["postgres_cpu_ms_per_customer"] = 1000.0 * min(x["postgres_cpu_seconds"] for x in runs) / n


def _planning(stdout: str) -> dict[str, float]:
    """The command's "Planned N customers in C chunks: W s (P s CPU)" line: pass 1 (W: from the command's start
    to the last chunk planned, by whichever processes; P: the command process's CPU only)."""
    import re

    m = re.search(r"Planned \d+ customers in \d+ chunks: ([\d.]+) s \(([\d.]+) s CPU\)", stdout)
    return {"planning_seconds": float(m.group(1)), "planning_cpu_seconds": float(m.group(2))} if m else {}


def _chunk_timeline(copy: str) -> list[float]:
    """Seconds from the runs' start (planning included) to each chunk written, in order (PostgreSQL only):
    where a run's wall time went (the serial plan, then the chunks as the workers finished them)."""
    if dbutil.engine() != "postgresql":
        return []
    try:
        rows = dbutil.pg_admin(
            "SELECT DISTINCT extract(epoch FROM c.finished_at - r.started_at)::float8 FROM scoring_rescorechunk c "
            "JOIN scoring_rescorerun r ON r.id = c.run_id WHERE c.done ORDER BY 1", dbname=dbutil.db_name(copy))
    except Exception:  # noqa: BLE001 - a diagnostic only
        return []
    return [round(float(r[0]), 2) for r in rows]


def _samples(raw: Any) -> int:
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        _, _, count = line.rpartition(" ")
        total += int(count) if count.isdigit() else 0
    return total


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    # Quick: one small scale (load + train + two rescores + audit_verify + lifetimes fit in the 90 s cap
    # on the loaded CI machine; 1,000 + 3,000 did not). The curve is the full run's.
    scales = ctx.scale or ([QUICK_SCALE] if ctx.quick else [10_000, 100_000, 1_000_000])
    big_repeats = int(ctx.options.get("rescore_repeats_1m", 1))
    # quick: the two-process path only (it forks, so it is the one worth exercising in CI); each worker
    # count costs two fresh processes (rescore, audit_verify) with their start-up
    worker_counts = [int(w) for w in str(ctx.options.get("workers", "2" if ctx.quick else "1,2")).split(",")]
    # fork: ``rescore --workers W`` (W forked scoring processes); celery: ``rescore --async`` with W real
    # Celery workers (``--option executor=fork,celery`` measures both, side by side)
    executors = [e.strip() for e in str(ctx.options.get("executor", "fork")).split(",") if e.strip()]
    unknown = sorted(set(executors) - {"fork", "celery"})
    if unknown:
        raise ValueError(f"unknown executor(s) {unknown}: fork, celery")
    res.params.update({"scales": scales, "orders_per_customer": "~10 (1 + negative binomial, mean 9)",
                       "database": dbutil.engine(), "purposes": "SCORING_BATCH_PURPOSES (both batch purposes)",
                       "command": "manage.py rescore --all --no-progress --workers W (each on a fresh copy of "
                                  "the loaded database; the engagement sweep a completed run queues is not "
                                  "measured), then manage.py audit_verify",
                       "workers": worker_counts, "executors": executors})
    if "celery" in executors:
        res.params["command_celery"] = ("manage.py rescore --all --no-progress --async, W Celery worker processes "
                                        "(celery -A config worker -c 1, Redis broker) started and pinged before; "
                                        "timed until every run is completed, then audit_verify")
    res.headers = ["customers", "workers", "orders", "load s", "train s", "rescore s (median)", "IQR s",
                   "customers/s", "vs 180 s at 1M", "Python CPU ms/customer", "peak MB (all processes)",
                   "audit_verify", "lifetimes total s", "executor", "PostgreSQL CPU ms/customer"]
    curve: dict[int, dict[str, Any]] = {}
    incremental = bool(ctx.options.get("incremental", True))
    res.params["incremental"] = incremental
    base: tuple[str, int, dict[str, Any]] | None = None
    scales = sorted(scales)
    for i, n in enumerate(scales):
        entry: dict[str, Any] = {"customers": n}
        curve[n] = entry
        res.metrics["curve"] = {str(k): v for k, v in curve.items()}
        with step(res, f"{n} customers: prepare") as prep:
            name, facts = _prepare(ctx, n, base)
            entry.update(facts)
            base = None
            if incremental and i + 1 < len(scales):
                # Snapshot before rescoring: the next scale starts from here (no new training).
                snapshot = f"rescore_{scales[i + 1]}"
                dbutil.clone(name, snapshot)
                base = (snapshot, n, facts)
            ctx.save()
        if not prep.ok:
            continue
        if n < int(ctx.options.get("rescore_from", 0)):  # a scale only built as the base of a larger one
            res.notes.append(f"{n:,} customers: built only (--option rescore_from={ctx.options['rescore_from']})")
            continue
        # quick: one rescore per worker count (the harness's quick default of 3 repeats x 2 worker counts,
        # each a fresh process with its start-up, was most of the overrun); the full run keeps --repeats
        repeats = int(ctx.options.get("rescore_repeats", 1 if ctx.quick else ctx.repeats)) if n <= 100_000 \
            else big_repeats
        for workers in worker_counts:
            if "fork" in executors:
                with step(res, f"{n} customers: rescore, {workers} worker(s)"):
                    _rescore(ctx, res, entry, name, n, workers, repeats, profile=bool(ctx.options.get("profile"))
                             and n == max(scales) and workers == worker_counts[0])
            if "celery" in executors:
                with step(res, f"{n} customers: rescore, {workers} Celery worker(s)"):
                    _rescore_celery(ctx, res, entry, name, n, workers, repeats)
        if not ctx.options.get("lifetimes", not ctx.quick):  # the comparison is the full run's
            res.notes.append("lifetimes not run (quick, or --option lifetimes=false)")
        else:
            with step(res, f"{n} customers: lifetimes"):
                lt = run_worker(name, "bench.s2_rescore.task_lifetimes", {}, timeout=3 * 3600)
                entry["lifetimes"] = {k: v for k, v in lt.items() if k != "stdout_tail"}
                ctx.save()
        entry["database_bytes"] = dbutil.database_size(name)
        if not ctx.options.get("keep_databases") and not ctx.options.get("reuse_databases"):
            dbutil.drop(name)
        ctx.save()

    for n, e in curve.items():
        lt = e.get("lifetimes") or {}
        train = e.get("train") or {}
        executor_rows = [("fork", kv) for kv in (e.get("by_workers") or {}).items()]
        executor_rows += [("celery", kv) for kv in (e.get("celery_by_workers") or {}).items()]
        for executor, (workers, w) in sorted(executor_rows, key=lambda x: (int(x[1][0]), x[0] != "fork")):
            med = (w.get("rescore_seconds") or {}).get("median")
            projected = med * 1_000_000 / n if med else None
            res.rows.append([n, int(workers), (e.get("totals") or {}).get("orders"), (e.get("load") or {}).get("seconds"),
                             None if train.get("inherited") else train.get("seconds"), med,
                             (w.get("rescore_seconds") or {}).get("iqr"), w.get("customers_per_s"),
                             (f"{projected:,.0f} s" + ("" if n == 1_000_000 else " (linear from here)"))
                             if projected else None, w.get("python_cpu_ms_per_customer"),
                             w.get("peak_tree_rss_mb"), (w.get("audit_verify") or {}).get("result"),
                             lt.get("total_seconds"), executor, w.get("postgres_cpu_ms_per_customer")])
    for workers in worker_counts:
        key = str(workers)
        measured = sorted(n for n, e in curve.items() if ((e.get("by_workers") or {}).get(key) or {}).get(
            "rescore_seconds"))

        def seconds(n: int, key: str = key) -> float:
            return float(curve[n]["by_workers"][key]["rescore_seconds"]["median"])

        if 100_000 in measured and 1_000_000 in measured:
            ratio = seconds(1_000_000) / seconds(100_000)
            res.metrics[f"growth_100k_to_1m_w{workers}"] = ratio
            res.target(f"growth 100k -> 1M, {workers} worker(s)", ratio, "<=", TARGET_GROWTH, "x")
        elif len(measured) >= 2:
            a, b = measured[-2], measured[-1]
            res.metrics[f"growth_{a}_to_{b}_w{workers}"] = seconds(b) / seconds(a)
            res.notes.append(f"growth {a:,} -> {b:,}, {workers} worker(s): {seconds(b) / seconds(a):.1f}x "
                             f"(linear = {b / a:.0f}x)")
        partial = ((curve.get(1_000_000) or {}).get("by_workers") or {}).get(key, {}).get("rescore_partial")
        if 1_000_000 in measured:
            res.target(f"1M customers rescored, {workers} worker(s) (s)", seconds(1_000_000), "<=",
                       TARGET_SECONDS_1M, "s")
        elif partial and partial.get("estimated_seconds"):
            res.target(f"1M customers rescored, {workers} worker(s) (s, estimated from the part done before the "
                       "time limit)", partial["estimated_seconds"], "<=", TARGET_SECONDS_1M, "s")
        elif measured:
            top = measured[-1]
            estimate = seconds(top) * 1_000_000 / top
            res.metrics[f"estimated_1m_seconds_linear_w{workers}"] = estimate
            res.target(f"1M customers, {workers} worker(s) (LINEAR EXTRAPOLATION from {top:,})", estimate, "<=",
                       TARGET_SECONDS_1M, "s")
        if measured:
            top = measured[-1]
            res.target(f"peak memory at {top:,} customers, {workers} worker(s), all processes",
                       curve[top]["by_workers"][key]["peak_tree_rss_mb"], "<=", TARGET_PEAK_MB, "MB")
    _celery_targets(res, curve, worker_counts)
    return res


def _celery_targets(res: SectionResult, curve: dict[int, dict[str, Any]], worker_counts: list[int]) -> None:
    """The Celery executor's figures beside the goals (keys apart from the fork executor's): the largest
    scale's time extrapolated linearly to 1M (or measured there), peak memory, and the scale-out ratio of
    the largest worker count against one worker (wall time; and the CPU it cost, all processes)."""
    for workers in worker_counts:
        key = str(workers)
        measured = sorted(n for n, e in curve.items()
                          if ((e.get("celery_by_workers") or {}).get(key) or {}).get("rescore_seconds"))
        if not measured:
            continue
        top = measured[-1]
        w = curve[top]["celery_by_workers"][key]
        seconds = float(w["rescore_seconds"]["median"])
        if top == 1_000_000:
            res.target(f"1M customers rescored, {workers} Celery worker(s) (s)", seconds, "<=", TARGET_SECONDS_1M, "s")
        else:
            estimate = seconds * 1_000_000 / top
            res.metrics[f"estimated_1m_seconds_linear_celery_w{workers}"] = estimate
            res.target(f"1M customers, {workers} Celery worker(s) (LINEAR EXTRAPOLATION from {top:,})", estimate,
                       "<=", TARGET_SECONDS_1M, "s")
        res.target(f"peak memory at {top:,} customers, {workers} Celery worker(s), all processes",
                   w["peak_tree_rss_mb"], "<=", TARGET_PEAK_MB, "MB")
    if len(worker_counts) >= 2:
        lo, hi = str(min(worker_counts)), str(max(worker_counts))
        for n, e in sorted(curve.items()):
            by = e.get("celery_by_workers") or {}
            a, b = by.get(lo) or {}, by.get(hi) or {}
            if a.get("rescore_seconds") and b.get("rescore_seconds"):
                speedup = a["rescore_seconds"]["median"] / b["rescore_seconds"]["median"]
                cpu = b["python_cpu_ms_per_customer"] / a["python_cpu_ms_per_customer"]
                res.metrics[f"celery_speedup_{n}_w{hi}_vs_w{lo}"] = speedup
                res.metrics[f"celery_cpu_ratio_{n}_w{hi}_vs_w{lo}"] = cpu
                res.notes.append(f"{n:,} customers, Celery: {hi} workers vs {lo}: {speedup:.2f}x faster (wall), "
                                 f"{cpu:.2f}x the Python CPU per customer")
