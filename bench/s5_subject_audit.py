"""Section 5: subject requests and audit.

a. Export and erasure of a customer with 10k events (orders, interactions, tickets — 100 with free text
   kept encrypted —, reviews, NPS, referrals, ~200 decision records), through ``subject_rights.services``:
   * export  = ``request_submit(type="access", channel="dpo")`` end to end: verification, the export task
     (eager, on commit), the JSON document validated against the schema, encrypted and written;
   * erasure = ``request_execute`` of a verified erasure request: legal-hold check, scores, consent ledger,
     profile crypto-shred and tombstone, erasure ledger, governance record (one transaction).
   Each repetition erases a different (identical) heavy customer.
b. DPO decision search over N decision records (10M full, 100k quick): ``audit.selectors.decision_list``
   with the console's filters (pseudonym, date range, decision type, model version, requester, tier,
   purpose, and the next page), first page of 50, each query timed; p95 over all queries.
c. ``manage.py audit_verify`` over M chained records (1M full, 50k quick) with signed checkpoints every
   ``AUDIT_CHECKPOINT_EVERY_N`` links.

Decision records for b and c are written with COPY, hashed and linked by the audit app's own functions
(:mod:`bench.auditgen`).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from . import dbutil
from .common import SectionContext, SectionResult, percentile, step, summarize
from .proc import run_worker

TITLE = "Subject requests (export, erasure) and audit (decision search, audit_verify)"


# ---------------------------------------------------------------------------------------------------------
# Worker tasks (run inside a Django child process on a bench database)
# ---------------------------------------------------------------------------------------------------------


def task_subject(args: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings  # noqa: F401 - Django is set up by the worker

    from subject_rights import services as sr
    from subject_rights.models import Export

    from .datagen import load_heavy_customer

    events = int(args["events"])
    repeats = int(args["repeats"])
    out: dict[str, Any] = {"events": events}
    t0 = time.perf_counter()
    customers = []
    for i in range(repeats + 1):
        cid, counts = load_heavy_customer(i, events=events, text_tickets=int(args.get("text_tickets", 100)))
        customers.append(str(cid))
        out["counts"] = counts
    out["setup_seconds"] = time.perf_counter() - t0
    exporter = customers[0]
    export_times, export_sizes = [], []
    for k in range(repeats):
        t0 = time.perf_counter()
        sub = sr.request_submit(type="access", channel="dpo", requester="user:bench-dpo", customer_id=exporter,
                                idempotency_key=f"bench-export-{k}")
        export_times.append(time.perf_counter() - t0)
        export = Export.objects.filter(request_id=sub.request.id).first()
        if export is None:
            raise RuntimeError("the access request did not produce an export")
        export_sizes.append(export.size_bytes)
    out["export_seconds"] = export_times
    out["export_bytes"] = export_sizes
    erase_times, submit_times = [], []
    for k in range(repeats):
        cid = customers[k + 1]
        t0 = time.perf_counter()
        sub = sr.request_submit(type="erasure", channel="dpo", requester="user:bench-dpo", customer_id=cid,
                                idempotency_key=f"bench-erase-{k}")
        submit_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        req = sub.request
        req.refresh_from_db()
        if req.status != "completed":
            req = sr.request_execute(request_id=req.id, actor="user:bench-dpo")
        erase_times.append(time.perf_counter() - t0)
        from profiles import selectors as profile_selectors

        if profile_selectors.customer_exists(customer_id=cid):
            raise RuntimeError("the erasure request did not erase the customer")
    out["erasure_seconds"] = erase_times
    out["erasure_submit_seconds"] = submit_times
    return out


def task_audit_load(args: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from .auditgen import load_decisions, replicate_decisions

    records = int(args["records"])
    base_max = int(args.get("base_max", 500_000))
    factor = 1
    if not args.get("chain") and connection.vendor == "postgresql" and records > base_max:
        factor = -(-records // base_max)
    base = records // factor
    r = load_decisions(base, customers=max(1, records // 10 // factor), chain=bool(args.get("chain")),
                       progress=bool(args.get("progress")), sealed_bytes=int(args.get("sealed_bytes", 256)))
    out = {"seconds": r.seconds, "records": r.records, "customers": r.customers, "head_seq": r.head_seq,
           "checkpoints": r.checkpoints, "sample_customers": r.sample_customers, "model_versions": r.model_versions,
           "time_range": list(r.time_range), "replication_factor": factor}
    if factor > 1:
        rep = replicate_decisions(base_records=base, factor=factor, progress=bool(args.get("progress")))
        out["records"] = rep["records"]
        out["customers"] = r.customers * factor
        out["replication_seconds"] = rep["seconds"]
        out["seconds"] = r.seconds + rep["seconds"]
    return out


def _queries(info: dict[str, Any], n_each: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    import datetime as dt

    rng = random.Random(seed)
    start = dt.datetime.fromisoformat(info["time_range"][0])
    end = dt.datetime.fromisoformat(info["time_range"][1])
    span_days = max(1, (end - start).days)
    custs = info["sample_customers"]
    versions = info["model_versions"]

    def day() -> dt.date:
        return (start + dt.timedelta(days=rng.randrange(span_days))).date()

    out: list[tuple[str, dict[str, Any]]] = []
    for _ in range(n_each):
        d = day()
        out += [
            ("pseudonym", {"customer": rng.choice(custs)}),
            ("pseudonym+dates", {"customer": rng.choice(custs), "date_from": d, "date_to": d + dt.timedelta(days=90)}),
            ("type+day", {"decision_type": rng.choice(["served_score", "tier_change", "routing"]), "date_from": d,
                          "date_to": d}),
            ("tier", {"tier": rng.choice(["VIP", "Basic"])}),
            ("purpose+requester", {"purpose": "service_prioritization", "requester": rng.choice(
                ["api:support-desk", "api:crm", "api:marketing"])}),
            ("model_version", {"model_version": rng.choice(versions)}),
            ("week", {"date_from": d, "date_to": d + dt.timedelta(days=6)}),
            ("tier+type+week", {"tier": "VIP", "decision_type": "tier_change", "date_from": d,
                                "date_to": d + dt.timedelta(days=6)}),
            ("page 2 of tier", {"tier": rng.choice(["Premium", "Standard"]), "_page": 2}),
        ]
    return out


def task_search(args: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from audit import selectors

    queries = _queries(args["info"], int(args["n_each"]))
    # Warm-up: one pass over a few queries (plans, caches) - not timed.
    for _kind, filters in queries[:9]:
        f = {k: v for k, v in filters.items() if not k.startswith("_")}
        list(selectors.decision_list(filters=f, limit=50).items)
    times: dict[str, list[float]] = {}
    rows: dict[str, list[int]] = {}
    for kind, filters in queries:
        f = {k: v for k, v in filters.items() if not k.startswith("_")}
        t0 = time.perf_counter()
        page = selectors.decision_list(filters=f, limit=50)
        items = list(page.items)
        if filters.get("_page") == 2 and page.next_cursor:
            page = selectors.decision_list(filters=f, cursor=page.next_cursor, limit=50)
            items = list(page.items)
        times.setdefault(kind, []).append(time.perf_counter() - t0)
        rows.setdefault(kind, []).append(len(items))
    plans = {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for kind, filters in queries[:9]:
                f = {k: v for k, v in filters.items() if not k.startswith("_")}
                if f.get("model_version"):
                    # decision_list runs one index-ordered query per search column and merges them.
                    rest = {k: v for k, v in f.items() if k != "model_version"}
                    branches = selectors._model_version_branches(str(f["model_version"]))
                    querysets = [selectors._decision_filtered(rest).filter(b).order_by("-created_at", "-id")
                                 for b in branches]
                else:
                    querysets = [selectors.decision_queryset(filters=f)]
                plans[kind] = []
                for qs in querysets:
                    sql, params = qs.defer("sealed_details")[:51].query.sql_with_params()
                    cur.execute("EXPLAIN " + sql, params)
                    plans[kind] += [r[0] for r in cur.fetchall()][:6]
    return {"times": times, "rows": rows, "plans": plans}


def task_verify(args: dict[str, Any]) -> dict[str, Any]:
    import io

    from django.core.management import call_command, get_commands

    out: dict[str, Any] = {"runs": []}
    for _ in range(int(args["repeats"])):
        if "audit_verify" in get_commands():
            buf = io.StringIO()
            t0 = time.perf_counter()
            ok = True
            try:
                call_command("audit_verify", "--json", stdout=buf, stderr=io.StringIO())
            except SystemExit as exc:
                ok = exc.code in (0, None)
            seconds = time.perf_counter() - t0
            try:
                payload = json.loads(buf.getvalue().strip().splitlines()[-1])
            except (ValueError, IndexError):
                payload = {}
            out["runs"].append({"seconds": seconds, "ok": ok and payload.get("ok", ok), "via": "manage.py audit_verify",
                                "checked": payload.get("checked"), "checkpoints": payload.get("checkpoints_checked"),
                                "reason": payload.get("reason")})
            if seconds > float(args.get("repeat_if_under", 120)):
                break
        else:
            from audit import selectors

            t0 = time.perf_counter()
            result = selectors.chain_verify(seal=False)
            out["runs"].append({"seconds": time.perf_counter() - t0, "ok": bool(result.ok),
                                "via": "audit.selectors.chain_verify", "checked": result.checked})
    return out


def _append_writer(kind: str, per_writer: int, barrier: Any, results: Any) -> None:
    """One writer process (forked after Django set-up, with its own connection): ``per_writer`` appends,
    each its own transaction, as an API worker process records served decisions."""
    import uuid

    from django.db import connection, connections, transaction

    from audit import services

    outputs = {"clv": "812.40", "clv_score": 74, "churn_probability": 0.12, "upsell": 0.31, "advocacy": 0.44,
               "tier": "Premium", "service_level": {"response_hours": 8}, "recommendation": {"action": "upsell"}}
    payload = json.dumps(outputs)
    latencies: list[float] = []

    def one() -> None:
        customer = uuid.uuid4()
        if kind == "audit":
            services.decision_record(
                customer=customer, purpose="automated_scoring", decision_type="served_score",
                requester="api:bench", consent_event_id=None, notice_version="v1",
                model_versions={"full": "bench-1"}, features_hash="0" * 64, outputs=outputs,
                sealed_details=os.urandom(400),
            )
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_plain_insert (customer, payload) VALUES (%s, %s)",
                               [customer, payload + os.urandom(400).hex()])

    try:
        one()  # untimed warm-up: the connection is opened and the statement compiled, as in a running worker
        barrier.wait()
        for _ in range(per_writer):
            t0 = time.perf_counter()
            one()
            latencies.append(time.perf_counter() - t0)
    finally:
        connections.close_all()
        results.put(latencies)


def _append_sealer(stop: Any) -> None:
    """Fallback sealer process (no broker): chain every 0.2 s, as beat and the worker would."""
    from django.db import connections

    from audit import services

    try:
        while not stop.is_set():
            services.chain_seal()
            stop.wait(0.2)
    finally:
        connections.close_all()


def _start_celery_sealer() -> Any:
    """A real Celery worker (one process) consuming the seal requests the writers queue, as in production."""
    import subprocess

    from config.celery import app

    from .proc import CELERY_WORKER_ARGV

    proc = subprocess.Popen(CELERY_WORKER_ARGV, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}")
        # Its own connection, closed here: writers are forked next and must not inherit a pooled broker
        # connection (kombu's after-fork clean-up would wait on it).
        with app.connection_for_write() as conn:
            if app.control.ping(timeout=1.0, connection=conn):
                return proc
    proc.kill()
    raise RuntimeError("celery worker did not answer")


def task_append(args: dict[str, Any]) -> dict[str, Any]:
    """Audit appends under concurrency: ``writers`` processes (forked, each with its own connection, as
    gunicorn workers are) record decisions through ``audit.services.decision_record`` (one transaction
    each, with its sealing outbox row). Sealing runs where production runs it: with a broker
    (``BENCH_CELERY_BROKER_URL``), the writers' throttled seal requests go to a real Celery worker process;
    without one, a sealer process chains every 0.2 s and the writers' requests are switched off (an eager
    request would seal inside the request being timed). Baseline in the same run: the same writers insert
    a row of the same size into a plain table (no audit, no outbox), one transaction each.

    Processes rather than threads: eight Python threads in one process would measure the interpreter's lock
    hand-offs (5 ms switch interval) instead of the append."""
    import multiprocessing

    from django.conf import settings
    from django.db import connection, connections

    from audit.models import PendingSeal

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_plain_insert (id bigserial PRIMARY KEY, customer uuid, "
                       "payload text, created_at timestamptz DEFAULT now())")
    per_writer = int(args.get("per_writer", 300))
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if not broker:
        settings.AUDIT_SEAL_REQUEST_INTERVAL_S = 10**9  # the sealer process below does the sealing
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    out: dict[str, Any] = {"per_writer": per_writer, "runs": [],
                           "sealing": "Celery worker (1 process) on redis" if broker else "sealer process, 0.2 s"}
    celery = _start_celery_sealer() if broker else None
    try:
        for writers in args.get("writers", [1, 8]):
            for kind in ("plain", "audit"):
                stop = ctx.Event()
                sealer = ctx.Process(target=_append_sealer, args=(stop,)) if kind == "audit" and not broker else None
                if sealer:
                    sealer.start()
                barrier, results = ctx.Barrier(writers + 1), ctx.Queue()
                procs = [ctx.Process(target=_append_writer, args=(kind, per_writer, barrier, results))
                         for _ in range(writers)]
                for p in procs:
                    p.start()
                barrier.wait()
                t0 = time.perf_counter()
                parts = [results.get(timeout=1800) for _ in procs]
                wall = time.perf_counter() - t0
                for p in procs:
                    p.join()
                stop.set()
                if sealer:
                    sealer.join()
                flat = sorted(x for part in parts for x in part)
                out["runs"].append({"kind": kind, "writers": writers, "n": len(flat), "wall_seconds": wall,
                                    "per_second": len(flat) / wall if wall else None,
                                    "p50_ms": percentile(flat, 50) * 1000, "p99_ms": percentile(flat, 99) * 1000,
                                    "max_ms": flat[-1] * 1000 if flat else None})
        # Everything written must end up chained: wait for the sealer to drain the outbox.
        # The writers' last requests may fall inside the seal-request throttle; in production beat queues a
        # seal every few seconds for exactly that, so this does too.
        from audit import services
        from audit.tasks import seal_chain

        t0 = time.perf_counter()
        while PendingSeal.objects.exists() and time.perf_counter() - t0 < 60:
            if broker:
                seal_chain.delay()
            else:
                services.chain_seal()
            time.sleep(1.0)
        out["drain_seconds"] = time.perf_counter() - t0
    finally:
        if celery is not None:
            celery.terminate()
            try:
                celery.wait(20)
            except Exception:  # noqa: BLE001
                celery.kill()
    out["left_unsealed"] = PendingSeal.objects.count()
    return out


# ---------------------------------------------------------------------------------------------------------
# Section
# ---------------------------------------------------------------------------------------------------------


def _profile_out(name: str):
    from .profiling import profile_path

    return profile_path(name)


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    events = int(ctx.options.get("events", 2_000 if ctx.quick else 10_000))
    search_n = ctx.scale[0] if ctx.scale else (100_000 if ctx.quick else 10_000_000)
    verify_n = ctx.scale[1] if ctx.scale and len(ctx.scale) > 1 else (50_000 if ctx.quick else 1_000_000)
    repeats = 1 if ctx.quick else ctx.repeats
    res.params.update({"events_per_customer": events, "search_records": search_n, "verify_records": verify_n,
                       "database": dbutil.engine()})
    res.headers = ["measurement", "scale", "median", "p95 / IQR", "max", "target", "unit"]

    with step(res, "export and erasure"):
        dbutil.provision("subject")
        r = run_worker("subject", "bench.s5_subject_audit.task_subject",
                       {"events": events, "repeats": repeats, "text_tickets": 20 if ctx.quick else 100},
                       timeout=float(ctx.options.get("subject_timeout", 1800)))
        res.metrics["subject"] = {k: r[k] for k in ("events", "counts", "setup_seconds", "export_seconds",
                                                    "export_bytes", "erasure_seconds", "erasure_submit_seconds")}
        ex, er = summarize(r["export_seconds"]), summarize(r["erasure_seconds"])
        res.rows.append(["export (access request)", f"{events} events", ex["median"], ex["iqr"], ex["max"], "<= 2",
                         "s"])
        res.rows.append(["erasure (execute)", f"{events} events", er["median"], er["iqr"], er["max"], "<= 1", "s"])
        res.target(f"export of a {events:,}-event customer (median)", ex["median"], "<=", 2.0, "s")
        res.target(f"erasure of a {events:,}-event customer (median)", er["median"], "<=", 1.0, "s")
        if ctx.options.get("profile"):
            out = _profile_out("s5-subject.txt")
            run_worker("subject", "bench.s5_subject_audit.task_subject", {"events": events, "repeats": 1},
                       timeout=1800, env_extra={"BENCH_PROFILE": str(out)})
            res.metrics["subject_profile"] = str(out)
        dbutil.drop("subject")
        ctx.save()

    with step(res, "decision search"):
        dbutil.provision("audit_search")
        load = run_worker("audit_search", "bench.s5_subject_audit.task_audit_load",
                          {"records": search_n, "chain": False, "progress": not ctx.quick}, timeout=4 * 3600)
        res.metrics["search_load"] = {k: load[k] for k in ("seconds", "records", "customers", "peak_rss_mb")}
        res.metrics["search_database_bytes"] = dbutil.database_size("audit_search")
        ctx.save()
        n_each = int(ctx.options.get("search_queries_each", 10 if ctx.quick else 30))
        s = run_worker("audit_search", "bench.s5_subject_audit.task_search",
                       {"info": {k: load[k] for k in ("sample_customers", "model_versions", "time_range")},
                        "n_each": n_each}, timeout=3600)
        all_times = sorted(t for ts in s["times"].values() for t in ts)
        per_kind = {}
        for kind, ts in s["times"].items():
            st = sorted(ts)
            per_kind[kind] = {"p50_ms": percentile(st, 50) * 1000, "p95_ms": percentile(st, 95) * 1000,
                              "max_ms": st[-1] * 1000, "n": len(st),
                              "rows_median": sorted(s["rows"][kind])[len(st) // 2]}
        p95 = percentile(all_times, 95) * 1000
        res.metrics["search"] = {"p50_ms": percentile(all_times, 50) * 1000, "p95_ms": p95,
                                 "max_ms": all_times[-1] * 1000, "queries": len(all_times), "by_filter": per_kind,
                                 "plans": s.get("plans", {})}
        res.rows.append(["decision search, all filters", f"{search_n:,} records",
                         percentile(all_times, 50) * 1000, p95, all_times[-1] * 1000, "p95 <= 200", "ms"])
        for kind, v in per_kind.items():
            res.rows.append([f"  search: {kind}", "", v["p50_ms"], v["p95_ms"], v["max_ms"], "", "ms"])
        res.target(f"decision search p95 over {search_n:,} records", p95, "<=", 200.0, "ms")
        if ctx.options.get("profile"):
            out = _profile_out("s5-search.txt")
            run_worker("audit_search", "bench.s5_subject_audit.task_search",
                       {"info": {k: load[k] for k in ("sample_customers", "model_versions", "time_range")},
                        "n_each": 3}, timeout=3600, env_extra={"BENCH_PROFILE": str(out)})
            res.metrics["search_profile"] = str(out)
        if not ctx.options.get("keep_databases"):
            dbutil.drop("audit_search")
        ctx.save()

    with step(res, "audit_verify"):
        dbutil.provision("audit_verify")
        load = run_worker("audit_verify", "bench.s5_subject_audit.task_audit_load",
                          {"records": verify_n, "chain": True, "progress": not ctx.quick}, timeout=3600)
        res.metrics["verify_load"] = {k: load[k] for k in ("seconds", "records", "head_seq", "checkpoints",
                                                           "peak_rss_mb")}
        v = run_worker("audit_verify", "bench.s5_subject_audit.task_verify", {"repeats": repeats}, timeout=3600)
        times = [run["seconds"] for run in v["runs"]]
        vs = summarize(times)
        res.metrics["verify"] = {"runs": v["runs"], "seconds": vs, "peak_rss_mb": v["peak_rss_mb"]}
        all_ok = all(run["ok"] for run in v["runs"])
        res.rows.append([f"audit_verify ({v['runs'][0]['via']})", f"{verify_n:,} records", vs["median"], vs["iqr"],
                         vs["max"], "<= 30 (1M)", "s"])
        scaled = vs["median"] * (1_000_000 / verify_n)
        res.metrics["verify_seconds_per_million"] = scaled
        res.target("audit_verify of 1M records (s, scaled linearly if smaller)", scaled, "<=", 30.0, "s")
        res.target("audit_verify reports the generated chain intact", 1.0 if all_ok else 0.0, ">=", 1.0)
        if ctx.options.get("profile"):
            out = _profile_out("s5-verify.txt")
            run_worker("audit_verify", "bench.s5_subject_audit.task_verify", {"repeats": 1}, timeout=3600,
                       env_extra={"BENCH_PROFILE": str(out)})
            res.metrics["verify_profile"] = str(out)
        if not ctx.options.get("keep_databases"):
            dbutil.drop("audit_verify")

    with step(res, "concurrent appends"):
        from .s1_realtime import redis_ok

        dbutil.provision("audit_append")
        redis_url = str(ctx.options.get("append_redis_url", "redis://127.0.0.1:6379/8"))
        broker = redis_url if redis_ok(redis_url) else ""
        a = run_worker("audit_append", "bench.s5_subject_audit.task_append",
                       {"writers": [1, 8], "per_writer": 50 if ctx.quick else 400}, timeout=1800,
                       env_extra={"BENCH_CELERY_BROKER_URL": broker, "BENCH_CACHE_URL": broker} if broker else None)
        res.metrics["append"] = a
        by = {(r["kind"], r["writers"]): r for r in a["runs"]}
        for writers in (1, 8):
            au, pl = by.get(("audit", writers)), by.get(("plain", writers))
            if au and pl:
                res.rows.append([f"decision append (+ outbox), {writers} writer(s)", f"{au['n']:,} appends",
                                 au["p50_ms"], au["p99_ms"], au["max_ms"], "p99 <= 20" if writers == 8 else "", "ms"])
                res.rows.append([f"  plain insert baseline, {writers} writer(s)", f"{pl['n']:,} inserts",
                                 pl["p50_ms"], pl["p99_ms"], pl["max_ms"], "", "ms"])
                res.target(f"append throughput / plain insert at {writers} writer(s)",
                           au["per_second"] / pl["per_second"] if pl["per_second"] else None, ">=", 0.5, "x",
                           kind="comparison")
        if ("audit", 8) in by:
            res.target("decision append p99 at 8 concurrent writers (real-time budget)", by[("audit", 8)]["p99_ms"],
                       "<=", 20.0, "ms")
        res.notes.append("appends: audit.services.decision_record (record + sealing outbox row, one transaction) "
                         "from concurrent writer processes (forked, one connection each, as gunicorn workers); "
                         f"sealing: {a['sealing']}; baseline: a plain INSERT of the same size; "
                         f"{a['left_unsealed']} record(s) left unsealed after {a['drain_seconds']:.1f} s of draining")
        if not ctx.options.get("keep_databases"):
            dbutil.drop("audit_append")
        ctx.save()
    return res
