"""Inserting many new rows of one model with SQL text of constant size: ``COPY`` on PostgreSQL.

The ORM's ``bulk_create`` builds one ``INSERT ... VALUES (...), (...), ...`` whose text grows with the rows
(and, with psycopg's client-side binding, is parsed again on every call): for imports of thousands of rows
that costs more CPU than the encryption. :func:`rows_insert` streams the rows with ``COPY ... FROM STDIN``
instead; :func:`rows_insert_returning` copies them into a temporary staging table first and inserts from it
with ``RETURNING`` (ids of new facts). Other databases (SQLite in tests and development) use ``bulk_create``:
the same rows, the same constraint errors (raised as ``django.db.IntegrityError`` by both).

Values are given by attribute name (``customer_id``, not ``customer``) as the database stores them: a JSON
column takes its JSON text (:func:`json_text`), a binary column ``bytes``. No defaults are filled in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models

__all__ = ["json_text", "rows_insert", "rows_insert_returning"]


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
    columns = ", ".join(qn(f.column) for f in _columns(model, attnames))
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def rows_insert_returning(model: type[models.Model], attnames: Sequence[str], rows: Sequence[Sequence[Any]],
                          returning: Sequence[str]) -> list[tuple[Any, ...]]:
    """:func:`rows_insert`, answering the ``returning`` attributes of every inserted row (in no given order:
    pick a unique key among them). PostgreSQL: ``COPY`` into a temporary staging table (emptied on commit),
    then one ``INSERT ... SELECT ... RETURNING``."""
    if not rows:
        return []
    if not _use_copy():
        instances = _instances(model, attnames, rows)
        model._default_manager.bulk_create(instances, batch_size=500)
        if all(obj.pk is not None for obj in instances):
            return [tuple(getattr(obj, name) for name in returning) for obj in instances]
        raise NotImplementedError("rows_insert_returning needs a database that returns ids from bulk inserts")
    qn = connection.ops.quote_name
    table = model._meta.db_table
    columns = ", ".join(qn(f.column) for f in _columns(model, attnames))
    back = ", ".join(qn(f.column) for f in _columns(model, returning))
    stage = qn(f"_stage_{table}_" + hashlib.sha256("|".join(attnames).encode()).hexdigest()[:8])
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608  # nosec B608: identifiers quoted by the backend
                       f"SELECT {columns} FROM {qn(table)} WITH NO DATA")
        cursor.execute(f"TRUNCATE {stage}")
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {qn(table)} ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608  # nosec B608: identifiers quoted by the backend
                       f"RETURNING {back}")
        out = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(f"TRUNCATE {stage}")
    return out
