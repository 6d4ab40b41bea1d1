"""Set-based filters shared by every app: ``ids_in(column, ids)``, a chunk of ids as one parameter."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.db.models import F, Lookup

from config.uuids import as_uuid

__all__ = ["InArray", "TextInArray", "ids_in", "texts_in"]


class InArray(Lookup):
    """``column IN (ids)`` with the ids as ONE array parameter on PostgreSQL (``= ANY(%s)``): no SQL text and
    no per-value work proportional to the number of ids (a 5,000-id chunk is one parameter)."""

    lookup_name = "in_array"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":  # one text parameter, cast once by the server
            return f"{lhs} = ANY(%s::uuid[])", [*lhs_params, "{" + ",".join(str(v) for v in values) + "}"]
        if not values:
            return "1 = 0", list(lhs_params)
        field = self.lhs.output_field
        prepared = [field.get_db_prep_value(v, connection, prepared=False) for v in values]
        return f"{lhs} IN ({', '.join(['%s'] * len(prepared))})", [*lhs_params, *prepared]


def ids_in(column: str, ids: Sequence[uuid.UUID | str]) -> Lookup:
    """A filter expression: ``column`` is one of ``ids`` (UUIDs), e.g.
    ``Order.objects.filter(ids_in("customer_id", ids))``. Set-based reads of a whole chunk use it."""
    return InArray(F(column), [as_uuid(c) for c in ids])


class TextInArray(Lookup):
    """``column IN (values)`` for text values, as ONE array parameter on PostgreSQL (``= ANY(%s)``)."""

    lookup_name = "text_in_array"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [str(v) for v in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::text[])", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


def texts_in(column: str, values: Sequence[str]) -> Lookup:
    """A filter expression: text ``column`` is one of ``values`` (one array parameter on PostgreSQL)."""
    return TextInArray(F(column), list(values))
