"""The canonical form of an audit record and the hashes of the chain.

Canonical form of a record: a JSON object with sorted keys, no whitespace, UTF-8 (strings are encoded
like ``json.dumps(..., ensure_ascii=False)``), holding

- ``"_type"``: the record type (``decision``, ``review``, ``access``, ``governance``), so a row of one
  table can never pass for a row of another;
- ``"created_at"``: UTC, ISO 8601 with microseconds (``2025-01-31T09:15:00.000000+00:00``);
- every field in ``Model.CANONICAL_FIELDS`` (attribute names, e.g. ``decision_id``): UUIDs as 32 lowercase
  hex digits, integers as numbers, text as JSON strings, null as ``null``; JSON fields embedded as their
  stored canonical text (sorted keys, compact, ASCII-escaped: ``canonical_text``); the binary
  ``sealed_details`` as the SHA-256 hex digest of its bytes (the digest commits to the blob).

``content_hash = sha256(canonical form)``, ``link_hash = sha256("seq|type|row_id|entry_hash|prev")``.

Three implementations build the same bytes: ``canonical_json`` (the reference, from model instances),
``row_encoder`` (from raw database values; used at insert and by the verifier on SQLite), and
``sql_content_hash`` (a PostgreSQL expression, so the verifier hashes a million rows inside the database
in parallel and only reads back the rows that do not match). Tests assert that all three agree.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from django.db import models

from audit.models import CanonicalJSONField, ChainedRecord
from config.uuids import as_uuid

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
        return as_uuid(value).hex
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
    fast encoders — Python below, SQL in ``sql_content_hash`` — must produce the same bytes, which the
    tests check)."""
    obj: dict[str, Any] = {"_type": record.RECORD_TYPE}
    json_fields = set()
    for name, field in _fields_of(type(record)):
        obj[name] = _canonical_value(field, getattr(record, name))
        if isinstance(field, CanonicalJSONField):
            json_fields.add(name)
    parts = []
    for key in sorted(obj):
        value = obj[key]
        if key in json_fields and value is not None:
            text = canonical_text(value)  # embedded as stored: compact, sorted, ASCII-escaped
        else:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        parts.append(json.dumps(key, ensure_ascii=False) + ":" + text)
    return "{" + ",".join(parts) + "}"


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
    return hashlib.sha256(f"{seq}|{record_type}|{row_id}|{entry_hash}|{prev_link_hash}".encode()).hexdigest()


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
    return "null" if value is None else encode_basestring(value)


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
    _enc_str: '("null" if {v} is None else _esc({v}))',  # json.dumps(ensure_ascii=False) of a str
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
        prefix = ("{" if i == 0 else ",") + encode_basestring(key) + ":"
        if key == "_type":
            pieces.append(repr(prefix + encode_basestring(model.RECORD_TYPE)))
            continue
        index = position[key]
        pieces.append(repr(prefix))
        pieces.append(_EXPRESSIONS[_encoder_for(columns[index][1])].format(v=names[index]))
    pieces.append(repr("}"))
    source = (
        f"def encode(values):\n    {', '.join(names)}, = values\n"
        f"    return _sha256(''.join(({', '.join(pieces)})).encode('utf-8')).hexdigest()\n"
    )
    namespace: dict[str, Any] = {
        "_esc": encode_basestring, "_UUID": uuid.UUID, "_sha256": hashlib.sha256,
        "_enc_uuid": _enc_uuid, "_enc_datetime": _enc_datetime, "_enc_digest": _enc_digest,
    }
    exec(compile(source, f"<audit canonical encoder: {model.RECORD_TYPE}>", "exec"), namespace)  # noqa: S102  # nosec B102: source generated from the model's own field list, no outside input
    encode: Callable[[Sequence[Any]], str] = namespace["encode"]
    return encode


def row_encoder_partial(model: type[ChainedRecord], constants: dict[str, Any],
                        variables: Sequence[str]) -> Callable[..., str]:
    """``row_encoder`` for many rows that share the values of ``constants`` (by canonical name): a function
    of the ``variables`` (positional, in that order) returning the content hash. The constant fields are
    encoded once, when the function is generated, by the same encoders as ``row_encoder``, and joined with
    the key text around them: the same bytes as ``row_encoder`` for the full row (tests/audit)."""
    columns = dict(row_columns(model))
    if set(constants) | set(variables) != set(columns) or set(constants) & set(variables):
        raise ValueError("constants and variables must split the canonical fields")
    keys = sorted(["_type", *columns])
    names = {name: f"v{i}" for i, name in enumerate(variables)}
    pieces: list[str] = []
    text = ""
    for i, key in enumerate(keys):
        text += ("{" if i == 0 else ",") + encode_basestring(key) + ":"
        if key == "_type":
            text += encode_basestring(model.RECORD_TYPE)
        elif key in constants:
            text += _encoder_for(columns[key])(constants[key])
        else:
            pieces.append(repr(text))
            text = ""
            pieces.append(_EXPRESSIONS[_encoder_for(columns[key])].format(v=names[key]))
    pieces.append(repr(text + "}"))
    source = (
        f"def encode({', '.join(names.values())}):\n"
        f"    return _sha256(''.join(({', '.join(pieces)},)).encode('utf-8')).hexdigest()\n"
    )
    namespace: dict[str, Any] = {
        "_esc": encode_basestring, "_UUID": uuid.UUID, "_sha256": hashlib.sha256,
        "_enc_uuid": _enc_uuid, "_enc_datetime": _enc_datetime, "_enc_digest": _enc_digest,
    }
    exec(compile(source, f"<audit canonical encoder: {model.RECORD_TYPE}, partial>", "exec"), namespace)  # noqa: S102  # nosec B102: source generated from the model's own field list and values encoded by the field encoders (repr), no outside code
    encode: Callable[..., str] = namespace["encode"]
    return encode


# ------------------------------------------------------------------------------ SQL (PostgreSQL)

def sql_content_hash(model: type[ChainedRecord], alias: str, quote: Callable[[str], str]) -> tuple[str, list[str]]:
    """A PostgreSQL expression computing a row's content hash in the database, byte-identical to
    ``row_encoder`` (PostgreSQL's ``to_json`` escapes strings exactly like ``json.dumps(ensure_ascii=
    False)``). Built-ins are schema-qualified so a shadowing function cannot answer instead.
    Returns (sql, params): the key names are passed as parameters."""
    columns = row_columns(model)
    keys = sorted(["_type", *(name for name, _ in columns)])
    fields = dict(columns)
    pieces: list[str] = []
    params: list[str] = []
    for i, key in enumerate(keys):
        prefix = ("{" if i == 0 else ",") + encode_basestring(key) + ":"
        if key == "_type":
            pieces.append("%s")
            params.append(prefix + encode_basestring(model.RECORD_TYPE))
            continue
        pieces.append("%s")
        params.append(prefix)
        field = fields[key]
        column = f"{alias}.{quote(str(field.column))}"
        encoder = _encoder_for(field)
        if encoder is _enc_datetime:
            value = (f"pg_catalog.to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') "
                     "|| '+00:00'")
            value = f"'\"' || {value} || '\"'"
        elif encoder is _enc_uuid:
            value = f"'\"' || pg_catalog.replace({column}::text, '-', '') || '\"'"
        elif encoder is _enc_int:
            value = f"{column}::text"
        elif encoder is _enc_json_text:
            value = column
        elif encoder is _enc_digest:
            value = f"'\"' || pg_catalog.encode(pg_catalog.sha256({column}), 'hex') || '\"'"
        else:
            value = f"pg_catalog.to_json({column}::text)::text"
        pieces.append(f"COALESCE({value}, 'null')")
    pieces.append("'}'")
    expression = " || ".join(pieces)
    return f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to({expression}, 'UTF8')), 'hex')", params


def sql_link_hash(alias: str, quote: Callable[[str], str]) -> str:
    """PostgreSQL expression equal to ``link_hash`` for a chain-link row."""
    def col(name: str) -> str:
        return f"{alias}.{quote(name)}"

    text = (f"{col('seq')}::text || '|' || {col('record_type')} || '|' || {col('row_id')}::text || '|' || "
            f"{col('entry_hash')} || '|' || {col('prev_link_hash')}")
    return f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to({text}, 'UTF8')), 'hex')"
