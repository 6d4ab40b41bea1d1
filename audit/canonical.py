"""The canonical form of an audit record and the hashes of the chain.

Canonical form of a record = ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` of an object holding

- ``"_type"``: the record type (``decision``, ``review``, ``access``, ``governance``), so a row of one
  table can never pass for a row of another;
- ``"created_at"``: UTC, ISO 8601 with microseconds (``2025-01-31T09:15:00.000000+00:00``);
- every field in ``Model.CANONICAL_FIELDS`` (the model's attribute names, e.g. ``decision_id``), where
  UUIDs are 32 lowercase hex digits, JSON fields are their (already canonical) JSON value, and the binary
  ``sealed_details`` is represented by the SHA-256 hex digest of its bytes (or null) — the digest commits
  to the blob, and lets PostgreSQL hash the blob server-side during verification.

``content_hash = sha256(canonical form)``, ``link_hash = sha256("seq|type|row_id|entry_hash|prev")``.

Two implementations build the same bytes: ``canonical_json`` from model instances (used at insert), and
``row_encoder`` from raw database values (used by the verifier, which must process ~1M rows in seconds:
it splices the stored canonical JSON text instead of parsing and re-serialising it). A test asserts that
both agree.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from django.db import models

from audit.models import CanonicalJSONField, ChainedRecord

GENESIS_HASH = "0" * 64
BINARY_FIELDS = frozenset({"sealed_details"})


def iso_utc(value: datetime) -> str:
    """UTC, ISO 8601 with microseconds and an explicit ``+00:00`` offset (naive values are UTC)."""
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds") + "+00:00"
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _canonical_value(field: models.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        return iso_utc(value)
    if isinstance(field, models.UUIDField):
        return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex
    if isinstance(field, models.BinaryField):
        return hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(field, CanonicalJSONField):
        return value
    if isinstance(field, models.IntegerField | models.ForeignKey):
        return int(value)
    return str(value)


def _fields_of(model: type[ChainedRecord]) -> list[tuple[str, models.Field]]:
    out: list[tuple[str, models.Field]] = [("created_at", model._meta.get_field("created_at"))]
    for name in model.CANONICAL_FIELDS:
        field = model._meta.get_field(name)  # get_field also knows attnames (decision_id)
        assert isinstance(field, models.Field)
        out.append((name, field))
    return out


def canonical_json(record: ChainedRecord) -> str:
    """The canonical form of a model instance (reference implementation of the specification; the
    fast encoder below must produce the same bytes, which the tests check)."""
    obj: dict[str, Any] = {"_type": record.RECORD_TYPE}
    for name, field in _fields_of(type(record)):
        obj[name] = _canonical_value(field, getattr(record, name))
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def canonical_json_value(value: Any) -> Any:
    """Round-trip a JSON value through its canonical text, so the hash covers exactly what is stored
    (e.g. integer keys become strings before sorting) and non-JSON values are refused early."""
    return json.loads(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False))


def canonical_text(value: Any) -> str:
    """The canonical JSON text of a value (what a ``CanonicalJSONField`` stores)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def content_hash(record: ChainedRecord) -> str:
    """The content hash of a model instance, through the same encoder the verifier uses."""
    model = type(record)
    values = []
    for name, fld in row_columns(model):
        value = getattr(record, name)
        values.append(fld.get_prep_value(value) if isinstance(fld, CanonicalJSONField) else value)
    return _encoder_cache(model)(values)


def content_hash_of_values(model: type[ChainedRecord], values: dict[str, Any]) -> str:
    """Content hash from a dict of attribute values, JSON fields given as canonical text."""
    return _encoder_cache(model)([values[name] for name, _ in row_columns(model)])


_ENCODERS: dict[type, Callable[[Sequence[Any]], str]] = {}


def _encoder_cache(model: type[ChainedRecord]) -> Callable[[Sequence[Any]], str]:
    encoder = _ENCODERS.get(model)
    if encoder is None:
        encoder = _ENCODERS[model] = row_encoder(model)
    return encoder


def link_hash(seq: int, record_type: str, row_id: int, entry_hash: str, prev_link_hash: str) -> str:
    return hashlib.sha256(f"{seq}|{record_type}|{row_id}|{entry_hash}|{prev_link_hash}".encode("ascii")).hexdigest()


# ------------------------------------------------------------------------------ fast path (verifier)

def _enc_datetime(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return '"' + iso_utc(value) + '"'


def _enc_uuid(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, uuid.UUID):
        return '"' + value.hex + '"'
    text = str(value)
    return '"' + (text if len(text) == 32 else uuid.UUID(text).hex) + '"'


def _enc_str(value: Any) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _enc_int(value: Any) -> str:
    return "null" if value is None else str(int(value))


def _enc_json_text(value: Any) -> str:
    return "null" if value is None else str(value)


def _enc_digest(value: Any) -> str:
    """Binary column: either already a hex digest (PostgreSQL computes it) or raw bytes."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + value + '"'
    return '"' + hashlib.sha256(bytes(value)).hexdigest() + '"'


def _encoder_for(field: models.Field) -> Callable[[Any], str]:
    if isinstance(field, models.DateTimeField):
        return _enc_datetime
    if isinstance(field, models.UUIDField):
        return _enc_uuid
    if isinstance(field, models.BinaryField):
        return _enc_digest
    if isinstance(field, CanonicalJSONField):
        return _enc_json_text
    if isinstance(field, models.IntegerField | models.ForeignKey):
        return _enc_int
    return _enc_str


def row_columns(model: type[ChainedRecord]) -> list[tuple[str, models.Field]]:
    """(canonical name, field) in the order the verifier selects them (after id and content_hash)."""
    return _fields_of(model)


_EXPRESSIONS: dict[Callable[[Any], str], str] = {
    _enc_str: '("null" if {v} is None else _esc({v}))',
    _enc_int: '("null" if {v} is None else str(int({v})))',
    _enc_json_text: '("null" if {v} is None else {v})',
    _enc_uuid: '("null" if {v} is None else \'"\' + {v}.hex + \'"\' if {v}.__class__ is _UUID else _enc_uuid({v}))',
    _enc_datetime: "_enc_datetime({v})",
    _enc_digest: '("null" if {v} is None else \'"\' + {v} + \'"\' if {v}.__class__ is str else _enc_digest({v}))',
}


def row_encoder(model: type[ChainedRecord]) -> Callable[[Sequence[Any]], str]:
    """A function mapping the raw column values (in ``row_columns`` order) to the content hash.

    The function is generated once per model as a single expression (no per-field calls on the hot path):
    the verifier runs it a million times."""
    columns = row_columns(model)
    keys = sorted(["_type", *(name for name, _ in columns)])
    position = {name: i for i, (name, _) in enumerate(columns)}
    names = [f"v{i}" for i in range(len(columns))]
    pieces = []
    for i, key in enumerate(keys):
        prefix = ("{" if i == 0 else ",") + encode_basestring_ascii(key) + ":"
        if key == "_type":
            pieces.append(repr(prefix + encode_basestring_ascii(model.RECORD_TYPE)))
            continue
        index = position[key]
        pieces.append(repr(prefix))
        pieces.append(_EXPRESSIONS[_encoder_for(columns[index][1])].format(v=names[index]))
    pieces.append(repr("}"))
    source = (
        f"def encode(values):\n    {', '.join(names)}, = values\n"
        f"    return _sha256(''.join(({', '.join(pieces)})).encode('ascii')).hexdigest()\n"
    )
    namespace: dict[str, Any] = {
        "_esc": encode_basestring_ascii, "_UUID": uuid.UUID, "_sha256": hashlib.sha256,
        "_enc_uuid": _enc_uuid, "_enc_datetime": _enc_datetime, "_enc_digest": _enc_digest,
    }
    exec(compile(source, f"<audit canonical encoder: {model.RECORD_TYPE}>", "exec"), namespace)  # noqa: S102
    encode: Callable[[Sequence[Any]], str] = namespace["encode"]
    return encode
