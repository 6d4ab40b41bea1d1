"""DPO console: the request queue (due dates, overdue highlighting, filters), request actions and the
review pages are DPO-only."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from freezegun import freeze_time

from subject_rights.models import SubjectRequest

DAY0 = datetime(2025, 4, 10, 9, 0, tzinfo=UTC)


def _file(customer_id: Any, *, type_: str = "erasure", contact: str | None = None) -> SubjectRequest:
    from subject_rights.services import request_submit

    return request_submit(type=type_, channel="api", requester="api:crm", customer_id=customer_id,
                          contact_email=contact).request


@pytest.fixture
def person(customer_factory: Any) -> uuid.UUID:
    return customer_factory()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "staff_not_dpo", "dpo"])
def test_request_pages_are_for_the_dpo_only(client: Any, dpo_user: Any, person: uuid.UUID, who: str) -> None:
    req = _file(person)
    if who == "staff_not_dpo":
        client.force_login(User.objects.create_user(username="clerk", password="pw-123456789", is_staff=True))
    elif who == "dpo":
        client.force_login(dpo_user)
    pages = ["/console/requests/", f"/console/requests/{req.id}/", "/console/reviews/"]
    expected = {"anonymous": 302, "staff_not_dpo": 403, "dpo": 200}[who]
    for path in pages:
        response = client.get(path)
        assert response.status_code == expected, path
        if who == "anonymous":
            assert response["Location"].startswith("/console/login/")
    response = client.post(f"/console/requests/{req.id}/reject/", {"code": "excessive"})
    assert response.status_code == {"anonymous": 302, "staff_not_dpo": 403, "dpo": 302}[who]
    req.refresh_from_db()
    assert req.status == ("rejected" if who == "dpo" else "verified")


@pytest.mark.django_db
def test_queue_highlights_due_soon_and_overdue_requests_and_filters_them(
    dpo_client: Any, dpo_user: Any, customer_factory: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    from subject_rights.services import requests_flag_due

    with freeze_time(DAY0):
        old = _file(customer_factory())
    with freeze_time(DAY0 + timedelta(days=8)):
        soon = _file(customer_factory())
    with freeze_time(DAY0 + timedelta(days=25)):
        fresh = _file(customer_factory())
    with freeze_time(DAY0 + timedelta(days=32)):
        dpo_client.force_login(dpo_user)
        with django_capture_on_commit_callbacks(execute=True):
            requests_flag_due()
        html = dpo_client.get("/console/requests/").content.decode()
        flagged = dpo_client.get("/console/requests/?alert=overdue").content.decode()
    rows = dict(re.findall(r'data-alert="(\w*)".*?/console/requests/([0-9a-f-]{36})/', html, re.S))
    by_id = {v: k for k, v in rows.items()}
    assert by_id == {str(old.id): "overdue", str(soon.id): "due_soon", str(fresh.id): ""}
    assert "1 request is overdue" in html
    assert str(old.id) in flagged and str(soon.id) not in flagged and str(fresh.id) not in flagged
    # Ordered by due date.
    assert html.index(str(old.id)) < html.index(str(soon.id)) < html.index(str(fresh.id))


@pytest.mark.django_db
def test_dpo_extends_with_a_reason_and_gets_a_clear_message_when_too_late(
    dpo_client: Any, dpo_user: Any, person: uuid.UUID, mailoutbox: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    with freeze_time(DAY0):
        req = _file(person, contact="someone@example.org")
    with freeze_time(DAY0 + timedelta(days=10)), django_capture_on_commit_callbacks(execute=True):
        dpo_client.force_login(dpo_user)
        response = dpo_client.post(f"/console/requests/{req.id}/extend/", {
            "months": "1", "code": "complexity", "reason": "Archived records must be retrieved."}, follow=True)
    assert "Deadline extended" in response.content.decode()
    req.refresh_from_db()
    assert (req.status, req.extension_months) == ("extended", 1)
    assert any("Archived records must be retrieved." in m.body for m in mailoutbox if m.to == ["someone@example.org"])
    late = _file(person)
    with freeze_time(late.received_at + timedelta(days=40)):
        dpo_client.force_login(dpo_user)  # a fresh console session on day 40
        response = dpo_client.post(f"/console/requests/{late.id}/extend/", {
            "months": "1", "code": "complexity", "reason": "Too late now."}, follow=True)
    assert "first month ends" in response.content.decode()
    late.refresh_from_db()
    assert late.extension_months == 0


@pytest.mark.django_db
def test_dpo_verifies_on_behalf_executes_erasure_and_completes(
    dpo_client: Any, client: Any, customer_factory: Any, mailoutbox: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    from profiles.selectors import customer_exists
    from subject_rights.services import request_submit_self_service

    cid = customer_factory(email="on.behalf@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        req = request_submit_self_service(type="erasure", email="on.behalf@example.com", client_address="10.1.1.1")
    detail = dpo_client.get(f"/console/requests/{req.id}/").content.decode()
    assert "Confirm identity" in detail and "on.behalf" not in detail
    dpo_client.post(f"/console/requests/{req.id}/verify/")
    req.refresh_from_db()
    assert req.status == "verified"
    with django_capture_on_commit_callbacks(execute=True):
        response = dpo_client.post(f"/console/requests/{req.id}/execute/", {"confirm_pseudonym": str(cid)},
                                   follow=True)
    assert "Carried out." in response.content.decode()
    req.refresh_from_db()
    assert (req.status, req.outcome) == ("completed", "erased")
    assert not customer_exists(customer_id=cid)
    assert [m.to for m in mailoutbox][-1] == ["on.behalf@example.com"]
    other = _file(customer_factory())
    dpo_client.post(f"/console/requests/{other.id}/complete/", {"outcome": "answered"})
    other.refresh_from_db()
    assert (other.status, other.outcome) == ("completed", "answered")


@pytest.mark.django_db
def test_invalid_action_input_changes_nothing(dpo_client: Any, person: uuid.UUID) -> None:
    req = _file(person)
    response = dpo_client.post(f"/console/requests/{req.id}/reject/", {"code": "not-a-code"}, follow=True)
    assert response.status_code == 200
    response = dpo_client.post(f"/console/requests/{req.id}/extend/", {"months": "5", "code": "complexity",
                                                                       "reason": "x"}, follow=True)
    assert response.status_code == 200
    req.refresh_from_db()
    assert (req.status, req.extension_months) == ("verified", 0)
    assert dpo_client.get(f"/console/requests/{uuid.uuid4()}/").status_code == 404
    assert dpo_client.get("/console/reviews/999999/").status_code == 404
