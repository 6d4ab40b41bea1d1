from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.api_clients import api_client_revoke
from audit.models import ApiClient


class Command(BaseCommand):
    help = "Revoke an API client's token at once."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            client = api_client_revoke(name=options["name"], actor="cli")
        except ApiClient.DoesNotExist as exc:
            raise CommandError("no such API client") from exc
        self.stdout.write(f"Revoked {client.name} at {client.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
