"""The personal-data breach register (GDPR Art. 33): drill, DPO alert, 72-hour deadline, late
notification reasons, PII refusal, governance records, and the DPO console pages."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit import breach
from audit.models import BreachIncident, GovernanceEvent
from config.errors import Conflict, ValidationFailed
from console.templatetags.console_format import when

pytestmark = pytest.mark.django_db

EMAIL_LIKE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def facts(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "actor": "user:dpo", "nature": ["confidentiality", "availability"],
        "description": "Export bucket was publicly readable for six hours.",
        "detected_at": timezone.now() - timedelta(hours=1), "subjects_estimate": 1200, "records_estimate": 3400,
        "data_categories": ["contact details", "order history"], "consequences": "Possible phishing.",
        "measures": "Bucket made private; access logs reviewed.", "risk": "risk",
    }
    values.update(overrides)
    return values


def breach_events() -> list[GovernanceEvent]:
    return list(GovernanceEvent.objects.filter(kind__startswith="breach.").order_by("id"))


# ------------------------------------------------------------------------------------------- drill

def test_drill_records_one_incident_with_art_33_3_fields_one_governance_record_and_alerts_the_dpo(
    django_capture_on_commit_callbacks: Any,
):
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("breach_drill", stdout=out)

    incident = BreachIncident.objects.get()
    year = timezone.now().year
    assert incident.reference == f"BR-{year}-0001"
    assert out.getvalue().splitlines()[0] == incident.reference
    assert incident.is_drill is True
    assert incident.status == "open"
    assert incident.reported_by == "job:breach_drill"
    # Art. 33(3)(a)-(d)
    assert incident.nature == ["confidentiality"]
    assert incident.description.startswith("[drill] Simulated loss")
    assert incident.subject_categories == ["customers"]
    assert incident.subjects_estimate == 100
    assert incident.data_categories == ["contact details", "scores"]
    assert incident.records_estimate == 100
    assert incident.dpo_contact == settings.DPO_EMAIL
    assert incident.consequences.startswith("[drill] Possible unwanted contact")
    assert incident.measures.startswith("[drill] Revoke the export link")
    assert incident.risk == "risk"
    assert incident.authority_notified_at is None

    events = breach_events()
    assert [e.kind for e in events] == ["breach.recorded"]
    assert events[0].actor == "job:breach_drill"
    assert events[0].subject is None
    assert events[0].details["incident_id"] == incident.pk
    assert events[0].details["reference"] == incident.reference
    assert events[0].details["drill"] is True
    assert "description" in events[0].details["fields"]
    assert "Simulated loss" not in str(events[0].details)  # field names, never their text

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [settings.DPO_EMAIL]
    assert message.subject == f"Personal data breach {incident.reference} (DRILL): 72-hour clock started"
    deadline = incident.detected_at + timedelta(hours=72)
    assert f"{deadline:%Y-%m-%d %H:%M} UTC" in message.body
    assert incident.reference in message.body
    assert f"/console/breaches/{incident.pk}/" in message.body
    assert EMAIL_LIKE.search(message.subject + message.body) is None
    assert incident.description not in message.body


def test_references_count_up_within_the_year(django_capture_on_commit_callbacks: Any):
    with django_capture_on_commit_callbacks(execute=True):
        first = breach.breach_record(**facts())
        second = breach.breach_record(**facts(is_drill=True))
    year = timezone.now().year
    assert [first.reference, second.reference] == [f"BR-{year}-0001", f"BR-{year}-0002"]
    assert [m.subject for m in mail.outbox] == [
        f"Personal data breach BR-{year}-0001: 72-hour clock started",
        f"Personal data breach BR-{year}-0002 (DRILL): 72-hour clock started",
    ]


def test_the_console_link_in_the_alert_is_the_breach_detail_page():
    incident = breach.breach_record(**facts())
    assert breach.console_path(incident) == reverse("console:breach-detail", kwargs={"incident_id": incident.pk})


# ------------------------------------------------------------------------------- 72 hours, Art. 33(1)

def test_notifying_the_authority_after_72_hours_without_a_delay_reason_is_refused_and_writes_nothing():
    incident = breach.breach_record(**facts(detected_at=timezone.now() - timedelta(hours=80)))
    before = GovernanceEvent.objects.count()

    with pytest.raises(ValidationFailed, match="later than 72 hours"):
        breach.breach_mark_authority_notified(incident_id=incident.pk, actor="user:dpo", at=timezone.now())

    incident.refresh_from_db()
    assert incident.status == "open"
    assert incident.authority_notified_at is None
    assert incident.delay_reason == ""
    assert GovernanceEvent.objects.count() == before


def test_notifying_the_authority_late_with_a_reason_is_recorded_with_a_governance_record():
    incident = breach.breach_record(**facts(detected_at=timezone.now() - timedelta(hours=80)))
    at = timezone.now() - timedelta(minutes=5)

    breach.breach_mark_authority_notified(incident_id=incident.pk, actor="user:dpo", at=at,
                                          delay_reason="Forensic analysis needed to establish the scope.")

    incident.refresh_from_db()
    assert incident.status == "notified_authority"
    assert incident.authority_notified_at == at
    assert incident.delay_reason == "Forensic analysis needed to establish the scope."
    event = breach_events()[-1]
    assert event.kind == "breach.authority_notified"
    assert event.actor == "user:dpo"
    assert event.details["late"] is True
    assert event.details["fields"] == ["authority_notified_at", "delay_reason", "status"]
    assert "Forensic" not in str(event.details)


def test_notifying_within_72_hours_needs_no_reason():
    incident = breach.breach_record(**facts(detected_at=timezone.now() - timedelta(hours=10)))
    breach.breach_mark_authority_notified(incident_id=incident.pk, actor="user:dpo", at=timezone.now())
    incident.refresh_from_db()
    assert incident.status == "notified_authority"
    assert breach_events()[-1].details["late"] is False
    with pytest.raises(Conflict):
        breach.breach_mark_authority_notified(incident_id=incident.pk, actor="user:dpo", at=timezone.now())


def test_deadline_and_overdue_selector():
    now = timezone.now()
    late = breach.breach_record(**facts(detected_at=now - timedelta(hours=73)))
    breach.breach_record(**facts(detected_at=now - timedelta(hours=71)))  # still within 72 h
    breach.breach_record(**facts(detected_at=now - timedelta(hours=90), risk="unlikely"))  # no notification due
    notified = breach.breach_record(**facts(detected_at=now - timedelta(hours=100)))
    breach.breach_mark_authority_notified(incident_id=notified.pk, actor="user:dpo", at=now, delay_reason="Scope.")

    assert breach.breach_deadline(late) == late.detected_at + timedelta(hours=72)
    assert [i.pk for i in breach.breaches_overdue(now)] == [late.pk]
    assert breach.breach_is_overdue(late, now) is True
    assert [i.pk for i in breach.breaches_overdue(now - timedelta(hours=2))] == []


# --------------------------------------------------------------------------------- PII-free register

@pytest.mark.parametrize("field", ["description", "consequences", "measures", "data_categories"])
def test_text_containing_an_email_address_is_refused_and_nothing_is_written(field: str):
    value = "Leaked row of jane.doe@example.com"
    with pytest.raises(ValidationFailed, match="personal data"):
        breach.breach_record(**facts(**{field: [value] if field == "data_categories" else value}))
    assert BreachIncident.objects.count() == 0
    assert breach_events() == []


def test_update_with_an_email_address_is_refused_and_changes_nothing():
    incident = breach.breach_record(**facts())
    with pytest.raises(ValidationFailed, match="personal data"):
        breach.breach_update(incident_id=incident.pk, actor="user:dpo", measures="Called max@example.org")
    incident.refresh_from_db()
    assert incident.measures == "Bucket made private; access logs reviewed."
    assert [e.kind for e in breach_events()] == ["breach.recorded"]


def test_update_records_the_changed_field_names_only():
    incident = breach.breach_record(**facts())
    breach.breach_update(incident_id=incident.pk, actor="user:dpo", risk="high_risk", subjects_estimate=1500,
                         measures="Bucket made private; access logs reviewed.", assessed=True)
    incident.refresh_from_db()
    assert (incident.risk, incident.subjects_estimate, incident.status) == ("high_risk", 1500, "assessed")
    event = breach_events()[-1]
    assert event.kind == "breach.updated"
    assert event.details["fields"] == ["risk", "status", "subjects_estimate"]


def test_closing_requires_the_notification_and_for_high_risk_the_subjects_told_or_a_ground():
    incident = breach.breach_record(**facts(risk="high_risk"))
    with pytest.raises(ValidationFailed, match="supervisory authority"):
        breach.breach_close(incident_id=incident.pk, actor="user:dpo")
    breach.breach_mark_authority_notified(incident_id=incident.pk, actor="user:dpo", at=timezone.now())
    with pytest.raises(ValidationFailed, match="Art. 34"):
        breach.breach_close(incident_id=incident.pk, actor="user:dpo")
    assert [e.kind for e in breach_events()] == ["breach.recorded", "breach.authority_notified"]

    breach.breach_update(incident_id=incident.pk, actor="user:dpo", subjects_notified_at=timezone.now())
    breach.breach_close(incident_id=incident.pk, actor="user:dpo")
    incident.refresh_from_db()
    assert incident.status == "closed"
    assert incident.closed_at is not None
    assert [e.kind for e in breach_events()] == [
        "breach.recorded", "breach.authority_notified", "breach.updated", "breach.closed",
    ]
    with pytest.raises(Conflict):
        breach.breach_update(incident_id=incident.pk, actor="user:dpo", measures="More.")


# ------------------------------------------------------------------------------------------ console

def form_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "detected_at": (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "nature": ["integrity"], "description": "Scoring table altered by a faulty migration.",
        "subject_categories": "customers, prospects", "subjects_estimate": "40", "data_categories": "scores, tiers",
        "records_estimate": "40", "consequences": "Wrong service levels for a day.",
        "measures": "Restored from backup; migration review added.", "risk": "unlikely",
    }
    data.update(overrides)
    return data


def test_dpo_sees_the_list_with_deadline_and_overdue_highlighting_and_the_detail(dpo_client: Any):
    overdue = breach.breach_record(**facts(detected_at=timezone.now() - timedelta(hours=80)))
    fresh = breach.breach_record(**facts())

    response = dpo_client.get(reverse("console:breaches"))
    assert response.status_code == 200
    html = response.content.decode()
    assert overdue.reference in html and fresh.reference in html
    assert html.count('class="overdue"') == 1
    assert when(breach.breach_deadline(fresh)) in html  # in the reader's locale

    detail = dpo_client.get(reverse("console:breach-detail", kwargs={"incident_id": overdue.pk}))
    assert detail.status_code == 200
    page = detail.content.decode()
    assert 'data-testid="overdue"' in page
    assert overdue.description in page
    assert f"{when(breach.breach_deadline(overdue))} UTC" in page


def test_dpo_records_an_incident_through_the_form(dpo_client: Any, django_capture_on_commit_callbacks: Any):
    with django_capture_on_commit_callbacks(execute=True):
        response = dpo_client.post(reverse("console:breach-new"), form_data())
    incident = BreachIncident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("console:breach-detail", kwargs={"incident_id": incident.pk})
    assert incident.reported_by == "user:dpo"
    assert incident.nature == ["integrity"]
    assert incident.subject_categories == ["customers", "prospects"]
    assert incident.data_categories == ["scores", "tiers"]
    assert (incident.subjects_estimate, incident.records_estimate, incident.risk) == (40, 40, "unlikely")
    assert [e.kind for e in breach_events()] == ["breach.recorded"]
    assert len(mail.outbox) == 1


def test_console_form_refuses_an_email_address_and_records_nothing(dpo_client: Any):
    response = dpo_client.post(reverse("console:breach-new"),
                               form_data(description="Sent to wrong.person@example.net by mistake"))
    assert response.status_code == 400
    assert "e-mail address" in response.content.decode()
    assert BreachIncident.objects.count() == 0
    assert breach_events() == []


def test_console_late_notification_without_reason_shows_an_error_and_with_reason_is_recorded(dpo_client: Any):
    incident = breach.breach_record(**facts(detected_at=timezone.now() - timedelta(hours=80)))
    url = reverse("console:breach-notify-action", kwargs={"incident_id": incident.pk})
    at = timezone.now().strftime("%Y-%m-%dT%H:%M")

    refused = dpo_client.post(url, {"at": at}, follow=True)
    assert "later than 72 hours" in refused.content.decode()
    incident.refresh_from_db()
    assert incident.authority_notified_at is None

    dpo_client.post(url, {"at": at, "delay_reason": "Scope unclear until the forensic report."})
    incident.refresh_from_db()
    assert incident.status == "notified_authority"
    assert incident.delay_reason == "Scope unclear until the forensic report."


@pytest.mark.parametrize("name", ["breaches", "breach-new", "breach-detail"])
def test_non_dpo_gets_403_and_anonymous_the_login(client: Any, django_user_model: Any, name: str):
    incident = breach.breach_record(**facts())
    url = reverse(f"console:{name}", kwargs={"incident_id": incident.pk} if name == "breach-detail" else None)
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/console/login/")
    client.force_login(django_user_model.objects.create_user(username="clerk", password="clerk-password-123"))
    assert client.get(url).status_code == 403
    close = reverse("console:breach-close-action", kwargs={"incident_id": incident.pk})
    assert client.post(close).status_code == 403
    incident.refresh_from_db()
    assert incident.status == "open"


def test_console_update_marks_assessed_and_close_closes(dpo_client: Any):
    incident = breach.breach_record(**facts(risk="unlikely"))
    update = reverse("console:breach-update-action", kwargs={"incident_id": incident.pk})
    data = form_data(risk="unlikely", nature=["confidentiality", "availability"], records_estimate="3500",
                     subjects_estimate="1200", description=incident.description, consequences=incident.consequences,
                     measures=incident.measures, subject_categories="customers",
                     data_categories="contact details, order history", assessed="on")
    data.pop("detected_at")
    response = dpo_client.post(update, data)
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.status, incident.records_estimate) == ("assessed", 3500)
    assert breach_events()[-1].details["fields"] == ["records_estimate", "status"]

    detail = dpo_client.get(reverse("console:breach-detail", kwargs={"incident_id": incident.pk}))
    assert detail.status_code == 200

    dpo_client.post(reverse("console:breach-close-action", kwargs={"incident_id": incident.pk}), {})
    incident.refresh_from_db()
    assert incident.status == "closed"
    closed_page = dpo_client.get(reverse("console:breach-detail", kwargs={"incident_id": incident.pk}))
    assert closed_page.status_code == 200
    assert 'data-testid="status">Closed<' in closed_page.content.decode()
