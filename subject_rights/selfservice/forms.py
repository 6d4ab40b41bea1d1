"""Forms of the customer pages (labels and help texts are translatable)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from subject_rights.models import RequestType

SELF_SERVICE_TYPES = [
    (RequestType.ACCESS, _("See a copy of my data (access, Art. 15)")),
    (RequestType.PORTABILITY, _("Take my data elsewhere (portability, Art. 20)")),
    (RequestType.RECTIFICATION, _("Correct my data (rectification, Art. 16)")),
    (RequestType.ERASURE, _("Erase my data (erasure, Art. 17)")),
    (RequestType.RESTRICTION, _("Restrict the processing of my data (Art. 18)")),
    (RequestType.OBJECTION, _("Object to automated scoring (Art. 21)")),
]

RECTIFIABLE_FIELDS = [
    ("name", _("Name")),
    ("email", _("E-mail address")),
    ("phone", _("Phone number")),
    ("address", _("Postal address")),
    ("company", _("Company")),
    ("job_title", _("Job title")),
    ("preferred_language", _("Preferred language")),
    ("date_of_birth", _("Date of birth (YYYY-MM-DD)")),
]


class RequestForm(forms.Form):
    type = forms.ChoiceField(label=_("What would you like to do?"), choices=SELF_SERVICE_TYPES,
                             widget=forms.RadioSelect)
    email = forms.EmailField(label=_("Your e-mail address"), max_length=254,
                             help_text=_("We send a one-time code to this address to check that it is yours."),
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    token = forms.CharField(widget=forms.HiddenInput, max_length=64)


class CodeForm(forms.Form):
    code = forms.CharField(label=_("One-time code"), max_length=12, min_length=6,
                           help_text=_("The code from the e-mail we sent you."),
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))


class RectificationForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in RECTIFIABLE_FIELDS:
            self.fields[name] = forms.CharField(label=label, required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values = {k: v for k, v in cleaned.items() if isinstance(v, str) and v.strip()}
        if not values:
            raise forms.ValidationError(_("Enter at least one corrected value."))
        return cleaned

    def corrections(self) -> dict[str, str | None]:
        return {k: v.strip() for k, v in self.cleaned_data.items() if isinstance(v, str) and v.strip()}


class ContestForm(forms.Form):
    decision_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    statement = forms.CharField(
        required=False, max_length=2000, strip=True, label=_("Your statement (optional)"),
        help_text=_("Tell the reviewer in your own words why you think this decision is wrong."),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )
