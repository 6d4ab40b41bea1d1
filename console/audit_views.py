"""DPO console: the accountability pages (server-rendered, session login, DPO group only).

Decisions (search, detail with inputs and explanation), access log, governance log, consent and model
overviews, chain status, records of processing (Art. 30), and CSV/JSON exports. Every view of decrypted
personal data and every export writes an access record. An e-mail search is a POST (the address never
appears in a URL, a log line or the page) and is resolved to the pseudonym through the blind index.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, re_path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit import selectors as audit_selectors
from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import ApplicationError, NotFound, ValidationFailed
from console.auth import actor_of, dpo_required

logger = logging.getLogger("console")

ACCOUNTABILITY = "accountability"  # the purpose recorded for the DPO's own reads


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, template, context, status=status)


# ------------------------------------------------------------------------------------ login

class ConsoleLoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            audit_services.governance_record(kind="console.login", actor=f"user:{form.get_user().get_username()}")
        return response


@require_POST
def console_logout(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        with transaction.atomic():
            audit_services.governance_record(kind="console.logout", actor=actor_of(request))
            logout(request)
    return redirect("console:login")


# ------------------------------------------------------------------------------------ forms

DECISION_TYPE_CHOICES = [("", "Any"), *audit_selectors.decision_type_choices()]


class DecisionFilterForm(forms.Form):
    customer = forms.UUIDField(required=False, label="Pseudonym", help_text="The customer's pseudonymous id.")
    date_from = forms.DateField(required=False, label="From (UTC date)", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (UTC date, inclusive)",
                              widget=forms.DateInput(attrs={"type": "date"}))
    decision_type = forms.ChoiceField(required=False, choices=DECISION_TYPE_CHOICES, label="Decision type")
    model_version = forms.CharField(required=False, max_length=64, label="Model version")
    requester = forms.CharField(required=False, max_length=150, label="Requester",
                                help_text="e.g. api:support-desk or job:rescore_nightly")
    tier = forms.CharField(required=False, max_length=32, label="Tier")
    purpose = forms.CharField(required=False, max_length=64, label="Purpose")


class EmailSearchForm(forms.Form):
    email = forms.EmailField(label="Customer e-mail", max_length=254,
                             help_text="Looked up through the blind index; never stored, logged or shown.")


class AccessFilterForm(forms.Form):
    subject = forms.UUIDField(required=False, label="Subject pseudonym")
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    purpose = forms.CharField(required=False, max_length=64, label="Purpose")
    date_from = forms.DateField(required=False, label="From (UTC date)", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (UTC date, inclusive)",
                              widget=forms.DateInput(attrs={"type": "date"}))


class GovernanceFilterForm(forms.Form):
    kind = forms.CharField(required=False, max_length=64, label="Kind", help_text="e.g. consent.withdrawn")
    actor = forms.CharField(required=False, max_length=150, label="Actor")
    subject = forms.UUIDField(required=False, label="Subject pseudonym")
    date_from = forms.DateField(required=False, label="From (UTC date)", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (UTC date, inclusive)",
                              widget=forms.DateInput(attrs={"type": "date"}))


def _filters(form: forms.Form) -> dict[str, Any]:
    if not form.is_valid():
        return {}
    return {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}


def _query_without_cursor(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("format", None)
    return query.urlencode()


def _filters_for_record(filters: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(filters.items())}


# --------------------------------------------------------------------------------- decisions

@require_GET
@dpo_required
def decisions(request: HttpRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET or None)
    filters = _filters(form)
    try:
        result = audit_selectors.decision_list(filters=filters, cursor=request.GET.get("cursor") or None)
    except ValidationFailed:
        result = audit_selectors.decision_list(filters=filters)
    seqs = audit_selectors.decision_sequence_numbers(decision_ids=[d.pk for d in result.items])
    rows = [{"record": d, "seq": seqs.get(d.pk)} for d in result.items]
    return page(request, "console/decisions.html", {
        "form": form if request.GET else DecisionFilterForm(), "email_form": EmailSearchForm(),
        "rows": rows, "page": result, "query": _query_without_cursor(request),
        **_mood_context(filters.get("customer"), filters.get("purpose") or next(
            (d.purpose for d in result.items if d.decision_type == "served_score"), None)),
    })


def _mood_context(customer: Any, purpose: str | None) -> dict[str, Any]:
    """The customer's current mood (issue 18) for a page about one customer, only while the purpose's
    processing gate allows it, exactly as the score answer does."""
    if not customer or not purpose:
        return {}
    from scoring import selectors as scoring_selectors

    return {"mood": scoring_selectors.customer_current_mood(customer_id=customer, purpose=purpose),
            "mood_purpose": purpose}


@require_POST
@dpo_required
def decisions_by_email(request: HttpRequest) -> HttpResponse:
    """Resolve an e-mail to the pseudonym via the blind index, then show that customer's decisions."""
    form = EmailSearchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a valid e-mail address.")
        return redirect("console:decisions")
    from profiles.selectors import customer_find

    customer = customer_find(email=form.cleaned_data["email"])
    audit_services.access_record(
        actor=actor_of(request), purpose=ACCOUNTABILITY, subject=customer, what="customer.lookup",
        details={"by": "email", "found": customer is not None},
    )
    if customer is None:
        messages.info(request, "No customer matches that e-mail address.")
        return redirect("console:decisions")
    return redirect(f"{reverse('console:decisions')}?customer={customer}")


def _unseal(record: Any) -> tuple[str, dict[str, Any] | None]:
    """('ok', details) | ('erased', None) | ('none', None)."""
    if record.sealed_details is None:
        return "none", None
    from profiles.selectors import customer_unseal

    try:
        details = customer_unseal(customer_id=record.customer, label=audit_services.DECISION_DETAILS_LABEL,
                                  blob=bytes(record.sealed_details))
    except (DecryptionError, NotFound):
        return "erased", None
    return "ok", details


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _contributions(raw: Any) -> list[dict[str, Any]]:
    """Normalise a list/dict of contributions to [{'label', 'value', 'contribution'}]."""
    out: list[dict[str, Any]] = []
    if isinstance(raw, Mapping):
        for name, item in raw.items():
            if isinstance(item, Mapping):
                out.append({"label": item.get("label") or name, "value": item.get("value"),
                            "contribution": _number(item.get("contribution", item.get("points")))})
            else:
                out.append({"label": name, "value": None, "contribution": _number(item)})
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, list | tuple) and len(item) == 3:  # [feature, value, contribution]
                out.append({"label": str(item[0]), "value": item[1], "contribution": _number(item[2])})
            elif isinstance(item, Mapping):
                out.append({"label": item.get("label") or item.get("feature") or item.get("name") or "?",
                            "value": item.get("value"), "text": item.get("text"),
                            "contribution": _number(item.get("contribution", item.get("points")))})
    return [c for c in out if c["contribution"] is not None]


def explanation_charts(explanation: Any) -> list[dict[str, Any]]:
    """Bar-chart geometry (inline SVG, no JavaScript) per model from a decision's explanation."""
    if not isinstance(explanation, Mapping):
        return []
    models: list[tuple[str, Mapping[str, Any]]] = []
    if any(k in explanation for k in ("contributions", "top", "features")):
        models.append(("score", explanation))
    else:
        models.extend((str(name), value) for name, value in explanation.items() if isinstance(value, Mapping))
    charts = []
    for name, part in models:
        contributions = _contributions(part.get("contributions", part.get("top", part.get("features"))))
        if not contributions:
            continue
        contributions.sort(key=lambda c: -abs(c["contribution"]))
        contributions = contributions[:15]
        remainder = _number(part.get("remainder"))
        if remainder:
            contributions.append({"label": "(all other features)", "value": None, "contribution": remainder})
        scale = max(abs(c["contribution"]) for c in contributions) or 1.0
        bar_height, label_width, half = 22, 260, 170
        bars = []
        for i, c in enumerate(contributions):
            width = abs(c["contribution"]) / scale * half
            x = label_width + half if c["contribution"] >= 0 else label_width + half - width
            bars.append({**c, "y": i * bar_height + 4, "text_y": i * bar_height + 18, "x": round(x, 1),
                         "width": round(max(width, 1.0), 1), "positive": c["contribution"] >= 0,
                         "value_x": label_width + 2 * half + 8})
        charts.append({
            "model": name, "bars": bars, "baseline": part.get("baseline", part.get("base_value")),
            "output": part.get("output", part.get("prediction")), "unit": part.get("unit", ""),
            "height": len(bars) * bar_height + 8, "axis_x": label_width + half, "label_width": label_width,
            "width": label_width + 2 * half + 90,
        })
    return charts


def _consent_evidence(record: Any) -> dict[str, Any] | None:
    if record.consent_event_id is None:
        return None
    try:
        from consent.selectors import consent_receipt

        receipt = consent_receipt(event_id=record.consent_event_id)
    except (ApplicationError, ImportError, AttributeError):
        return {"missing": True}
    notice = receipt.get("notice") or {}
    purpose = receipt.get("purpose") or {}
    return {
        "event_id": receipt.get("event_id"), "action": receipt.get("action"),
        "purpose": purpose.get("code"), "lawful_basis": purpose.get("lawful_basis"),
        "notice_version": notice.get("version"), "notice_hash": notice.get("text_hash"),
        "occurred_at": receipt.get("occurred_at"), "source": receipt.get("source"), "channel": receipt.get("channel"),
    }


@require_GET
@dpo_required
def decision_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        record = audit_selectors.decision_get(decision_id=pk)
    except NotFound:
        return page(request, "console/not_found.html", {"what": "Decision"}, status=404)
    state, details = _unseal(record)
    if state == "ok":
        audit_services.access_record(
            actor=actor_of(request), purpose=ACCOUNTABILITY, subject=record.customer, what="decision.inputs",
            details={"decision_id": record.pk},
        )
    details = details or {}
    raw_features = details.get("features")
    features: Mapping[str, Any] = raw_features if isinstance(raw_features, Mapping) else {}
    seq = audit_selectors.decision_sequence_numbers(decision_ids=[record.pk]).get(record.pk)
    return page(request, "console/decision_detail.html", {
        "record": record, "seq": seq, "inputs_state": state,
        "features": sorted(features.items()),
        "charts": explanation_charts(details.get("explanation")),
        "outputs": sorted(cast(dict, record.outputs).items()),
        "model_versions": sorted(cast(dict, record.model_versions).items()),
        "consent": _consent_evidence(record),
        "reviews": audit_selectors.decision_reviews(decision_id=record.pk),
        **_mood_context(record.customer, record.purpose),
    })


# ----------------------------------------------------------------------------------- exports

def _safe_cell(value: Any) -> str:
    """CSV cell; text that a spreadsheet would run as a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


DECISION_COLUMNS = (
    "id", "seq", "created_at", "customer", "purpose", "decision_type", "requester", "tier", "model_version",
    "model_versions", "consent_event_id", "notice_version", "features_hash", "outputs", "content_hash",
)
ACCESS_COLUMNS = ("id", "seq", "created_at", "actor", "purpose", "subject", "what", "details", "content_hash")


def _decision_row(record: Any, seq: int | None) -> dict[str, Any]:
    return {
        "id": record.pk, "seq": seq, "created_at": record.created_at.isoformat(), "customer": str(record.customer),
        "purpose": record.purpose, "decision_type": record.decision_type, "requester": record.requester,
        "tier": record.tier, "model_version": record.model_version, "model_versions": record.model_versions,
        "consent_event_id": record.consent_event_id, "notice_version": record.notice_version,
        "features_hash": record.features_hash, "outputs": record.outputs, "content_hash": record.content_hash,
    }


def _access_row(record: Any, seq: int | None) -> dict[str, Any]:
    return {
        "id": record.pk, "seq": seq, "created_at": record.created_at.isoformat(), "actor": record.actor,
        "purpose": record.purpose, "subject": str(record.subject) if record.subject else None, "what": record.what,
        "details": record.details, "content_hash": record.content_hash,
    }


def _rows_with_seq(queryset: Any, record_type: str, to_row: Callable[[Any, int | None], dict[str, Any]],
                   limit: int) -> Iterator[dict[str, Any]]:
    batch: list[Any] = []

    def flush() -> Iterator[dict[str, Any]]:
        seqs = audit_selectors.sequence_numbers(record_type=record_type, row_ids=[r.pk for r in batch])
        for r in batch:
            yield to_row(r, seqs.get(r.pk))

    for record in queryset[:limit].iterator(chunk_size=2000):
        batch.append(record)
        if len(batch) >= 2000:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def _csv_stream(columns: Iterable[str], rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    columns = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([
            _safe_cell(json.dumps(row[c], sort_keys=True) if isinstance(row[c], dict | list) else row[c])
            for c in columns
        ])
        yield buffer.getvalue()


def _json_stream(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("" if first else ",") + "\n" + json.dumps(row, sort_keys=True, default=str)
        first = False
    yield "\n]\n"


def _export_response(fmt: str, name: str, columns: Iterable[str], rows: Iterator[dict[str, Any]]) -> HttpResponseBase:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        response = StreamingHttpResponse(_json_stream(rows), content_type="application/json")
    else:
        response = StreamingHttpResponse(_csv_stream(columns, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@dpo_required
def decisions_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    form = DecisionFilterForm(request.GET or None)
    filters = _filters(form)
    limit = int(settings.AUDIT_EXPORT_MAX_ROWS)
    audit_services.access_record(
        actor=actor_of(request), purpose=ACCOUNTABILITY, subject=filters.get("customer"), what="export.decisions",
        details={"format": fmt, "filters": _filters_for_record(filters), "max_rows": limit},
    )
    queryset = audit_selectors.decision_queryset(filters=filters).defer("sealed_details")
    rows = _rows_with_seq(queryset, "decision", _decision_row, limit)
    return _export_response(fmt, "decisions", DECISION_COLUMNS, rows)


@require_GET
@dpo_required
def access_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    form = AccessFilterForm(request.GET or None)
    filters = _filters(form)
    limit = int(settings.AUDIT_EXPORT_MAX_ROWS)
    this_export = audit_services.access_record(
        actor=actor_of(request), purpose=ACCOUNTABILITY, subject=filters.get("subject"), what="export.access_log",
        details={"format": fmt, "filters": _filters_for_record(filters), "max_rows": limit},
    )
    queryset = audit_selectors.access_queryset(filters=filters).exclude(pk=this_export.pk)
    rows = _rows_with_seq(queryset, "access", _access_row, limit)
    return _export_response(fmt, "access-log", ACCESS_COLUMNS, rows)


# ----------------------------------------------------------------------------- access, governance

@require_GET
@dpo_required
def access_log(request: HttpRequest) -> HttpResponse:
    form = AccessFilterForm(request.GET or None)
    try:
        result = audit_selectors.access_list(filters=_filters(form), cursor=request.GET.get("cursor") or None)
    except ValidationFailed:
        result = audit_selectors.access_list(filters=_filters(form))
    return page(request, "console/access_log.html", {
        "form": form if request.GET else AccessFilterForm(), "page": result, "query": _query_without_cursor(request),
    })


@require_GET
@dpo_required
def governance(request: HttpRequest) -> HttpResponse:
    form = GovernanceFilterForm(request.GET or None)
    try:
        result = audit_selectors.governance_list(filters=_filters(form), cursor=request.GET.get("cursor") or None)
    except ValidationFailed:
        result = audit_selectors.governance_list(filters=_filters(form))
    return page(request, "console/governance.html", {
        "form": form if request.GET else GovernanceFilterForm(), "page": result,
        "query": _query_without_cursor(request),
    })


# ------------------------------------------------------------------------------------ consent

def trend_chart(series: list[dict[str, Any]], *, width: int = 640, height: int = 160) -> dict[str, Any]:
    """Polyline geometry for daily grants and withdrawals (inline SVG)."""
    if not series:
        return {"empty": True}
    peak = max(max(int(p.get("grants", 0)), int(p.get("withdrawals", 0))) for p in series) or 1
    step = width / max(1, len(series) - 1)

    def points(key: str) -> str:
        return " ".join(
            f"{round(i * step, 1)},{round(height - int(p.get(key, 0)) / peak * (height - 10) - 5, 1)}"
            for i, p in enumerate(series)
        )

    return {"empty": False, "width": width, "height": height, "grants": points("grants"),
            "withdrawals": points("withdrawals"), "peak": peak, "first": series[0].get("date"),
            "last": series[-1].get("date"), "total_grants": sum(int(p.get("grants", 0)) for p in series),
            "total_withdrawals": sum(int(p.get("withdrawals", 0)) for p in series)}


@require_GET
@dpo_required
def consent_overview(request: HttpRequest) -> HttpResponse:
    try:
        days = max(7, min(int(request.GET.get("days", 90)), 730))
    except ValueError:
        days = 90
    try:
        from consent.selectors import consent_overview as overview

        data = overview(days=days)
    except (ImportError, AttributeError):
        data = None
    purposes = []
    if data:
        for item in data.get("purposes", []):
            purposes.append({**item, "chart": trend_chart(data.get("trend", {}).get(item.get("code"), []))})
    return page(request, "console/consent_overview.html", {"data": data, "purposes": purposes, "days": days})


# ------------------------------------------------------------------------------------- models

def _bars(counts: list[tuple[str, float, float | None]]) -> list[dict[str, Any]]:
    """Horizontal bars (inline SVG geometry) for (tier, count, configured share or None)."""
    total = sum(c for _, c, _ in counts) or 1.0
    peak = max((c for _, c, _ in counts), default=0.0) or 1.0
    return [{"tier": t, "count": int(c), "share": round(c / total * 100, 1), "width": round(c / peak * 300, 1),
             "configured": round(conf * 100, 1) if conf is not None else None,
             "y": i * 26 + 4, "text_y": i * 26 + 19} for i, (t, c, conf) in enumerate(counts)]


def tier_charts(distribution: Any) -> list[dict[str, Any]]:
    """One tier-distribution chart per purpose from ``scoring.selectors.tier_distribution()``
    (``{"purposes": {purpose: {"total", "tiers": {tier: {"count", "share", "configured_share"}}}}}``);
    also accepts a flat ``{tier: count}`` mapping."""
    if not isinstance(distribution, Mapping):
        return []
    purposes = distribution.get("purposes")
    if not isinstance(purposes, Mapping):
        purposes = {"all": {"tiers": distribution}}
    charts = []
    for purpose, entry in purposes.items():
        tiers = entry.get("tiers", {}) if isinstance(entry, Mapping) else {}
        counts: list[tuple[str, float, float | None]] = []
        for tier, value in tiers.items():
            if isinstance(value, Mapping):
                counts.append((str(tier), _number(value.get("count")) or 0.0, _number(value.get("configured_share"))))
            else:
                counts.append((str(tier), _number(value) or 0.0, None))
        if counts:
            bars = _bars(counts)
            charts.append({"purpose": purpose, "bars": bars, "height": len(bars) * 26 + 8,
                           "total": sum(b["count"] for b in bars)})
    return charts


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for k, v in data.items():
            out.extend(_flatten(v, f"{prefix}{k}." if isinstance(v, Mapping) else f"{prefix}{k}"))
        return out
    if isinstance(data, list):
        return [(prefix.rstrip("."), data)]
    return [(prefix.rstrip("."), data)]  # the template renders it readable (rounded, localised)


@require_GET
@dpo_required
def model_overview(request: HttpRequest) -> HttpResponse:
    overview: Any = None
    distribution: Any = None
    try:
        from scoring import selectors as scoring_selectors

        overview = scoring_selectors.model_overview()
        distribution = scoring_selectors.tier_distribution()
    except (ImportError, AttributeError):
        pass
    active = overview.get("active", []) if isinstance(overview, Mapping) else []
    versions = overview.get("versions", []) if isinstance(overview, Mapping) else []
    try:  # model vs naive baseline per score kind, with warnings (issue 16)
        from scoring.selectors import model_quality_active

        quality = model_quality_active()
    except (ImportError, AttributeError):
        quality = []
    return page(request, "console/model_overview.html", {
        "quality": quality,
        "available": overview is not None,
        "active": [{"version": item.get("version"), "facts": _flatten(item)} for item in active if isinstance(item, Mapping)],
        "versions": [v for v in versions if isinstance(v, Mapping)],
        "charts": tier_charts(distribution),
    })


# ------------------------------------------------------------------------------ rescore runs

#: Seconds between automatic reloads of the rescore page while a run is still in progress.
RESCORE_REFRESH_SECONDS = 10


@require_GET
@dpo_required
def rescore_runs(request: HttpRequest) -> HttpResponse:
    """Nightly and requested rescore runs, newest first: progress by customers and chunks, what was
    scored and what was skipped at execution time and why (the same counts as ``manage.py rescore``)."""
    from scoring import selectors as scoring_selectors

    runs = scoring_selectors.rescore_run_list(limit=20)
    in_progress = any(r["status"] in ("preparing", "running") for r in runs)
    return page(request, "console/rescore_runs.html", {
        "runs": runs, "refresh": RESCORE_REFRESH_SECONDS if in_progress else None,
    })


# -------------------------------------------------------------------------------------- chain

@require_GET
@dpo_required
def chain_status(request: HttpRequest) -> HttpResponse:
    return page(request, "console/chain_status.html", {
        "status": audit_selectors.chain_status(), "runs": audit_selectors.verification_runs(limit=10),
    })


@require_POST
@dpo_required
def chain_verify(request: HttpRequest) -> HttpResponse:
    from audit.tasks import verify_chain

    verify_chain.delay(user_id=request.user.pk)
    messages.info(request, "Verification started; the result appears below when it finishes.")
    return redirect("console:chain-status")


# ---------------------------------------------------------------------- records of processing

def retention_per_category() -> list[dict[str, str]]:
    """Retention per data category (Art. 30(1)(f)), from the settings the purge and the erasure apply."""
    from profiles.selectors import retention_by_category

    facts = [{"category": f"customer facts: {row['category']}",
              "retention": f"{row['days']} days after the fact's date, then deleted by the nightly purge"
                           + (f" (follows {row['follows']})" if row["follows"] else ""),
              "setting": "RETENTION_DAYS"} for row in retention_by_category()]
    return [
        {"category": "personal fields (name, e-mail, phone, address, ...)", "setting": "-",
         "retention": "while the customer is on file; destroyed on erasure (the data key is shredded)"},
        *facts,
        {"category": "consent events and processing flags", "setting": "-",
         "retention": "append-only while the customer is on file (proof of consent); erased with the customer"},
        {"category": "scores", "setting": "-",
         "retention": "replaced at every rescore; deleted on erasure"},
        {"category": "decision records (audit log)", "setting": "-",
         "retention": "kept for the life of the service; their inputs and explanation are crypto-shredded on erasure"},
        {"category": "subject-request exports", "setting": "EXPORT_LINK_TTL_SECONDS",
         "retention": f"{settings.EXPORT_LINK_TTL_SECONDS // 3600} hours after creation, then the file and its key "
                      "are deleted"},
    ]


def records_of_processing() -> dict[str, Any]:
    """Art. 30(1) record generated from the configuration: purposes (lawful basis, categories, retention),
    recipients (API clients), and the security measures."""
    try:
        from consent.selectors import purpose_catalogue

        purposes = [{**p, "current_notice": (
            {"version": p["current_notice"].version, "text_hash": p["current_notice"].text_hash}
            if p.get("current_notice") is not None else None)} for p in purpose_catalogue()]
    except (ImportError, AttributeError):
        purposes = []
    try:
        from profiles.selectors import PERSONAL_FIELDS

        personal_fields = list(PERSONAL_FIELDS)
    except ImportError:
        personal_fields = []
    categories = sorted({c for p in purposes for c in p.get("data_categories", [])})
    return {
        "controller_contact": settings.DPO_EMAIL,
        "generated_at": timezone.now().isoformat(),
        "purposes": purposes,
        "data_categories": categories,
        "personal_fields": personal_fields,
        "recipients": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in c.items()}
            for c in audit_selectors.api_client_list()
        ],
        "retention": {
            "per_category": retention_per_category(),
            "per_purpose_days": {p["code"]: p.get("retention_days") for p in purposes},
            "subject_request_exports_seconds": settings.EXPORT_LINK_TTL_SECONDS,
            "audit_records": "kept for the life of the service; sensitive details crypto-shredded on erasure",
        },
        "security_measures": [
            "AES-256-GCM per-customer data keys wrapped by rotatable key-encryption keys",
            "HMAC-SHA256 blind indexes for lookups",
            "hashed API tokens with scopes and purposes",
            "append-only, hash-chained audit log with Ed25519-signed external checkpoints",
        ],
    }


@require_GET
@dpo_required
def ropa(request: HttpRequest) -> HttpResponse:
    return page(request, "console/ropa.html", {"ropa": records_of_processing()})


@require_GET
@dpo_required
def ropa_export(request: HttpRequest, fmt: str) -> HttpResponse:
    data = records_of_processing()
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "json":
        response = HttpResponse(json.dumps(data, indent=2, sort_keys=True, default=str),
                                content_type="application/json")
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["purpose", "name", "lawful_basis", "data_categories", "recipients", "retention_days"])
        for p in data["purposes"]:
            writer.writerow([_safe_cell(p.get("code")), _safe_cell(p.get("name")), _safe_cell(p.get("lawful_basis")),
                             _safe_cell(";".join(p.get("data_categories", []))), _safe_cell(p.get("recipients")),
                             p.get("retention_days")])
        writer.writerow([])
        writer.writerow(["data_category", "retention", "setting"])
        for row in data["retention"]["per_category"]:
            writer.writerow([_safe_cell(row["category"]), _safe_cell(row["retention"]), _safe_cell(row["setting"])])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="records-of-processing-{stamp}.{fmt}"'
    return response


urlpatterns = [
    path("login/", ConsoleLoginView.as_view(), name="login"),
    path("logout/", console_logout, name="logout"),
    path("decisions/", decisions, name="decisions"),
    path("decisions/by-email/", decisions_by_email, name="decisions-email"),
    re_path(r"^decisions/export\.(?P<fmt>csv|json)$", decisions_export, name="decisions-export"),
    path("decisions/<int:pk>/", decision_detail, name="decision-detail"),
    path("access/", access_log, name="access-log"),
    re_path(r"^access/export\.(?P<fmt>csv|json)$", access_export, name="access-export"),
    path("governance/", governance, name="governance"),
    path("consent/", consent_overview, name="consent-overview"),
    path("models/", model_overview, name="model-overview"),
    path("rescore-runs/", rescore_runs, name="rescore-runs"),
    path("chain/", chain_status, name="chain-status"),
    path("chain/verify/", chain_verify, name="chain-verify"),
    path("records-of-processing/", ropa, name="ropa"),
    re_path(r"^records-of-processing/export\.(?P<fmt>csv|json)$", ropa_export, name="ropa-export"),
]
