"""Encryption of personal fields, sealing under a customer's data key, and key rotation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config import envelope
from config.envelope import DecryptionError
from config.errors import ApplicationError

from .. import data_keys
from ..data_keys import DataKey
from ..models import (
    CustomerKey,
    PersonalField,
)
from .governance import record_governance


def load_fields(customer_id: UUID, key: DataKey) -> dict[str, str]:
    return {
        row.field: key.decrypt_field(row.field, row.ciphertext, row.key_version)
        for row in PersonalField.objects.filter(customer_id=customer_id)
    }


def write_field(customer_id: UUID, key: DataKey, field: str, value: str) -> None:
    PersonalField.objects.update_or_create(
        customer_id=customer_id,
        field=field,
        defaults={"ciphertext": key.encrypt_field(field, value), "key_version": key.key_version,
                  "updated_at": timezone.now()},
    )


def _seal_aad(customer_id: UUID, label: str, key_version: int) -> bytes:
    return f"seal|{customer_id}|{label}|{key_version}".encode()


def customer_seal(*, customer_id: UUID, label: str, payload: dict,
                  wrapped_key: dict[str, Any] | None = None) -> bytes:
    """Encrypt a JSON payload under the customer's own data key (crypto-shredded by erasure).

    Uses the key of ``customer_id`` itself (an alias keeps its key until erasure). No database write.
    ``wrapped_key``: the values of ``selectors.customer_key_expressions`` as read by the caller's own query
    in this transaction (saves the key read); without it the key row is read here. No key row (erased):
    ``DecryptionError``.
    """
    if wrapped_key is None:
        key = data_keys.key_get(customer_id)
    else:
        key = _key_from_values(customer_id, wrapped_key)
    plaintext = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return envelope.encrypt(key.dek, plaintext, _seal_aad(customer_id, label, key.key_version))


def _key_from_values(customer_id: UUID, values: dict[str, Any]) -> DataKey:
    from ..selectors import KEY_EXPRESSION_NAMES

    kek_id, wrapped, key_version = (values.get(name) for name in KEY_EXPRESSION_NAMES)
    if kek_id is None or wrapped is None or key_version is None:
        raise DecryptionError()
    row = CustomerKey(customer_id=customer_id, kek_id=kek_id, wrapped=bytes(wrapped), key_version=int(key_version))
    return DataKey(customer_id, data_keys.unwrap(row), row.key_version)


def customer_seal_many(*, items: list[tuple[UUID, str, dict | bytes]]) -> dict[UUID, bytes]:
    """``customer_seal`` for many customers with one key query (batch rescoring).

    A payload given as ``bytes`` is taken as its JSON encoding already made the way ``customer_seal``
    makes it (sorted keys, compact). Customers without a data key (erased meanwhile) are left out of the
    result. No database write.
    """
    uuids = [_as_uuid(customer_id) for customer_id, _, _ in items]
    keys = data_keys.key_get_many(list(dict.fromkeys(uuids)))
    sealed: dict[UUID, bytes] = {}
    for (customer_id, label, payload), cid in zip(items, uuids, strict=True):
        key = keys.get(cid)
        if key is None:
            continue
        plaintext = payload if isinstance(payload, bytes) else json.dumps(
            payload, sort_keys=True, separators=(",", ":"), default=str).encode()
        sealed[customer_id] = envelope.encrypt(key.dek, plaintext, _seal_aad(customer_id, label, key.key_version))
    return sealed


def _as_uuid(value: Any) -> UUID:
    return value if type(value) is UUID else UUID(str(value))


@dataclass(frozen=True)
class RotationResult:
    rotated: int
    remaining: int
    kek_id: str
    dry_run: bool


@transaction.atomic
def _rotate_batch(active: str, batch_size: int) -> int:
    rows = list(
        CustomerKey.objects.select_for_update(skip_locked=True).exclude(kek_id=active).order_by("customer_id")[:batch_size]
    )
    now = timezone.now()
    for row in rows:
        dek = data_keys.unwrap(row)
        wrapped = envelope.wrap_data_key(dek, customer_id=row.customer_id, kek_id=active)
        row.kek_id, row.wrapped, row.rotated_at = wrapped.kek_id, wrapped.wrapped, now
    CustomerKey.objects.bulk_update(rows, ["kek_id", "wrapped", "rotated_at"])
    return len(rows)


@transaction.atomic
def _rotate_import_keys(active: str) -> int:
    from ..models import ImportJob

    jobs = list(ImportJob.objects.select_for_update(skip_locked=True).exclude(kek_id=active)
                .filter(status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]))
    for job in jobs:
        context = f"import:{job.id}"
        dek = envelope.unwrap_data_key(envelope.WrappedKey(job.kek_id, bytes(job.wrapped_key)), customer_id=context)
        wrapped = envelope.wrap_data_key(dek, customer_id=context, kek_id=active)
        job.kek_id, job.wrapped_key = wrapped.kek_id, wrapped.wrapped
        job.save(update_fields=["kek_id", "wrapped_key"])
    return len(jobs)


def keys_rotate(*, actor: str, batch_size: int = 500, dry_run: bool = False,
                progress: Callable[[int], None] | None = None) -> RotationResult:
    """Re-wrap every data key under the active KEK (``settings.KEK_ACTIVE_ID``), online: short transactions
    of ``batch_size`` rows locked with SKIP LOCKED. Field ciphertexts are untouched (the DEKs stay the same).
    Writes a ``keys.rotated`` governance record with the counts."""
    active = envelope.active_kek_id()
    if active not in settings.KEK_KEYS:
        raise ApplicationError("The active key-encryption key is not configured.", code="kek_missing")
    if dry_run:
        remaining = CustomerKey.objects.exclude(kek_id=active).count()
        return RotationResult(rotated=0, remaining=remaining, kek_id=active, dry_run=True)
    rotated = 0
    idle_rounds = 0
    while True:
        n = _rotate_batch(active, batch_size)
        rotated += n
        if progress is not None and n:
            progress(n)
        if n:
            idle_rounds = 0
            continue
        if not CustomerKey.objects.exclude(kek_id=active).exists() or idle_rounds >= 5:
            break
        idle_rounds += 1  # rows locked by concurrent writers: try again shortly
        import time

        time.sleep(0.2)
    imports = _rotate_import_keys(active)
    remaining = CustomerKey.objects.exclude(kek_id=active).count()
    with transaction.atomic():
        record_governance(kind="keys.rotated", actor=actor,
                    details={"kek_id": active, "rotated": rotated, "remaining": remaining, "imports": imports})
    return RotationResult(rotated=rotated, remaining=remaining, kek_id=active, dry_run=False)
