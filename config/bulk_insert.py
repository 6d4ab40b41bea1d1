"""Inserting many new rows of one model with SQL text of constant size: ``COPY`` on PostgreSQL.

The ORM's ``bulk_create`` builds one ``INSERT ... VALUES (...), (...), ...`` whose text grows with the rows
(and, with psycopg's client-side binding, is parsed again on every call): for imports of thousands of rows
that costs more CPU than the encryption. :func:`rows_insert` streams the rows with ``COPY ... FROM STDIN``
instead; :func:`instances_insert` does it for model instances (``bulk_create``'s
replacement), taking automatic ids from the table's sequence first. Other databases (SQLite in tests and development) use ``bulk_create``:
the same rows, the same constraint errors (raised as ``django.db.IntegrityError`` by both).

Values are given by attribute name (``customer_id``, not ``customer``) as the database stores them: a JSON
column takes its JSON text (:func:`json_text`), a binary column ``bytes``. No defaults are filled in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models

__all__ = ["instances_insert", "json_text", "rows_insert"]


def json_text(value: Any) -> str:
    """A JSON column's value as ``COPY`` takes it (the encoding ``JSONField`` stores)."""
    return json.dumps(value)


def _columns(model: type[models.Model], attnames: Sequence[str]) -> list[models.Field]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [by_attname[name] for name in attnames]


def _use_copy() -> bool:
    return connection.vendor == "postgresql"


def _instances(model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
    fields = _columns(model, attnames)
    instances = []
    for row in rows:
        values = {}
        for field, value in zip(fields, row, strict=True):
            values[field.attname] = json.loads(value) if isinstance(field, models.JSONField) and isinstance(
                value, str) else value
        instances.append(model(**values))
    return instances


def rows_insert(model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (value tuples in ``attnames`` order) into ``model``'s table; all or none (a constraint
    violation raises ``IntegrityError``; run it inside a transaction, as every caller does)."""
    if not rows:
        return
    if not _use_copy():
        model._default_manager.bulk_create(_instances(model, attnames, rows), batch_size=500)
        return
    qn = connection.ops.quote_name
    columns = ", ".join(qn(str(f.column)) for f in _columns(model, attnames))
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN") as copy):
        for row in rows:
            copy.write_row(row)


def instances_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """``bulk_create(objs)`` by ``COPY`` on PostgreSQL: every instance gets its primary key (an automatic one
    is taken from the table's sequence first, ascending in the order of ``objs``) and is marked saved."""
    if not objs:
        return
    if not _use_copy():
        model._default_manager.bulk_create(list(objs), batch_size=500)
        return
    meta = model._meta
    pk = meta.pk
    if isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField):
        missing = [obj for obj in objs if obj.pk is None]
        if missing:
            for obj, value in zip(missing, _next_ids(model, len(missing)), strict=True):
                obj.pk = value
    fields = list(meta.concrete_fields)
    # Values psycopg adapts as the field stores them go as they are; others (JSON, custom fields) through
    # the field's own conversion, as ``bulk_create`` does.
    convert = [(k, f) for k, f in enumerate(fields) if type(f) not in _PLAIN_FIELDS]
    db = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: each access through the proxy is a context lookup
    rows = []
    for obj in objs:
        row = [f.pre_save(obj, True) for f in fields]
        for k, f in convert:
            row[k] = f.get_db_prep_save(row[k], db)
        rows.append(row)
    rows_insert(model, [f.attname for f in fields], rows)
    alias = db.alias
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


_PLAIN_FIELDS = frozenset({
    models.AutoField, models.BigAutoField, models.SmallAutoField, models.BigIntegerField, models.BinaryField,
    models.BooleanField, models.CharField, models.DateTimeField, models.DecimalField, models.FloatField,
    models.ForeignKey, models.IntegerField, models.OneToOneField, models.PositiveBigIntegerField,
    models.PositiveIntegerField, models.PositiveSmallIntegerField, models.SmallIntegerField, models.TextField,
    models.UUIDField,
})


def _next_ids(model: type[models.Model], n: int) -> list[int]:
    """``n`` values of the primary key's sequence (one query), ascending."""
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [connection.ops.quote_name(table), column, n])
        return sorted(int(row[0]) for row in cursor.fetchall())
