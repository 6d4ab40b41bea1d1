"""CRM attributes encrypted under the customer's data key (issue 20, fault 6).

A customer's plain CRM attributes (``lifecycle_stage``, ``plan``, a declared feature such as ``seats``...)
describe one person, so they are personal data too. They are stored as one AES-256-GCM blob per customer,
``Customer.attributes_encrypted``, under the customer's own data key (DEK) with the AAD of a personal field
named ``crm_attributes`` (``field|<customer>|crm_attributes|<key version>``): the JSON object, keys sorted,
compact. Erasure deletes the key, so crypto-shredding reaches the attributes with everything else (and the
row, its dead tuples and WAL copies hold only ciphertext). No attributes: no blob (NULL).

Reading in batches (scoring features, training, exports) costs one query that also reads the key columns
(``KEY_COLUMNS``), an unwrap per customer served by ``profiles.data_keys``' per-process cache, and one AES-GCM
decryption of a small blob; customers without declared feature attributes are not decrypted at all by the
feature code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from config import envelope
from config.envelope import DecryptionError

from . import data_keys
from .data_keys import DataKey
from .models import Customer

FIELD = "crm_attributes"
# Extra columns of a Customer ``values_list`` that let ``attributes_from_values`` decrypt without another query.
KEY_COLUMNS = ("attributes_encrypted", "attributes_key_version", "key__kek_id", "key__wrapped", "key__key_version")


def _encode(attributes: Mapping[str, Any]) -> str:
    return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def attributes_seal(key: DataKey, attributes: Mapping[str, Any] | None) -> tuple[bytes | None, int | None]:
    """(blob, key version) of ``attributes``; (None, None) for none."""
    if not attributes:
        return None, None
    return key.encrypt_field(FIELD, _encode(attributes)), key.key_version


def attributes_open(key: DataKey, blob: bytes | memoryview | None, key_version: int | None) -> dict[str, Any]:
    """The attributes in ``blob`` ({} for none); ``DecryptionError`` for a blob of another customer or key."""
    if blob is None:
        return {}
    value = json.loads(key.decrypt_field(FIELD, bytes(blob), int(key_version or key.key_version)))
    if not isinstance(value, dict):
        raise DecryptionError()
    return value


def attributes_get(customer: Customer, key: DataKey) -> dict[str, Any]:
    """The attributes of a loaded customer row (the caller has its key)."""
    return attributes_open(key, customer.attributes_encrypted, customer.attributes_key_version)


def attributes_put(customer: Customer, key: DataKey, attributes: Mapping[str, Any] | None) -> None:
    """Set the attributes of a customer instance (encrypted; the caller saves ``ATTRIBUTE_FIELDS``)."""
    customer.attributes_encrypted, customer.attributes_key_version = attributes_seal(key, attributes)


ATTRIBUTE_FIELDS = ("attributes_encrypted", "attributes_key_version")  # what ``attributes_put`` sets


def attributes_merge(customer: Customer, key: DataKey, incoming: Mapping[str, Any]) -> bool:
    """Merge ``incoming`` over the customer's attributes (incoming wins); re-encrypt only when something
    changed. Returns whether it did."""
    if not incoming:
        return False
    current = attributes_get(customer, key)
    merged = {**current, **incoming}
    if merged == current:
        return False
    attributes_put(customer, key, merged)
    return True


def attributes_from_values(customer_id: UUID, blob: bytes | memoryview | None, key_version: int | None,
                           kek_id: str | None, wrapped: bytes | memoryview | None,
                           dek_version: int | None) -> dict[str, Any]:
    """Decrypt from the values of ``KEY_COLUMNS`` read by the caller's own query. {} when there is no blob;
    ``DecryptionError`` when there is a blob but no key (erased meanwhile)."""
    if blob is None:
        return {}
    if kek_id is None or wrapped is None or dek_version is None:
        raise DecryptionError()
    dek = data_keys.unwrap_values(customer_id, kek_id, bytes(wrapped), int(dek_version))
    aad = envelope.field_aad(customer_id=customer_id, field=FIELD, key_version=int(key_version or dek_version))
    value = json.loads(envelope.decrypt(dek, bytes(blob), aad))
    if not isinstance(value, dict):
        raise DecryptionError()
    return value


def attributes_many(customer_ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
    """The attributes of many customers (one query, keys included); customers without a key (erased) or
    without attributes are left out."""
    out: dict[UUID, dict[str, Any]] = {}
    rows = Customer.objects.filter(id__in=list(customer_ids), attributes_encrypted__isnull=False).values_list(
        "id", *KEY_COLUMNS)
    for cid, *values in rows:
        try:
            attributes = attributes_from_values(cid, *values)
        except DecryptionError:
            continue
        if attributes:
            out[cid] = attributes
    return out


def attributes_of(customer_id: UUID) -> dict[str, Any]:
    """The attributes of one customer ({} when none); ``DecryptionError`` when its key is gone."""
    row = Customer.objects.filter(id=customer_id).values_list(*KEY_COLUMNS).first()
    if row is None:
        return {}
    return attributes_from_values(customer_id, *row)
