"""``manage.py replay_erasures [--dry-run]``: re-apply the erasure ledger after a backup restore.

The ledger's file store (ERASURE_LEDGER_DIR) lives outside the database, so a restored database cannot
rewind it. Every pseudonym in it (and in the database ledger) whose customer exists again is erased
again; the database ledger is refilled. Nothing personal is printed: counts and pseudonyms only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand
from tqdm import tqdm


class Command(BaseCommand):
    help = "Re-apply the erasure ledger (after restoring a backup), so that no erased person comes back."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be erased again.")

    def handle(self, *args: Any, **options: Any) -> None:
        from profiles import selectors as profile_selectors
        from subject_rights import ledger, selectors
        from subject_rights.services import erasure_replay

        pseudonyms: dict[UUID, None] = {}
        for line in ledger.ledger_read():
            pseudonyms.setdefault(line.customer, None)
        for entry in selectors.erasure_ledger_list():
            pseudonyms.setdefault(entry.customer_id, None)
        resurrected = [cid for cid in pseudonyms if profile_selectors.customer_exists(customer_id=cid)]
        self.stdout.write(f"ledger entries: {len(pseudonyms)}; present again after restore: {len(resurrected)}")
        if options["dry_run"]:
            for cid in resurrected:
                self.stdout.write(f"would erase again: {cid}")
            return
        erased = 0
        for cid in tqdm(list(pseudonyms), disable=True if len(pseudonyms) < 100 else None, desc="replaying"):
            if erasure_replay(customer_id=cid, actor="job:replay_erasures"):
                erased += 1
        self.stdout.write(self.style.SUCCESS(f"erased again: {erased}"))
