"""Section 7: webhook delivery on loopback (outbox relay + signed, consent-checked delivery).

In a child process on a fresh bench database (customers and consent from ``bench.datagen``), with a real
HTTP receiver on 127.0.0.1 (``http.server``, keep-alive, threaded) in the same process:

* **throughput per worker**: ``score.tier_changed`` events for consented customers are written to the outbox
  (one bulk insert), relayed into deliveries, then ONE delivery pass (``deliveries_send_due``: consent
  re-check per batch, Standard Webhooks signature, HTTP POST, state update) sends them all; events/s =
  delivered / seconds of the pass (relay timed apart);
* **outbox lag**: a producer writes events one transaction at a time at a fixed rate while the embedded
  relay/delivery loop (woken on commit, as in ``make run``) delivers them; lag = receiver arrival time -
  event commit time (``created_at``), per event; p50/p99.

The receiver runs in its own process (``http.server``, threaded, keep-alive) on the same machine: it shares
the CPUs with the worker.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import dbutil
from .common import SectionContext, SectionResult, percentile, step, summarize
from .proc import run_worker

TITLE = "Webhook delivery on loopback (throughput per worker, outbox lag)"
ENV = {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",
       "WEBHOOK_EMBEDDED_INTERVAL_SECONDS": "1"}


class _Sink:
    def __init__(self) -> None:
        self.count = 0
        self.lags: list[float] = []
        self.lock = threading.Lock()


def _serve(port: int) -> None:
    """The receiver process: counts POSTs, records commit -> arrival lag, answers ``GET /stats``."""
    sink = _Sink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            lag = time.time() - datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
            with sink.lock:
                sink.count += 1
                sink.lags.append(lag)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            with sink.lock:
                reply = json.dumps({"count": sink.count, "lags": sink.lags}).encode()
                if self.path.endswith("reset"):
                    sink.lags = []
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.05)


class _Receiver:
    """A receiver in its own process (as a CRM or helpdesk would be), on a free loopback port."""

    def __init__(self) -> None:
        import multiprocessing

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = multiprocessing.get_context("fork").Process(target=_serve, args=(self.port,), daemon=True)
        self.process.start()
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def stats(self, reset: bool = False) -> dict[str, Any]:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/stats/reset" if reset else "/stats")
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


def _payload(i: int) -> dict[str, Any]:
    return {"decision_id": i + 1, "tier": "VIP", "previous_tier": "Premium", "risk_level": "high",
            "previous_risk_level": "medium", "clv": 1234.5, "churn_probability": 0.71, "upsell": 0.2,
            "advocacy": 0.4, "service_level": {"first_response_hours": 2, "queue": "priority"},
            "reasons": ["Days since last order: 210 (+0.18)", "Orders in the last 90 days: 0 (+0.09)"]}


def measure(args: dict[str, Any]) -> dict[str, Any]:
    """Worker side (Django set up, bench database)."""
    from consent import selectors as consent_selectors
    from events import services as events_services
    from webhooks import embedded, services
    from webhooks.models import Delivery

    from . import datagen

    datagen.load(int(args["customers"]), seed=7)
    purpose = "automated_scoring"
    customers = consent_selectors.consented_customer_ids(purpose=purpose, limit=int(args["customers"]))
    receiver = _Receiver()
    services.subscription_create(url=f"http://127.0.0.1:{receiver.port}/hook", events=["score.tier_changed"],
                                 purpose=purpose, actor="job:bench")
    out: dict[str, Any] = {"customers_consented": len(customers), "throughput": [], "relay": []}
    n = int(args["events"])
    from django.conf import settings

    settings.WEBHOOK_KICK_ON_COMMIT = False  # throughput: relay and delivery passes run explicitly below
    try:
        for _rep in range(int(args["repeats"])):
            events_services.events_record_many(events=[
                {"type": "score.tier_changed", "customer_id": customers[i % len(customers)], "purpose": purpose,
                 "payload": _payload(i)} for i in range(n)])
            t0 = time.perf_counter()
            services.outbox_relay_all()
            t1 = time.perf_counter()
            before = receiver.stats()["count"]
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            counts = services.deliveries_send_due(batch=int(args.get("batch", 200)), max_batches=10_000)
            t2 = time.perf_counter()
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            out["relay"].append({"events": n, "seconds": t1 - t0})
            out["throughput"].append({"delivered": counts.delivered, "received": receiver.stats()["count"] - before,
                                      "seconds": t2 - t1, "cpu_seconds": cpu, "dropped": counts.dropped,
                                      "failed": counts.failed})
        # outbox lag: one event per transaction at a fixed rate, the embedded loop delivering
        receiver.stats(reset=True)
        settings.WEBHOOK_KICK_ON_COMMIT = True  # as in production: every commit that wrote events wakes the relay
        embedded.start(interval=1.0)
        rate, seconds = float(args["lag_rate"]), float(args["lag_seconds"])
        total = int(rate * seconds)
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            events_services.event_record(type="score.tier_changed", customer_id=customers[i % len(customers)],
                                         purpose=purpose, payload=_payload(i))
        produced_in = time.perf_counter() - start
        deadline = time.time() + 60
        lags: list[float] = []
        while time.time() < deadline:
            lags = receiver.stats()["lags"]
            if len(lags) >= total:
                break
            time.sleep(0.1)
        out["lag"] = {"events": total, "received": len(lags), "rate_per_s": rate, "lags": sorted(lags),
                      "produced_in_s": produced_in}
        out["states"] = {s: Delivery.objects.filter(state=s).count() for s in Delivery.State.values}
    finally:
        receiver.stop()
    return out


def run(ctx: SectionContext) -> SectionResult:
    res = ctx.start(TITLE)
    customers = ctx.scale[0] if ctx.scale else (300 if ctx.quick else 5000)
    events = ctx.scale[1] if ctx.scale and len(ctx.scale) > 1 else (1500 if ctx.quick else 20000)
    repeats = 2 if ctx.quick else ctx.repeats
    lag_rate = float(ctx.options.get("lag_rate", 20 if ctx.quick else 50))
    lag_seconds = float(ctx.options.get("lag_seconds", 6 if ctx.quick else 30))
    res.params.update({"customers": customers, "events_per_pass": events, "database": dbutil.engine(),
                       "lag_rate_per_s": lag_rate, "lag_seconds": lag_seconds,
                       "receiver": "http.server (HTTP/1.1 keep-alive), own process, same machine"})
    data: dict[str, Any] = {}
    with step(res, "measure"):
        dbutil.provision("webhooks")
        data = run_worker("webhooks", "bench.s7_webhooks.measure",
                          {"customers": customers, "events": events, "repeats": repeats, "lag_rate": lag_rate,
                           "lag_seconds": lag_seconds}, timeout=1800, env_extra=ENV)
    with step(res, "drop database"):
        dbutil.drop("webhooks")
    if not data:
        return res
    rates = [t["delivered"] / t["seconds"] for t in data["throughput"] if t["seconds"]]
    tput = summarize(rates)
    relay = summarize(r["events"] / r["seconds"] for r in data["relay"] if r["seconds"])
    per_cpu = summarize(t["delivered"] / t["cpu_seconds"] for t in data["throughput"] if t.get("cpu_seconds"))
    lags = data["lag"]["lags"]
    p50, p99 = (percentile(lags, 50), percentile(lags, 99)) if lags else (None, None)
    res.metrics.update({"delivery_events_per_cpu_s": per_cpu, "delivery_events_per_s": tput, "relay_events_per_s": relay, "throughput_runs":
                        data["throughput"], "lag_p50_s": p50, "lag_p99_s": p99,
                        "lag_events": data["lag"]["events"], "lag_received": data["lag"]["received"],
                        "states": data["states"], "customers_consented": data["customers_consented"]})
    res.headers = ["measure", "median", "IQR", "min", "max", "unit"]
    res.rows.append(["delivery throughput (1 worker)", tput["median"], tput["iqr"], tput["min"], tput["max"],
                     "events/s"])
    res.rows.append(["delivery per CPU-second of the worker", per_cpu["median"], per_cpu["iqr"], per_cpu["min"],
                     per_cpu["max"], "events/CPU-s"])
    res.rows.append(["outbox relay (fan-out)", relay["median"], relay["iqr"], relay["min"], relay["max"], "events/s"])
    if lags:
        res.rows.append(["outbox lag, commit -> received", p50, None, lags[0], lags[-1], "s (median = p50)"])
    res.target("webhook delivery throughput per worker", tput.get("median"), ">=", 500, "events/s")
    res.target("outbox lag p99 (commit -> delivered)", p99, "<=", 2.0, "s")
    produced_in = data["lag"].get("produced_in_s") or 0.0
    achieved = data["lag"]["events"] / produced_in if produced_in else None
    res.metrics["lag_produced_in_s"] = produced_in
    res.metrics["lag_arrival_rate_achieved_per_s"] = achieved
    res.notes.append(f"lag: {data['lag']['events']} events, one per transaction, offered at {lag_rate:.0f}/s "
                     f"(achieved {achieved or 0:.0f}/s); embedded relay loop woken on commit. On SQLite every "
                     "commit takes the single write lock: a producer that keeps the lock busy starves the relay "
                     "(PostgreSQL + Celery workers, the production setup, have no such lock)")
    if data["lag"]["received"] < data["lag"]["events"]:
        res.notes.append(f"lag: {data['lag']['received']} of {data['lag']['events']} events arrived within 60 s")
    res.notes.append(f"load average at the end of the section: {[round(x, 1) for x in os.getloadavg()]} on "
                     f"{os.cpu_count()} CPUs; events per CPU-second of the worker is the load-independent figure")
    res.notes.append("each delivery re-checks consent (one set-based gate read per batch), signs with "
                     "standardwebhooks and POSTs over a kept-alive connection; receiver in its own process")
    return res
