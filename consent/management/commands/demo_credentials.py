"""``manage.py demo_credentials [--port 8000]``: demo logins and an API token, then where to find things.

Idempotent: the DPO user ``dpo`` (group ``dpo``) and the staff superuser ``admin`` get a fresh random password
on every run (passwords are stored hashed, so the only way to show one is to set it), and the API client
``demo-support-desk`` (every scope and purpose) gets a new token (``audit.api_clients.api_client_rotate``;
the previous token stops working) so it can be printed.
For local demos only: never run this against a production database.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

DEMO_CLIENT = "demo-support-desk"
DPO_GROUP = "dpo"
ACTOR = "cli"


def _password() -> str:
    return secrets.token_urlsafe(12)


def _set_user(username: str, *, staff: bool, superuser: bool, group: Group | None) -> str:
    password = _password()
    user, _ = User.objects.get_or_create(username=username)
    user.is_active = True
    user.is_staff = staff
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    if group is not None:
        user.groups.add(group)
    return password


def _refresh_client(name: str, scopes: list[str], purposes: list[str]) -> str:
    """A fresh token for the demo client: the existing client's token is rotated (the old token stops
    working at once); a missing client is created with every scope and purpose."""
    from audit.api_clients import api_client_create, api_client_rotate
    from config.errors import Conflict, NotFound

    try:
        return api_client_rotate(name=name, actor=ACTOR).token
    except NotFound:
        return api_client_create(name=name, scopes=scopes, purposes=purposes, actor=ACTOR).token
    except Conflict as exc:
        raise CommandError(f"The API client {name!r} is revoked; revocation is final.") from exc


class Command(BaseCommand):
    help = "Create/refresh the demo DPO login, admin login and API token, and print the demo URLs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, **options: Any) -> None:
        from audit.api_clients import KNOWN_SCOPES
        from consent import selectors

        base = f"http://{options['host']}:{options['port']}"
        purposes = [p.code for p in selectors.purpose_list()]
        with transaction.atomic():
            group, _ = Group.objects.get_or_create(name=DPO_GROUP)
            dpo_password = _set_user("dpo", staff=False, superuser=False, group=group)
            admin_password = _set_user("admin", staff=True, superuser=True, group=None)
            token = _refresh_client(DEMO_CLIENT, list(KNOWN_SCOPES), purposes)
        example = next(iter(selectors.consented_customer_ids(purpose="automated_scoring", limit=1)), None)
        out = [
            "",
            "=" * 78,
            "Privacy-first customer scoring -- demo",
            "=" * 78,
            f"DPO console            {base}/console/",
            f"Customer self-service  {base}/me/",
            f"API docs (Swagger UI)  {base}/api/docs/",
            f"Django admin           {base}/admin/",
            "",
            f"DPO login              dpo / {dpo_password}",
            f"Admin login            admin / {admin_password}",
            f"API client             {DEMO_CLIENT} (all scopes and purposes)",
            f"API token              {token}",
            "",
        ]
        if example is not None:
            out += [
                "Example: a consented customer's score",
                f'  curl -s -H "Authorization: Bearer {token}" \\',
                f'    "{base}/api/v1/customers/{example}/score?purpose=automated_scoring"',
                "Example: that customer's consents",
                f'  curl -s -H "Authorization: Bearer {token}" "{base}/api/v1/customers/{example}/consents"',
            ]
        else:
            out.append("(No consented customer yet: run `manage.py demo_seed` for demo data.)")
        out.append("=" * 78)
        self.stdout.write("\n".join(out))
