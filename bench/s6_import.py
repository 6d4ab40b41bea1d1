"""Section 6: import throughput, CSV (``manage.py import_csv``, inline processing) and REST bulk.

* customers (source ``crm``): ``customer_ingest_batch`` per chunk — identity resolution by blind indexes
  (one lookup per identifier kind), a fresh per-customer data key, every personal field encrypted,
  blind-index entries, written in bulk;
* orders (source ``erp``): facts referencing the customers by their CRM id, batch-ingested;
* customers re-import: the same customers file again (every row unchanged; option ``reimport=0`` skips it);
* consent events (source ``consent``): grants and withdrawals of the three purposes referencing the customers
  by their CRM id, recorded set-based per chunk (``consent.bulk``: events, current state, governance records
  and their sealing outbox rows); rows/s includes the blind-index lookup of every row's customer.

* tickets (source ``support``): texts from the section 3 corpus; language, mood and pseudonymization of every
  text (``pseudonymize_batch`` per chunk);
* REST: the same files through ``/api/v1/ingest/customers/``, ``/orders/``, ``/tickets/`` and
  ``/api/v1/consents/bulk`` (1,000 records per request, in-process ``django.test.Client``) on a fresh
  database (option ``rest=0`` skips them; quick runs skip tickets and REST unless asked for, to stay
  within their 40 s cap).

Goal (issue 21 §2): at least 5,000 rows/s for each kind.

Each import runs in a fresh child process on a fresh bench database (cloned from the migrated template),
customers first; rows/s = rows / seconds spent inside the command (or the requests); rows per CPU-second:
the importing process's own CPU time (``time.process_time``), the database server's excluded.
``--scale C,O,K,T``: customer, order, consent-event and ticket rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

from . import dbutil
from .common import SectionContext, SectionResult, step, summarize
from .proc import WorkerFailed, run_worker

TITLE = "CSV import throughput (customers with encryption + blind indexes, orders, consent events)"
GOAL_ROWS_PER_S = 5_000
FIRST = ("Anna", "Jan", "Emma", "Lucas", "Sofia", "Mateusz", "Aino", "Elias", "Maja", "Noah", "Olivia", "Liam")
LAST = ("Nowak", "Jansen", "Virtanen", "Andersson", "Smith", "Kowalski", "de Vries", "Korhonen", "Brown")
CUSTOMER_COLUMNS = ["external_id", "first_name", "last_name", "email", "phone", "street", "postal_code", "city",
                    "country", "date_of_birth", "attr_segment", "feature_plan_level"]
ORDER_COLUMNS = ["external_id", "customer_external_id", "customer_source", "ordered_at", "amount", "margin",
                 "currency", "category"]


def write_customers_csv(path: Path, n: int, *, seed: int = 3) -> int:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CUSTOMER_COLUMNS)
        for i in range(n):
            w.writerow([
                f"CRM{i:08d}", FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)],
                f"import{i}@bench.example.com", f"+4479{i:08d}" if rng.random() < 0.7 else "",
                f"{rng.randrange(1, 300)} Station Road", f"LS{rng.randrange(1, 30)} {rng.randrange(1, 9)}AB",
                "Leeds", "GB", f"{rng.randrange(1940, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                rng.choice(("retail", "smb", "enterprise")), str(rng.randrange(1, 4)),
            ])
    return n


def write_orders_csv(path: Path, n: int, *, customers: int, seed: int = 4) -> int:
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ORDER_COLUMNS)
        for i in range(n):
            amount = round(rng.lognormvariate(3.8, 0.8), 2) + 0.01
            at = start + dt.timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
            w.writerow([f"ORD{i:09d}", f"CRM{rng.randrange(customers):08d}", "crm", at.isoformat(), f"{amount:.2f}",
                        f"{amount * 0.3:.2f}", "EUR", rng.choice(("books", "music", "garden", "electronics"))])
    return n


CONSENT_COLUMNS = ["source", "external_id", "purpose", "action", "channel", "occurred_at"]


def write_consents_csv(path: Path, n: int, *, customers: int, seed: int = 5) -> int:
    """``n`` consent rows: per customer in turn, a grant of each purpose in time order, 1 in 10 later withdrawn."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    purposes = ("automated_scoring", "service_prioritization", "marketing")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CONSENT_COLUMNS)
        written, i = 0, 0
        while written < n:
            cust = f"CRM{i % customers:08d}"
            at = start + dt.timedelta(minutes=rng.randrange(0, 600 * 24 * 60) + i // customers * 90 * 24 * 60)
            for purpose in purposes:
                if written >= n:
                    break
                action = "withdraw" if i >= customers and rng.random() < 0.1 else "grant"
                w.writerow(["crm", cust, purpose, action, rng.choice(("web", "email", "app")),
                            (at + dt.timedelta(seconds=written % 60)).isoformat()])
                written += 1
            i += 1
    return n


TICKET_COLUMNS = ["external_id", "customer_external_id", "customer_source", "opened_at", "closed_at", "channel",
                  "category", "text"]


def write_tickets_csv(path: Path, n: int, *, customers: int, seed: int = 6, prefix: str = "TCK") -> int:
    """``n`` support tickets of the customers, their free text from the pseudonymization corpus (section 3:
    English and Polish, Dutch, Finnish, Swedish tickets with names, e-mails, phones, addresses), cycled."""
    from .corpus import generate

    rng = random.Random(seed)
    texts = [sample.text for sample in generate(english=min(n, 300), per_language=min(n, 50), seed=seed)]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(TICKET_COLUMNS)
        for i in range(n):
            opened = start + dt.timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
            w.writerow([f"{prefix}{i:09d}", f"CRM{rng.randrange(customers):08d}", "crm", opened.isoformat(),
                        (opened + dt.timedelta(hours=rng.randrange(1, 96))).isoformat(),
                        rng.choice(("email", "phone", "chat")), rng.choice(("billing", "delivery", "product")),
                        texts[i % len(texts)]])
    return n


def _rest_records(kind: str, path: Path) -> list[dict[str, Any]]:
    """The CSV file's rows as the REST bulk endpoints take them (consent: customers by their pseudonymous id,
    looked up here, outside the timed part, as a client holding the ids would send them)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if kind == "customers":
        return [{"source": "crm", "external_id": r["external_id"], "name": f"{r['first_name']} {r['last_name']}",
                 "email": r["email"], "phone": r["phone"] or None,
                 "address": f"{r['street']}, {r['postal_code']} {r['city']}", "date_of_birth": r["date_of_birth"],
                 "country": r["country"], "attributes": {"segment": r["attr_segment"],
                                                         "plan_level": int(r["feature_plan_level"])},
                 "feature_attributes": ["plan_level"]} for r in rows]
    if kind == "orders":
        return [{**r, "source": "erp"} for r in rows]
    if kind == "tickets":
        return [{**r, "source": "support"} for r in rows]
    from config.blind_index import source_index
    from profiles.models import SourceIdentity

    digests = {r["external_id"]: source_index("crm", r["external_id"]) for r in rows}
    ids = dict(SourceIdentity.objects.filter(source="crm", digest__in=set(digests.values()))
               .values_list("digest", "customer_id"))
    return [{"customer": str(ids[digests[r["external_id"]]]), "purpose": r["purpose"], "action": r["action"],
             "source": r["source"], "channel": r["channel"], "occurred_at": r["occurred_at"]} for r in rows]


def rest_import(args: dict[str, Any]) -> dict[str, Any]:
    """Worker task: the file's rows through the REST bulk endpoint of their kind (``/api/v1/ingest/<kind>/``,
    ``/api/v1/consents/bulk``), 1,000 records per request, in this process (``django.test.Client``: the
    whole DRF request without an HTTP server). Timed around the requests only; CPU seconds of this process."""
    import json
    import time

    from django.test import Client

    from audit.api_clients import api_client_create
    from consent.models import Purpose

    kind = args["kind"]
    records = _rest_records(kind, Path(args["file"]))
    created = api_client_create(name=f"bench-rest-{kind}-{time.monotonic_ns()}",
                                scopes=["ingest:write", "consent:write"],
                                purposes=list(Purpose.objects.values_list("code", flat=True)))
    url = "/api/v1/consents/bulk" if kind == "consents" else f"/api/v1/ingest/{kind}/"
    client = Client(HTTP_AUTHORIZATION=f"Bearer {created.token}")
    batch = int(args.get("batch", 1000))
    counts = {"created": 0, "updated": 0, "unchanged": 0, "merged": 0, "rejected": 0}
    c0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(records), batch):
        response = client.post(url, data=json.dumps({"records": records[start : start + batch]}),
                               content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code}")
        body = response.json()
        summary = body.get("summary", body)
        for key in counts:
            counts[key] += int(summary.get(key) or 0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    from .worker import text_pool_cpu_seconds

    pool_cpu = text_pool_cpu_seconds()
    counts["total"] = len(records)
    return {"seconds": seconds, "task_cpu_seconds": cpu + pool_cpu, "pool_cpu_seconds": pool_cpu, "counts": counts}


def csv_rows(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def task_progress(args: dict[str, Any]) -> dict[str, Any]:
    """Counters of the latest import job (after an import was stopped at its time limit)."""
    from django.utils import timezone

    from profiles.models import ImportJob

    job = ImportJob.objects.order_by("-created_at").first()
    if job is None:
        return {"rows_done": 0, "elapsed_seconds": 0.0}
    done = job.created + job.updated + job.merged + job.unchanged + job.rejected
    return {"rows_done": done, "created": job.created, "rejected": job.rejected,
            "elapsed_seconds": (timezone.now() - job.created_at).total_seconds()}


def _import(kind: str, source: str, path: Path, limit: float, env_extra: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """One import; on reaching ``limit`` the rows committed so far give the rate (``partial``)."""
    import time

    t0 = time.perf_counter()
    try:
        r = run_worker("import", "import_csv", {"source": source, "file": str(path), "kind": kind}, timeout=limit,
                       env_extra=env_extra)
        return {"seconds": r["seconds"], "counts": r["counts"], "peak_rss_mb": r["peak_rss_mb"],
                "cpu_seconds": r.get("task_cpu_seconds"), "pool_cpu_seconds": r.get("pool_cpu_seconds"),
                "rows": r["counts"].get("total", 0), "partial": False}
    except WorkerFailed:
        if time.perf_counter() - t0 < limit:
            raise
    p = run_worker("import", "bench.s6_import.task_progress", {}, timeout=300)
    return {"seconds": p["elapsed_seconds"], "counts": {"created": p["created"], "rejected": p["rejected"]},
            "peak_rss_mb": None, "rows": p["rows_done"], "partial": True}


def _rest(kind: str, path: Path, limit: float, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    r = run_worker("import", "bench.s6_import.rest_import", {"kind": kind, "file": str(path)}, timeout=limit,
                   env_extra=env_extra)
    return {"seconds": r["seconds"], "cpu_seconds": r["task_cpu_seconds"], "pool_cpu_seconds": r.get("pool_cpu_seconds"),
            "counts": r["counts"],
            "peak_rss_mb": r.get("peak_rss_mb"), "rows": r["counts"]["total"], "partial": False}


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    rows = ctx.scale[0] if ctx.scale else (1_000 if ctx.quick else 100_000)
    order_rows = ctx.scale[1] if ctx.scale and len(ctx.scale) > 1 else rows
    repeats = int(ctx.options.get("import_repeats", 1 if ctx.quick else ctx.repeats))
    folder = dbutil.work_dir("import")
    cust_csv, order_csv = folder / f"customers-{rows}.csv", folder / f"orders-{order_rows}.csv"
    write_customers_csv(cust_csv, rows)
    write_orders_csv(order_csv, order_rows, customers=rows)
    consent_rows = ctx.scale[2] if ctx.scale and len(ctx.scale) > 2 else rows
    consent_csv = folder / f"consents-{consent_rows}.csv"
    write_consents_csv(consent_csv, consent_rows, customers=rows)
    # The quick run (40 s cap in CI) keeps to the CSV kinds without free text: tickets and REST are on in full
    # runs, or with --scale C,O,K,T and --option rest=1.
    ticket_rows = ctx.scale[3] if ctx.scale and len(ctx.scale) > 3 else (0 if ctx.quick else min(rows, 2_000))
    ticket_csv = folder / f"tickets-{ticket_rows}.csv"
    # Free-text worker processes (TEXT_WORKERS) of the ticket imports: the first count is "tickets", each
    # further one imports the same texts under other ticket ids ("tickets, N text workers").
    text_workers = [int(n) for n in str(ctx.options.get("text_workers", "1" if ctx.quick else "1,2")).split(",")]
    if ticket_rows:
        write_tickets_csv(ticket_csv, ticket_rows, customers=rows)
        for n in text_workers[1:]:
            write_tickets_csv(folder / f"tickets-{ticket_rows}-w{n}.csv", ticket_rows, customers=rows,
                              prefix=f"TW{n}")
    rest = str(ctx.options.get("rest", "0" if ctx.quick else "1")) != "0"
    res.params.update({"customer_rows": rows, "order_rows": order_rows, "consent_rows": consent_rows,
                       "ticket_rows": ticket_rows, "repeats": repeats, "database": dbutil.engine(),
                       "mode": "CSV: import_csv --inline; REST: the bulk endpoints in-process (django.test.Client), "
                               "1,000 records per request"})
    more = tuple(f"tickets, {n} text workers" for n in text_workers[1:])
    kinds = ("customers", "orders", "customers re-import", "consent events", "tickets", *more,
             "REST customers", "REST orders", "REST consent events", "REST tickets",
             *(f"REST {k}" for k in more))
    timings: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    rows_done: dict[str, list[int]] = {k: [] for k in kinds}
    limit = float(ctx.options.get("import_timeout", 1e9 if ctx.quick else 900))
    details: list[dict[str, Any]] = []

    def note(kind: str, detail: dict[str, Any], r: dict[str, Any]) -> None:
        timings[kind].append(r["seconds"])
        rows_done[kind].append(r["rows"])
        if r.get("cpu_seconds"):
            cpu[kind].append(r["cpu_seconds"])
        detail[kind] = r

    for rep in range(repeats):
        with step(res, f"repetition {rep + 1}") as s:
            dbutil.provision("import")
            c = _import("customers", "crm", cust_csv, limit)
            orders_file = order_csv
            if c["partial"]:
                res.notes.append(f"customers import stopped at its {limit:.0f} s limit after {c['rows']:,} rows; "
                                 "orders reference those customers only")
                orders_file = folder / f"orders-{order_rows}-of-{c['rows']}.csv"
                write_orders_csv(orders_file, order_rows, customers=max(1, c["counts"].get("created") or 0))
            if c["partial"] and not c["rows"]:
                raise RuntimeError(f"no customer row committed within {limit:.0f} s")
            o = _import("orders", "erp", orders_file, limit)
            if o["partial"]:
                res.notes.append(f"orders import stopped at its {limit:.0f} s limit after {o['rows']:,} rows")
            detail: dict[str, Any] = {}
            note("customers", detail, c)
            note("orders", detail, o)
            if not c["partial"] and str(ctx.options.get("consents", "1")) != "0":
                note("consent events", detail, _import("consents", "consent", consent_csv, limit))
            if not c["partial"] and ticket_rows:
                note("tickets", detail, _import("tickets", "support", ticket_csv, limit,
                                                {"TEXT_WORKERS": str(text_workers[0])}))
                for n in text_workers[1:]:
                    note(f"tickets, {n} text workers", detail,
                         _import("tickets", "support", folder / f"tickets-{ticket_rows}-w{n}.csv", limit,
                                 {"TEXT_WORKERS": str(n)}))
            if not c["partial"] and str(ctx.options.get("reimport", "1")) != "0":
                # the same file again: every row matches its own customer (idempotent, all "unchanged")
                note("customers re-import", detail, _import("customers", "crm", cust_csv, limit))
            if rest and not c["partial"]:
                dbutil.provision("import")  # the REST path on an empty database, same files
                note("REST customers", detail, _rest("customers", cust_csv, limit))
                note("REST orders", detail, _rest("orders", order_csv, limit))
                note("REST consent events", detail, _rest("consents", consent_csv, limit))
                if ticket_rows:
                    note("REST tickets", detail, _rest("tickets", ticket_csv, limit,
                                                       {"TEXT_WORKERS": str(text_workers[0])}))
                    for n in text_workers[1:]:
                        note(f"REST tickets, {n} text workers", detail,
                             _rest("tickets", folder / f"tickets-{ticket_rows}-w{n}.csv", limit,
                                   {"TEXT_WORKERS": str(n)}))
            details.append(detail)
            ctx.save()
        if not s.ok:
            break
        slow = float(ctx.options.get("repeat_if_under", 300))
        if rep + 1 < repeats and (c["partial"] or o["partial"] or c["seconds"] + o["seconds"] > slow):
            why = "it reached the time limit" if (c["partial"] or o["partial"]) else f"it took more than {slow:.0f} s"
            res.notes.append(f"not repeated: one repetition took {c['seconds'] + o['seconds']:.0f} s ({why})")
            break
    if ctx.options.get("profile"):
        with step(res, "profile"):
            from .profiling import profile_path

            dbutil.provision("import")
            n_prof = min(rows, 5000)
            prof_c, prof_o = folder / f"customers-{n_prof}.csv", folder / f"orders-{n_prof}.csv"
            prof_k = folder / f"consents-{n_prof}.csv"
            write_customers_csv(prof_c, n_prof)
            write_orders_csv(prof_o, n_prof, customers=n_prof)
            write_consents_csv(prof_k, n_prof, customers=n_prof)
            for kind, src, path in (("customers", "crm", prof_c), ("orders", "erp", prof_o),
                                    ("consents", "consent", prof_k)):
                out = profile_path(f"s6-import-{kind}.txt")
                run_worker("import", "import_csv", {"source": src, "file": str(path), "kind": kind}, timeout=limit,
                           env_extra={"BENCH_PROFILE": str(out)})
                res.metrics.setdefault("profiles", {})[kind] = str(out.relative_to(out.parents[2]))
    with step(res, "drop database"):
        dbutil.drop("import")
        if not ctx.options.get("keep_files"):
            for path in folder.glob("*.csv"):  # synthetic, but no CSV with personal-looking data stays behind
                path.unlink(missing_ok=True)
    res.metrics["runs"] = details
    res.headers = ["kind", "rows", "rows/s (median)", "IQR rows/s", "min rows/s", "max rows/s", "seconds (median)",
                   "rows per CPU-second (importing process)", "created", "rejected"]
    for kind in kinds:
        if not timings[kind]:
            continue
        rate = summarize(n / t for n, t in zip(rows_done[kind], timings[kind], strict=True) if t)
        res.metrics[f"{kind.replace(' ', '_').replace('-', '')}_rows_per_s"] = rate
        last = details[-1].get(kind, {}).get("counts", {})
        per_cpu = (round(rows_done[kind][-1] / summarize(cpu[kind])["median"]) if cpu[kind] else None)
        res.metrics[f"{kind.replace(' ', '_').replace('-', '')}_rows_per_cpu_s"] = per_cpu
        res.rows.append([kind, rows_done[kind][-1], rate["median"], rate["iqr"], rate["min"], rate["max"],
                         summarize(timings[kind])["median"], per_cpu, last.get("created"), last.get("rejected")])
        res.target(f"{kind} rows/s", rate["median"], ">=", GOAL_ROWS_PER_S, "rows/s")
    res.notes.append("rows/s is wall time on the shared machine (the database server's work included); rows per "
                     "CPU-second counts the importing Django process and its free-text worker processes "
                     "(TEXT_WORKERS), not the database server")
    res.notes.append("customers/s includes identity resolution, a DEK per customer, AES-GCM of every personal field "
                     "and blind-index HMACs; consent events/s includes each row's customer lookup by blind index "
                     "and the governance record of every event; tickets/s includes language detection, mood and the "
                     "pseudonymization of every text (issue 21 goal: >= 5,000 rows/s for each kind)")
    return res
