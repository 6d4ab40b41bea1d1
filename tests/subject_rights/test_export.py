"""Access (Art. 15) and portability (Art. 20): the export holds everything about the subject and
nothing about anyone else, follows the published JSON Schema, is encrypted at rest, is downloaded
through a time-limited signed link with Cache-Control: no-store, and is deleted after expiry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.utils import timezone
from freezegun import freeze_time

from subject_rights import links
from subject_rights.models import Export, SubjectRequest
from tests.privacy_scan import scan_text
from tests.subject_rights.canary import make_canary, new_tag
from tests.task_messages import TaskMessages

URL = "/api/v1/subject-requests"


@pytest.fixture
def pair(active_model: Any, purposes: None) -> tuple[Any, Any]:
    tag = new_tag()
    return make_canary(tag, 1), make_canary(tag, 2)


def _file_access(api: Any, canary: Any, capture: Any, *, type_: str = "access") -> SubjectRequest:
    with capture(execute=True):
        response = api.post(URL, {"type": type_, "customer": str(canary.customer_id),
                                  "contact_email": canary.email}, format="json")
    assert response.status_code == 201
    return SubjectRequest.objects.get(pk=response.json()["id"])


@pytest.mark.django_db
def test_export_contains_every_canary_field_of_the_subject_and_none_of_another(
    api: Any, client: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any, mailoutbox: Any,
) -> None:
    subject, other = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks)
    assert (req.status, req.outcome) == ("completed", "exported")
    export = Export.objects.get(request=req)
    response = client.get(f"/me/export/{links.export_token(export.id)}/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.streaming  # decrypted in memory and streamed, never written to a file
    raw = b"".join(response.streaming_content).decode()
    for field, value in subject.plain().items():
        assert value in raw, field
    assert scan_text(raw, other.needles()) == set()  # nothing of the other customer, digests included
    assert scan_text(raw, subject.digests()) == set()
    document = json.loads(raw)
    schema = client.get("/me/export-schema.json")
    assert schema.status_code == 200
    jsonschema.validate(document, json.loads(b"".join(schema.streaming_content)))
    assert document["subject"] == str(subject.customer_id) and document["format"] == "access"
    personal = document["personal_data"]
    assert (personal["name"], personal["email"], personal["phone"], personal["iban"]) == (
        subject.name, subject.email, subject.phone, subject.iban)
    assert [i["external_id"] for i in document["source_identities"]] == [subject.external_id]
    # Art. 15 completeness (issue 20, fault 7): the plain CRM attributes, and which of them scoring uses.
    assert document["crm_attributes"] == {"values": {"lifecycle_stage": subject.attribute, "seats": 3},
                                          "used_for_scoring": ["seats"]}
    [ticket] = document["facts"]["tickets"]
    assert subject.phrase in ticket["text"] and subject.name not in ticket["text"]  # stored pseudonymized
    assert subject.name in ticket["text_original"] and subject.iban in ticket["text_original"]
    assert len(document["facts"]["orders"]) == 2
    assert [(e["purpose"], e["action"], e["notice_version"]) for e in document["consent_history"]] == [
        ("automated_scoring", "grant", "v1")]
    assert document["scores"]["automated_scoring"]["tier"]
    [decision] = document["decisions"]
    assert decision["requester"] == "api:support-desk" and decision["purpose"] == "automated_scoring"
    assert decision["explanation"] and decision["inputs"] and decision["outputs"]["tier"]
    processing = document["processing"]
    assert processing["recipients"] == ["api:support-desk"]
    assert {p["code"] for p in processing["purposes"]} >= {"automated_scoring", "service_prioritization", "marketing"}
    assert all(p["lawful_basis"] and p["retention_days"] > 0 for p in processing["purposes"])
    assert processing["retention_days"]["orders"] > 0
    assert {s["code"] for s in processing["sources"]} == {"crm", "erp", "support"}
    assert document["explanation"]["scored"] is True
    # The customer was told (status link only, no data in the e-mail).
    [mail] = [m for m in mailoutbox if m.to == [subject.email]]
    assert "/me/status/" in mail.body and subject.name not in mail.body


@pytest.mark.django_db
def test_export_file_is_encrypted_at_rest_and_download_is_an_access_record(
    api: Any, client: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any, settings: Any,
) -> None:
    from audit.models import AccessRecord

    subject, _ = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks)
    export = Export.objects.get(request=req)
    blob = (Path(settings.EXPORT_DIR) / export.file_name).read_bytes()
    assert scan_text(blob, subject.needles()) == set()  # plain values and blind-index digests
    assert export.wrapped_key and bytes(export.wrapped_key) != b""
    before = AccessRecord.objects.filter(subject=subject.customer_id, what="export.download").count()
    assert client.get(f"/me/export/{links.export_token(export.id)}/").status_code == 200
    records = AccessRecord.objects.filter(subject=subject.customer_id, what="export.download")
    assert records.count() == before + 1
    assert records.last().actor == "subject:self" and records.last().details["export"] == str(export.id)
    export.refresh_from_db()
    assert export.downloads == 1


@pytest.mark.django_db
def test_export_link_expires_and_the_file_and_key_are_deleted(
    api: Any, client: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any, settings: Any,
) -> None:
    from subject_rights.tasks import delete_expired_exports

    subject, _ = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks)
    export = Export.objects.get(request=req)
    token = links.export_token(export.id)
    path = Path(settings.EXPORT_DIR) / export.file_name
    later = timezone.now() + timedelta(seconds=settings.EXPORT_LINK_TTL_SECONDS + 60)
    with freeze_time(later):
        assert client.get(f"/me/export/{token}/").status_code == 404
        assert client.get(f"/me/export/{links.export_token(export.id)}/").status_code == 404  # fresh link, old file
        assert delete_expired_exports.delay().get() >= 1
    export.refresh_from_db()
    assert export.deleted_at is not None and export.wrapped_key is None
    assert not path.exists()


@pytest.mark.django_db
def test_tampered_or_foreign_links_find_nothing(client: Any, pair: tuple[Any, Any], api: Any,
                                                django_capture_on_commit_callbacks: Any) -> None:
    subject, _ = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks)
    export = Export.objects.get(request=req)
    token = links.export_token(export.id)
    assert client.get(f"/me/export/{token[:-2]}xx/").status_code == 404
    status_token = links.status_token(export.id)  # right id, wrong salt
    assert client.get(f"/me/export/{status_token}/").status_code == 404


@pytest.mark.django_db
def test_readable_page_and_api_download_show_the_same_export(
    api: Any, make_api_client: Any, client: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any,
) -> None:
    subject, other = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks, type_="portability")
    export = Export.objects.get(request=req)
    page = client.get(f"/me/export/{links.export_token(export.id)}/page/")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert subject.name in html and subject.iban in html and other.name not in html
    via_api = api.get(f"{URL}/{req.id}/export")
    assert via_api.status_code == 200 and "no-store" in via_api["Cache-Control"]
    document = json.loads(via_api.content)
    assert document["format"] == "portability" and document["personal_data"]["email"] == subject.email
    assert make_api_client().get(f"{URL}/{req.id}/export").status_code == 404
    assert api.get(f"{URL}/{req.id}").json()["export_available"] is True


@pytest.mark.django_db
def test_build_export_for_an_erased_subject_is_a_no_op(api: Any, pair: tuple[Any, Any]) -> None:
    from profiles.services import customer_erase
    from subject_rights.tasks import build_export

    subject, _ = pair
    response = api.post(URL, {"type": "access", "customer": str(subject.customer_id)}, format="json")
    request_id = response.json()["id"]  # the on-commit task has not run (no commit in this test)
    customer_erase(customer_id=subject.customer_id, actor="job:test-dsr")
    assert build_export.delay(request_id).get() is None
    req = SubjectRequest.objects.get(pk=request_id)
    assert (req.status, req.outcome) == ("completed", "no_data_held")
    assert Export.objects.count() == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_export_is_built_by_the_celery_worker_from_the_request_id_alone(
    celery_worker: Any, make_api_client: Any, active_model: Any, purposes: None, client: Any,
    task_messages: TaskMessages,
) -> None:
    canary = make_canary(new_tag(), 3)
    api = make_api_client()
    response = api.post(URL, {"type": "access", "customer": str(canary.customer_id)}, format="json")
    assert response.status_code == 201
    request_id = response.json()["id"]
    assert celery_worker.wait(lambda: SubjectRequest.objects.get(pk=request_id).status == "completed", timeout=90)
    req = SubjectRequest.objects.get(pk=request_id)
    assert req.outcome == "exported"
    assert ("subject_rights.tasks.build_export", [request_id]) in task_messages.calls()
    export = Export.objects.get(request_id=request_id)
    download = client.get(f"/me/export/{links.export_token(export.id)}/")  # streamed from memory
    assert download.status_code == 200
    body = b"".join(download.streaming_content).decode()
    assert canary.email in body and canary.phrase in body


def _add_reviewed_decisions(customer_id: Any, count: int) -> None:
    from audit import services as audit_services
    from profiles.services import customer_seal

    for k in range(count):
        decision = audit_services.decision_record(
            customer=customer_id, purpose="automated_scoring", decision_type="routing", requester="api:crm",
            consent_event_id=None, notice_version="v1", model_versions={"clv": "v1", "churn": "churn-1"},
            features_hash=f"{k:064x}", outputs={"tier": "Basic"},
            sealed_details=customer_seal(customer_id=customer_id, label=audit_services.DECISION_DETAILS_LABEL,
                                         payload={"features": {"orders": k}, "explanation": {"reason": f"routing {k}"}}))
        audit_services.decision_review_record(decision_id=decision.pk, reviewer="user:dpo", outcome="confirmed",
                                              override={}, rationale=f"checked {k}")


@pytest.mark.django_db
def test_export_reads_decisions_reviews_and_sealed_details_with_a_fixed_number_of_queries(
    pair: tuple[Any, Any],
) -> None:
    """No per-decision query (reviews are prefetched, the data key is read once): an export of a subject
    with 13 reviewed decisions runs exactly as many queries as one of a subject with one."""
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from subject_rights.export import export_document, export_validate

    small, large = pair
    _add_reviewed_decisions(large.customer_id, 12)

    def build(customer_id: Any) -> tuple[dict[str, Any], int]:
        with CaptureQueriesContext(connection) as queries:
            document = export_document(customer_id=customer_id, request_id=uuid.uuid4(), request_type="access",
                                       generated_at=timezone.now())
        export_validate(document)
        return document, len(queries)

    small_doc, small_queries = build(small.customer_id)
    large_doc, large_queries = build(large.customer_id)
    assert large_queries == small_queries
    assert (len(small_doc["decisions"]), len(large_doc["decisions"])) == (1, 13)
    added = large_doc["decisions"][1:]
    assert [d["inputs"] for d in added] == [{"orders": k} for k in range(12)]
    assert [d["explanation"] for d in added] == [{"reason": f"routing {k}"} for k in range(12)]
    assert [[(r["outcome"], r["rationale"]) for r in d["human_reviews"]] for d in added] == [
        [("confirmed", f"checked {k}")] for k in range(12)]
    assert large_doc["decisions"][0]["explanation"] and large_doc["decisions"][0]["human_reviews"] == []
    assert all(d["model_versions"] == {"clv": "v1", "churn": "churn-1"} for d in added)


def _leaves(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, value) of every leaf of a JSON document, written as the CSV download writes them."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)] or [(path, "")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")] or [(path, "")]
    text = "" if value is None else ("true" if value is True else "false" if value is False else str(value))
    return [(path, "'" + text if text[:1] in ("=", "+", "@") else text)]


def _files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()} if directory.exists() else set()


@pytest.mark.django_db
def test_export_page_reads_in_the_customers_language_and_the_downloads_hold_everything_without_a_file(
    api: Any, client: Any, pair: tuple[Any, Any], django_capture_on_commit_callbacks: Any, settings: Any,
) -> None:
    import csv
    import io
    import re

    subject, other = pair
    req = _file_access(api, subject, django_capture_on_commit_callbacks)
    export = Export.objects.get(request=req)
    token = links.export_token(export.id)
    on_disk = _files(Path(settings.EXPORT_DIR))
    document = json.loads(b"".join(client.get(f"/me/export/{token}/").streaming_content))

    page = client.get(f"/me/export/{token}/page/", HTTP_ACCEPT_LANGUAGE="pl")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert '<html lang="pl"' in html
    # Every section the export holds is on the page (its generated explanation is told under the scores).
    shown = re.findall(r'data-testid="section-([a-z_]+)"', html)
    assert shown == [k for k in document if k not in {"schema", "schema_version", "format", "generated_at",
                                                       "request_id", "subject", "explanation"}]
    for polish in ("Twoje dane", "Twoje zgody", "Zamówienia", "Zgłoszenia do obsługi klienta", "Kwota",
                   "zgoda udzielona", "automatyczna ocena klientów", "Główne powody", "Pobierz jako CSV"):
        assert polish in html, polish
    assert re.search(r"(podwyższyło|obniżyło) wynik o", html)  # the reasons as Polish sentences
    text = re.sub(r"<[^>]+>", " ", html)
    for raw_key in ("ordered_at", "sentiment_label", "churn_probability", "consent_history", "personal_data",
                    "text_original", "automated_scoring", "Download as JSON", "Your details"):
        assert raw_key not in text, raw_key  # plain words in Polish, not field names or English
    assert subject.name in html and subject.phrase in html and subject.iban in html
    assert scan_text(html, other.needles()) == set()

    response = client.get(f"/me/export/{token}/csv/")
    assert response.status_code == 200 and response.streaming and "no-store" in response["Cache-Control"]
    assert response["Content-Type"].startswith("text/csv") and response["Content-Disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["section", "field", "value"]
    assert sorted((field, value) for _, field, value in rows[1:]) == sorted(_leaves(document))
    assert {section for section, _, _ in rows[1:]} == set(document)
    assert export.file_name in on_disk and _files(Path(settings.EXPORT_DIR)) == on_disk  # nothing new on disk


def test_sections_are_rendered_generically_whatever_the_export_holds() -> None:
    from django.utils import translation

    from subject_rights.selfservice import readable

    document = {"schema": "x", "personal_data": {"name": "A"}, "crm_attributes": {"plan": "gold", "seats": 12},
                "loyalty_cards": [{"card_tier": "silver", "issued_at": "2025-03-01T10:00:00+00:00"}]}
    with translation.override("de"):
        sections = readable.sections(document)
    assert [(s.key, s.title) for s in sections] == [
        ("personal_data", "Ihre Angaben"), ("crm_attributes", "Weitere Angaben aus unserer Kundenkartei"),
        ("loyalty_cards", "Loyalty cards")]
    assert [(name, cell.text) for name, cell in sections[1].body.rows] == [("Plan", "gold"), ("Seats", "12")]
    table = sections[2].body
    assert table.kind == "table" and table.columns == ["Card tier", "Issued at"]
    assert table.cells[0][0].text == "silver" and "2025" in table.cells[0][1].text


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    from subject_rights.selfservice import readable

    lines = list(readable.csv_lines({"facts": {"notes": [{"text": "=HYPERLINK(\"http://x\")"}, {"amount": "-12.5"}]}}))
    assert lines[1].split(",", 2)[2].startswith("\"'=HYPERLINK")
    assert lines[2].rstrip("\r\n").endswith(",-12.5")  # a negative number stays a number
