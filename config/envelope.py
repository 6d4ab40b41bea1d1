"""Envelope encryption primitives: AES-256-GCM field encryption under per-customer data keys (DEKs),
DEKs wrapped by key-encryption keys (KEKs) from the environment.

- Every ciphertext is bound by associated data (AAD) to its context. Callers build the AAD from
  customer id, field name and key version, so a value copied to another row or field fails.
- Any failure (wrong key, tampered data, wrong context, unknown key id) raises ``DecryptionError``
  with one generic message. Ciphertext is never returned in its place.

Blob format (bytes): ``b"\\x01" + nonce(12) + ciphertext_and_tag``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

VERSION = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """Raised for every decryption failure. The message is deliberately generic."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return encrypt_with(AESGCM(key), plaintext, aad)


def encrypt_with(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """``encrypt`` with an ``AESGCM`` object made once for many values of one key."""
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + aead.encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        if len(key) != KEY_BYTES:
            raise DecryptionError()
        aead = AESGCM(key)
    except (ValueError, TypeError) as exc:
        raise DecryptionError() from exc
    return decrypt_with(aead, blob, aad)


def decrypt_with(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    """``decrypt`` with an ``AESGCM`` object made once for many values of one (32-byte) key."""
    try:
        if not blob or blob[:1] != VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise DecryptionError()
        return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except (InvalidTag, ValueError, TypeError) as exc:
        raise DecryptionError() from exc


def encrypt_text(key: bytes, value: str, aad: bytes) -> bytes:
    return encrypt(key, value.encode("utf-8"), aad)


def decrypt_text(key: bytes, blob: bytes, aad: bytes) -> str:
    return decrypt(key, bytes(blob), aad).decode("utf-8")


def field_aad(*, customer_id: object, field: str, key_version: int) -> bytes:
    """AAD binding a field ciphertext to its customer, field and key version."""
    return f"field|{customer_id}|{field}|{key_version}".encode()


@dataclass(frozen=True)
class WrappedKey:
    kek_id: str
    wrapped: bytes


def _kek(kek_id: str) -> bytes:
    try:
        return settings.KEK_KEYS[kek_id]
    except KeyError as exc:
        raise DecryptionError() from exc


def active_kek_id() -> str:
    return settings.KEK_ACTIVE_ID


def wrap_data_key(dek: bytes, *, customer_id: object, kek_id: str | None = None) -> WrappedKey:
    kid = kek_id or active_kek_id()
    return WrappedKey(kid, encrypt(_kek(kid), dek, f"dek|{customer_id}|{kid}".encode()))


def unwrap_data_key(wrapped: WrappedKey, *, customer_id: object) -> bytes:
    return decrypt(_kek(wrapped.kek_id), bytes(wrapped.wrapped), f"dek|{customer_id}|{wrapped.kek_id}".encode())


def unwrap_data_keys(items: list[tuple[object, str, bytes]]) -> list[bytes]:
    """``unwrap_data_key`` of many ``(customer_id, kek_id, wrapped)`` (a batch's key rows): the same keys and
    the same ``DecryptionError``, with one ``AESGCM`` per KEK instead of one per key."""
    aeads: dict[str, AESGCM] = {}
    out = []
    for customer_id, kek_id, wrapped in items:
        aead = aeads.get(kek_id)
        if aead is None:
            kek = _kek(kek_id)
            if len(kek) != KEY_BYTES:
                raise DecryptionError()
            aead = aeads[kek_id] = AESGCM(kek)
        out.append(decrypt_with(aead, wrapped, f"dek|{customer_id}|{kek_id}".encode()))
    return out
