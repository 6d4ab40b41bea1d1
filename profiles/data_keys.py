"""Per-customer data keys (DEKs): creation, unwrapping (with a small per-process cache) and field crypto.

The cache maps ``(customer id, kek id, key version, sha256(wrapped))`` to the unwrapped DEK. Every lookup
still reads the ``CustomerKey`` row first, so a key deleted by erasure (in any process) is never served
from a cache: the row is gone and :class:`~config.envelope.DecryptionError` is raised. Rotation changes
``kek_id``/``wrapped`` and therefore the cache key.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from config import envelope
from config.envelope import DecryptionError, WrappedKey

from .models import Customer, CustomerKey

_CACHE_SIZE = 2048
_cache: OrderedDict[tuple[str, str, int, str], bytes] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class DataKey:
    customer_id: UUID
    dek: bytes
    key_version: int

    def __repr__(self) -> str:  # never print key material
        return f"DataKey({self.customer_id}, v{self.key_version})"

    # The AES-GCM object and the AAD's customer part are made once per key, not once per field (imports
    # encrypt or decrypt every field of thousands of customers); the bytes produced are the same.
    @cached_property
    def _aead(self) -> envelope.AESGCM:
        return envelope.AESGCM(self.dek)

    @cached_property
    def _aad_prefix(self) -> str:
        return f"field|{self.customer_id}|"

    def field_aad(self, field: str, key_version: int | None = None) -> bytes:
        """``envelope.field_aad`` of this key's customer."""
        return f"{self._aad_prefix}{field}|{self.key_version if key_version is None else key_version}".encode()

    def encrypt_field(self, field: str, value: str) -> bytes:
        return envelope.encrypt_with(self._aead, value.encode("utf-8"), self.field_aad(field))

    def decrypt_field(self, field: str, blob: bytes | memoryview, key_version: int) -> str:
        if len(self.dek) != envelope.KEY_BYTES:
            raise DecryptionError()
        return envelope.decrypt_with(self._aead, bytes(blob), self.field_aad(field, key_version)).decode("utf-8")


def _cache_key(row: CustomerKey) -> tuple[str, str, int, str]:
    return (str(row.customer_id), row.kek_id, row.key_version, hashlib.sha256(bytes(row.wrapped)).hexdigest())


def cache_clear(customer_id: UUID | None = None) -> None:
    with _lock:
        if customer_id is None:
            _cache.clear()
            return
        prefix = str(customer_id)
        for key in [k for k in _cache if k[0] == prefix]:
            del _cache[key]


def unwrap(row: CustomerKey) -> bytes:
    return unwrap_values(row.customer_id, row.kek_id, bytes(row.wrapped), row.key_version)


def unwrap_values(customer_id: UUID, kek_id: str, wrapped: bytes, key_version: int) -> bytes:
    """``unwrap`` from the key row's values as read by the caller's own query (batch readers: no model
    instance per customer)."""
    key = (str(customer_id), kek_id, key_version, hashlib.sha256(wrapped).hexdigest())
    with _lock:
        dek = _cache.get(key)
        if dek is not None:
            _cache.move_to_end(key)
            return dek
    dek = envelope.unwrap_data_key(WrappedKey(kek_id, wrapped), customer_id=customer_id)
    with _lock:
        _cache[key] = dek
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return dek


def key_new(customer: Customer) -> tuple[DataKey, CustomerKey]:
    """A new data key for a customer not saved yet (its id is set at construction), and its unsaved key row:
    the caller encrypts the customer's own columns with it, then inserts the customer, then the row."""
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id=customer.id)
    row = CustomerKey(customer=customer, kek_id=wrapped.kek_id, wrapped=wrapped.wrapped, key_version=1)
    return DataKey(customer.id, dek, 1), row


def key_new_values(customer_id: UUID) -> tuple[DataKey, str, bytes]:
    """``key_new`` without model instances (bulk creation): the key, and its row's ``kek_id`` and ``wrapped``."""
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id=customer_id)
    return DataKey(customer_id, dek, 1), wrapped.kek_id, wrapped.wrapped


def key_create(customer: Customer) -> DataKey:
    key, row = key_new(customer)
    row.save(force_insert=True)
    return key


def key_get(customer_id: UUID) -> DataKey:
    """The customer's DEK; ``DecryptionError`` when there is none (erased, or never existed)."""
    row = CustomerKey.objects.filter(customer_id=customer_id).first()
    if row is None:
        raise DecryptionError()
    return DataKey(row.customer_id, unwrap(row), row.key_version)


#: A read of more keys than this unwraps them without the cache (a batch: each key is used once, and
#: thousands of them would only evict the keys a request or a small batch reads again).
_BULK_UNWRAP = _CACHE_SIZE // 4


def key_get_many(customer_ids: list[UUID]) -> dict[UUID, DataKey]:
    """``key_get`` of many customers with one query; customers without a key are left out."""
    from config.lookups import ids_in

    rows = list(CustomerKey.objects.filter(ids_in("customer_id", list(customer_ids)))
                .values_list("customer_id", "kek_id", "wrapped", "key_version"))
    if len(rows) <= _BULK_UNWRAP:
        return {cid: DataKey(cid, unwrap_values(cid, kek_id, bytes(wrapped), version), version)
                for cid, kek_id, wrapped, version in rows}
    deks = envelope.unwrap_data_keys([(cid, kek_id, bytes(wrapped)) for cid, kek_id, wrapped, _ in rows])
    return {cid: DataKey(cid, dek, version) for (cid, _, _, version), dek in zip(rows, deks, strict=True)}


def key_create_many(customers: list[Customer]) -> dict[UUID, DataKey]:
    """``key_create`` for many new customers with one INSERT (same rows, same wrapping)."""
    rows: list[CustomerKey] = []
    keys: dict[UUID, DataKey] = {}
    for customer in customers:
        dek = envelope.new_data_key()
        wrapped = envelope.wrap_data_key(dek, customer_id=customer.id)
        rows.append(CustomerKey(customer=customer, kek_id=wrapped.kek_id, wrapped=wrapped.wrapped, key_version=1))
        keys[customer.id] = DataKey(customer.id, dek, 1)
    CustomerKey.objects.bulk_create(rows)
    return keys
