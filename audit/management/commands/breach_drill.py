"""Record a breach-notification drill in the breach register.

    manage.py breach_drill [--actor job:breach_drill]

Creates an incident flagged as a drill through ``audit.breach.breach_record`` (all Art. 33(3) fields
filled with drill text, no personal data), which writes the ``breach.recorded`` governance record and
e-mails the DPO that the 72-hour clock started. Prints the reference.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit import breach
from config.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a drill incident in the breach register and alert the DPO; prints its reference."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--actor", default="job:breach_drill", help="Audit actor (default job:breach_drill).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            incident = breach.breach_record(
                actor=options["actor"],
                nature=["confidentiality"],
                description="[drill] Simulated loss of an unencrypted export file by a staff member. "
                            "No real data is concerned.",
                detected_at=timezone.now(),
                subject_categories=["customers"],
                subjects_estimate=100,
                data_categories=["contact details", "scores"],
                records_estimate=100,
                consequences="[drill] Possible unwanted contact and disclosure of customer tiers.",
                measures="[drill] Revoke the export link, rotate the API token used, review export controls.",
                risk="risk",
                is_drill=True,
            )
        except ApplicationError as exc:
            raise CommandError(str(exc.detail)) from exc
        deadline = breach.breach_deadline(incident)
        self.stdout.write(f"{incident.reference}")
        self.stdout.write(f"drill recorded; notify-by deadline {deadline:%Y-%m-%d %H:%M} UTC; the DPO was alerted",
                          style_func=self.style.SUCCESS)
