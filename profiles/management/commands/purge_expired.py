"""``manage.py purge_expired [--dry-run] [--batch-size N]``: the retention purge, by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Delete facts older than the retention of their data category (RETENTION_DAYS), in batches."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count what is due")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        from profiles.services import retention_purge

        counts = retention_purge(batch_size=max(1, options["batch_size"]), dry_run=options["dry_run"])
        verb = "due" if options["dry_run"] else "deleted"
        for target, count in counts.items():
            self.stdout.write(f"{target}: {count} {verb}")
