"""DPO console: the personal-data breach register (GDPR Art. 33).

List (72-hour deadline, overdue highlighting), new-incident form, detail with the Art. 33(3) facts and
the actions: update the facts / mark assessed / record that the subjects were told, record the
authority notification (reasons required after 72 hours), close. DPO-only. Every read goes through
``audit.selectors``; every write goes through ``audit.breach`` (which records a governance event in the same
transaction); the register holds no
personal data, and text containing an e-mail address is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import breach
from audit import selectors as audit_selectors
from config.errors import ApplicationError, NotFound
from console.auth import actor_of, dpo_required

NO_PII = ("No personal data: describe categories and numbers. Text containing an e-mail address is refused; names "
          "and other identifiers are replaced by placeholders before the text is stored.")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


def _aware(value: datetime) -> datetime:
    if timezone.is_naive(value):
        return timezone.make_aware(value, timezone.get_current_timezone())
    return value


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class BreachFactsForm(forms.Form):
    """The Art. 33(3) facts and the risk assessment (new incident and updates)."""

    nature = forms.MultipleChoiceField(label="Nature of the breach", choices=audit_selectors.breach_choices()["nature"],
                                       widget=forms.CheckboxSelectMultiple)
    description = forms.CharField(label="What happened", max_length=breach.MAX_TEXT, help_text=NO_PII,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    subject_categories = forms.CharField(label="Categories of data subjects", max_length=1000, initial="customers",
                                         help_text="Comma-separated, e.g. customers, prospects.")
    subjects_estimate = forms.IntegerField(label="Approximate number of data subjects", min_value=0)
    data_categories = forms.CharField(label="Categories of personal data records", max_length=1000,
                                      help_text="Comma-separated, e.g. contact details, order history, scores.")
    records_estimate = forms.IntegerField(label="Approximate number of records", min_value=0)
    consequences = forms.CharField(label="Likely consequences", max_length=breach.MAX_TEXT, help_text=NO_PII,
                                   widget=forms.Textarea(attrs={"rows": 3}))
    measures = forms.CharField(label="Measures taken or proposed (including to mitigate)", max_length=breach.MAX_TEXT,
                               help_text=NO_PII, widget=forms.Textarea(attrs={"rows": 3}))
    risk = forms.ChoiceField(label="Risk to people's rights and freedoms", choices=audit_selectors.breach_choices()["risk"])

    def facts(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "nature": list(data["nature"]), "description": data["description"],
            "subject_categories": _split(data["subject_categories"]), "subjects_estimate": data["subjects_estimate"],
            "data_categories": _split(data["data_categories"]), "records_estimate": data["records_estimate"],
            "consequences": data["consequences"], "measures": data["measures"], "risk": data["risk"],
        }


class BreachNewForm(BreachFactsForm):
    detected_at = forms.DateTimeField(label="Became aware of the breach at (UTC)", widget=DateTimeInput(),
                                      help_text="The 72-hour clock for notifying the authority starts here.")
    is_drill = forms.BooleanField(label="This is a drill", required=False)

    field_order = ["detected_at", "is_drill"]


class BreachUpdateForm(BreachFactsForm):
    subjects_notified_at = forms.DateTimeField(label="Data subjects told at (UTC, Art. 34)", required=False,
                                               widget=DateTimeInput())
    assessed = forms.BooleanField(label="Mark the risk assessment as done", required=False)


class NotifyForm(forms.Form):
    at = forms.DateTimeField(label="Supervisory authority notified at (UTC)", widget=DateTimeInput())
    delay_reason = forms.CharField(label="Reasons for the delay (required after 72 hours, Art. 33(1))", required=False,
                                   max_length=breach.MAX_TEXT, help_text=NO_PII,
                                   widget=forms.Textarea(attrs={"rows": 3}))


class CloseForm(forms.Form):
    note = forms.CharField(label="Closing note (for high risk without telling the subjects: the Art. 34(3) ground)",
                           required=False, max_length=breach.MAX_TEXT, help_text=NO_PII,
                           widget=forms.Textarea(attrs={"rows": 3}))


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{form.fields[name].label if name in form.fields else ''}: "
                     f"{' '.join(str(e) for e in errors)}".lstrip(": ") for name, errors in form.errors.items())


def _row(incident: Any, now: datetime) -> dict[str, Any]:
    return {"incident": incident, **audit_selectors.breach_state(incident=incident, now=now)}


# --------------------------------------------------------------------------------------------- pages

@never_cache
@require_GET
@dpo_required
def breach_register(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show") or "open"
    status = None if show == "all" else "open"
    now = timezone.now()
    rows = [_row(incident, now) for incident in audit_selectors.breach_list(status=status)[:500]]
    return render(request, "console/breaches/list.html", {
        "rows": rows, "show": show, "overdue_count": audit_selectors.breach_overdue_count(now=now), "now": now,
    })


@never_cache
@require_http_methods(["GET", "POST"])
@dpo_required
def breach_new(request: HttpRequest) -> HttpResponse:
    form = BreachNewForm(request.POST or None, initial={"detected_at": timezone.now().strftime("%Y-%m-%dT%H:%M")})
    if request.method == "POST" and form.is_valid():
        try:
            incident = breach.breach_record(
                actor=actor_of(request), detected_at=_aware(form.cleaned_data["detected_at"]),
                is_drill=form.cleaned_data["is_drill"], **form.facts(),
            )
        except ApplicationError as exc:
            messages.error(request, f"Not recorded: {exc.detail}")
        else:
            messages.success(request, f"{incident.reference} recorded; the DPO was alerted. The authority must be "
                                      f"notified by {audit_selectors.breach_state(incident=incident)['deadline']:%Y-%m-%d %H:%M} UTC.")
            return HttpResponseRedirect(reverse("console:breach-detail", kwargs={"incident_id": incident.pk}))
    status = 400 if request.method == "POST" else 200
    return render(request, "console/breaches/new.html", {"form": form}, status=status)


def _get(incident_id: int) -> Any:
    try:
        return audit_selectors.breach_get(incident_id=incident_id)
    except NotFound as exc:
        raise Http404() from exc


@never_cache
@require_GET
@dpo_required
def breach_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _get(incident_id)
    update_form = BreachUpdateForm(initial={
        "nature": incident.nature, "description": incident.description,
        "subject_categories": ", ".join(incident.subject_categories), "subjects_estimate": incident.subjects_estimate,
        "data_categories": ", ".join(incident.data_categories), "records_estimate": incident.records_estimate,
        "consequences": incident.consequences, "measures": incident.measures, "risk": incident.risk,
        "subjects_notified_at": incident.subjects_notified_at,
    })
    return render(request, "console/breaches/detail.html", {
        **_row(incident, timezone.now()), "update_form": update_form,
        "notify_form": NotifyForm(initial={"at": timezone.now().strftime("%Y-%m-%dT%H:%M")}),
        "close_form": CloseForm(), "is_open": incident.status != audit_selectors.breach_choices()["closed"],
    })


# ------------------------------------------------------------------------------------------- actions

def _action(handler: Callable[[HttpRequest, Any], str | None]) -> Callable[..., HttpResponse]:
    @never_cache
    @require_POST
    @dpo_required
    def view(request: HttpRequest, incident_id: int) -> HttpResponse:
        incident = _get(incident_id)
        try:
            done = handler(request, incident)
        except ApplicationError as exc:
            messages.error(request, f"Not done: {exc.detail}")
        else:
            if done:
                messages.success(request, done)
        return HttpResponseRedirect(reverse("console:breach-detail", kwargs={"incident_id": incident.pk}))

    view.__name__ = handler.__name__.lstrip("_")
    return view


def _update(request: HttpRequest, incident: Any) -> str | None:
    form = BreachUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not saved: {_form_errors(form)}")
        return None
    updated = breach.breach_update(
        incident_id=incident.pk, actor=actor_of(request), assessed=form.cleaned_data["assessed"],
        subjects_notified_at=_aware(told) if (told := form.cleaned_data["subjects_notified_at"]) else None,
        **form.facts(),
    )
    return "Saved." if updated.updated_at != incident.updated_at else "Nothing changed."


def _notify(request: HttpRequest, incident: Any) -> str | None:
    form = NotifyForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not recorded: {_form_errors(form)}")
        return None
    breach.breach_mark_authority_notified(incident_id=incident.pk, actor=actor_of(request),
                                          at=_aware(form.cleaned_data["at"]),
                                          delay_reason=form.cleaned_data["delay_reason"] or None)
    return "Notification of the supervisory authority recorded."


def _close(request: HttpRequest, incident: Any) -> str | None:
    form = CloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not closed: {_form_errors(form)}")
        return None
    breach.breach_close(incident_id=incident.pk, actor=actor_of(request), note=form.cleaned_data["note"] or None)
    return "Incident closed."


urlpatterns = [
    path("breaches/", breach_register, name="breaches"),
    path("breaches/new/", breach_new, name="breach-new"),
    path("breaches/<int:incident_id>/", breach_detail, name="breach-detail"),
    path("breaches/<int:incident_id>/update/", _action(_update), name="breach-update-action"),
    path("breaches/<int:incident_id>/notify/", _action(_notify), name="breach-notify-action"),
    path("breaches/<int:incident_id>/close/", _action(_close), name="breach-close-action"),
]
