"""The statutory clock (Art. 12(3)): one calendar month, paused while identity is pending, extendable
by up to two months only before the first month ends; the daily check flags due-soon and overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from subject_rights import clock
from subject_rights.errors import ExtensionExhausted, ExtensionTooLate
from subject_rights.models import StatusChange, SubjectRequest

DAY0 = datetime(2025, 4, 10, 9, 0, tzinfo=UTC)  # due 2025-05-10 09:00 (day 30)


def at_day(days: float) -> datetime:
    return DAY0 + timedelta(days=days)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31, 12, tzinfo=UTC), 1, datetime(2025, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12, tzinfo=UTC), 1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2025, 3, 31, 8, tzinfo=UTC), 1, datetime(2025, 4, 30, 8, tzinfo=UTC)),
        (datetime(2025, 12, 15, 0, tzinfo=UTC), 1, datetime(2026, 1, 15, 0, tzinfo=UTC)),
        (datetime(2025, 11, 30, 0, tzinfo=UTC), 3, datetime(2026, 2, 28, 0, tzinfo=UTC)),
        (datetime(2025, 4, 10, 9, tzinfo=UTC), 1, datetime(2025, 5, 10, 9, tzinfo=UTC)),
    ],
)
def test_due_date_is_one_calendar_month_clamped_to_month_end(start: datetime, months: int, expected: datetime) -> None:
    assert clock.add_calendar_months(start, months) == expected


def test_pause_moves_the_due_date_by_the_paused_time() -> None:
    state = clock.clock_state(received_at=DAY0, paused_total=timedelta(days=3), paused_since=at_day(10),
                              extension_months=0, now=at_day(12))
    assert state.paused is True
    assert state.due_at == datetime(2025, 5, 15, 9, tzinfo=UTC)  # 30 days + 3 + 2 running
    assert state.first_month_end == state.due_at


def _file(purposes: None, customer_factory, **kwargs):  # noqa: ANN001, ANN202
    from subject_rights.services import request_submit

    cid = customer_factory()
    return request_submit(type="erasure", channel="api", requester="api:crm", customer_id=cid,
                          contact_email="requester@example.org", **kwargs).request


def _flag(django_capture_on_commit_callbacks):  # noqa: ANN001, ANN202
    from subject_rights.services import requests_flag_due

    with django_capture_on_commit_callbacks(execute=True):
        return requests_flag_due()


@pytest.mark.django_db
def test_deadline_check_flags_nothing_on_day_0_and_20_due_soon_on_28_and_overdue_on_31(
    purposes: None, customer_factory, django_capture_on_commit_callbacks, mailoutbox, settings,  # noqa: ANN001
) -> None:
    with freeze_time(DAY0):
        req = _file(purposes, customer_factory)
        assert req.due_at == datetime(2025, 5, 10, 9, tzinfo=UTC)
    mailoutbox.clear()
    seen = {}
    for day in (0, 20, 28, 31):
        with freeze_time(at_day(day)):
            counts = _flag(django_capture_on_commit_callbacks)
        req.refresh_from_db()
        seen[day] = (req.alert_level, counts.due_soon, counts.overdue)
    assert seen == {0: ("", 0, 0), 20: ("", 0, 0), 28: ("due_soon", 1, 0), 31: ("overdue", 0, 1)}
    dpo_mails = [m for m in mailoutbox if m.to == [settings.DPO_EMAIL]]
    assert len(dpo_mails) == 2  # day 28 and day 31
    assert str(req.id) in dpo_mails[-1].body and "overdue" in dpo_mails[-1].body
    assert "1 overdue" in dpo_mails[-1].subject


@pytest.mark.django_db
def test_flag_task_runs_the_daily_check(purposes: None, customer_factory) -> None:  # noqa: ANN001
    from subject_rights.tasks import flag_due_requests

    with freeze_time(DAY0):
        req = _file(purposes, customer_factory)
    with freeze_time(at_day(31)):
        assert flag_due_requests.delay().get() == {"due_soon": 0, "overdue": 1, "changed": 1}
    req.refresh_from_db()
    assert req.alert_level == "overdue"


@pytest.mark.django_db
def test_extension_before_the_first_month_ends_moves_the_deadline_and_tells_the_requester(
    purposes: None, customer_factory, django_capture_on_commit_callbacks, mailoutbox, dsr_status_events,  # noqa: ANN001
) -> None:
    from subject_rights.services import request_extend

    with freeze_time(DAY0):
        req = _file(purposes, customer_factory)
    with freeze_time(at_day(29)), django_capture_on_commit_callbacks(execute=True):
        request_extend(request_id=req.id, actor="user:dpo", months=2, code="complexity",
                       reason="Data from three archived systems has to be collected.")
    req.refresh_from_db()
    assert (req.status, req.extension_months, req.extension_code) == ("extended", 2, "complexity")
    assert req.due_at == datetime(2025, 7, 10, 9, tzinfo=UTC)
    assert dsr_status_events(req.id)[-1] == ("verified", "extended")
    mail = [m for m in mailoutbox if m.to == ["requester@example.org"]]
    assert len(mail) == 1
    assert "Data from three archived systems" in mail[0].body and "2 month" in mail[0].body
    for day, expected in ((31, ""), (85, "due_soon"), (92, "overdue")):
        with freeze_time(at_day(day)):
            _flag(django_capture_on_commit_callbacks)
        req.refresh_from_db()
        assert req.alert_level == expected, day


@pytest.mark.django_db
@pytest.mark.parametrize("day", [30, 31, 40])
def test_extension_after_the_first_month_is_refused_as_too_late_and_changes_nothing(
    purposes: None, customer_factory, day: int, governance, mailoutbox,  # noqa: ANN001
) -> None:
    from subject_rights.services import request_extend

    with freeze_time(DAY0):
        req = _file(purposes, customer_factory)
    events_before = len(governance("dsr.status_changed"))
    history_before = StatusChange.objects.filter(request=req).count()
    mailoutbox.clear()
    with freeze_time(at_day(day)), pytest.raises(ExtensionTooLate) as raised:
        request_extend(request_id=req.id, actor="user:dpo", months=1, code="complexity", reason="late")
    assert raised.value.code == "extension_too_late"
    req.refresh_from_db()
    assert (req.status, req.extension_months, req.due_at) == ("verified", 0, datetime(2025, 5, 10, 9, tzinfo=UTC))
    assert len(governance("dsr.status_changed")) == events_before
    assert StatusChange.objects.filter(request=req).count() == history_before
    assert mailoutbox == []


@pytest.mark.django_db
def test_extension_beyond_two_months_in_total_is_refused(purposes: None, customer_factory) -> None:  # noqa: ANN001
    from subject_rights.services import request_extend

    with freeze_time(DAY0):
        req = _file(purposes, customer_factory)
    with freeze_time(at_day(5)):
        request_extend(request_id=req.id, actor="user:dpo", months=1, code="number_of_requests", reason="Backlog.")
    with freeze_time(at_day(6)), pytest.raises(ExtensionExhausted):
        request_extend(request_id=req.id, actor="user:dpo", months=2, code="complexity", reason="More.")
    req.refresh_from_db()
    assert req.extension_months == 1
    assert req.due_at == datetime(2025, 6, 10, 9, tzinfo=UTC)


@pytest.mark.django_db
def test_clock_pauses_while_identity_verification_is_pending(
    purposes: None, customer_factory, django_capture_on_commit_callbacks, mailoutbox,  # noqa: ANN001
) -> None:
    from subject_rights import selectors
    from subject_rights.services import request_submit_self_service, request_verify_code, verification_resend

    customer_factory(email="paused.person@example.com")
    with freeze_time(DAY0), django_capture_on_commit_callbacks(execute=True):
        req = request_submit_self_service(type="erasure", email="paused.person@example.com", client_address="10.0.0.1")
    code = next(part for part in mailoutbox[-1].body.split() if part.strip(".").isdigit()).strip(".")
    # Day 35: still unverified -> clock paused, not flagged even though a month has passed.
    with freeze_time(at_day(35)):
        _flag(django_capture_on_commit_callbacks)
        state = selectors.request_clock(request=SubjectRequest.objects.get(pk=req.pk))
    req.refresh_from_db()
    assert req.status == "identity_pending" and req.alert_level == ""
    assert state.paused and state.due_at == datetime(2025, 6, 14, 9, tzinfo=UTC)
    # Verified on day 10 of a fresh request instead: the due date moves by exactly the paused 10 days.
    with freeze_time(DAY0), django_capture_on_commit_callbacks(execute=True):
        req2 = request_submit_self_service(type="erasure", email="paused.person@example.com",
                                           client_address="10.0.0.2", idempotency_key="second")
    # The first code has expired by day 10: the person asks for a new one and enters it.
    with freeze_time(at_day(10)), django_capture_on_commit_callbacks(execute=True):
        verification_resend(request_id=req2.id, client_address="10.0.0.2")
    code = next(part for part in mailoutbox[-1].body.split() if part.strip(".").isdigit()).strip(".")
    with freeze_time(at_day(10)):
        assert request_verify_code(request_id=req2.id, code=code) == "ok"
    req2.refresh_from_db()
    assert req2.status == "verified"
    assert req2.paused_total == timedelta(days=10)
    assert req2.due_at == datetime(2025, 5, 20, 9, tzinfo=UTC)
    for day, expected in ((32, ""), (34, "due_soon"), (41, "overdue")):  # due on day 40
        with freeze_time(at_day(day)):
            _flag(django_capture_on_commit_callbacks)
        req2.refresh_from_db()
        assert req2.alert_level == expected, day
