"""``manage.py rescore --all [--purpose P] [--chunk-size N] [--async]`` (or ``--resume RUN_ID``).

Creates one run per purpose, together, over the same chunks; plans the chunks (pass 1: consent gate and CLV
rank per chunk, then the population reference for the tiers of each purpose) and scores them (pass 2), all
purposes of a chunk at once, with progress bars. Both passes run where the chunks are scored: in this
process, in ``--workers`` forked processes (each plans, then scores, its share of the chunks), or on the
Celery workers with ``--async`` (the bars follow their progress). Runs are resumable: ``--resume RUN_ID``
plans the chunks not planned yet, then scores the chunks not done yet.
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
            clock = (time.perf_counter(), time.process_time())
            if opts["resume"]:
                run_ids = [UUID(r) for r in opts["resume"].split(",")]
            else:
                runs = services.rescore_runs_create(purposes=opts["purpose"] or services.batch_purposes(),
                                                    requester="cli", chunk_size=opts["chunk_size"])
                run_ids = [run.id for run in runs]
            self._execute(run_ids, opts, clock)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        finally:
            services.rescore_feature_cache_clear()

    def _execute(self, run_ids: list[UUID], opts: dict[str, Any], clock: tuple[float, float]) -> None:
        """Plan the chunks not planned yet, then score the pending chunks, of runs created together (all
        their purposes per chunk)."""
        progress = _progress(run_ids)
        if any(not p["chunks_total"] and p["status"] in ("preparing", "failed") for p in progress):
            raise CommandError("the run's chunks were never all created (its planning stopped): start a new run")
        planning = tqdm(total=progress[0]["chunks_total"] if progress else 0,
                        initial=progress[0]["chunks_planned"] if progress else 0,
                        desc=f"planning {', '.join(p['purpose'] for p in progress)}", unit="chunk",
                        disable=_bar_disabled(opts))
        plan = _Plan(self, run_ids, planning, clock, progress)
        scoring = tqdm(total=sum(p["total"] for p in progress), initial=sum(p["done"] for p in progress),
                       desc=f"scoring {', '.join(p['purpose'] for p in progress)}", unit="customer-purpose",
                       disable=_bar_disabled(opts))
        if opts["run_async"]:
            from django.db import transaction

            with transaction.atomic():
                if plan.done:
                    services.rescore_runs_dispatch(run_ids=run_ids)
                else:  # the task that plans the last chunk queues pass 2
                    services.rescore_runs_plan_dispatch(run_ids=run_ids)
            while not plan.check(progress) or any(p["status"] not in ("completed", "failed") for p in progress):
                time.sleep(0.25)  # the bench times the run by this loop: a short poll
                progress = _progress(run_ids)
                if plan.failed(progress):
                    break
                scoring.update(sum(p["done"] for p in progress) - scoring.n)
            if any(p["status"] == "failed" for p in progress):
                scoring.close()
                raise CommandError(f"rescore run failed; resume with --resume {','.join(str(r) for r in run_ids)}")
        elif _workers(opts) > 1:
            progress = self._in_processes(run_ids, _workers(opts), plan, scoring)
        else:
            services.rescore_runs_plan(run_ids=run_ids, progress=lambda _n: planning.update(1), keep_features=True)
            plan.check(_progress(run_ids))
            for ids in services.rescore_pending_chunk_ids(run_ids=run_ids):
                counts = services.rescore_chunks(run_ids=run_ids, customer_ids=ids)
                scoring.update(sum(c.total for c in counts.values() if not c.already_done))
            progress = _progress(run_ids)
        scoring.close()
        for p in progress:
            self.stdout.write(self.style.SUCCESS(
                f"Run {p['id']} ({p['purpose']}): {p['status']}, scored {p['scored']}, "
                f"skipped {p['skipped']}, tier changes {p['tier_changes']}"))

    def _in_processes(self, run_ids: list[UUID], workers: int, plan: _Plan, bar: Any) -> list[dict[str, Any]]:
        """Plan, then score, the chunks in ``workers`` forked processes (chunk number modulo ``workers``),
        each with its own database connection: each plans its share, waits for the plan to be complete
        (the process that plans the last chunk computes the references), then scores its share, with the
        features it computed while planning. A failed process leaves its chunks unplanned or pending:
        the others stop, and the runs stay resumable (``--resume``)."""
        import multiprocessing

        from django.db import connections

        connections.close_all()  # the children open their own connections
        context = multiprocessing.get_context("fork")
        procs = [context.Process(target=_plan_and_score_slot, args=([str(r) for r in run_ids], k, workers),
                                 daemon=True) for k in range(workers)]
        for proc in procs:
            proc.start()
        progress = _progress(run_ids)
        while any(proc.is_alive() for proc in procs):
            time.sleep(0.25 if not plan.done else 0.5)
            progress = _progress(run_ids)
            plan.check(progress)
            bar.update(sum(p["done"] for p in progress) - bar.n)
            if not plan.done and any(proc.exitcode not in (None, 0) for proc in procs):
                for proc in procs:  # the plan cannot complete: the others would wait for it
                    proc.terminate()
        for proc in procs:
            proc.join()
        progress = _progress(run_ids)
        bar.update(sum(p["done"] for p in progress) - bar.n)
        failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
        if failed:
            raise CommandError(f"{len(failed)} rescore worker(s) failed; resume with --resume "
                               f"{','.join(str(r) for r in run_ids)}")
        return progress


class _Plan:
    """Pass 1 as the command follows it: its bar, and the line ``Planned N customers in C chunks: W s (P s
    CPU)`` once every chunk is planned (W from the command's start; P the CPU of this process only: the
    planning itself may run in other processes)."""

    def __init__(self, command: Command, run_ids: list[UUID], bar: Any, clock: tuple[float, float],
                 progress: list[dict[str, Any]]) -> None:
        self.command, self.run_ids, self.bar, self.clock = command, run_ids, bar, clock
        self.initially_failed = {p["id"] for p in progress if p["status"] == "failed"}
        self.done = False
        self.check(progress)

    def check(self, progress: list[dict[str, Any]]) -> bool:
        if self.done:
            return True
        if progress:
            self.bar.update(min(p["chunks_planned"] for p in progress) - self.bar.n)
        if all(p["chunks_planned"] >= p["chunks_total"] for p in progress):
            self.done = True
            self.bar.close()
            if progress:
                wall, cpu = self.clock
                self.command.stdout.write(
                    f"Planned {progress[0]['total']} customers in {progress[0]['chunks_total']} chunks: "
                    f"{time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} s CPU)")
        return self.done

    def failed(self, progress: list[dict[str, Any]]) -> bool:
        """A run marked failed while it was being planned or scored here (e.g. by the watchdog)."""
        return any(p["status"] == "failed" and p["id"] not in self.initially_failed for p in progress)


def _progress(run_ids: list[UUID]) -> list[dict[str, Any]]:
    return [selectors.rescore_run_progress(run_id=run_id) for run_id in run_ids]


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


def _plan_and_score_slot(run_ids: list[str], worker: int, workers: int) -> None:
    """One process: plans the chunks with ``chunk_no % workers == worker`` not planned yet, waits until
    every chunk of the runs is planned, then scores the same share of the pending chunks."""
    from django.db import connections

    _die_with_parent()
    keys = [UUID(r) for r in run_ids]
    try:
        services.rescore_runs_plan(run_ids=keys, keep_features=True, worker=worker, workers=workers)
        while not all(p["chunks_planned"] >= p["chunks_total"] for p in _progress(keys)):
            time.sleep(0.25)  # a short poll, not a busy one: the other processes are planning
        for ids in services.rescore_pending_chunk_ids(run_ids=keys, worker=worker, workers=workers):
            services.rescore_chunks(run_ids=keys, customer_ids=ids)
    finally:
        connections.close_all()


def _bar_disabled(opts: dict[str, Any]) -> bool | None:
    """tqdm's ``disable``: off with --no-progress, forced on with --progress, else only on a terminal (None)."""
    if opts["no_progress"]:
        return True
    return False if opts.get("progress") else None
