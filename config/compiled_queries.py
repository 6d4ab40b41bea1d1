"""Compile-once ORM reads for hot paths.

Django builds and compiles a queryset on every call (expression resolution, joins, SQL text). For the
annotated one-row reads of the real-time score (the consent gate, the stored score) that costs several
times the database round trip. A ``CompiledQuery`` compiles its ``values()`` queryset once per thread with
sentinel arguments, records where each argument lands among the SQL parameters (checked with a second,
different set of sentinels), and afterwards only substitutes the parameters: the same SQL, the same
values, the same field converters, no ORM work. If the positions cannot be told apart unambiguously, it
simply runs the queryset each time. Nothing is cached but the SQL text: every call reads the database.

On PostgreSQL the hot statements also skip the server's parse and plan: they run through ``hot_cursor``,
a cursor with server-side parameter binding, and psycopg prepares a statement on a connection once it has
run ``prepare_threshold`` times there (``DB_PREPARED_STATEMENTS``; for the gate and the stored score that
is most of the server's work for the statement). Every other query keeps Django's client-side binding,
which never prepares.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.utils.connection import ConnectionProxy

_UUID = models.UUIDField()
_DATETIME = models.DateTimeField()


def _sentinels(kinds: dict[str, str], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        if kind == "uuid":
            out[name] = uuid.uuid4()
        elif kind == "text":
            out[name] = f"sentinel-{n}-{uuid.uuid4().hex}"
        elif kind == "datetime":
            out[name] = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC) + timedelta(microseconds=uuid.uuid4().int % 10**6,
                                                                              days=n)
        else:
            raise ValueError(f"unknown argument kind {kind!r}")
    return out


def hot_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor for a statement the service runs on every request: on PostgreSQL with prepared statements
    enabled (``OPTIONS["prepare_threshold"]``), one with server-side binding, so that psycopg prepares the
    statement after it has run that many times on the connection (psycopg keeps the names per connection
    and forgets them on ROLLBACK, DISCARD or a new connection); anywhere else the ordinary cursor. Wrapped
    like any Django cursor (query logging, error translation)."""
    # ``django.db.connection`` is a proxy that looks the thread's connection up on every attribute access.
    if type(connection) is ConnectionProxy:
        connection = connection._connections[connection._alias]  # type: ignore[attr-defined]
    if connection.vendor != "postgresql" or not connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold"):
        return connection.cursor()

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_hot_cursor_class()(connection.connection))  # type: ignore[attr-defined,call-arg]


#: psycopg's ``%s`` -> ``$n`` conversion of the hot statements, by SQL text and encoding (a handful of entries).
_CONVERTED: dict[tuple[str, str], Any] = {}
_CONVERTED_MAX = 64
_HOT_CURSOR: type | None = None


def _hot_cursor_class() -> type:
    """Django's ``ServerBindingCursor`` whose statements' placeholder conversion is done once per SQL text.

    psycopg converts the query text on every ``execute`` (a regular-expression scan of the whole text) and
    keeps the result only for texts up to 4,096 characters and 50 parameters (``psycopg._queries``: it
    guards its process-wide cache against ORM bulk statements of ever-changing shape). The hot statements
    are longer (the gate with the stored score is ~10,000 characters): converting them cost about half a
    millisecond of CPU per score request. They are few and fixed, so this cursor keeps their conversion."""
    global _HOT_CURSOR
    if _HOT_CURSOR is not None:
        return _HOT_CURSOR
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg import _queries

    convert_uncached = _queries._query2pg_nocache

    class HotQuery(_queries.PostgresQuery):
        def convert(self, query: Any, vars: Any) -> None:
            if vars is None or not isinstance(query, str):
                return super().convert(query, vars)
            key = (query, self._tx.encoding)
            converted = _CONVERTED.get(key)
            if converted is None:
                converted = convert_uncached(query.encode(self._tx.encoding), self._tx.encoding)
                if len(_CONVERTED) < _CONVERTED_MAX:
                    _CONVERTED[key] = converted
            # The same (immutable) result psycopg's own cache hands out for a short statement.
            self.query, self._want_formats, self._order, self._parts = converted
            self.dump(vars)
            return None

    class HotCursor(ServerBindingCursor):
        _query_cls = HotQuery

    _HOT_CURSOR = HotCursor
    return HotCursor


class _Compiled:
    def __init__(self, sql: str, params: list[Any], slots: list[tuple[int, str]], compiler: Any,
                 names: list[str]) -> None:
        self.sql, self.params, self.slots, self.compiler, self.names = sql, params, slots, compiler, names
        # The field converters (JSON, dates, decimals...) resolved once, as results_iter would on every call.
        self.converters = compiler.get_converters([s[0] for s in compiler.select[0:compiler.col_count]])


class CompiledQuery:
    """``CompiledQuery(build, customer_id="uuid", purpose="text", now="datetime")``: ``build(**arguments)``
    returns a ``values()`` queryset (its first row is read: order it unless it matches one row at most);
    ``.first(**arguments)`` -> the row as a dict, or None."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: str) -> None:
        self.build = build
        self.kinds = kinds
        self._local = threading.local()

    def _prepare(self, kind: str, value: Any, connection: Any) -> Any:
        if kind == "uuid":
            return _UUID.get_db_prep_value(value, connection, prepared=False)
        if kind == "datetime":
            return _DATETIME.get_db_prep_value(value, connection, prepared=False)
        return value

    def _compile(self, using: str) -> _Compiled | None:
        connection = connections[using]
        compiled = []
        for n in (1, 2):
            args = _sentinels(self.kinds, n)
            qs = self.build(**args)[:1]
            compiler = qs.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            prepared = {name: self._prepare(self.kinds[name], value, connection) for name, value in args.items()}
            slots = []
            for i, param in enumerate(params):
                hits = [name for name, value in prepared.items() if type(param) is type(value) and param == value]
                if len(hits) > 1:
                    return None
                if hits:
                    slots.append((i, hits[0]))
            query = qs.query
            names = list(query.selected) if query.selected else [
                *query.extra_select, *query.values_select, *query.annotation_select]
            compiled.append((sql, list(params), slots, compiler, names))
        (sql1, params1, slots1, compiler, names), (sql2, params2, slots2, _, _) = compiled
        if sql1 != sql2 or slots1 != slots2 or len(params1) != len(params2):
            return None
        fixed = {i for i, _ in slots1}
        if any(params1[i] != params2[i] for i in range(len(params1)) if i not in fixed):
            return None
        if {name for _, name in slots1} != set(self.kinds):
            return None
        return _Compiled(sql1, params1, slots1, compiler, names)

    def compiled(self, using: str = "default") -> _Compiled | None:
        """The compiled statement on this thread (compiled on first use); None: run the queryset instead."""
        cache = self._local.__dict__
        if using not in cache:
            cache[using] = self._compile(using)
        compiled: _Compiled | None = cache[using]
        return compiled

    def statement(self, using: str = "default", **arguments: Any) -> tuple[str, list[Any]] | None:
        """The SQL and parameters ``first`` would run for these arguments (None: not compiled), for a caller
        that runs it as part of a larger statement and hands the row's columns to ``row_dict``."""
        compiled = self.compiled(using)
        if compiled is None:
            return None
        connection = connections[using]
        # Each argument is prepared once, however many slots it fills (the gate's customer id fills many).
        prepared = {name: self._prepare(kind, arguments[name], connection) for name, kind in self.kinds.items()}
        params = list(compiled.params)
        for i, name in compiled.slots:
            params[i] = prepared[name]
        return compiled.sql, params

    def width(self, using: str = "default") -> int:
        """How many columns a row of the compiled statement has."""
        compiled = self.compiled(using)
        assert compiled is not None
        return len(compiled.names)

    def row_dict(self, row: Sequence[Any], using: str = "default") -> dict[str, Any]:
        """A row of the compiled statement (its columns, in order) as ``first`` returns it: converted, by name."""
        compiled = self.compiled(using)
        assert compiled is not None
        if compiled.converters:
            row = next(compiled.compiler.apply_converters([row], compiled.converters))
        return dict(zip(compiled.names, row, strict=True))

    def first(self, using: str = "default", **arguments: Any) -> dict[str, Any] | None:
        statement = self.statement(using, **arguments)
        if statement is None:
            return next(iter(self.build(**arguments).using(using)[:1]), None)
        with hot_cursor(connections[using]) as cursor:
            cursor.execute(*statement)
            rows = cursor.fetchmany(1)
        return self.row_dict(rows[0], using) if rows else None
