"""Standard Webhooks signing (https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``; the secret is ``whsec_<base64>``.

Signing uses the ``standardwebhooks`` package itself. Secrets are stored encrypted under the active
key-encryption key (``KEK_KEYS``), bound to their subscription by associated data; they are never logged.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from uuid import UUID

from django.conf import settings
from standardwebhooks.webhooks import Webhook

from config import envelope

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _key(kek_id: str) -> bytes:
    try:
        return bytes(settings.KEK_KEYS[kek_id])
    except KeyError:
        raise envelope.DecryptionError() from None


def _aad(subscription_id: UUID, kek_id: str) -> bytes:
    return f"webhook-secret|{subscription_id}|{kek_id}".encode()


def secret_seal(*, subscription_id: UUID, secret: str) -> tuple[bytes, str]:
    """(ciphertext, kek id) of ``secret`` for storage."""
    kek_id = envelope.active_kek_id()
    return envelope.encrypt(_key(kek_id), secret.encode("ascii"), _aad(subscription_id, kek_id)), kek_id


def secret_open(*, subscription_id: UUID, sealed: bytes, kek_id: str) -> str:
    return envelope.decrypt(_key(kek_id), bytes(sealed), _aad(subscription_id, kek_id)).decode("ascii")


def signed_headers(*, secret: str, msg_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``at``."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}
