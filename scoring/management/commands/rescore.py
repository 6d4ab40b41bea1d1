"""``manage.py rescore --all [--purpose P] [--chunk-size N] [--async]`` (or ``--resume RUN_ID``).

Plans a run (pass 1: population reference for the tiers), then scores its chunks with a progress bar:
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
        parser.add_argument("--resume", default=None, help="Resume the pending chunks of a run.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not opts["all"] and not opts["resume"]:
            raise CommandError("Give --all (or --resume RUN_ID).")
        try:
            if opts["resume"]:
                self._execute(UUID(opts["resume"]), opts)
                return
            for purpose in opts["purpose"] or services.batch_purposes():
                bar = tqdm(desc=f"planning {purpose}", unit="customer", disable=opts["no_progress"])
                run = services.rescore_run_start(purpose=purpose, requester="cli", chunk_size=opts["chunk_size"],
                                                 progress=bar.update)
                bar.close()
                self._execute(run.id, opts)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None

    def _execute(self, run_id: UUID, opts: dict[str, Any]) -> None:
        progress = selectors.rescore_run_progress(run_id=run_id)
        bar = tqdm(total=progress["total"], initial=progress["done"], desc=f"scoring {progress['purpose']}",
                   unit="customer", disable=opts["no_progress"])
        if opts["run_async"]:
            from django.db import transaction

            with transaction.atomic():
                services.rescore_run_dispatch(run_id=run_id)
            while progress["status"] != "completed":
                time.sleep(1.0)
                progress = selectors.rescore_run_progress(run_id=run_id)
                bar.update(progress["done"] - bar.n)
        else:
            for ids in services.rescore_pending_chunks(run_id=run_id):
                counts = services.rescore_chunk(run_id=run_id, customer_ids=ids)
                bar.update(counts.total)
            progress = selectors.rescore_run_progress(run_id=run_id)
        bar.close()
        self.stdout.write(self.style.SUCCESS(
            f"Run {run_id} ({progress['purpose']}): {progress['status']}, scored {progress['scored']}, "
            f"skipped {progress['skipped']}, tier changes {progress['tier_changes']}"))
