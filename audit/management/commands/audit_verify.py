"""Verify the audit hash chain and its signed checkpoints.

    manage.py audit_verify [--from-seq N] [--json] [--no-seal] [--checkpoint]

Seals waiting records first (unless --no-seal), checks every record's content hash, every link and every
checkpoint signature, records the run, prints the result and exits 1 on any break (naming the first bad
sequence number), 0 when intact.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import services


class Command(BaseCommand):
    help = "Verify the audit chain and the signed checkpoints; exit 1 on any break."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-seq", type=int, default=None, help="Start at this sequence number.")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument("--no-seal", action="store_true", help="Do not chain waiting records first.")
        parser.add_argument("--checkpoint", action="store_true",
                            help="After a successful verification, sign and store a checkpoint of the head.")

    def handle(self, *args: Any, **options: Any) -> None:
        from_seq = options["from_seq"]
        if from_seq is not None and from_seq < 1:
            raise CommandError("--from-seq must be 1 or more")
        result = services.chain_verify_run(from_seq=from_seq, seal=not options["no_seal"], actor="cli")
        checkpoint = services.checkpoint_write(force=True) if result.ok and options["checkpoint"] else None
        if options["json"]:
            payload = result.as_dict()
            payload["checkpoint_seq"] = checkpoint.seq if checkpoint is not None else None
            self.stdout.write(json.dumps(payload, sort_keys=True))
        elif result.ok:
            self.stdout.write(self.style.SUCCESS(
                f"audit chain intact: {result.checked} links (head {result.head_seq}), "
                f"{result.checkpoints_checked} signed checkpoints, {result.unsealed} records waiting, "
                f"{result.elapsed_s:.1f} s"
            ))
        else:
            where = f"first bad sequence number {result.first_bad_seq}" if result.first_bad_seq else "no sequence number"
            record = f" ({result.first_bad_record})" if result.first_bad_record else ""
            self.stderr.write(self.style.ERROR(
                f"audit chain BROKEN: {where}{record}: {result.reason} [{result.problems} problem(s)]"
            ))
        if not result.ok:
            raise SystemExit(1)
