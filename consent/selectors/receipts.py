"""Signed consent receipts and their verification."""

from __future__ import annotations

import hmac
import json
from typing import Any

from config.blind_index import blind_index
from config.errors import NotFound

from .semantics import RECEIPT_FORMAT
from .state import consent_event_get


# --- Receipts --------------------------------------------------------------------------------------------
def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def consent_receipt(*, event_id: int) -> dict[str, Any]:
    """A JSON proof of one consent event: who (pseudonym), what purpose, which notice text (hash), when,
    from which source and channel. ``signature`` is a keyed HMAC-SHA256 over the canonical JSON of the other
    fields, so the service can later verify that a receipt it issued is unaltered
    (:func:`consent_receipt_verify`)."""
    event = consent_event_get(event_id=event_id)
    body: dict[str, Any] = {
        "format": RECEIPT_FORMAT,
        "event_id": event.id,
        "customer": str(event.customer_id),
        "action": event.action,
        "purpose": {
            "code": event.purpose.code,
            "name": event.purpose.name,
            "lawful_basis": event.purpose.lawful_basis,
        },
        "notice": {
            "version": event.notice.version,
            "text_hash": event.notice.text_hash,
            "hash_algorithm": "sha256",
            "published_at": event.notice.published_at.isoformat(),
        },
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.recorded_at.isoformat(),
        "source": event.source,
        "channel": event.channel,
        "evidence": dict(event.evidence or {}),
    }
    body["signature"] = blind_index("consent_receipt", _canonical(body).decode())
    return body


def consent_receipt_verify(*, receipt: dict[str, Any]) -> bool:
    """True when ``receipt`` was issued by this service (same key) and is unaltered, and its event exists
    unchanged."""
    if not isinstance(receipt, dict) or not isinstance(receipt.get("signature"), str):
        return False
    body = {k: v for k, v in receipt.items() if k != "signature"}
    try:
        expected = blind_index("consent_receipt", _canonical(body).decode())
    except (TypeError, ValueError):
        return False
    if not hmac.compare_digest(expected, receipt["signature"]):
        return False
    try:
        current = consent_receipt(event_id=int(body["event_id"]))
    except (NotFound, KeyError, TypeError, ValueError):
        return False
    return hmac.compare_digest(current["signature"], receipt["signature"])
