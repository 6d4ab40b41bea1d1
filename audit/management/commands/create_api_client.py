"""Create an API client. The last line of output is the token (shown once, stored only as a hash)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.api_clients import KNOWN_SCOPES, api_client_create


class Command(BaseCommand):
    help = "Create an API client bound to scopes and purposes; prints its token on the last line."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--scopes", nargs="+", required=True, help=f"any of: {' '.join(KNOWN_SCOPES)}")
        parser.add_argument("--purposes", nargs="*", default=[], help="purpose codes it may ask scores for")
        parser.add_argument("--days", type=int, default=None, help="validity in days (default API_TOKEN_DEFAULT_DAYS)")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = [s for item in options["scopes"] for s in item.split(",") if s]
        purposes = [p for item in options["purposes"] for p in item.split(",") if p]
        try:
            created = api_client_create(
                name=options["name"], scopes=scopes, purposes=purposes, days_valid=options["days"], actor="cli"
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Created API client {created.client.name} (expires {created.client.expires_at:%Y-%m-%d})")
        self.stdout.write(created.token)
