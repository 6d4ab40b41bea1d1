"""CSV imports: validation per row, idempotent re-import, HubSpot mapping, encrypted background chunks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from config.errors import ValidationFailed
from profiles import selectors
from profiles.imports import registered_sources, run_import
from profiles.models import Customer, ImportChunk, ImportJob, Order, PersonalField, Ticket

pytestmark = pytest.mark.django_db

CRM_CSV = """external_id,first_name,last_name,email,phone,street,postal_code,city,company,job_title,preferred_language,date_of_birth,country,attr_lifecycle_stage,feature_seats,personal_linkedin
C-1,Ada,Lovelace,ada@example.com,+44 7700 900001,1 Analytical St,N1 9GU,London,Engines Ltd,Analyst,en,1985-12-10,GB,customer,12,linkedin.com/in/ada
C-2,Bob,Builder,not-an-email,,,,,,,,,,lead,,
C-3,Cleo,Patra,cleo@example.com,+44 7700 900003,,,,,,,31/12/1980,GB,,,
C-4,Dan,Druff,dan@example.com,12,,,,,,,,GB,,,
,Eve,Nobody,eve@example.com,,,,,,,,,,,,
C-6,Fay,Wray,fay@example.com,+44 7700 900006,,,,,,,,GB,customer,3,
"""


def _bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_profiles_and_consent_sources_are_registered() -> None:
    assert {"crm", "erp", "support", "web"} <= set(registered_sources())


def test_crm_import_commits_good_rows_and_reports_bad_rows_with_line_column_and_code(governance) -> None:
    job = run_import(stream=_bytes(CRM_CSV), source="crm", actor="cli")

    assert (job.status, job.total_rows, job.created, job.rejected, job.updated, job.merged) == (
        "completed", 6, 2, 4, 0, 0)
    assert job.rejections == [
        {"line": 3, "column": "email", "code": "invalid"},
        {"line": 4, "column": "date_of_birth", "code": "date"},
        {"line": 5, "column": "phone", "code": "invalid"},
        {"line": 6, "column": "external_id", "code": "required"},
    ]
    ada = selectors.customer_find(source="crm", external_id="C-1")
    data = selectors.customer_personal_data(customer_id=ada)
    assert data["name"] == "Ada Lovelace"
    assert data["address"] == "1 Analytical St, N1 9GU London"
    assert data["date_of_birth"] == "1985-12-10"
    assert data["linkedin"] == "linkedin.com/in/ada"
    assert data["phone"] == "+447700900001"
    profile = selectors.customer_profile(customer_id=ada)
    assert profile["attributes"] == {"lifecycle_stage": "customer", "seats": 12}
    assert profile["feature_attributes"] == ["seats"]
    assert profile["country"] == "GB"
    assert Customer.objects.count() == 2  # no half-written customer from a rejected row
    [event] = governance("import.completed")
    assert event.details == {"import": str(job.id), "source": "crm", "kind": "customers", "total": 6, "created": 2,
                             "updated": 0, "merged": 0, "unchanged": 0, "rejected": 4}


def test_reimporting_the_same_file_changes_nothing() -> None:
    run_import(stream=_bytes(CRM_CSV), source="crm", actor="cli")
    fields = list(PersonalField.objects.order_by("id").values_list("id", "ciphertext"))
    again = run_import(stream=_bytes(CRM_CSV), source="crm", actor="cli")
    assert (again.created, again.updated, again.merged, again.unchanged, again.rejected) == (0, 0, 0, 2, 4)
    assert Customer.objects.count() == 2
    assert [(i, bytes(c)) for i, c in PersonalField.objects.order_by("id").values_list("id", "ciphertext")] == [
        (i, bytes(c)) for i, c in fields]


def test_erp_orders_and_support_tickets_import_against_source_identities() -> None:
    run_import(stream=_bytes(CRM_CSV), source="crm", actor="cli")
    orders = ("external_id,customer_external_id,customer_source,ordered_at,amount,margin,currency,returned,days_late\n"
              "O-1,C-1,crm,2025-03-01T10:00:00Z,120.50,30,GBP,false,0\n"
              "O-2,C-404,crm,2025-03-02,10,,,,\n"
              "O-3,C-6,crm,2025-03-03,ten,,,,\n"
              "O-4,,,2025-03-03,10,,,,\n")
    job = run_import(stream=_bytes(orders), source="erp", actor="cli")
    assert (job.created, job.rejected) == (1, 3)
    assert job.rejections == [
        {"line": 3, "column": "customer_external_id", "code": "unknown_customer"},
        {"line": 4, "column": "amount", "code": "invalid"},
        {"line": 5, "column": "customer_external_id", "code": "required"},
    ]
    assert Order.objects.get().currency == "GBP"
    tickets = ('external_id,customer_email,opened_at,closed_at,channel,escalated,satisfaction,category,text\n'
               'T-1,ADA@example.com,2025-03-04T08:00:00Z,2025-03-05T08:00:00Z,email,yes,4,billing,'
               '"Ada Lovelace here,\nplease call +44 7700 900001"\n'
               'T-2,fay@example.com,2025-03-04,2025-03-01,chat,no,9,,broken\n')
    job = run_import(stream=_bytes(tickets), source="support", actor="cli")
    assert (job.created, job.rejected) == (1, 1)
    assert job.rejections[0]["line"] == 4  # the quoted text spans lines 2-3
    assert job.rejections[0]["column"] in ("satisfaction", "closed_at")
    ticket = Ticket.objects.get()
    assert ticket.text_pseudonymized == "<PERSON_1> here,\nplease call <PHONE_1>"
    assert (ticket.escalated, ticket.satisfaction, ticket.channel) == (True, 4, "email")


def test_missing_required_columns_reject_the_file_before_anything_is_written() -> None:
    with pytest.raises(ValidationFailed) as info:
        run_import(stream=_bytes("customer_external_id,amount\nC-1,10\n"), source="erp", actor="cli")
    assert info.value.code == "missing_columns"
    assert info.value.extra == {"columns": ["external_id", "ordered_at"]}
    assert Order.objects.count() == 0
    assert ImportJob.objects.get().status == "failed"


def test_malformed_rows_are_reported_without_losing_the_good_ones() -> None:
    content = b"external_id,email\nC-1,a@example.com\nC-2,b@example.com,extra\nC-3,\xff\xfe@x\nC-4,d@example.com\n"
    job = run_import(stream=io.BytesIO(content), source="crm", actor="cli")
    assert (job.created, job.rejected, job.total_rows) == (2, 2, 4)
    assert selectors.customer_find(source="crm", external_id="C-4") is not None
    assert {"line": 3, "column": None, "code": "too_many_columns"} in job.rejections
    assert {"line": 4, "column": None, "code": "invalid_encoding"} in job.rejections
    assert len(job.rejections) == 2


HUBSPOT_CSV = ('"Record ID","First Name","Last Name","Email","Phone Number","Company Name","Job Title",'
               '"Street Address","City","Postal Code","Country/Region","Preferred language","Lifecycle Stage",'
               '"Create Date"\n'
               '"501","Mikko","Korhonen","mikko.korhonen@example.fi","040 765 4321","Korhonen Oy","CTO",'
               '"Aleksanterinkatu 5","Helsinki","00100","Finland","fi","opportunity","2024-01-01"\n')


def test_hubspot_contacts_export_is_mapped_to_customer_columns() -> None:
    job = run_import(stream=_bytes(HUBSPOT_CSV), source="crm", mapping="hubspot", actor="cli")
    assert (job.created, job.rejected) == (1, 0)
    cid = selectors.customer_find(source="crm", external_id="501")
    data = selectors.customer_personal_data(customer_id=cid)
    assert (data["name"], data["email"], data["phone"], data["company"], data["job_title"], data["address"],
            data["preferred_language"]) == ("Mikko Korhonen", "mikko.korhonen@example.fi", "+358407654321",
                                            "Korhonen Oy", "CTO", "Aleksanterinkatu 5, 00100 Helsinki", "fi")
    assert selectors.customer_profile(customer_id=cid)["attributes"] == {"lifecycle_stage": "opportunity"}
    assert selectors.customer_profile(customer_id=cid)["country"] == "FI"


def test_large_file_is_stored_in_encrypted_chunks_and_processed_by_tasks_with_ids_only(
    django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from profiles import tasks

    sent: list[tuple] = []
    original = tasks.import_chunk.delay_on_commit

    def spy(*args, **kwargs):
        sent.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(tasks.import_chunk, "delay_on_commit", spy)
    rows = "".join(f"C-{i},person{i}@example.com,Person Number{i}\n" for i in range(7))
    content = "external_id,email,name\n" + rows

    stored: list[bytes] = []
    from profiles import imports

    real_process = imports.import_chunk_process

    def snoop(*, job_id, chunk_no):
        stored.extend(bytes(c) for c in ImportChunk.objects.filter(job_id=job_id).values_list("ciphertext", flat=True))
        return real_process(job_id=job_id, chunk_no=chunk_no)

    monkeypatch.setattr(imports, "import_chunk_process", snoop)
    with django_capture_on_commit_callbacks(execute=True):
        job = run_import(stream=_bytes(content), source="crm", actor="cli", chunk_rows=3)

    job.refresh_from_db()
    assert (job.status, job.chunks_total, job.chunks_done, job.created, job.total_rows) == ("completed", 3, 3, 7, 7)
    assert sent == [(str(job.id), 1), (str(job.id), 2), (str(job.id), 3)]
    assert stored and all(b"example.com" not in blob and b"Person" not in blob for blob in stored)
    assert ImportChunk.objects.count() == 0


def test_processed_chunk_task_is_idempotent() -> None:
    from profiles.imports import import_chunk_process

    job = run_import(stream=_bytes("external_id,email\nC-1,x@example.com\nC-2,y@example.com\n"), source="crm",
                     actor="cli", chunk_rows=1, background=True)
    assert ImportChunk.objects.filter(job=job).count() == 2  # callbacks not run inside the test transaction
    assert import_chunk_process(job_id=job.id, chunk_no=1) is True
    assert import_chunk_process(job_id=job.id, chunk_no=1) is False
    assert import_chunk_process(job_id=job.id, chunk_no=2) is True
    job.refresh_from_db()
    assert (job.status, job.created, job.chunks_done) == ("completed", 2, 2)


def test_import_csv_command_prints_summary_and_rejections(tmp_path: Path, capsys) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(CRM_CSV)
    call_command("import_csv", "--source", "crm", str(path))
    out = capsys.readouterr().out
    assert "created=2 updated=0 merged=0 unchanged=0 rejected=4" in out
    assert "line 3, column email: invalid" in out
    assert "not-an-email" not in out
    call_command("import_csv", "--source", "crm", str(path))
    assert "created=0 updated=0 merged=0 unchanged=2 rejected=4" in capsys.readouterr().out


def test_import_csv_command_refuses_unknown_mapping_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("external_id\nC-1\n")
    with pytest.raises(CommandError, match="unknown_mapping"):
        call_command("import_csv", "--source", "crm", "--mapping", "salesforce", str(path))
    with pytest.raises(CommandError, match="File not found"):
        call_command("import_csv", "--source", "crm", str(tmp_path / "missing.csv"))
    assert Customer.objects.count() == 0
