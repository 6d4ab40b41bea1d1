"""Loaded-and-trained bench databases, shared between the sections of one harness invocation.

Sections 1 and 2 both need "N synthetic customers + an active model trained on them"; training is the
slow part. The first section to ask builds it (fresh database, :mod:`bench.datagen` load, ``manage.py
train --force``) and keeps a copy ``bench_trained_<N>``; later sections of the same invocation clone that
copy. The orchestrator drops the copies when the run ends.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import dbutil
from .common import VAR_BENCH
from .proc import run_worker

RUN_ID_ENV = "BENCH_RUN_ID"


def _cache(n: int) -> str:
    return f"trained_{n}"


def _marker(n: int):
    return VAR_BENCH / f"{dbutil.db_name(_cache(n))}.json"


def _fingerprint(n: int, seed: int) -> dict[str, Any]:
    return {"customers": n, "seed": seed, "migrations": dbutil.migrations_fingerprint(), "engine": dbutil.engine(),
            "run": os.environ.get(RUN_ID_ENV, "")}


def trained_database(name: str, n: int, *, seed: int = 42, progress: bool = False) -> dict[str, Any]:
    """Make bench database ``name`` hold n customers and a trained active model; returns load/train facts."""
    marker = _marker(n)
    fp = _fingerprint(n, seed)
    if fp["run"] and dbutil.exists(_cache(n)) and marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("fingerprint") == fp:
            dbutil.clone(_cache(n), name)
            return {**saved["facts"], "cloned_from_cache": True}
    dbutil.provision(name)
    load = run_worker(name, "load", {"customers": n, "seed": seed, "progress": progress}, timeout=4 * 3600)
    facts: dict[str, Any] = {"load": {k: load[k] for k in ("seconds", "seconds_crypto", "counts", "index_seconds",
                                                           "peak_rss_mb")}}
    facts["load"]["customers_per_s"] = n / load["seconds"]
    facts["totals"] = dict(load["counts"])
    train = run_worker(name, "command", {"argv": ["train", "--force", "--seed", "0"]}, timeout=3 * 3600)
    facts["train"] = {"seconds": train["seconds"], "peak_rss_mb": train["peak_rss_mb"], "customers": n,
                      "stdout": train.get("stdout", "")[-800:]}
    if fp["run"]:
        dbutil.clone(name, _cache(n))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fp, "facts": facts}))
    return facts


def drop_caches() -> None:
    for path in VAR_BENCH.glob(f"{dbutil.db_name('trained_')}*.json"):
        n = path.stem.rsplit("_", 1)[-1]
        if n.isdigit():
            dbutil.drop(_cache(int(n)))
        path.unlink(missing_ok=True)
