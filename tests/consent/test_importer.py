"""``manage.py import_csv --source consent``: per-row validation with line/column/code, idempotent re-import."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent import selectors
from consent.models import ConsentEvent
from tests.consent.conftest import ACTOR

HEADER = "source,external_id,email,purpose,action,channel,occurred_at,notice_version\n"


def _csv(tmp_path, rows: list[str]):
    path = tmp_path / "consents.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _import(path) -> str:
    out = io.StringIO()
    call_command("import_csv", "--source", "consent", str(path), "--inline", "--actor", ACTOR, stdout=out,
                 stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_consent_csv_import_commits_good_rows_and_reports_bad_ones_by_line_column_and_code(tmp_path, new_customer):
    alice = new_customer(source="crm", external_id="CRM-1001")
    bob = new_customer(source="erp", external_id="ERP-77", email="bob.import@example.com")
    at = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    later = at + timedelta(days=1)
    path = _csv(tmp_path, [
        f"crm,CRM-1001,,automated_scoring,grant,web,{at.isoformat()},v1",            # line 2: ok
        f"crm,CRM-1001,,marketing,grant,email,{at.isoformat()},",                     # line 3: ok, default notice
        f"erp,,bob.import@example.com,automated_scoring,grant,in_store,{at.isoformat()},",  # line 4: by e-mail
        f"erp,,bob.import@example.com,automated_scoring,withdraw,app,{later.isoformat()},",  # line 5: ok
        f"crm,CRM-404,,automated_scoring,grant,web,{at.isoformat()},",                # line 6: unknown customer
        f"crm,CRM-1001,,astrology,grant,web,{at.isoformat()},",                       # line 7: bad purpose
        f"crm,CRM-1001,,automated_scoring,perhaps,web,{at.isoformat()},",             # line 8: bad action
        f"crm,CRM-1001,,automated_scoring,grant,pigeon,{at.isoformat()},",            # line 9: bad channel
        "crm,CRM-1001,,automated_scoring,grant,web,not-a-date,",                      # line 10: bad time
        "crm,CRM-1001,,automated_scoring,grant,web,2999-01-01T00:00:00Z,",            # line 11: future
        f"crm,CRM-1001,,automated_scoring,grant,web,{at.isoformat()},v7",             # line 12: unknown notice
        f"fax,CRM-1001,,automated_scoring,grant,web,{at.isoformat()},",               # line 13: bad source
        f"crm,,,automated_scoring,grant,web,{at.isoformat()},",                       # line 14: no customer ref
    ])
    output = _import(path)
    assert "created=4 updated=0 merged=0 unchanged=0 rejected=9" in output
    for line, column, code in [
        (6, "external_id", "unknown_customer"), (7, "purpose", "invalid_choice"), (8, "action", "invalid_choice"),
        (9, "channel", "invalid_choice"), (10, "occurred_at", "datetime"), (11, "occurred_at", "in_future"),
        (12, "notice_version", "unknown_version"), (13, "source", "invalid_choice"), (14, "external_id", "required"),
    ]:
        assert f"line {line}, column {column}: {code}" in output
    assert "bob.import@example.com" not in output
    assert ConsentEvent.objects.filter(customer_id=alice).count() == 2
    assert ConsentEvent.objects.filter(customer_id=bob).count() == 2
    assert selectors.consent_state(customer_id=alice, purpose="automated_scoring").status == "granted"
    assert selectors.consent_state(customer_id=bob, purpose="automated_scoring").status == "withdrawn"
    assert selectors.consent_state(customer_id=bob, purpose="automated_scoring", at=later - timedelta(seconds=1)
                                   ).status == "granted"

    again = _import(path)
    assert "created=0 updated=0 merged=0 unchanged=4 rejected=9" in again
    assert ConsentEvent.objects.count() == 4


@pytest.mark.django_db
def test_consent_csv_import_refuses_a_file_without_required_columns(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "bad.csv"
    path.write_text("external_id,purpose\nCRM-1,automated_scoring\n", encoding="utf-8")
    with pytest.raises(CommandError, match="missing_columns"):
        _import(path)
    assert ConsentEvent.objects.count() == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_large_consent_import_runs_in_background_chunks(celery_worker, new_customer):
    from profiles.imports import run_import
    from profiles.models import ImportJob

    ids = [new_customer(source="crm", external_id=f"CRM-BG-{i}") for i in range(5)]
    at = (timezone.now() - timedelta(days=1)).replace(microsecond=0).isoformat()
    rows = "".join(f"crm,CRM-BG-{i},,automated_scoring,grant,web,{at},\n" for i in range(5))
    job = run_import(stream=io.BytesIO((HEADER + rows).encode()), source="consent", actor=ACTOR, chunk_rows=2,
                     background=True)
    assert celery_worker.wait(lambda: ImportJob.objects.get(id=job.id).status == "completed", timeout=90)
    job = ImportJob.objects.get(id=job.id)
    assert (job.total_rows, job.created, job.rejected, job.chunks_done) == (5, 5, 0, 3)
    assert all(selectors.processing_gate(customer_id=c, purpose="automated_scoring").allowed for c in ids)
