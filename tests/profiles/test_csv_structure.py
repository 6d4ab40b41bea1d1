"""Low findings (CSV parsing): an unbalanced quote silently swallowed the next row into one field (1 created,
0 rejected, a record lost); duplicate header columns let the last one win. Now per-row and per-file errors."""

from __future__ import annotations

import io

import pytest

from config.errors import ValidationFailed
from profiles import selectors
from profiles.imports import run_import
from profiles.models import Customer, ImportJob, Ticket

pytestmark = pytest.mark.django_db


def _bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_an_unbalanced_quote_that_runs_to_the_end_rejects_its_row_instead_of_losing_the_next():
    content = 'external_id,name,attr_segment\nC-1,"Alice,retail\nC-2,Bob,retail\n'
    job = run_import(stream=_bytes(content), source="crm", actor="cli")
    assert (job.created, job.rejected) == (0, 1)
    assert job.rejections == [{"line": 2, "column": None, "code": "unbalanced_quote"}]
    assert Customer.objects.count() == 0  # nothing half-read was stored as if it were right


def test_an_unbalanced_quote_closed_by_a_later_row_is_rejected_and_the_rows_after_it_are_kept():
    content = 'external_id,name,attr_segment\nC-1,"Alice,retail\nC-2,Bob",retail\nC-3,Carol,retail\n'
    job = run_import(stream=_bytes(content), source="crm", actor="cli")
    assert (job.created, job.rejected) == (1, 1)
    assert job.rejections == [{"line": 2, "column": None, "code": "unbalanced_quote"}]
    assert selectors.customer_find(source="crm", external_id="C-3") is not None
    assert selectors.customer_find(source="crm", external_id="C-1") is None


def test_an_unclosed_quote_on_the_last_line_is_rejected():
    job = run_import(stream=_bytes('external_id,name\nC-1,Ann\nC-2,"Bob\n'), source="crm", actor="cli")
    assert (job.created, job.rejected) == (1, 1)
    assert job.rejections == [{"line": 3, "column": None, "code": "unbalanced_quote"}]


def test_multi_line_text_in_a_free_text_column_is_still_imported():
    content = ('external_id,opened_at,customer_external_id,customer_source,text\n'
               'T-1,2024-03-01T10:00:00Z,C-1,crm,"First line,\nsecond line, with commas, and more"\n'
               'T-2,2024-03-02T10:00:00Z,C-1,crm,plain\n')
    run_import(stream=_bytes("external_id,name\nC-1,Ann\n"), source="crm", actor="cli")
    job = run_import(stream=_bytes(content), source="support", actor="cli")
    assert (job.created, job.rejected) == (2, 0), job.rejections
    assert Ticket.objects.count() == 2


def test_duplicate_header_columns_refuse_the_file_naming_them():
    with pytest.raises(ValidationFailed) as info:
        run_import(stream=_bytes("external_id,name,email,name\nC-1,Ann,a@example.com,Annie\n"), source="crm",
                   actor="cli")
    assert info.value.code == "duplicate_columns"
    assert info.value.extra == {"columns": ["name"]}
    assert Customer.objects.count() == 0
    assert ImportJob.objects.get().status == "failed"


def test_duplicate_columns_differing_only_in_surrounding_spaces_are_duplicates_too():
    with pytest.raises(ValidationFailed) as info:
        run_import(stream=_bytes("external_id, email ,email\nC-1,a@example.com,b@example.com\n"), source="crm",
                   actor="cli")
    assert info.value.code == "duplicate_columns" and info.value.extra == {"columns": ["email"]}
