"""The customer's pages under /me/: file a request, verify, follow it, download the export, and see
"why am I treated this way" (with a way to contest).

Nothing about a person is shown before the one-time code is verified: the pages after submitting look
the same whether or not the e-mail belongs to a customer. After verification the customer follows
the request through a signed status link. Every page is ``never_cache`` (Cache-Control: no-store).
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from config.client_address import client_address
from config.errors import ApplicationError, NotFound, ValidationFailed
from config.uuids import as_uuid
from subject_rights import links, selectors, services, verification
from subject_rights.errors import TooManyRequests
from subject_rights.export import SCHEMA_PATH
from subject_rights.models import Outcome, RequestType, ReviewTask, Status

from . import readable
from .forms import CodeForm, ContestForm, RectificationForm, RequestForm

SESSION_PENDING = "dsr_pending_request"


def _client_address(request: HttpRequest) -> str:
    return client_address(request)  # REMOTE_ADDR, or X-Forwarded-For behind TRUSTED_PROXIES only


def _throttled(request: HttpRequest) -> HttpResponse:
    response = render(request, "selfservice/throttled.html", status=429)
    response["Retry-After"] = str(verification.retry_after_seconds())
    return response


def _verified_request(token: str) -> Any:
    """The request behind a status link; only verified requests have one."""
    try:
        request_id = links.status_token_read(token)
        req = selectors.request_get(request_id=request_id)
    except NotFound as exc:
        raise Http404() from exc
    if req.verified_at is None:
        raise Http404()
    return req


@never_cache
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = RequestForm(request.POST)
        if form.is_valid():
            try:
                req = services.request_submit_self_service(
                    type=form.cleaned_data["type"], email=form.cleaned_data["email"],
                    client_address=_client_address(request), idempotency_key=form.cleaned_data["token"],
                    language=translation.get_language() or "",
                )
            except TooManyRequests:
                return _throttled(request)
            except ValidationFailed:
                form.add_error("email", _("Enter a valid e-mail address."))
            except ApplicationError:
                form.add_error(None, _("This form was already used. Please start again."))
            else:
                request.session[SESSION_PENDING] = str(req.id)
                return HttpResponseRedirect(reverse("selfservice:verify"))
    else:
        form = RequestForm(initial={"token": secrets.token_urlsafe(24)})
    return render(request, "selfservice/start.html", {"form": form})


def _pending_id(request: HttpRequest) -> UUID | None:
    raw = request.session.get(SESSION_PENDING)
    try:
        return as_uuid(raw) if raw else None
    except ValueError:
        return None


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    request_id = _pending_id(request)
    if request_id is None:
        return HttpResponseRedirect(reverse("selfservice:start"))
    message = ""
    if request.method == "POST":
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                result = services.request_verify_code(request_id=request_id, code=form.cleaned_data["code"])
            except NotFound:
                result = services.VerifyResult.NOT_PENDING
            if result == services.VerifyResult.OK:
                request.session.pop(SESSION_PENDING, None)
                return HttpResponseRedirect(reverse("selfservice:status",
                                                    kwargs={"token": links.status_token(request_id)}))
            message = {
                services.VerifyResult.WRONG: _("That code is not correct. Please try again."),
                services.VerifyResult.EXPIRED: _("That code has expired. Ask for a new one below."),
                services.VerifyResult.LOCKED: _("Too many wrong attempts. Ask for a new code below."),
                services.VerifyResult.NOT_PENDING: _("This request no longer waits for a code. Please start again."),
            }[result]
            form = CodeForm()
    else:
        form = CodeForm()
    return render(request, "selfservice/verify.html", {"form": form, "message": message},
                  status=400 if message else 200)


@never_cache
@require_POST
def resend(request: HttpRequest) -> HttpResponse:
    request_id = _pending_id(request)
    if request_id is None:
        return HttpResponseRedirect(reverse("selfservice:start"))
    try:
        services.verification_resend(request_id=request_id, client_address=_client_address(request))
    except TooManyRequests:
        return _throttled(request)
    except NotFound:
        return HttpResponseRedirect(reverse("selfservice:start"))
    return render(request, "selfservice/verify.html",
                  {"form": CodeForm(), "notice": _("If the address can receive e-mail, a new code is on its way.")})


@never_cache
def status(request: HttpRequest, token: str) -> HttpResponse:
    req = _verified_request(token)
    export = selectors.export_live_for_request(request_id=req.id)
    review = selectors.review_for_request(request_id=req.id)
    result = req.result or {}
    context = {
        "req": req,
        "token": token,
        "clock": selectors.request_clock(request=req),
        "export": export,
        "export_token": links.export_token(export.id) if export else None,
        "review": review,
        "before": selectors.decision_summaries(decision_ids=list(result.get("decisions_before", []))),
        "after": selectors.decision_summaries(decision_ids=list(result.get("decisions_after", []))),
        "needs_corrections": req.type == RequestType.RECTIFICATION and req.is_open and req.subject is not None,
        "rectify_form": RectificationForm(),
        "can_explain": req.subject is not None and req.outcome != Outcome.ERASED and _subject_live(req.subject),
        "Status": Status,
        "Outcome": Outcome,
    }
    return render(request, "selfservice/status.html", context)


def _subject_live(subject: UUID) -> bool:
    from profiles import selectors as profile_selectors

    return profile_selectors.customer_exists(customer_id=subject)


@never_cache
@require_POST
def rectify(request: HttpRequest, token: str) -> HttpResponse:
    req = _verified_request(token)
    form = RectificationForm(request.POST)
    if form.is_valid():
        try:
            services.request_rectification_provide(request_id=req.id, fields=form.corrections(), actor=services.SELF)
        except ValidationFailed as exc:
            field = next(iter((exc.extra.get("errors") or {}).keys()), None)
            form.add_error(field if field in form.fields else None, _("Please check this value."))
        except ApplicationError:
            form.add_error(None, _("This request can no longer be changed."))
        else:
            return HttpResponseRedirect(reverse("selfservice:status", kwargs={"token": token}))
    return render(request, "selfservice/status.html", {
        "req": req, "token": token, "clock": selectors.request_clock(request=req), "needs_corrections": True,
        "rectify_form": form, "Status": Status, "Outcome": Outcome,
    }, status=400)


def _why_items(customer_id: UUID) -> list[dict[str, Any]]:
    """Per purpose, the decision in force (a reviewer's override over the automated tier) and its main reasons,
    in the customer's language."""
    from scoring import selectors as scoring_selectors

    items = []
    for score in scoring_selectors.scores_for_customer(customer_id=customer_id):
        override = score.get("override")
        hours = (score.get("service_level") or {}).get("response_time_hours")
        items.append({
            "purpose": score["purpose"],
            "purpose_words": readable.value_text(score["purpose"], "purpose"),
            "tier": score["tier"],
            "automated_tier": score["automated_tier"],
            "reviewed_by_a_person": override is not None,
            "reviewed_decision": (override or {}).get("review_of_decision"),
            "hours": hours,
            "reasons": readable.reasons_of(score),
        })
    return items


@never_cache
def why(request: HttpRequest, token: str) -> HttpResponse:
    from audit import selectors as audit_selectors

    req = _verified_request(token)
    if req.subject is None or not _subject_live(req.subject):
        raise Http404()
    items = _why_items(req.subject)
    in_force = {item["purpose"]: item for item in items}
    latest: dict[str, Any] = {}
    for decision in audit_selectors.decisions_for_subject(customer=req.subject):
        if decision.decision_type == "holdout_assignment":  # shown on its own below (issue 17)
            continue
        current = latest.get(decision.purpose)
        if current is None or (decision.created_at, decision.pk) > (current.created_at, current.pk):
            latest[decision.purpose] = decision
    open_reviews = set(
        selectors.review_list(state=ReviewTask.State.OPEN).filter(subject=req.subject).values_list("decision_id",
                                                                                                     flat=True))
    decisions = []
    for d in sorted(latest.values(), key=lambda d: d.purpose):
        item = in_force.get(d.purpose)
        overridden = bool(item and item["reviewed_by_a_person"])
        decisions.append({"id": d.pk, "purpose": d.purpose, "purpose_words": readable.value_text(d.purpose, "purpose"),
                          "at": d.created_at,
                          "tier": item["tier"] if overridden else (d.outputs or {}).get("tier"),
                          "set_by_a_person": overridden, "under_review": d.pk in open_reviews})
    from engagement import selectors as engagement_selectors

    return render(request, "selfservice/why.html", {
        "req": req, "token": token, "items": items, "decisions": decisions, "dpo_email": settings.DPO_EMAIL,
        "holdout": engagement_selectors.holdout_for_customer(customer_id=req.subject)})


@never_cache
@require_POST
def contest(request: HttpRequest, token: str) -> HttpResponse:
    req = _verified_request(token)
    form = ContestForm(request.POST)
    if not form.is_valid():
        raise Http404()
    try:
        contest_req = services.request_contest_submit(from_request_id=req.id,
                                                      decision_id=form.cleaned_data["decision_id"],
                                                      statement=form.cleaned_data.get("statement") or "")
    except (ValidationFailed, NotFound) as exc:
        raise Http404() from exc
    return HttpResponseRedirect(reverse("selfservice:status", kwargs={"token": links.status_token(contest_req.id)}))


def _export_content(token: str) -> tuple[bytes, Any]:
    try:
        export_id = links.export_token_read(token)
        return services.export_download(export_id=export_id, actor=services.SELF)
    except NotFound as exc:
        raise Http404() from exc


def _no_store(response: HttpResponse | StreamingHttpResponse) -> HttpResponse | StreamingHttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _chunks(content: bytes, size: int = 64 * 1024) -> Any:
    view = memoryview(content)
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size])


@never_cache
def export_download(request: HttpRequest, token: str) -> StreamingHttpResponse:
    """The export as JSON, decrypted in memory and streamed: no plaintext file is ever written."""
    content, export = _export_content(token)
    response = StreamingHttpResponse(_chunks(content), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="my-data-{export.request_id}.json"'
    return _no_store(response)


@never_cache
def export_csv(request: HttpRequest, token: str) -> StreamingHttpResponse:
    """The export as CSV (one value a row, its place in the JSON document beside it), streamed from memory."""
    content, export = _export_content(token)
    document = json.loads(content)
    del content
    response = StreamingHttpResponse(readable.csv_lines(document), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="my-data-{export.request_id}.csv"'
    return _no_store(response)


@never_cache
def export_page(request: HttpRequest, token: str) -> HttpResponse:
    """The export as a readable page: every section it holds, in plain words of the customer's language."""
    content, export = _export_content(token)
    document = json.loads(content)
    response = render(request, "selfservice/export_page.html", {
        "sections": readable.sections(document), "token": token,
        "generated_at": readable.value_text(document.get("generated_at")),
    })
    return _no_store(response)


def export_schema(request: HttpRequest) -> FileResponse:
    response = FileResponse(open(SCHEMA_PATH, "rb"), content_type="application/schema+json")  # noqa: SIM115
    response["Access-Control-Allow-Origin"] = "*"
    return response
