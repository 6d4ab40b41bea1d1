"""CPU per request of the score and the bare endpoint in ONE Django process (no server, no load generator):
a measure of the service's own work that a shared machine's load disturbs far less than section 1's wall
times. Run against a section 1 bench database (1,000+ customers, a trained model, a nightly run done):

    DATABASE_URL=postgres://.../bench_<ns>_realtime BENCH_CELERY_BROKER_URL=redis://127.0.0.1:6379/9 \\
    BENCH_CACHE_URL=redis://127.0.0.1:6379/9 N=400 [PROF=1] python -m bench.s1_cpu

Prints wall and CPU milliseconds per request for each endpoint (twice), the queries of one request of each,
and with PROF=1 a CPU profile of the score requests.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.s1_realtime import task_setup

    setup = task_setup({"customers": 200})
    client = Client(HTTP_AUTHORIZATION=f"Bearer {setup['token']}")
    customers = setup["customers"]
    paths = {"score": [f"/api/v1/customers/{c}/score?purpose=automated_scoring" for c in customers],
             "bare": [f"/bench/bare/customers/{c}" for c in customers]}
    for ps in paths.values():  # warm-up: models loaded, statements prepared
        for p in ps[:50]:
            response = client.get(p)
            assert response.status_code == 200, response.status_code
    n = int(os.environ.get("N", "400"))
    for _ in range(2):
        for ep, ps in paths.items():
            t, c = time.perf_counter(), time.process_time()
            for i in range(n):
                client.get(ps[i % len(ps)])
            print(f"{ep}: {(time.perf_counter() - t) / n * 1000:.3f} ms wall, "
                  f"{(time.process_time() - c) / n * 1000:.3f} ms CPU per request")
    for ep, ps in paths.items():
        with CaptureQueriesContext(connection) as ctx:
            client.get(ps[3])
        print(ep, len(ctx.captured_queries), "queries")
        for q in ctx.captured_queries:
            print("   ", str(q["sql"])[:160])
    if os.environ.get("PROF"):
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for i in range(n):
            client.get(paths["score"][i % len(customers)])
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(50)


if __name__ == "__main__":
    main()
