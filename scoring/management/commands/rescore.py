"""``manage.py rescore --all [--purpose P] [--chunk-size N] [--async]`` (or ``--resume RUN_ID``).

Plans one run per purpose, together (pass 1: population reference for the tiers of each purpose), then
scores their chunks, all purposes of a chunk at once, with a progress bar:
in this process by default, or on the Celery workers with ``--async`` (the bar follows their progress).
Runs are resumable: ``--resume RUN_ID`` scores the chunks not done yet.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import ApplicationError
from scoring import selectors, services


class Command(BaseCommand):
    help = "Rescore all customers (consent re-checked per chunk), with a progress bar."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--all", action="store_true", help="Rescore every customer.")
        parser.add_argument("--purpose", action="append", default=None,
                            help="Purpose (repeatable); default: SCORING_BATCH_PURPOSES.")
        parser.add_argument("--chunk-size", type=int, default=None)
        parser.add_argument("--async", dest="run_async", action="store_true", help="Queue chunks on the workers.")
        parser.add_argument("--resume", default=None,
                            help="Resume the pending chunks of a run (or of runs planned together: ID,ID).")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--progress", action="store_true",
                            help="Draw the progress bars even when stderr is not a terminal (by default only a "
                                 "terminal gets them, so that logs stay JSON lines).")
        parser.add_argument("--workers", type=int, default=None,
                            help="Processes scoring chunks in parallel (default: RESCORE_WORKERS, else the CPU "
                                 "count up to 4 on PostgreSQL; 1 inside a transaction or on SQLite).")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["all"] and not opts["resume"]:
            raise CommandError("Give --all (or --resume RUN_ID).")
        try:
            if opts["resume"]:
                self._execute([UUID(r) for r in opts["resume"].split(",")], opts)
                return
            purposes = opts["purpose"] or services.batch_purposes()
            bar = tqdm(desc=f"planning {', '.join(purposes)}", unit="customer", disable=_bar_disabled(opts))
            wall, cpu = time.perf_counter(), time.process_time()
            runs = services.rescore_runs_start(purposes=purposes, requester="cli", chunk_size=opts["chunk_size"],
                                               progress=bar.update, keep_features=not opts["run_async"])
            bar.close()
            if runs:  # the serial part of the run (pass 1, in this process), whatever executes the chunks
                self.stdout.write(f"Planned {runs[0].total} customers in {runs[0].chunks_total} chunks: "
                                  f"{time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} s CPU)")
            self._execute([run.id for run in runs], opts)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        finally:
            services.rescore_feature_cache_clear()

    def _execute(self, run_ids: list[UUID], opts: dict[str, Any]) -> None:
        """Score the pending chunks of runs planned together (all their purposes per chunk)."""
        progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
        bar = tqdm(total=sum(p["total"] for p in progress), initial=sum(p["done"] for p in progress),
                   desc=f"scoring {', '.join(p['purpose'] for p in progress)}", unit="customer-purpose",
                   disable=_bar_disabled(opts))
        if opts["run_async"]:
            from django.db import transaction

            with transaction.atomic():
                services.rescore_runs_dispatch(run_ids=run_ids)
            while any(p["status"] not in ("completed", "failed") for p in progress):
                time.sleep(0.25)  # the bench times the run by this loop: a short poll
                progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
                bar.update(sum(p["done"] for p in progress) - bar.n)
            if any(p["status"] == "failed" for p in progress):
                bar.close()
                raise CommandError(f"rescore run failed; resume with --resume {','.join(str(r) for r in run_ids)}")
        elif _workers(opts) > 1:
            progress = self._score_in_processes(run_ids, _workers(opts), bar)
        else:
            for ids in services.rescore_pending_chunk_ids(run_ids=run_ids):
                counts = services.rescore_chunks(run_ids=run_ids, customer_ids=ids)
                bar.update(sum(c.total for c in counts.values() if not c.already_done))
            progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
        bar.close()
        for p in progress:
            self.stdout.write(self.style.SUCCESS(
                f"Run {p['id']} ({p['purpose']}): {p['status']}, scored {p['scored']}, "
                f"skipped {p['skipped']}, tier changes {p['tier_changes']}"))

    def _score_in_processes(self, run_ids: list[UUID], workers: int, bar: Any) -> list[dict[str, Any]]:
        """Score the pending chunks in ``workers`` forked processes (chunk number modulo ``workers``), each
        with its own database connection; the plan (and the planning pass's feature cache) is inherited.
        A failed worker leaves its chunks pending: the runs stay resumable (``--resume``)."""
        import multiprocessing

        from django.db import connections

        connections.close_all()  # the children open their own connections
        context = multiprocessing.get_context("fork")
        procs = [context.Process(target=_score_slot, args=([str(r) for r in run_ids], k, workers), daemon=True)
                 for k in range(workers)]
        for proc in procs:
            proc.start()
        progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
        while any(proc.is_alive() for proc in procs):
            time.sleep(0.5)
            progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
            bar.update(sum(p["done"] for p in progress) - bar.n)
        for proc in procs:
            proc.join()
        progress = [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]
        bar.update(sum(p["done"] for p in progress) - bar.n)
        failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
        if failed:
            raise CommandError(f"{len(failed)} scoring worker(s) failed; resume with --resume "
                               f"{','.join(str(r) for r in run_ids)}")
        return progress


def _workers(opts: dict[str, Any]) -> int:
    import os

    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1  # children only see committed plans; SQLite has one writer
    given = opts.get("workers") or getattr(settings, "RESCORE_WORKERS", None)
    return max(1, int(given)) if given else max(1, min(os.cpu_count() or 1, 4))


def _die_with_parent() -> None:
    """Linux: a scoring process is terminated when the command dies, even by SIGKILL (daemonic children
    are only stopped on a normal exit). Its chunk rolls back and stays pending for ``--resume``."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _score_slot(run_ids: list[str], worker: int, workers: int) -> None:
    """One scoring process: the pending chunks with ``chunk_no % workers == worker``."""
    from django.db import connections

    _die_with_parent()
    keys = [UUID(r) for r in run_ids]
    try:
        for ids in services.rescore_pending_chunk_ids(run_ids=keys, worker=worker, workers=workers):
            services.rescore_chunks(run_ids=keys, customer_ids=ids)
    finally:
        connections.close_all()


def _bar_disabled(opts: dict[str, Any]) -> bool | None:
    """tqdm's ``disable``: off with --no-progress, forced on with --progress, else only on a terminal (None)."""
    if opts["no_progress"]:
        return True
    return False if opts.get("progress") else None
