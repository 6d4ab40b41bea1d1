"""DPO console: the subject-request queue (due dates, overdue highlighting, filters), request detail
with its actions (an erasure only after a preview of what it destroys and the customer's pseudonym typed
to confirm), legal holds, and human reviews of contested decisions (review time, override rate).

DPO-only (group "dpo"), through ``console.auth.dpo_required``. Pages show pseudonyms,
statuses and dates; the review page decrypts the decision's inputs and explanation, which writes an
access record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from config.errors import ApplicationError, NotFound
from console.auth import actor_of, dpo_required
from subject_rights import selectors, services
from subject_rights.selectors import (
    Channel,
    ExtensionCode,
    Outcome,
    RejectionCode,
    RequestType,
    ReviewTask,
    Status,
)

STATUS_FILTERS = [("open", _lazy("Open")), ("closed", _lazy("Closed")), *Status.choices]
ALERT_FILTERS = [("flagged", _lazy("Due soon or overdue")), ("due_soon", _lazy("Due within 7 days")),
                 ("overdue", _lazy("Overdue"))]


class QueueFilter(forms.Form):
    status = forms.ChoiceField(label=_lazy("Status"), required=False, choices=[("", _lazy("Any")), *STATUS_FILTERS])
    type = forms.ChoiceField(label=_lazy("Type"), required=False, choices=[("", _lazy("Any")), *RequestType.choices])
    channel = forms.ChoiceField(label=_lazy("Channel"), required=False, choices=[("", _lazy("Any")), *Channel.choices])
    alert = forms.ChoiceField(label=_lazy("Deadline"), required=False, choices=[("", _lazy("Any")), *ALERT_FILTERS])
    subject = forms.UUIDField(label=_lazy("Customer pseudonym"), required=False)


class RejectForm(forms.Form):
    code = forms.ChoiceField(label=_lazy("Reason"), choices=RejectionCode.choices)
    reason = forms.CharField(label=_lazy("Explanation for the requester (no personal data)"), required=False,
                             max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class ExtendForm(forms.Form):
    months = forms.TypedChoiceField(label=_lazy("Extend by"), coerce=int,
                                    choices=[(1, _lazy("1 month")), (2, _lazy("2 months"))])
    code = forms.ChoiceField(label=_lazy("Reason"), choices=ExtensionCode.choices)
    reason = forms.CharField(label=_lazy("Explanation sent to the requester (no personal data)"), max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 3}))


class CompleteForm(forms.Form):
    outcome = forms.ChoiceField(label=_lazy("Outcome"), choices=[c for c in Outcome.choices if c[0]],
                                initial=Outcome.ANSWERED)


class LegalHoldForm(forms.Form):
    reason = forms.ChoiceField(label=_lazy("Legal hold reason"), choices=[])
    justification = forms.CharField(label=_lazy("Justification (no personal data)"), max_length=2000,
                                    widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        assert isinstance(reason, forms.ChoiceField)
        reason.choices = [(r, r) for r in settings.LEGAL_HOLD_REASONS]


class ReviewDecisionForm(forms.Form):
    outcome = forms.ChoiceField(label=_lazy("Decision"), widget=forms.RadioSelect, choices=[
        (ReviewTask.Result.CONFIRMED, _lazy("Confirm the automated decision")),
        (ReviewTask.Result.OVERRIDDEN, _lazy("Override it")),
    ])
    tier = forms.ChoiceField(label=_lazy("New tier (override)"), required=False, choices=[])
    response_time_hours = forms.IntegerField(label=_lazy("Service level: response time in hours (optional)"),
                                             required=False, min_value=1, max_value=24 * 90)
    escalation = forms.CharField(label=_lazy("Service level: handled by (optional)"), required=False,
                                 max_length=120)
    rationale = forms.CharField(label=_lazy("Rationale (no personal data)"), max_length=2000,
                                widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tier = self.fields["tier"]
        assert isinstance(tier, forms.ChoiceField)
        tier.choices = [("", "-"), *[(t, t) for t in settings.TIER_SHARES]]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("outcome") == ReviewTask.Result.OVERRIDDEN and not cleaned.get("tier"):
            self.add_error("tier", _("Choose the new tier."))
        return cleaned

    def service_level(self) -> dict[str, Any] | None:
        level = {k: self.cleaned_data[k] for k in ("response_time_hours", "escalation") if self.cleaned_data.get(k)}
        return level or None


# ----------------------------------------------------------------------------------------------- pages


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render with the console's navigation (the accountability module's ``page`` helper)."""
    from console import audit_views

    render_page = getattr(audit_views, "page", None)
    if render_page is not None:
        return render_page(request, template, context, status=status)
    return render(request, template, context, status=status)


def _base_context(**extra: Any) -> dict[str, Any]:
    return {"section": "requests", "counts": selectors.request_counts(), **extra}


@never_cache
@require_GET
@dpo_required
def request_queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilter(request.GET or None)
    filters: dict[str, Any] = {"status": "open"} if not request.GET else {}
    if form.is_bound and form.is_valid():
        filters = {k: v for k, v in form.cleaned_data.items() if v}
    page = Paginator(selectors.request_list(filters=filters), 50).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [{"req": req, "clock": selectors.request_clock(request=req, now=now),
             "alert": selectors.request_alert(request=req, now=now)} for req in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return _render(request, "console/requests/queue.html",
                  _base_context(form=form, page=page, rows=rows, query=query.urlencode()))


def _request_or_404(request_id: UUID) -> Any:
    try:
        return selectors.request_get(request_id=request_id)
    except NotFound as exc:
        raise Http404() from exc


@never_cache
@require_GET
@dpo_required
def request_detail(request: HttpRequest, request_id: UUID) -> HttpResponse:
    req = _request_or_404(request_id)
    holds = list(selectors.legal_hold_list(subject=req.subject, active_only=False)) if req.subject else []
    return _render(request, "console/requests/detail.html", _base_context(
        req=req,
        clock=selectors.request_clock(request=req),
        alert=selectors.request_alert(request=req),
        history=selectors.request_history(request_id=req.id),
        export=selectors.export_live_for_request(request_id=req.id),
        review=selectors.review_for_request(request_id=req.id),
        holds=holds,
        before=selectors.decision_summaries(decision_ids=list((req.result or {}).get("decisions_before", []))),
        after=selectors.decision_summaries(decision_ids=list((req.result or {}).get("decisions_after", []))),
        reject_form=RejectForm(), extend_form=ExtendForm(), complete_form=CompleteForm(),
        hold_form=LegalHoldForm(),
        Status=Status, RequestType=RequestType, Outcome=Outcome,
        workable=req.status in services.WORKABLE,
        verifiable=req.status in (Status.RECEIVED, Status.IDENTITY_PENDING),
        liftable=req.outcome in (Outcome.RESTRICTED, Outcome.OBJECTED) and not (req.result or {}).get("lifted_at"),
    ))


def _action(handler: Callable[[HttpRequest, Any], str | None]) -> Callable[..., HttpResponse]:
    """POST action on a request: run the service, report the outcome, go back to the detail page."""

    @never_cache
    @require_POST
    @dpo_required
    def view(request: HttpRequest, request_id: UUID) -> HttpResponse:
        req = _request_or_404(request_id)
        try:
            done = handler(request, req)
        except ApplicationError as exc:
            messages.error(request, _("Not done: %(detail)s") % {"detail": exc.detail})
        else:
            if done:
                messages.success(request, done)
        return HttpResponseRedirect(reverse("console:request-detail", kwargs={"request_id": req.id}))

    view.__name__ = handler.__name__
    return view


def _form_errors(form: forms.Form) -> str:
    return "; ".join(f"{name}: {errors[0]}" for name, errors in form.errors.items())


def _verify(request: HttpRequest, req: Any) -> str:
    services.request_verify_on_behalf(request_id=req.id, actor=actor_of(request))
    return _("Identity confirmed.")


def _start(request: HttpRequest, req: Any) -> str:
    services.request_start(request_id=req.id, actor=actor_of(request))
    return _("Marked as in progress.")


class EraseConfirmForm(forms.Form):
    confirm_pseudonym = forms.CharField(label=_lazy("Type the customer's pseudonym to confirm"), max_length=64,
                                        strip=True)


def _erasure_confirmed(request: HttpRequest, req: Any) -> bool:
    """An erasure of a known customer runs only when the DPO typed its pseudonym (from the preview page)."""
    form = EraseConfirmForm(request.POST)
    return form.is_valid() and form.cleaned_data["confirm_pseudonym"].lower() == str(req.subject).lower()


def _execute(request: HttpRequest, req: Any) -> str | None:
    if req.type == RequestType.ERASURE and req.subject is not None and not _erasure_confirmed(request, req):
        messages.error(request, _("Not erased: the pseudonym typed does not match this request's customer. "
                                  "Nothing was changed."))
        return None
    services.request_execute(request_id=req.id, actor=actor_of(request))
    return _("Carried out.")


@never_cache
@require_GET
@dpo_required
def request_erase_preview(request: HttpRequest, request_id: UUID) -> HttpResponse:
    """What the erasure will destroy, counted, and the confirmation form (the pseudonym must be typed)."""
    req = _request_or_404(request_id)
    if req.type != RequestType.ERASURE:
        raise Http404()
    preview = None
    if req.subject is not None:
        try:
            preview = selectors.erasure_preview(customer_id=req.subject)
        except NotFound:
            preview = None
    return _render(request, "console/requests/erase_preview.html", _base_context(
        req=req, preview=preview, form=EraseConfirmForm(), workable=req.status in services.WORKABLE,
    ))


def _complete(request: HttpRequest, req: Any) -> str | None:
    form = CompleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return None
    services.request_complete(request_id=req.id, actor=actor_of(request), outcome=form.cleaned_data["outcome"])
    return _("Completed.")


def _reject(request: HttpRequest, req: Any) -> str | None:
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return None
    services.request_reject(request_id=req.id, actor=actor_of(request), code=form.cleaned_data["code"],
                            reason=form.cleaned_data["reason"])
    return _("Rejected.")


def _extend(request: HttpRequest, req: Any) -> str | None:
    form = ExtendForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return None
    services.request_extend(request_id=req.id, actor=actor_of(request), months=form.cleaned_data["months"],
                            code=form.cleaned_data["code"], reason=form.cleaned_data["reason"])
    return _("Deadline extended; the requester is told why.")


def _lift(request: HttpRequest, req: Any) -> str:
    services.request_lift(request_id=req.id, actor=actor_of(request))
    return _("Lifted.")


def _hold(request: HttpRequest, req: Any) -> str | None:
    form = LegalHoldForm(request.POST)
    if not form.is_valid() or req.subject is None:
        messages.error(request, _form_errors(form) or _("No customer for this request."))
        return None
    services.legal_hold_place(customer_id=req.subject, reason=form.cleaned_data["reason"],
                              justification=form.cleaned_data["justification"], actor=actor_of(request))
    return _("Legal hold placed.")


def _release(request: HttpRequest, req: Any) -> str | None:
    try:
        hold_id = int(request.POST.get("hold", ""))
    except ValueError:
        return None
    hold = selectors.legal_hold_list(subject=req.subject).filter(pk=hold_id).first() if req.subject else None
    if hold is None:
        raise NotFound()
    services.legal_hold_release(hold_id=hold.pk, actor=actor_of(request))
    return _("Legal hold released.")


@never_cache
@require_GET
@dpo_required
def review_queue(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or ReviewTask.State.OPEN
    page = Paginator(selectors.review_list(state=state if state != "all" else None), 50).get_page(
        request.GET.get("page"))
    return _render(request, "console/requests/reviews.html", _base_context(
        section="reviews", page=page, state=state, stats=selectors.review_stats(),
        states=[(ReviewTask.State.OPEN, _("Open")), (ReviewTask.State.DECIDED, _("Decided")), ("all", _("All"))],
    ))


@never_cache
@dpo_required
def review_detail(request: HttpRequest, review_id: int) -> HttpResponse:
    form = ReviewDecisionForm(request.POST or None)
    if request.method == "POST":
        try:
            review = selectors.review_get(review_id=review_id)
        except NotFound as exc:
            raise Http404() from exc
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.review_decide(review_id=review.pk, reviewer=actor_of(request), outcome=data["outcome"],
                                       rationale=data["rationale"], tier=data.get("tier") or None,
                                       service_level=form.service_level())
            except ApplicationError as exc:
                messages.error(request, _("Not done: %(detail)s") % {"detail": exc.detail})
            else:
                messages.success(request, _("Review recorded."))
                return HttpResponseRedirect(reverse("console:review-detail", kwargs={"review_id": review.pk}))
    elif request.method != "GET":
        return HttpResponse(status=405)
    try:
        view = services.review_view(review_id=review_id, actor=actor_of(request))
    except NotFound as exc:
        raise Http404() from exc
    from scoring import selectors as scoring_selectors

    decision = view.decision
    explanation = scoring_selectors.explanation_readable(explanation=(view.details or {}).get("explanation"))
    return _render(request, "console/requests/review_detail.html", _base_context(
        section="reviews", review=view.review, decision=decision, outputs=getattr(decision, "outputs", {}) or {},
        details=view.details, explanation=explanation, statement=view.statement, form=form,
        stats=selectors.review_stats(),
    ), status=400 if request.method == "POST" else 200)


urlpatterns = [
    path("requests/", request_queue, name="requests"),
    path("requests/<uuid:request_id>/", request_detail, name="request-detail"),
    path("requests/<uuid:request_id>/verify/", _action(_verify), name="request-verify"),
    path("requests/<uuid:request_id>/start/", _action(_start), name="request-start"),
    path("requests/<uuid:request_id>/erase/", request_erase_preview, name="request-erase"),
    path("requests/<uuid:request_id>/execute/", _action(_execute), name="request-execute"),
    path("requests/<uuid:request_id>/complete/", _action(_complete), name="request-complete"),
    path("requests/<uuid:request_id>/reject/", _action(_reject), name="request-reject"),
    path("requests/<uuid:request_id>/extend/", _action(_extend), name="request-extend"),
    path("requests/<uuid:request_id>/lift/", _action(_lift), name="request-lift"),
    path("requests/<uuid:request_id>/legal-hold/", _action(_hold), name="request-legal-hold"),
    path("requests/<uuid:request_id>/legal-hold/release/", _action(_release), name="request-legal-hold-release"),
    path("reviews/", review_queue, name="reviews"),
    path("reviews/<int:review_id>/", review_detail, name="review-detail"),
]
