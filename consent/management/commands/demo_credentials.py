"""``manage.py demo_credentials [--port 8000]``: demo logins and an API token, then where to find things.

Idempotent and stable: the DPO user ``dpo`` (group ``dpo``), the staff superuser ``admin`` and the API client
``demo-support-desk`` (every scope and purpose) get passwords and a token derived from this checkout's own
``SECRET_KEY`` (HMAC-SHA256, written at random into ``.env`` by the first ``make run``), so every run of the
same checkout prints the same credentials and a token pasted into a script keeps working. Another checkout
(another ``.env``) gets others. For local demos only: never run this against a production database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

DEMO_CLIENT = "demo-support-desk"
DPO_GROUP = "dpo"
ACTOR = "cli"


def _derived(label: str, length: int) -> str:
    """A secret of this checkout, stable across runs: HMAC(SECRET_KEY, label), URL-safe."""
    from django.conf import settings

    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-credentials:{label}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:length]


def _set_user(username: str, *, staff: bool, superuser: bool, group: Group | None) -> str:
    password = _derived(f"user:{username}", 16)
    user, _ = User.objects.get_or_create(username=username)
    user.is_active = True
    user.is_staff = staff
    user.is_superuser = superuser
    if not user.check_password(password):
        user.set_password(password)
    user.save()
    if group is not None:
        user.groups.add(group)
    return password


def _refresh_client(name: str, scopes: list[str], purposes: list[str]) -> str:
    """The demo client's stable token: kept when the stored one is it and still valid; otherwise the client
    is rotated to it (any other token stops working at once); a missing client is created with every scope
    and purpose."""
    from django.utils import timezone

    from audit.api_clients import TOKEN_PREFIX, api_client_create, api_client_rotate, hash_token
    from audit.models import ApiClient
    from config.errors import Conflict, NotFound

    token = TOKEN_PREFIX + _derived(f"token:{name}", 43)
    current = ApiClient.objects.filter(name=name, revoked_at__isnull=True).first()
    if current is not None and current.token_hash == hash_token(token) and current.expires_at > timezone.now():
        return token
    try:
        return api_client_rotate(name=name, actor=ACTOR, token=token).token
    except NotFound:
        return api_client_create(name=name, scopes=scopes, purposes=purposes, actor=ACTOR, token=token).token
    except Conflict as exc:
        raise CommandError(f"The API client {name!r} is revoked; revocation is final.") from exc


def _demo_email(customer_id: Any) -> str | None:
    """A demo customer's e-mail for trying the self-service pages; shown to the operator, so an access record
    is written (who saw which customer's data, and why)."""
    from audit.services import access_record
    from profiles.selectors import customer_personal_data

    email = customer_personal_data(customer_id=customer_id).get("email")
    if email:
        access_record(actor=ACTOR, purpose="demo", subject=customer_id, what="demo_credentials.email")
    return email


def _mail_destination() -> str:
    from django.conf import settings

    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2] if "." in settings.EMAIL_BACKEND else settings.EMAIL_BACKEND
    if backend == "console":
        return "this terminal (console mail backend; set EMAIL_URL to send real mail)"
    if backend == "filebased":
        return f"files under {getattr(settings, 'EMAIL_FILE_PATH', '?')}"
    if backend == "locmem":
        return "memory (test backend)"
    return f"the mail server configured by EMAIL_URL ({backend})"


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
            email = _demo_email(example)
            if email:
                out += [
                    "",
                    f"Try the customer pages as a demo customer: {base}/me/ with the e-mail {email}",
                ]
        else:
            out.append("(No consented customer yet: run `manage.py demo_seed` for demo data.)")
        out += ["", f"E-mails (one-time codes, outcomes) land in: {_mail_destination()}",
                "Stop the server with Ctrl+C; `make run` again resumes with the same data and credentials."]
        out.append("=" * 78)
        self.stdout.write("\n".join(out))
