"""One home for scanning stored data for canaries (plaintext personal data that must not be at rest)."""

from __future__ import annotations

import json

from django.db import connection


def scan_database(needles: list[str]) -> list[str]:
    """Every text/bytes value of every column of every table, searched for every needle."""
    lowered = [n.lower() for n in needles]
    encoded = [n.encode() for n in needles] + [n.lower().encode() for n in needles]
    hits: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            description = connection.introspection.get_table_description(cursor, table)
            columns = [col.name for col in description]
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if value is None or isinstance(value, int | float | bool):
                        continue
                    if isinstance(value, memoryview | bytes | bytearray):
                        blob = bytes(value)
                        if any(n in blob for n in encoded):
                            hits.append(f"{table}.{column}")
                        continue
                    text = (json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)).lower()
                    if any(n in text for n in lowered):
                        hits.append(f"{table}.{column}")
    return hits
