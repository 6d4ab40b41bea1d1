"""Canary scan (issue 3, Art. 5(1)(c), 25, 32): a unique fake e-mail, name and phone per customer, ingested
through the API and CSV with tickets naming them, must appear in no plaintext column of any table, no log
record, no Celery message, and no stored ticket text (placeholders instead); the customer's own identifiers
are caught in Polish, Dutch, Finnish, Swedish and English tickets (recall 1.00)."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from profiles import selectors
from profiles.imports import run_import
from tests.privacy_scan import Canary, index_hits, keyed_needles, scan_database, scan_text
from tests.task_messages import TaskMessages

PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")


# (locale, first name, phone as E.164 prefix+digits, how it is written in the ticket, ticket template)
LANGUAGES = {
    "pl": ("Wiesława", "+48601{d3}{d3b}", "601 {d3} {d3b}", "PL",
           "Dzień dobry, nazywam się {name}. Paczka nie dotarła. Proszę o kontakt: {email} lub tel. {phone}. "
           "Pozdrawiam, {last}"),
    "nl": ("Sanne", "+316{d4}{d4b}", "06 {d4}{d4b}", "NL",
           "Goedemiddag, u spreekt met {name}. Mijn bestelling is kapot aangekomen. Bel mij op {phone} of mail "
           "naar {email}. Met vriendelijke groet, {name}"),
    "fi": ("Aino", "+35840{d3}{d4}", "040 {d3} {d4}", "FI",
           "Hei, olen {name}. Laskussa on virhe. Sähköpostini on {email} ja puhelinnumeroni {phone}. "
           "Terveisin {first} {last}"),
    "sv": ("Astrid", "+4670{d3}{d4}", "070-{d3} {d4}", "SE",
           "Hej! Jag heter {name} och kan inte logga in. Ring mig på {phone} eller mejla {email}. "
           "Vänliga hälsningar, {name}"),
    "de": ("Hannelore", "+49151{d4}{d4b}", "0151 {d4} {d4b}", "DE",
           "Guten Tag, mein Name ist {name}. Die Rechnung ist falsch. Erreichbar unter {phone} oder {email}. "
           "Mit freundlichen Grüßen, {first} {last}"),
    "en": ("Oliver", "+447700{d3}{d3b}", "07700 {d3}{d3b}", "GB",
           "Hi, this is {name}. My order never arrived; please call me on {phone} or email {email}. "
           "Thanks, {last}"),
}


def _canaries(prefix: str) -> list[Canary]:
    out = []
    for locale, (first, e164, written, _country, _template) in LANGUAGES.items():
        tag = secrets.token_hex(3)
        digits = {k: "".join(str(secrets.randbelow(10)) for _ in range(n))
                  for k, n in (("d3", 3), ("d3b", 3), ("d4", 4), ("d4b", 4))}
        digits["d3"] = "9" + digits["d3"][1:]  # avoid leading zeros after the area code
        last = "Kanar" + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(5))
        out.append(Canary(
            locale=locale, name=f"{first} {last}", email=f"canary.{prefix}.{tag}@example.org",
            phone=e164.format(**digits), phone_written=written.format(**digits),
            external_id=f"{prefix.upper()}-{locale}-{tag}",
        ))
    return out


def _ticket_text(c: Canary) -> str:
    template = LANGUAGES[c.locale][4]
    return template.format(name=c.name, first=c.first, last=c.last, email=c.email, phone=c.phone_written)


def _scan_logs(records: list[logging.LogRecord], needles: dict[Any, str]) -> list[str]:
    hits = []
    for record in records:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001
            message = str(record.msg)
        if scan_text(message + " " + json.dumps({k: str(v) for k, v in record.__dict__.items()}), needles):
            hits.append(f"{record.name}:{record.msg}")
    return hits


def _ingest_everything(api: Any, canaries: list[Canary]) -> None:
    """Half the customers through the API, half through CSV; every ticket names its author."""
    via_api, via_csv = canaries[::2], canaries[1::2]
    response = api.post("/api/v1/ingest/customers/", {"records": [
        {"source": "crm", "external_id": c.external_id, "name": c.name, "email": c.email, "phone": c.phone_written,
         "country": LANGUAGES[c.locale][3], "preferred_language": c.locale} for c in via_api]}, format="json")
    assert response.status_code == 200
    assert response.json()["summary"]["created"] == len(via_api)
    lines = ["external_id,name,email,phone,country,preferred_language"]
    lines += [f"{c.external_id},{c.name},{c.email},{c.phone_written},{LANGUAGES[c.locale][3]},{c.locale}"
              for c in via_csv]
    job = run_import(stream=io.BytesIO("\n".join(lines).encode()), source="crm", actor="cli")
    assert (job.created, job.rejected) == (len(via_csv), 0)

    response = api.post("/api/v1/ingest/tickets/", {"records": [
        {"source": "support", "external_id": f"T-{c.external_id}", "customer_external_id": c.external_id,
         "customer_source": "crm", "opened_at": "2025-06-01T10:00:00Z", "channel": "email",
         "text": _ticket_text(c)} for c in via_api]}, format="json")
    assert response.json()["summary"]["created"] == len(via_api)
    ticket_csv = io.StringIO()
    import csv

    writer = csv.writer(ticket_csv)
    writer.writerow(["external_id", "customer_external_id", "customer_source", "opened_at", "channel", "text"])
    for c in via_csv:
        writer.writerow([f"T-{c.external_id}", c.external_id, "crm", "2025-06-01T10:00:00Z", "email", _ticket_text(c)])
    job = run_import(stream=io.BytesIO(ticket_csv.getvalue().encode()), source="support", actor="cli")
    assert (job.created, job.rejected) == (len(via_csv), 0)
    bad = api.post("/api/v1/ingest/customers/", {"records": [
        {"source": "crm", "external_id": "BAD-" + canaries[0].external_id, "email": canaries[0].email + " broken"}]},
        format="json")
    assert bad.json()["summary"]["rejected"] == 1
    _misfile_into_plaintext_fields(api, canaries)


def _misfile_into_plaintext_fields(api: Any, canaries: list[Canary]) -> None:
    """Identifiers sent where only non-personal labels belong (plain attributes, an order category) are
    refused, by the API and by CSV import; the database scan afterwards proves none of them was stored."""
    c = canaries[0]
    misfiled = [
        {"source": "crm", "external_id": c.external_id, "attributes": {"backup_contact": c.email}},
        {"source": "crm", "external_id": c.external_id, "attributes": {"hotline": f"call {c.phone}"}},
        {"source": "crm", "external_id": c.external_id, "attributes": {"email": c.email}},
    ]
    body = api.post("/api/v1/ingest/customers/", {"records": misfiled}, format="json").json()
    assert body["rejected"] == [
        {"index": 0, "errors": [{"field": "attributes.backup_contact", "code": "personal_data"}]},
        {"index": 1, "errors": [{"field": "attributes.hotline", "code": "personal_data"}]},
        {"index": 2, "errors": [{"field": "attributes.email", "code": "personal_field"}]},
    ]
    order = {"source": "erp", "external_id": f"O-{c.external_id}", "customer_external_id": c.external_id,
             "customer_source": "crm", "ordered_at": "2025-06-01T10:00:00Z", "amount": "10.00",
             "category": f"gift for {c.email}"}
    body = api.post("/api/v1/ingest/orders/", {"records": [order]}, format="json").json()
    assert body["rejected"] == [{"index": 0, "errors": [{"field": "category", "code": "personal_data"}]}]
    csv_text = f"external_id,attr_backup_contact\n{c.external_id},{c.email}\n"
    job = run_import(stream=io.BytesIO(csv_text.encode()), source="crm", actor="cli")
    assert job.rejections == [{"line": 2, "column": "attributes.backup_contact", "code": "personal_data"}]


def _assert_tickets_pseudonymized(canaries: list[Canary]) -> None:
    occurrences = caught = 0
    for c in canaries:
        cid = selectors.customer_find(source="crm", external_id=c.external_id)
        [ticket] = selectors.customer_facts(customer_id=cid)["tickets"]
        stored = ticket["text"]
        assert PLACEHOLDER.search(stored), c.locale
        assert {"<PERSON_1>", "<EMAIL_1>", "<PHONE_1>"} <= set(PLACEHOLDER.findall(stored)), (c.locale, stored)
        for identifier in (c.first, c.last, c.email, c.phone_written):
            occurrences += 1
            caught += identifier.lower() not in stored.lower()
        assert scan_text(stored, c.needles()) == set(), c.locale
    assert caught / occurrences == 1.0


@pytest.mark.django_db
def test_canaries_never_reach_plaintext_columns_logs_or_task_messages(
    api: Any, caplog: pytest.LogCaptureFixture, task_messages: TaskMessages, django_capture_on_commit_callbacks: Any
) -> None:
    canaries = _canaries("c1")
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest_everything(api, canaries)
        for c in canaries:  # the pseudonym lookup hashes the identifier server-side and logs nothing of it
            found = api.post("/api/v1/customers/lookup", {"email": c.email}, format="json")
            assert found.status_code == 200

    needles = keyed_needles(canaries)  # the plain values and their blind-index digests
    assert scan_database(needles) == index_hits(canaries)  # the digests only in the index, and the scan sees them
    assert _scan_logs(caplog.records, needles) == []
    assert scan_text(task_messages.blob(), needles) == set()
    assert len(task_messages), "ingestion queued no task at all: the message scan would prove nothing"
    _assert_tickets_pseudonymized(canaries)


@pytest.mark.django_db
def test_canary_scanners_detect_a_planted_canary(caplog: pytest.LogCaptureFixture) -> None:
    """Control: the scanners are not blind (a canary deliberately written in clear is found)."""
    from profiles.models import Customer, Ticket
    from tests.factories import make_customer

    [c] = _canaries("k1")[:1]
    cid = make_customer()
    planted_digest = c.digests()["phone_digest"]
    # names only in clear, and a blind-index digest outside the index: planted leaks
    Customer.objects.filter(id=cid).update(feature_attributes=[c.email, planted_digest])
    Ticket.objects.create(customer_id=cid, source="support", external_digest="x", opened_at="2025-01-01T00:00:00Z",
                          text_pseudonymized=f"hello {c.name}")
    logging.getLogger("tests.control").warning("leak %s", c.phone)
    logging.getLogger("tests.control").warning("looked up %s", c.digests()["email_digest"])
    assert {(h.table, h.column, h.needle) for h in scan_database(c.needles())} == {
        ("profiles_customer", "feature_attributes", "email"),
        ("profiles_customer", "feature_attributes", "phone_digest"),
        ("profiles_ticket", "text_pseudonymized", "name"),
        ("profiles_ticket", "text_pseudonymized", "surname"),
    }
    assert len(_scan_logs(caplog.records, c.needles())) == 2


@pytest.mark.django_db
def test_own_identifier_recall_is_complete_in_six_languages_through_ticket_ingest() -> None:
    from profiles.services import customer_ingest, ticket_ingest

    canaries = _canaries("r1")
    for c in canaries:
        cid = customer_ingest(source="crm", external_id=c.external_id, actor="job:test",
                              country=LANGUAGES[c.locale][3],
                              personal={"name": c.name, "email": c.email, "phone": c.phone}).customer_id
        ticket_ingest(source="support", external_id=f"T-{c.external_id}", customer_id=cid,
                      opened_at="2025-06-01T10:00:00Z", text=_ticket_text(c), actor="job:test")
    _assert_tickets_pseudonymized(canaries)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_canaries_absent_with_a_real_worker_and_broker(
    api: Any, celery_worker: Any, caplog: pytest.LogCaptureFixture, task_messages: TaskMessages
) -> None:
    """With CELERY_BROKER_URL + PostgreSQL the CSV chunks go through Redis to a worker process: the published
    messages are captured here (ids only), the worker processes the encrypted chunks."""
    from profiles.models import ImportChunk, ImportJob

    canaries = _canaries("w1")
    caplog.set_level(logging.DEBUG)
    lines = ["external_id,name,email,phone,country"]
    lines += [f"{c.external_id},{c.name},{c.email},{c.phone_written},{LANGUAGES[c.locale][3]}" for c in canaries]
    job = run_import(stream=io.BytesIO("\n".join(lines).encode()), source="crm", actor="cli", chunk_rows=2,
                     background=True)
    assert celery_worker.wait(lambda: ImportJob.objects.get(id=job.id).status == "completed", timeout=120)
    job.refresh_from_db()
    assert (job.created, job.rejected, job.chunks_done) == (len(canaries), 0, 3)
    assert ImportChunk.objects.count() == 0
    import_messages = task_messages.of("profiles.tasks.import_chunk")
    assert len(import_messages) >= 3
    # published through the broker, bodies captured
    assert len(task_messages.of("profiles.tasks.import_chunk", via="publish")) >= 3
    needles = keyed_needles(canaries)  # the plain values and their blind-index digests
    assert scan_text(task_messages.blob(), needles) == set()
    worker_log = (Path(settings.VAR_DIR_TEST) / "worker.log").read_text(errors="replace")
    assert "import_chunk" in worker_log, "the worker's own log shows no import chunk: it proves nothing"
    assert scan_text(worker_log, needles) == set()
    assert scan_database(needles) == index_hits(canaries)
    assert _scan_logs(caplog.records, needles) == []
    for c in canaries:
        assert selectors.customer_personal_data(
            customer_id=selectors.customer_find(email=c.email))["name"] == c.name


# Issue 18 §4: sentiment is computed at ingestion on the ORIGINAL text, in memory, before pseudonymization;
# only the language, the label and the score are stored. Each ticket below names its author and says clearly
# how they feel; after ingestion (API and CSV) the mood is stored and neither the identifiers nor the
# original text are found anywhere in the database, the logs or the task messages.
MOOD_TEXTS = {
    "pl": ("Jestem bardzo rozczarowany, fatalna obsługa i uszkodzona paczka. Nazywam się {name}, "
           "tel. {phone}, {email}.", "negative"),
    "nl": ("Ik ben erg teleurgesteld, slechte service en een kapot pakket. U spreekt met {name}, "
           "bel {phone} of mail {email}.", "negative"),
    "fi": ("Kiitos, todella hyvää ja ystävällistä palvelua! Olen {name}, puhelin {phone}, sähköposti {email}.",
           "positive"),
    "sv": ("Fantastisk service, mycket trevlig och hjälpsam personal, tack! Jag heter {name}, ring {phone} "
           "eller mejla {email}.", "positive"),
    "de": ("Ich bin sehr zufrieden, der Kundendienst war freundlich und schnell, danke! Mein Name ist {name}, "
           "Telefon {phone}, E-Mail {email}.", "positive"),
    "en": ("This is terrible, the parcel arrived broken and I am very angry. This is {name}, call {phone} or "
           "email {email}.", "negative"),
}


def _mood_text(c: Canary) -> str:
    return MOOD_TEXTS[c.locale][0].format(name=c.name, phone=c.phone_written, email=c.email)


@pytest.mark.django_db
def test_ticket_sentiment_is_stored_without_the_original_text_anywhere(
    api: Any, caplog: pytest.LogCaptureFixture, task_messages: TaskMessages, django_capture_on_commit_callbacks: Any
) -> None:
    import csv

    from profiles.models import Ticket

    canaries = _canaries("s1")
    caplog.set_level(logging.DEBUG)
    via_api, via_csv = canaries[::2], canaries[1::2]
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/ingest/customers/", {"records": [
            {"source": "crm", "external_id": c.external_id, "name": c.name, "email": c.email,
             "phone": c.phone_written, "country": LANGUAGES[c.locale][3], "preferred_language": c.locale}
            for c in canaries]}, format="json")
        assert response.json()["summary"]["created"] == len(canaries)
        response = api.post("/api/v1/ingest/tickets/", {"records": [
            {"source": "support", "external_id": f"T-{c.external_id}", "customer_external_id": c.external_id,
             "customer_source": "crm", "opened_at": "2025-06-01T10:00:00Z", "text": _mood_text(c)}
            for c in via_api]}, format="json")
        assert response.json()["summary"]["created"] == len(via_api)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["external_id", "customer_external_id", "customer_source", "opened_at", "text"])
        for c in via_csv:
            writer.writerow([f"T-{c.external_id}", c.external_id, "crm", "2025-06-01T10:00:00Z", _mood_text(c)])
        job = run_import(stream=io.BytesIO(buffer.getvalue().encode()), source="support", actor="cli")
        assert (job.created, job.rejected) == (len(via_csv), 0)

    for c in canaries:
        cid = selectors.customer_find(source="crm", external_id=c.external_id)
        ticket = Ticket.objects.get(customer_id=cid)
        assert (ticket.language, ticket.sentiment_label) == (c.locale, MOOD_TEXTS[c.locale][1]), c.locale
        assert ticket.sentiment_score is not None and -1.0 <= ticket.sentiment_score <= 1.0
    needles = {**keyed_needles(canaries), **{(c.external_id, "original_text"): _mood_text(c) for c in canaries}}
    assert scan_database(needles) == index_hits(canaries)
    assert _scan_logs(caplog.records, needles) == []
    assert scan_text(task_messages.blob(), needles) == set()
