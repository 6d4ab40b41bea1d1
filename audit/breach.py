"""The personal-data breach register (GDPR Art. 33(5)): services (writes) and selectors (reads).

An incident records the Art. 33(3) facts: the nature of the breach, the categories and approximate
numbers of data subjects and records concerned, the DPO's contact point, the likely consequences and
the measures taken or proposed; plus the risk assessment (which decides whether the supervisory
authority (Art. 33) and the data subjects (Art. 34) must be told), when they were told, and the reasons
for a notification later than 72 hours after we became aware of the breach (Art. 33(1)).

Rules:
- the incident row is a register entry and may be updated, but every write also records a governance
  event (``breach.recorded``, ``breach.updated``, ``breach.authority_notified``, ``breach.closed``) in the
  same transaction, naming the changed fields (never their text), so the history is in the hash chain;
- the register is PII-free: descriptions are typed by the DPO, any text containing an e-mail address
  is refused with ``ValidationFailed`` and nothing is written, and the rest is pseudonymized by the
  configured scrubber (``AUDIT_FREE_TEXT_SCRUBBER``: Presidio) before it is stored;
- recording an incident starts the 72-hour clock and e-mails the DPO once the transaction commits
  (reference, deadline and a console link; no description, no personal data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.models import BreachIncident
from audit.services import EMAIL_LIKE, governance_record
from config.errors import Conflict, NotFound, ValidationFailed

logger = logging.getLogger("audit")

NOTIFICATION_WINDOW = timedelta(hours=72)
# The console page of an incident (console.breach_views, "console:breach-detail").
CONSOLE_PATH = "/console/breaches/{id}/"
MAX_TEXT = 4000
MAX_CATEGORY = 80
MAX_CATEGORIES = 30
CLOCK_SKEW = timedelta(minutes=5)

NATURES = tuple(BreachIncident.Nature.values)
RISKS = tuple(BreachIncident.Risk.values)
Status = BreachIncident.Status

_REFERENCE = re.compile(r"^BR-(\d{4})-(\d{4,})$")


# --------------------------------------------------------------------------------------- validation

def _no_email(text: str, field: str) -> None:
    if "@" in text and EMAIL_LIKE.search(text):
        raise ValidationFailed(f"{field} must not contain personal data (an e-mail address was found).")


def _free_text(value: Any, field: str, *, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationFailed(f"{field} is required.")
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValidationFailed(f"{field} is invalid (text up to {MAX_TEXT} characters).")
    text = value.strip()
    _no_email(text, field)
    return _scrub(text)


def _scrub(text: str) -> str:
    """Pseudonymize the DPO's text with the configured scrubber (``AUDIT_FREE_TEXT_SCRUBBER``, a dotted path
    to a callable ``(*, text) -> str``; by default the profiles app's Presidio pipeline). The audit app
    depends on no other app, so the scrubber is injected by settings rather than imported."""
    path = getattr(settings, "AUDIT_FREE_TEXT_SCRUBBER", "")
    return str(import_string(path)(text=text)) if path and text else text


def _categories(value: Any, field: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationFailed(f"{field} must be a list of categories.")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > MAX_CATEGORY:
            raise ValidationFailed(f"{field} contains an invalid category.")
        _no_email(item, field)
        if item.strip() not in out:
            out.append(item.strip())
    if not out or len(out) > MAX_CATEGORIES:
        raise ValidationFailed(f"{field} needs 1 to {MAX_CATEGORIES} categories.")
    return out


def _nature(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValidationFailed("nature must be a list.")
    chosen = set(value)
    if not chosen or chosen - set(NATURES):
        raise ValidationFailed(f"nature must be one or more of: {', '.join(NATURES)}.")
    return [n for n in NATURES if n in chosen]


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2_000_000_000:
        raise ValidationFailed(f"{field} must be a whole number of 0 or more.")
    return value


def _risk(value: Any) -> str:
    if value not in RISKS:
        raise ValidationFailed(f"risk must be one of: {', '.join(RISKS)}.")
    return str(value)


def _moment(value: Any, field: str, *, not_before: datetime | None = None) -> datetime:
    if not isinstance(value, datetime) or timezone.is_naive(value):
        raise ValidationFailed(f"{field} must be a timezone-aware date and time.")
    if value > timezone.now() + CLOCK_SKEW:
        raise ValidationFailed(f"{field} cannot be in the future.")
    if not_before is not None and value < not_before:
        raise ValidationFailed(f"{field} cannot be before the breach was detected.")
    return value


def _actor(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 150 or not re.match(r"^[a-z_]+(:\S{1,140})?$", value):
        raise ValidationFailed("actor must look like 'user:<name>', 'job:<name>' or 'cli'.")
    return value


# ------------------------------------------------------------------------------------------ helpers

def _locked(incident_id: Any) -> BreachIncident:
    if isinstance(incident_id, bool) or not isinstance(incident_id, int):
        raise NotFound("Breach incident not found.")
    incident = BreachIncident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("Breach incident not found.")
    return incident


def _next_reference(year: int) -> str:
    prefix = f"BR-{year}-"
    numbers = [
        int(match.group(2))
        for ref in BreachIncident.objects.filter(reference__startswith=prefix).values_list("reference", flat=True)
        if (match := _REFERENCE.match(ref))
    ]
    return f"{prefix}{max(numbers, default=0) + 1:04d}"


def _record_change(kind: str, incident: BreachIncident, actor: str, fields: list[str], **extra: Any) -> None:
    governance_record(kind=kind, actor=actor, details={
        "incident_id": incident.pk, "reference": incident.reference, "status": incident.status,
        "drill": incident.is_drill, "fields": sorted(fields), **extra,
    })


def console_path(incident: BreachIncident) -> str:
    return CONSOLE_PATH.format(id=incident.pk)


def _alert_dpo(incident_id: int) -> None:
    """E-mail the DPO that the 72-hour clock has started (after commit; PII-free)."""
    incident = BreachIncident.objects.filter(pk=incident_id).first()
    if incident is None:
        return
    deadline = breach_deadline(incident)
    link = (getattr(settings, "SITE_URL", "") or "").rstrip("/") + console_path(incident)
    drill = " (DRILL)" if incident.is_drill else ""
    subject = f"Personal data breach {incident.reference}{drill}: 72-hour clock started"
    body = "\n".join([
        f"A personal data breach was recorded in the breach register: {incident.reference}{drill}.",
        "",
        f"Detected (became aware): {incident.detected_at:%Y-%m-%d %H:%M} UTC",
        f"Notify the supervisory authority by: {deadline:%Y-%m-%d %H:%M} UTC (72 hours, GDPR Art. 33(1)),",
        "unless the breach is unlikely to result in a risk to people's rights and freedoms.",
        f"Initial risk assessment: {incident.get_risk_display()}",
        f"Approximate numbers: {incident.subjects_estimate} data subjects, {incident.records_estimate} records.",
        "",
        f"Details and actions in the DPO console: {link}",
        "",
        "This message contains no personal data; the description is only in the console.",
    ])
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [settings.DPO_EMAIL], fail_silently=False)
    except Exception:  # noqa: BLE001 - the incident is recorded; the console shows it and its deadline
        logger.error("breach alert e-mail failed", exc_info=True,
                     extra={"event": "breach.alert_failed", "code": incident.reference})
    else:
        logger.info("breach alert sent", extra={"event": "breach.alert_sent", "code": incident.reference})


# ------------------------------------------------------------------------------------------ services

@transaction.atomic
def breach_record(
    *, actor: str, nature: list[str], description: str, detected_at: datetime, subjects_estimate: int,
    records_estimate: int, data_categories: list[str], consequences: str, measures: str, risk: str,
    is_drill: bool = False, subject_categories: list[str] | None = None,
) -> BreachIncident:
    """Record a breach: starts the 72-hour clock at ``detected_at`` and e-mails the DPO after commit.
    Writes a ``breach.recorded`` governance record in the same transaction."""
    values: dict[str, Any] = {
        "reported_by": _actor(actor),
        "nature": _nature(nature),
        "description": _free_text(description, "description"),
        "detected_at": _moment(detected_at, "detected_at"),
        "subject_categories": _categories(subject_categories or ["customers"], "subject_categories"),
        "subjects_estimate": _count(subjects_estimate, "subjects_estimate"),
        "data_categories": _categories(data_categories, "data_categories"),
        "records_estimate": _count(records_estimate, "records_estimate"),
        "consequences": _free_text(consequences, "consequences"),
        "measures": _free_text(measures, "measures"),
        "risk": _risk(risk),
        "is_drill": bool(is_drill),
        "dpo_contact": str(settings.DPO_EMAIL)[:254],
    }
    now = timezone.now()
    for attempt in range(5):
        try:
            with transaction.atomic():
                incident = BreachIncident.objects.create(
                    reference=_next_reference(now.year), recorded_at=now, updated_at=now, **values
                )
            break
        except IntegrityError:  # a concurrent incident took the reference: take the next one
            if attempt == 4:
                raise Conflict("Could not allocate a breach reference; try again.") from None
    _record_change("breach.recorded", incident, values["reported_by"], list(values), risk=incident.risk)
    transaction.on_commit(lambda: _alert_dpo(incident.pk))
    logger.info("breach recorded", extra={"event": "breach.recorded", "code": incident.reference})
    return incident


_UPDATABLE = ("nature", "description", "subject_categories", "subjects_estimate", "data_categories",
              "records_estimate", "consequences", "measures", "risk")


@transaction.atomic
def breach_update(
    *, incident_id: int, actor: str, nature: list[str] | None = None, description: str | None = None,
    subject_categories: list[str] | None = None, subjects_estimate: int | None = None,
    data_categories: list[str] | None = None, records_estimate: int | None = None,
    consequences: str | None = None, measures: str | None = None, risk: str | None = None,
    subjects_notified_at: datetime | None = None, assessed: bool = False,
) -> BreachIncident:
    """Change the facts of an open incident (``None`` = unchanged). ``assessed=True`` moves an open
    incident to ``assessed``; ``subjects_notified_at`` records the Art. 34 communication. Writes a
    ``breach.updated`` governance record naming the changed fields. A closed incident cannot change."""
    actor = _actor(actor)
    incident = _locked(incident_id)
    if incident.status == Status.CLOSED:
        raise Conflict("The incident is closed.")
    cleaners: dict[str, Any] = {
        "nature": _nature, "description": lambda v: _free_text(v, "description"),
        "subject_categories": lambda v: _categories(v, "subject_categories"),
        "subjects_estimate": lambda v: _count(v, "subjects_estimate"),
        "data_categories": lambda v: _categories(v, "data_categories"),
        "records_estimate": lambda v: _count(v, "records_estimate"),
        "consequences": lambda v: _free_text(v, "consequences"), "measures": lambda v: _free_text(v, "measures"),
        "risk": _risk,
    }
    given = {"nature": nature, "description": description, "subject_categories": subject_categories,
             "subjects_estimate": subjects_estimate, "data_categories": data_categories,
             "records_estimate": records_estimate, "consequences": consequences, "measures": measures, "risk": risk}
    changed: list[str] = []
    for field in _UPDATABLE:
        if given[field] is None:
            continue
        value = cleaners[field](given[field])
        if getattr(incident, field) != value:
            setattr(incident, field, value)
            changed.append(field)
    if subjects_notified_at is not None:
        when = _moment(subjects_notified_at, "subjects_notified_at", not_before=incident.detected_at)
        if incident.subjects_notified_at != when:
            incident.subjects_notified_at = when
            changed.append("subjects_notified_at")
    if assessed and incident.status == Status.OPEN:
        incident.status = Status.ASSESSED
        changed.append("status")
    if not changed:
        return incident
    incident.updated_at = timezone.now()
    incident.save(update_fields=[*changed, "updated_at"])
    _record_change("breach.updated", incident, actor, changed, risk=incident.risk)
    return incident


@transaction.atomic
def breach_mark_authority_notified(
    *, incident_id: int, actor: str, at: datetime, delay_reason: str | None = None
) -> BreachIncident:
    """Record that the supervisory authority was notified at ``at``. Later than 72 hours after
    ``detected_at`` it needs ``delay_reason`` (Art. 33(1)); without one it is refused and nothing is
    written. Writes a ``breach.authority_notified`` governance record."""
    actor = _actor(actor)
    incident = _locked(incident_id)
    if incident.status == Status.CLOSED:
        raise Conflict("The incident is closed.")
    if incident.authority_notified_at is not None:
        raise Conflict("The authority notification is already recorded.")
    when = _moment(at, "at", not_before=incident.detected_at)
    late = when > breach_deadline(incident)
    reason = _free_text(delay_reason, "delay_reason", required=False)
    if late and not reason:
        raise ValidationFailed("The notification is later than 72 hours after detection: give the reasons for "
                               "the delay (Art. 33(1)).")
    incident.authority_notified_at = when
    incident.delay_reason = reason
    incident.status = Status.NOTIFIED_AUTHORITY
    incident.updated_at = timezone.now()
    fields = ["authority_notified_at", "status", *(["delay_reason"] if reason else [])]
    incident.save(update_fields=[*fields, "updated_at"])
    _record_change("breach.authority_notified", incident, actor, fields, late=late)
    return incident


@transaction.atomic
def breach_close(*, incident_id: int, actor: str, note: str | None = None) -> BreachIncident:
    """Close an incident. Unless the risk was assessed as unlikely, the authority notification must be
    recorded first; a high-risk incident also needs the data subjects told (``subjects_notified_at``) or
    a ``note`` giving the Art. 34(3) ground for not telling them. Writes a ``breach.closed`` record."""
    actor = _actor(actor)
    incident = _locked(incident_id)
    if incident.status == Status.CLOSED:
        raise Conflict("The incident is already closed.")
    text = _free_text(note, "note", required=False)
    if incident.risk != BreachIncident.Risk.UNLIKELY and incident.authority_notified_at is None:
        raise ValidationFailed("Record the notification of the supervisory authority before closing, or assess "
                               "the risk as unlikely.")
    if incident.risk == BreachIncident.Risk.HIGH_RISK and incident.subjects_notified_at is None and not text:
        raise ValidationFailed("High risk: record when the data subjects were told, or give the Art. 34(3) "
                               "ground for not telling them in the note.")
    incident.status = Status.CLOSED
    incident.closed_at = timezone.now()
    incident.closing_note = text
    incident.updated_at = incident.closed_at
    fields = ["status", "closed_at", *(["closing_note"] if text else [])]
    incident.save(update_fields=[*fields, "updated_at"])
    _record_change("breach.closed", incident, actor, fields)
    return incident


# ----------------------------------------------------------------------------------------- selectors

def breach_list(*, status: str | None = None, include_drills: bool = True) -> QuerySet[BreachIncident]:
    """Incidents, newest detection first; ``status="open"`` means every status but closed."""
    queryset = BreachIncident.objects.all()
    if status == "open":
        queryset = queryset.exclude(status=Status.CLOSED)
    elif status:
        queryset = queryset.filter(status=status)
    if not include_drills:
        queryset = queryset.filter(is_drill=False)
    return queryset.order_by("-detected_at", "-id")


def breach_get(*, incident_id: int) -> BreachIncident:
    incident = BreachIncident.objects.filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("Breach incident not found.")
    return incident


def breach_deadline(incident: BreachIncident) -> datetime:
    """When the supervisory authority must have been notified: 72 hours after we became aware."""
    return incident.detected_at + NOTIFICATION_WINDOW


def breach_needs_notification(incident: BreachIncident) -> bool:
    return incident.risk != BreachIncident.Risk.UNLIKELY


def breach_is_overdue(incident: BreachIncident, now: datetime | None = None) -> bool:
    """Past the 72-hour deadline, not closed, notification needed and not yet recorded."""
    return (
        incident.status != Status.CLOSED and incident.authority_notified_at is None
        and breach_needs_notification(incident) and breach_deadline(incident) < (now or timezone.now())
    )


def breaches_overdue(now: datetime | None = None) -> QuerySet[BreachIncident]:
    """Incidents whose authority notification is overdue (see ``breach_is_overdue``)."""
    return (
        BreachIncident.objects.exclude(status=Status.CLOSED)
        .exclude(risk=BreachIncident.Risk.UNLIKELY)
        .filter(authority_notified_at__isnull=True, detected_at__lt=(now or timezone.now()) - NOTIFICATION_WINDOW)
        .order_by("detected_at", "id")
    )
