"""DPO console: the work queue (home) and the Customer 360.

The Customer 360 shows one customer by pseudonym: the non-personal profile, the consent timeline, the
scores (with their explanations in words) and their history as a chart, the decisions, the tickets as
stored (pseudonymized) with their mood, the actions, the subject requests and the webhook deliveries.
Personal fields are decrypted only when the DPO presses "Reveal" (a POST), and each reveal writes an access
record. Search takes a pseudonym, an e-mail address or a phone number in a POST body (never in a URL):
e-mail and phone are looked up through the blind index and the lookup is recorded.

Thin views over the owning apps' selectors (profiles, consent, scoring, audit, engagement, webhooks,
subject_rights); the only write is the access record, through ``audit.services``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import selectors as audit_selectors
from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import NotFound
from console.auth import actor_of, dpo_required
from console.charts import series_chart
from console.templatetags.console_format import money, percent, when
from console.work_queue import work_queue

ACCOUNTABILITY = "accountability"  # the purpose recorded for the DPO's own reads
DECISIONS_SHOWN = 50


class CustomerSearchForm(forms.Form):
    q = forms.CharField(label="Pseudonym, e-mail address or phone number", max_length=254, strip=True,
                        help_text="Sent in the request body, never in the address. E-mail and phone are looked up "
                                  "through the blind index; the lookup is recorded in the access log.")


def _not_found(request: HttpRequest, what: str = "Customer") -> HttpResponse:
    return render(request, "console/not_found.html", {"what": what}, status=404)


# ------------------------------------------------------------------------------------------- home

@never_cache
@require_GET
@dpo_required
def home(request: HttpRequest) -> HttpResponse:
    from datetime import timedelta

    since = timezone.now() - timedelta(days=1)
    return render(request, "console/home.html", {
        "queue": work_queue(), "search_form": CustomerSearchForm(),
        "counts": sorted(audit_selectors.decision_counts(since=since).items()),
    })


# ----------------------------------------------------------------------------------------- search

def _lookup(query: str) -> tuple[str, uuid.UUID | None]:
    """("pseudonym" | "email" | "phone", the live pseudonym or None)."""
    from profiles import selectors as profile_selectors

    try:
        pseudonym = uuid.UUID(query)
    except ValueError:
        pass
    else:
        return "pseudonym", profile_selectors.customer_resolve(customer_id=pseudonym)
    if "@" in query:
        return "email", profile_selectors.customer_find(email=query)
    return "phone", profile_selectors.customer_find(phone=query)


@never_cache
@require_http_methods(["GET", "POST"])
@dpo_required
def customer_search(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "console/customers/search.html", {"form": CustomerSearchForm()})
    form = CustomerSearchForm(request.POST)
    if not form.is_valid():
        return render(request, "console/customers/search.html", {"form": form}, status=400)
    by, customer = _lookup(form.cleaned_data["q"])
    if by != "pseudonym":
        audit_services.access_record(actor=actor_of(request), purpose=ACCOUNTABILITY, subject=customer,
                                     what="customer.lookup", details={"by": by, "found": customer is not None})
    if customer is None:
        messages.info(request, "No customer matches." if by != "pseudonym" else
                      "No customer has that pseudonym (unknown or erased).")
        return render(request, "console/customers/search.html", {"form": CustomerSearchForm()}, status=404)
    return HttpResponseRedirect(reverse("console:customer", kwargs={"customer_id": customer}))


# ------------------------------------------------------------------------------------ customer 360

def _score_history(decisions: list[Any]) -> dict[str, list[tuple[datetime, float]]]:
    series: dict[str, list[tuple[datetime, float]]] = {"clv": [], "churn_probability": []}
    for d in decisions:
        outputs = d.outputs or {}
        for key, points in series.items():
            value = outputs.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                points.append((d.created_at, float(value)))
    return series


def _charts(decisions: list[Any], currency: str) -> list[dict[str, Any]]:
    history = _score_history(decisions)
    charts = []
    if history["clv"]:
        charts.append({"title": "Customer lifetime value", "svg": series_chart(
            history["clv"], title="Customer lifetime value", fmt=lambda v: money(v, currency), when=when)})
    if history["churn_probability"]:
        charts.append({"title": "Churn probability", "svg": series_chart(
            history["churn_probability"], title="Churn probability", fmt=percent, when=when, y_min=0.0, y_max=1.0)})
    return charts


def _context(customer_id: uuid.UUID) -> dict[str, Any]:
    from consent import selectors as consent_selectors
    from engagement import selectors as engagement_selectors
    from profiles import selectors as profile_selectors
    from scoring import selectors as scoring_selectors
    from subject_rights import selectors as dsr
    from webhooks import selectors as webhook_selectors

    profile = profile_selectors.customer_profile(customer_id=customer_id)
    consents = consent_selectors.customer_consents(customer_id=customer_id)
    history = consent_selectors.customer_consent_history(customer_id=customer_id)
    timeline = sorted(
        [{"at": e["occurred_at"], "what": f"consent {e['action']}", "purpose": e["purpose"],
          "detail": f"notice {e['notice_version']}, {e['channel']} via {e['source']}"} for e in history["events"]]
        + [{"at": f["at"], "what": f"{f['kind']} {f['action']}", "purpose": f["purpose"] or "all purposes",
            "detail": f["actor"]} for f in history["processing_flags"]],
        key=lambda row: row["at"])
    scores = scoring_selectors.scores_for_customer(customer_id=customer_id)
    currency = scores[0]["currency"] if scores else scoring_selectors.score_currency()
    decisions = audit_selectors.decisions_for_subject(customer=customer_id)
    deliveries = [{"d": d, "host": urlsplit(d.subscription.url).netloc}
                  for d in webhook_selectors.deliveries_for_customer(customer_id=customer_id)]
    return {
        "customer_id": customer_id, "profile": profile, "consents": consents["consents"],
        "flags": consents["processing_flags"], "timeline": timeline, "scores": scores, "currency": currency,
        "charts": _charts(decisions, currency), "decisions": list(reversed(decisions))[:DECISIONS_SHOWN],
        "decisions_total": len(decisions), "tickets": profile_selectors.customer_tickets_pseudonymized(
            customer_id=customer_id),
        "actions": engagement_selectors.actions_for_customer(customer_id=customer_id),
        "requests": list(dsr.request_list(filters={"subject": customer_id})),
        "deliveries": deliveries,
    }


def _resolve(customer_id: uuid.UUID) -> uuid.UUID | None:
    from profiles import selectors as profile_selectors

    return profile_selectors.customer_resolve(customer_id=customer_id)


@never_cache
@require_GET
@dpo_required
def customer_360(request: HttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    resolved = _resolve(customer_id)
    if resolved is None:
        return _not_found(request)
    if resolved != customer_id:  # a merged pseudonym: show the customer it was merged into
        return HttpResponseRedirect(reverse("console:customer", kwargs={"customer_id": resolved}))
    try:
        context = _context(resolved)
    except NotFound:
        return _not_found(request)
    audit_services.access_record(actor=actor_of(request), purpose=ACCOUNTABILITY, subject=resolved,
                                 what="customer.360", details={})
    return render(request, "console/customers/detail.html", context)


@never_cache
@require_POST
@dpo_required
def customer_reveal(request: HttpRequest, customer_id: uuid.UUID) -> HttpResponse:
    """Decrypt the personal fields for this response only, and record the access."""
    from profiles import selectors as profile_selectors

    resolved = _resolve(customer_id)
    if resolved is None or resolved != customer_id:
        return _not_found(request)
    try:
        revealed = profile_selectors.customer_personal_data(customer_id=resolved)
        context = _context(resolved)
    except (NotFound, DecryptionError):
        return _not_found(request)
    audit_services.access_record(actor=actor_of(request), purpose=ACCOUNTABILITY, subject=resolved,
                                 what="customer.reveal",
                                 details={"fields": sorted(k for k, v in revealed.items() if v)})
    return render(request, "console/customers/detail.html", {**context, "revealed": revealed})


urlpatterns = [
    path("", home, name="home"),
    path("customers/", customer_search, name="customer-search"),
    path("customers/<uuid:customer_id>/", customer_360, name="customer"),
    path("customers/<uuid:customer_id>/reveal/", customer_reveal, name="customer-reveal"),
]
