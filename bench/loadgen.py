"""HTTP load generation for section 1: ``wrk`` (Debian package) when installed, else a small Python generator.

Both run closed-loop: ``concurrency`` connections (keep-alive), each sending its next request as soon as
the previous answer arrived, for ``seconds``; requests rotate over a list of paths with a bearer token.
Latencies are per request (wrk: its HdrHistogram via a Lua ``done`` hook; Python: ``perf_counter``).
Neither corrects for coordinated omission: at saturation the percentiles understate queueing delay.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import percentile

WRK_LUA = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local token = os.getenv("BENCH_TOKEN")
local counter = 0
local statuses = {}

request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], {["Authorization"] = "Bearer " .. token})
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"err_status":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class LoadResult:
    tool: str
    concurrency: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, paths: list[str], token: str, *, concurrency: int, seconds: float,
            threads: int | None = None, timeout_s: int = 10) -> LoadResult:
    threads = threads or max(1, min(concurrency, 2))
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(WRK_LUA)
        path_file = Path(tmp) / "paths.txt"
        path_file.write_text("\n".join(paths) + "\n")
        env = {**os.environ, "BENCH_PATHS": str(path_file), "BENCH_TOKEN": token}
        cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, int(round(seconds)))}s",
               f"--timeout={timeout_s}s", "-s", str(script), base_url]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr[-500:]} {proc.stdout[-500:]}")
    data = json.loads(line[len("BENCH "):])
    duration = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("err_status", "err_connect", "err_read", "err_write", "err_timeout"))
    ok = data["requests"] > 0

    def ms(key: str) -> float:
        return data[key] / 1000 if ok else float("nan")

    return LoadResult(tool="wrk", concurrency=concurrency, seconds=duration, requests=data["requests"],
                      rps=data["requests"] / duration if duration else 0.0, p50_ms=ms("p50_us"),
                      p95_ms=ms("p95_us"), p99_ms=ms("p99_us"), max_ms=ms("max_us"),
                      errors=errors, extra={"threads": threads, **{k: v for k, v in data.items() if k.startswith("err")}})


def run_python(base_url: str, paths: list[str], token: str, *, concurrency: int, seconds: float) -> LoadResult:
    """Fallback load generator: one thread per connection, http.client keep-alive (GIL-bound: it saturates
    well below wrk, so its numbers understate the server; labelled ``python-threads``)."""
    host_port = base_url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.partition(":")
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_evt = threading.Event()
    deadline = [0.0]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port or 80), timeout=10)
        k = i
        start_evt.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline[0]:
                break
            path = paths[k % len(paths)]
            k += concurrency
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status >= 400:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port or 80), timeout=10)
                continue
            latencies[i].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    deadline[0] = t_start + seconds
    start_evt.set()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - t_start
    flat = sorted(x for lst in latencies for x in lst)
    n = len(flat)
    return LoadResult(tool="python-threads", concurrency=concurrency, seconds=elapsed, requests=n,
                      rps=n / elapsed if elapsed else 0.0, p50_ms=percentile(flat, 50) * 1000,
                      p95_ms=percentile(flat, 95) * 1000, p99_ms=percentile(flat, 99) * 1000,
                      max_ms=(flat[-1] * 1000) if flat else float("nan"), errors=sum(errors))


def run_load(base_url: str, paths: list[str], token: str, *, concurrency: int, seconds: float,
             tool: str = "auto") -> LoadResult:
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return run_wrk(base_url, paths, token, concurrency=concurrency, seconds=seconds)
    return run_python(base_url, paths, token, concurrency=concurrency, seconds=seconds)
