"""After an erasure commits, the tables it deleted from are vacuumed (PostgreSQL), so the erased rows' dead
tuples are pruned at once rather than at the next autovacuum (docs/RELIABILITY.md)."""

from __future__ import annotations

import pytest
from django.db import connection

from subject_rights.services.erasure import _erased_tables, erased_tables_vacuum


def test_the_erased_tables_are_those_erasure_deletes_from() -> None:
    tables = _erased_tables()
    for table in ("profiles_customer", "profiles_personalfield", "profiles_blindindexentry", "profiles_ticket",
                  "scoring_customerscore", "consent_consentevent"):
        assert table in tables
    assert "profiles_tombstone" not in tables


@pytest.mark.django_db(transaction=True)
def test_vacuum_runs_outside_a_transaction_on_postgresql_only() -> None:
    if connection.vendor != "postgresql":
        assert erased_tables_vacuum() == []
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(vacuum_count, 0) FROM pg_stat_user_tables WHERE relname = 'profiles_customer'")
        before = cursor.fetchone()[0]
    assert "profiles_customer" in erased_tables_vacuum()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'profiles_customer'")
        assert cursor.fetchone()[0] == before + 1


@pytest.mark.django_db
def test_inside_a_transaction_nothing_is_attempted() -> None:
    assert erased_tables_vacuum() == []
