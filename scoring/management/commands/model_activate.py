"""``manage.py model_activate VERSION [--force]``: activate a registered model version."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from scoring import services


class Command(BaseCommand):
    help = "Activate a registered model version (refused if its metrics are worse, unless --force)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("version")
        parser.add_argument("--force", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            version = services.model_activate(version=opts["version"], force=opts["force"], actor="cli")
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(self.style.SUCCESS(f"Active: {version.version} ({version.kind})"))
