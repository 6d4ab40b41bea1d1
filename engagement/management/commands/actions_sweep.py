"""``manage.py actions_sweep``: create the next-best actions the current scores call for and that are missing
(also run after every rescore run of the scores' purpose and every 15 minutes by beat). Idempotent."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create missing next-best actions from the current scores (consent and holdout checked now)."

    def handle(self, *args: Any, **opts: Any) -> None:
        from engagement import services

        self.stdout.write(json.dumps(services.actions_sweep().to_json()))
