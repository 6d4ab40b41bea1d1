"""Filing requests: the API (scopes, explicit output, no PII echoed), idempotency (including 50
concurrent submissions), the status workflow and its audit records."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections

from subject_rights.errors import InvalidTransition
from subject_rights.models import StatusChange, SubjectRequest

URL = "/api/v1/subject-requests"


@pytest.fixture
def person(customer_factory: Any) -> uuid.UUID:
    return customer_factory(name="Wilhelmina Quarterstaff", email="wilhelmina.q@example.com")


@pytest.mark.django_db
def test_api_files_a_verified_request_and_answers_without_personal_data(api: Any, person: uuid.UUID,
                                                                         dsr_status_events: Any) -> None:
    response = api.post(URL, {"type": "erasure", "email": "wilhelmina.q@example.com"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "type", "channel", "status", "received_at", "verified_at", "due_at", "extension_months",
                         "extension_code", "outcome", "rejection_code", "completed_at", "alert_level", "decision_id",
                         "result", "export_available"}
    assert (body["type"], body["channel"], body["status"]) == ("erasure", "api", "verified")
    assert "wilhelmina" not in response.content.decode().lower()
    req = SubjectRequest.objects.get(pk=body["id"])
    assert req.subject == person and req.requester == api.api_client.requester
    assert dsr_status_events(req.id) == [(None, "received"), ("received", "verified")]
    assert [(h.from_status, h.to_status) for h in req.history.all()] == [("", "received"), ("received", "verified")]


@pytest.mark.django_db
def test_same_idempotency_key_returns_the_same_request(api: Any, person: uuid.UUID) -> None:
    payload = {"type": "erasure", "customer": str(person)}
    first = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="crm-ticket-881")
    second = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="crm-ticket-881")
    third = api.post(URL, {**payload, "idempotency_key": "crm-ticket-881"}, format="json")
    assert (first.status_code, second.status_code, third.status_code) == (201, 200, 200)
    assert first.json()["id"] == second.json()["id"] == third.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert SubjectRequest.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_key_reused_for_a_different_request_is_a_conflict_and_writes_nothing(api: Any,
                                                                                          person: uuid.UUID) -> None:
    api.post(URL, {"type": "erasure", "customer": str(person)}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    events = StatusChange.objects.count()
    response = api.post(URL, {"type": "access", "customer": str(person)}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert SubjectRequest.objects.count() == 1 and StatusChange.objects.count() == events


@pytest.mark.django_db
def test_idempotency_keys_are_scoped_to_the_client(make_api_client: Any, person: uuid.UUID) -> None:
    one, two = make_api_client(), make_api_client()
    payload = {"type": "erasure", "customer": str(person)}
    a = one.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    b = two.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_the_header_key_takes_precedence_over_the_deprecated_body_field(api: Any, person: uuid.UUID) -> None:
    payload = {"type": "erasure", "customer": str(person)}
    both = api.post(URL, {**payload, "idempotency_key": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="b")
    header_only = api.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert (both.status_code, header_only.status_code) == (201, 200)
    assert both.json()["id"] == header_only.json()["id"] and header_only["Idempotent-Replayed"] == "true"
    body_only = api.post(URL, {**payload, "idempotency_key": "a"}, format="json")  # "a" was never the key
    assert body_only.status_code == 201 and body_only.json()["id"] != both.json()["id"]
    assert SubjectRequest.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_submissions_with_one_key_create_one_request(
    make_api_client: Any, customer_factory: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = customer_factory()
    client = make_api_client()
    payload = {"type": "erasure", "customer": str(person)}
    # On PostgreSQL the duplicates wait on the key's advisory lock and find the first request: exactly one
    # INSERT is attempted (none fails on the unique index, which PostgreSQL would log as an ERROR each).
    inserts: list[int] = []
    real_create = SubjectRequest.objects.create

    def counting_create(**kwargs: Any) -> SubjectRequest:
        with lock:
            inserts.append(1)
        return real_create(**kwargs)

    monkeypatch.setattr(SubjectRequest.objects, "create", counting_create)
    barrier = threading.Barrier(50)
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit() -> None:
        try:
            barrier.wait(timeout=60)
            response = client.post(URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="concurrent-key-1")
            with lock:
                results.append((response.status_code, response.json().get("id", "")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert errors == []
    assert len(results) == 50
    assert sorted({status for status, _ in results}) == [200, 201]
    assert sum(1 for status, _ in results if status == 201) == 1
    assert len({request_id for _, request_id in results}) == 1
    assert SubjectRequest.objects.count() == 1
    assert StatusChange.objects.count() == 2  # received, verified: exactly once
    assert connection.vendor in ("sqlite", "postgresql")
    if connection.vendor == "postgresql":
        assert len(inserts) == 1


@pytest.mark.django_db
def test_unknown_email_is_answered_as_no_data_held(api: Any, purposes: None, dsr_status_events: Any) -> None:
    response = api.post(URL, {"type": "access", "email": "nobody.here@example.net"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["outcome"]) == ("completed", "no_data_held")
    assert dsr_status_events(body["id"]) == [(None, "received"), ("received", "verified"),
                                             ("verified", "in_progress"), ("in_progress", "completed")]
    assert SubjectRequest.objects.get(pk=body["id"]).subject is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "teleport", "customer": "00000000-0000-0000-0000-000000000001"}, "type"),
        ({"type": "access"}, "customer"),
        ({"type": "access", "email": "not-an-email"}, "email"),
        ({"type": "access", "email": "a@example.com", "customer": "00000000-0000-0000-0000-000000000001"}, "customer"),
        ({"type": "contest", "email": "a@example.com"}, "decision_id"),
        ({"type": "rectification", "email": "a@example.com"}, "fields"),
        ({"type": "restriction", "email": "a@example.com", "purpose": "world_domination"}, "purpose"),
    ],
)
def test_invalid_submissions_get_a_field_error_and_write_nothing(api: Any, purposes: None, payload: dict,
                                                                 field: str) -> None:
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["errors"]
    assert "example.com" not in response.content.decode()
    assert SubjectRequest.objects.count() == 0


@pytest.mark.django_db
def test_rectification_values_are_sealed_and_never_echoed(api: Any, person: uuid.UUID, grant: Any) -> None:
    response = api.post(URL, {"type": "rectification", "customer": str(person),
                              "fields": {"name": "Wilhelmina Quarterstaff-Brandt"}}, format="json")
    assert response.status_code == 201
    assert "Brandt" not in response.content.decode()
    assert response.json()["result"]["changed_fields"] == ["name"]
    from profiles.selectors import customer_personal_data

    assert customer_personal_data(customer_id=person)["name"] == "Wilhelmina Quarterstaff-Brandt"
    req = SubjectRequest.objects.get(pk=response.json()["id"])
    assert req.payload_sealed is None  # applied, then dropped


@pytest.mark.django_db
def test_status_is_only_visible_to_the_client_that_filed(make_api_client: Any, person: uuid.UUID) -> None:
    owner, other = make_api_client(), make_api_client()
    request_id = owner.post(URL, {"type": "erasure", "customer": str(person)}, format="json").json()["id"]
    assert owner.get(f"{URL}/{request_id}").status_code == 200
    assert owner.get(f"{URL}/{request_id}").json()["status"] == "verified"
    assert other.get(f"{URL}/{request_id}").status_code == 404
    assert owner.get(f"{URL}/{uuid.uuid4()}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scopes", "method", "expected"),
    [
        (["dsr:write"], "post", 201),
        (["dsr:read"], "post", 403),
        (["score:read"], "post", 403),
        (["dsr:read"], "get", 200),
        (["dsr:write"], "get", 403),
        (None, "post", 401),
        (None, "get", 401),
    ],
)
def test_subject_request_endpoints_need_the_dsr_scopes(make_api_client: Any, person: uuid.UUID, scopes: list | None,
                                                       method: str, expected: int) -> None:
    """Each row checks the scope dimension alone: a GET row reads a request that the very client under test
    filed (requests are visible to their filer only), after its scopes were set to exactly ``scopes``."""
    from rest_framework.test import APIClient

    from subject_rights.models import SubjectRequest

    if method == "post":
        client = APIClient() if scopes is None else make_api_client(scopes=scopes)
        before = SubjectRequest.objects.count()
        response = client.post(URL, {"type": "erasure", "customer": str(person)}, format="json")
        assert response.status_code == expected
        assert SubjectRequest.objects.count() == before + (1 if expected == 201 else 0)
        return
    filer = make_api_client(scopes=["dsr:write", "dsr:read"])
    request_id = filer.post(URL, {"type": "erasure", "customer": str(person)}, format="json").json()["id"]
    if scopes is None:
        client = APIClient()
    else:
        filer.api_client.scopes = scopes
        filer.api_client.save(update_fields=["scopes"])
        client = filer
    response = client.get(f"{URL}/{request_id}")
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["id"] == request_id


@pytest.mark.django_db
def test_closed_requests_cannot_change_status(api: Any, person: uuid.UUID, governance: Any) -> None:
    from subject_rights.services import request_complete, request_reject

    request_id = api.post(URL, {"type": "erasure", "customer": str(person)}, format="json").json()["id"]
    request_reject(request_id=request_id, actor="user:dpo", code="manifestly_unfounded", reason="Test request.")
    before = len(governance("dsr.status_changed"))
    with pytest.raises(InvalidTransition):
        request_complete(request_id=request_id, actor="user:dpo")
    with pytest.raises(InvalidTransition):
        request_reject(request_id=request_id, actor="user:dpo", code="excessive")
    req = SubjectRequest.objects.get(pk=request_id)
    assert (req.status, req.rejection_code, req.rejection_reason) == ("rejected", "manifestly_unfounded", "Test request.")
    assert len(governance("dsr.status_changed")) == before


@pytest.mark.django_db
def test_rejection_with_other_needs_an_explanation(api: Any, person: uuid.UUID) -> None:
    from config.errors import ValidationFailed
    from subject_rights.services import request_reject

    request_id = api.post(URL, {"type": "erasure", "customer": str(person)}, format="json").json()["id"]
    with pytest.raises(ValidationFailed):
        request_reject(request_id=request_id, actor="user:dpo", code="other", reason="  ")
    assert SubjectRequest.objects.get(pk=request_id).status == "verified"
