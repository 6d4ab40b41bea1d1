"""Keyed HMAC-SHA256 blind indexes for looking people up without storing plaintext identifiers.

The key (``BLIND_INDEX_KEY``) is separate from the encryption keys. Each kind of identifier is
normalized first and domain-separated, so an e-mail index never collides with a phone index.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import phonenumbers
from django.conf import settings


class InvalidIdentifier(ValueError):
    """The value cannot be normalized (message never contains the value)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"invalid {kind}")
        self.kind = kind


_SPACE = re.compile(r"\s")


def normalize_email(value: str) -> str:
    email = unicodedata.normalize("NFKC", value).strip().lower()
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "." not in domain or _SPACE.search(email):  # (\s: exactly str.isspace)
        raise InvalidIdentifier("email")
    return f"{local}@{domain.encode('idna').decode('ascii') if not domain.isascii() else domain}"


def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164, e.g. ``+447700900123``."""
    try:
        parsed = phonenumbers.parse(value.strip(), region or settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("phone") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidIdentifier("phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_source_id(source: str, external_id: str) -> str:
    return f"{source.strip().lower()}:{unicodedata.normalize('NFKC', external_id).strip()}"


def blind_index(kind: str, normalized: str) -> str:
    """Hex HMAC-SHA256 of an already normalized value, domain-separated by ``kind``."""
    message = kind.encode() + b"\x00" + normalized.encode("utf-8")
    return hmac.new(settings.BLIND_INDEX_KEY, message, hashlib.sha256).hexdigest()


def email_index(value: str) -> str:
    return blind_index("email", normalize_email(value))


def phone_index(value: str, region: str | None = None) -> str:
    return blind_index("phone", normalize_phone(value, region))


def source_index(source: str, external_id: str) -> str:
    return blind_index("source", normalize_source_id(source, external_id))
