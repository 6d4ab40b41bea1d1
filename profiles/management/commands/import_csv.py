"""``manage.py import_csv --source crm|erp|support|web|consent FILE [--kind K] [--mapping hubspot]``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Import a CSV file from a source system. Bad rows are reported with line, column and reason and the "
        "good rows are committed; re-importing the same file changes nothing. Large files are processed by "
        "Celery tasks in chunks (stored encrypted)."
    )

    def add_arguments(self, parser: Any) -> None:
        from profiles.imports import registered_sources

        parser.add_argument("--source", required=True, choices=registered_sources() or None)
        parser.add_argument("file", type=Path)
        parser.add_argument("--kind", default=None,
                            help="record kind (default per source: crm=customers, erp=orders, support=tickets, "
                                 "web=interactions; also notes, reviews, nps, referrals, customers)")
        parser.add_argument("--mapping", default=None, help="column mapping of a known export layout (hubspot)")
        parser.add_argument("--actor", default="cli")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--background", action="store_true", help="always queue Celery chunk tasks")
        mode.add_argument("--inline", action="store_true", help="always process in this process")
        parser.add_argument("--no-wait", action="store_true", help="with background processing, do not wait")
        parser.add_argument("--chunk-rows", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        from profiles.imports import run_import, summary

        path: Path = options["file"]
        if not path.is_file():
            raise CommandError("File not found.")
        background = True if options["background"] else (False if options["inline"] else None)
        try:
            with path.open("rb") as stream, tqdm(desc="rows", unit="row", disable=True if options["verbosity"] == 0 else None,
                                                 file=self.stderr._out) as bar:
                job = run_import(
                    stream=stream, source=options["source"], kind=options["kind"], mapping=options["mapping"],
                    actor=options["actor"], chunk_rows=options["chunk_rows"], background=background,
                    progress=bar.update,
                )
        except ApplicationError as exc:
            extra = f" ({', '.join(exc.extra['columns'])})" if exc.extra.get("columns") else ""
            raise CommandError(f"{exc.code}: {exc.detail}{extra}") from exc
        if job.status == job.Status.RUNNING and not options["no_wait"]:
            job = self._wait(job)
        self._report(job, summary(job))

    def _wait(self, job: Any) -> Any:
        with tqdm(total=job.chunks_total, desc="chunks", unit="chunk", file=self.stderr._out) as bar:
            while True:
                job.refresh_from_db()
                bar.update(job.chunks_done - bar.n)
                if job.status != job.Status.RUNNING:
                    return job
                time.sleep(1.0)

    def _report(self, job: Any, counts: dict[str, Any]) -> None:
        self.stdout.write(
            "import {import} {status}: total={total} created={created} updated={updated} merged={merged} "
            "unchanged={unchanged} rejected={rejected}".format(**counts)
        )
        for rejection in job.rejections[:1000]:
            column = rejection.get("column") or "-"
            self.stdout.write(f"  line {rejection['line']}, column {column}: {rejection['code']}")
        if len(job.rejections) > 1000:
            self.stdout.write(f"  ... {len(job.rejections) - 1000} more rejections")
