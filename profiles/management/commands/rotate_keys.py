"""``manage.py rotate_keys [--batch-size N] [--dry-run]``: re-wrap every data key under the newest KEK."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm


class Command(BaseCommand):
    help = (
        "Re-wrap every customer data key under the active key-encryption key (KEK_ACTIVE_ID), online, in "
        "short batches. Encrypted fields are not touched. Keep the old KEK configured until this reports 0 "
        "remaining."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="only count the keys still to re-wrap")
        parser.add_argument("--actor", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        from config import envelope
        from profiles.models import CustomerKey
        from profiles.services import keys_rotate

        if options["dry_run"]:
            result = keys_rotate(actor=options["actor"], dry_run=True)
            self.stdout.write(f"dry run: {result.remaining} data keys to re-wrap under {result.kek_id}")
            return
        total = CustomerKey.objects.exclude(kek_id=envelope.active_kek_id()).count()
        with tqdm(total=total, desc="keys", unit="key", disable=True if options["verbosity"] == 0 else None,
                  file=self.stderr._out) as bar:
            result = keys_rotate(actor=options["actor"], batch_size=max(1, options["batch_size"]),
                                 progress=bar.update)
        self.stdout.write(f"re-wrapped {result.rotated} data keys under {result.kek_id}; {result.remaining} remaining")
