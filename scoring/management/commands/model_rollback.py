"""``manage.py model_rollback [--kind full|churn_table]``: re-activate the previously active version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from scoring import services
from scoring.models import ModelVersion


class Command(BaseCommand):
    help = "Roll back to the previously active model version."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--kind", choices=ModelVersion.Kind.values, default=ModelVersion.Kind.FULL)

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            version = services.model_rollback(actor="cli", kind=opts["kind"])
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(self.style.SUCCESS(f"Active again: {version.version} ({version.kind})"))
