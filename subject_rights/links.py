"""Signed links for the customer: the status page of a verified request and the export download.

Both carry only an id, signed with SECRET_KEY (``django.core.signing.TimestampSigner``) and limited in
time: status links for ``DSR_STATUS_LINK_TTL_DAYS`` (default 106: the statutory period of Art. 12(3), one month
plus two of extension, and a two-week margin), export links for EXPORT_LINK_TTL_SECONDS.
"""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.core import signing
from django.urls import reverse

from config.errors import NotFound

STATUS_SALT = "subject_rights.status"
EXPORT_SALT = "subject_rights.export"


def status_link_ttl_seconds() -> int:
    return int(settings.DSR_STATUS_LINK_TTL_DAYS) * 24 * 3600


def status_token(request_id: UUID | str) -> str:
    return signing.TimestampSigner(salt=STATUS_SALT).sign(str(request_id))


def status_token_read(token: str) -> UUID:
    try:
        return UUID(signing.TimestampSigner(salt=STATUS_SALT).unsign(token, max_age=status_link_ttl_seconds()))
    except (signing.BadSignature, ValueError) as exc:
        raise NotFound() from exc


def export_token(export_id: UUID | str) -> str:
    return signing.TimestampSigner(salt=EXPORT_SALT).sign(str(export_id))


def export_token_read(token: str) -> UUID:
    try:
        return UUID(
            signing.TimestampSigner(salt=EXPORT_SALT).unsign(token, max_age=settings.EXPORT_LINK_TTL_SECONDS)
        )
    except (signing.BadSignature, ValueError) as exc:
        raise NotFound() from exc


def public_url(path: str) -> str:
    """Absolute URL for e-mails: SITE_URL (e.g. https://privacy.example.com) + path."""
    return settings.SITE_URL.rstrip("/") + path


def status_url(request_id: UUID | str) -> str:
    return public_url(reverse("selfservice:status", kwargs={"token": status_token(request_id)}))
