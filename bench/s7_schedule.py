"""Section 7: learning on a schedule on the demo -- the time of a scheduled rescore and a scheduled retrain.

On a fresh bench database: the demo population (``manage.py demo_seed``; quick 250 customers, full 2,000 =
the ``make run`` demo), a first model (``manage.py train``), then, in a fresh child process, each timed around
the job only:

* ``scoring.schedule.scheduled_rescore``: feature drift (PSI) of the current population against training, the
  retrain triggers (top-feature drift, new explicit outcomes), and a full rescore of every batch purpose;
* ``scoring.schedule.scheduled_retrain``: drift, a new version trained from the database and offered to the
  activation gate, and (when it goes live) a full rescore with it.
"""

from __future__ import annotations

from typing import Any

from . import dbutil
from .common import SectionContext, SectionResult, step, summarize
from .proc import run_worker

TITLE = "Learning on a schedule on the demo: scheduled rescore (with drift) and retrain"
DB = "schedule"


def task_prepare(args: dict[str, Any]) -> dict[str, Any]:
    """Worker side: the demo population and a first model (one process: start-up paid once)."""
    import io
    import time

    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("demo_seed", "--customers", str(args["customers"]), stdout=io.StringIO(), stderr=io.StringIO())
    t1 = time.perf_counter()
    call_command("train", stdout=io.StringIO(), stderr=io.StringIO())
    return {"demo_seed_seconds": t1 - t0, "first_train_seconds": time.perf_counter() - t1}


def task_jobs(args: dict[str, Any]) -> dict[str, Any]:
    """Worker side: a scheduled rescore, then a scheduled retrain, each timed around the job only, with their
    outcomes (no personal data)."""
    import time

    from scoring import schedule
    from scoring.models import CustomerScore, DriftReport

    out: dict[str, Any] = {}
    for job in ("rescore", "retrain"):
        t0 = time.perf_counter()
        run = (schedule.scheduled_rescore if job == "rescore" else schedule.scheduled_retrain)(trigger="manual")
        seconds = time.perf_counter() - t0
        report = DriftReport.objects.order_by("-computed_at", "-id").first()
        out[job] = {
            "seconds": seconds, "status": run.status if run is not None else "skipped",
            "activated": bool(run.activated) if run is not None else False,
            "retrain_trigger": (run.detail or {}).get("retrain_trigger") if run is not None else None,
            "drift_max_psi": report.max_psi if report is not None else None,
            "drift_population": report.population if report is not None else None,
            "scores": CustomerScore.objects.count(),
        }
    return out


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    customers = ctx.scale[0] if ctx.scale else (250 if ctx.quick else 2000)
    repeats = 1 if ctx.quick else max(1, min(ctx.repeats, 3))
    res.params.update({"customers": customers, "repeats": repeats, "database": dbutil.engine(),
                       "demo": "manage.py demo_seed (seed 42)", "mode_tasks": "in-process (embedded mode)"})
    timings: dict[str, list[float]] = {"rescore": [], "retrain": []}
    details: dict[str, Any] = {}
    with step(res, "prepare demo"):
        dbutil.provision(DB)
        prepared = run_worker(DB, "bench.s7_schedule.task_prepare", {"customers": customers}, timeout=3600)
        res.metrics["prepare"] = {k: prepared[k] for k in ("demo_seed_seconds", "first_train_seconds")}
    for rep in range(repeats):
        with step(res, f"jobs {rep + 1}"):
            r = run_worker(DB, "bench.s7_schedule.task_jobs", {}, timeout=3600)
            for job in ("rescore", "retrain"):
                timings[job].append(r[job]["seconds"])
                details[job] = {**{k: v for k, v in r[job].items() if k != "seconds"}, "peak_rss_mb": r["peak_rss_mb"]}
        ctx.save()
    res.headers = ["job", "median s", "min s", "max s", "customers", "status", "drift max PSI", "peak RSS MB"]
    for job, values in timings.items():
        if not values:
            continue
        s = summarize(values)
        d = details.get(job, {})
        res.metrics[job] = {"seconds": s, **d}
        res.rows.append([f"scheduled {job}", s["median"], s["min"], s["max"], customers, f"{d.get('status')}{', new model live' if d.get('activated') else ''}",
                         d.get("drift_max_psi"), d.get("peak_rss_mb")])
    res.notes.append("Each job runs in a fresh child process and is timed around the job only (start-up excluded). "
                     "A rescore includes the drift report; a retrain includes drift, training, the activation gate "
                     "and, when the new version goes live, a full rescore.")
    return res
