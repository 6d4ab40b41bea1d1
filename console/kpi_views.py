"""DPO console: the KPI dashboard (issue 17). Aggregates only, after small-cell suppression: no personal data.

KPI trends per tier as server-rendered SVG line charts (no scripts, nothing from a CDN), the uplift of treatment
over the holdout with its 95 % interval, the action funnel, and a CSV download of every table shown (the same
suppressed cells, marked). Webhook delivery health is shown by the webhooks pages.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from config.errors import ValidationFailed
from console.auth import dpo_required

CHARTED = ("retention_rate", "revenue", "sla_adherence", "first_response_median_hours", "csat", "nps")
COLOURS = {"VIP": "#7b2cbf", "Premium": "#0b5cad", "Standard": "#1a7f37", "Basic": "#b35c00", "All tiers": "#57606a"}
SUPPRESSED_MARK = "suppressed"


class KpiFilter(forms.Form):
    date_from = forms.DateField(required=False, label="From (month of)", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To (month of)", widget=forms.DateInput(attrs={"type": "date"}))


def _report(request: HttpRequest) -> tuple[KpiFilter, dict[str, Any] | None, str | None]:
    from kpis import selectors as kpi_selectors

    form = KpiFilter(request.GET or None)
    start: date | None = None
    end: date | None = None
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
    if start and end and start > end:
        return form, None, "'From' is after 'To'."
    try:
        return form, kpi_selectors.kpi_report_for(start=start, end=end, tier=None), None
    except ValidationFailed as exc:
        return form, None, exc.detail


# ------------------------------------------------------------------------------------ SVG

def line_chart(metric: dict[str, Any], months: list[str], *, width: int = 560, height: int = 220) -> SafeString:
    """One line per tier over the months; suppressed or empty cells leave a gap (never a guessed value)."""
    left, right, top, bottom = 56, 110, 14, 30
    series: dict[str, list[float | None]] = {
        row["tier"]: [row["months"][m]["value"] if not row["months"][m]["suppressed"] else None for m in months]
        for row in metric["rows"]}
    values = [v for vs in series.values() for v in vs if v is not None]
    title = escape(metric["name"].replace("_", " "))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-labelledby="t-{escape(metric["name"])}">'
             f'<title id="t-{escape(metric["name"])}">{title} per tier and month</title>']
    if not values:
        parts.append(f'<text x="{left}" y="{height // 2}">No figures to show (no data or all suppressed).</text></svg>')
        return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers only
    lo, hi = min(min(values), 0.0), max(values)
    hi = hi if hi > lo else lo + 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / max(len(months) - 1, 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#8c959f"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#8c959f"/>')
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>')
    step = max(1, len(months) // 6)
    for i, m in enumerate(months):
        if i % step == 0 or i == len(months) - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" text-anchor="middle">{escape(m)}</text>')
    for n, (tier, vs) in enumerate(series.items()):
        colour = COLOURS.get(tier, "#24292f")
        segment: list[str] = []
        for i, v in enumerate(vs + [None]):
            if v is not None:
                segment.append(f"{x(i):.1f},{y(v):.1f}")
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>')
            elif segment:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(segment)}"/>')
                segment = []
        parts.append(f'<text x="{left + plot_w + 8}" y="{top + 14 + 16 * n}" fill="{colour}">{escape(tier)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers only


def interval_chart(uplift: dict[str, Any], *, width: int = 560, height: int = 120) -> SafeString:
    """Each uplift as a point with its 95 % interval, against zero."""
    rows = [(name, uplift.get(name)) for name in ("retention", "revenue_per_customer")]
    rows = [(n, f) for n, f in rows if f]
    if not rows:
        return mark_safe("")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}"><title>Uplift of treatment over holdout with 95 % intervals</title>']
    band = (height - 20) / len(rows)
    for i, (name, fig) in enumerate(rows):
        lo, hi, est = float(fig["ci95"][0]), float(fig["ci95"][1]), float(fig["uplift"])
        span = max(abs(lo), abs(hi), abs(est), 1e-9) * 1.1
        left, plot_w = 170, width - 190

        def x(v: float, span: float = span, left: int = left, plot_w: int = plot_w) -> float:
            return left + plot_w * (v + span) / (2 * span)

        cy = 10 + band * i + band / 2
        parts.append(f'<text x="6" y="{cy + 4:.1f}">{escape(name.replace("_", " "))}</text>')
        parts.append(f'<line x1="{x(0):.1f}" y1="{cy - band / 2 + 4:.1f}" x2="{x(0):.1f}" y2="{cy + band / 2 - 4:.1f}" '
                     'stroke="#8c959f" stroke-dasharray="3 3"/>')
        parts.append(f'<line x1="{x(lo):.1f}" y1="{cy:.1f}" x2="{x(hi):.1f}" y2="{cy:.1f}" stroke="#0b5cad" '
                     'stroke-width="3"/>')
        parts.append(f'<circle cx="{x(est):.1f}" cy="{cy:.1f}" r="5" fill="#12263f"/>')
        parts.append(f'<text x="{x(hi) + 6:.1f}" y="{cy - 6:.1f}">{est:.4g} [{lo:.4g}, {hi:.4g}]</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped text and numbers only


# ------------------------------------------------------------------------------------ tables and CSV

def _funnel() -> list[dict[str, Any]]:
    from engagement import selectors as engagement_selectors

    return engagement_selectors.action_funnel()


def _csv(name: str, header: list[str], rows: list[list[Any]]) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kpi-{name}.csv"'
    return response


def metric_rows(metric: dict[str, Any], months: list[str]) -> list[list[Any]]:
    """Rows ``tier, month, value, n`` with suppressed cells marked, never filled in."""
    out = []
    for row in metric["rows"]:
        for m in months:
            cell = row["months"][m]
            if cell["suppressed"]:
                out.append([row["tier"], m, SUPPRESSED_MARK, SUPPRESSED_MARK])
            else:
                out.append([row["tier"], m, "" if cell["value"] is None else cell["value"], cell["n"]])
    return out


@require_GET
@dpo_required
def kpi_dashboard(request: HttpRequest) -> HttpResponse:
    form, report, error = _report(request)
    context: dict[str, Any] = {"form": form, "error": error, "report": report, "funnel": _funnel(),
                               "query": request.GET.urlencode()}
    if report is not None:
        months = report["months"]
        context["charts"] = [{"metric": m, "svg": line_chart(m, months)} for m in report["metrics"]
                             if m["name"] in CHARTED]
        context["tables"] = [{"metric": m, "rows": [
            {"tier": row["tier"], "cells": [row["months"][mo] for mo in months]} for row in m["rows"]]}
            for m in report["metrics"]]
        context["uplift_svg"] = interval_chart(report["uplift"]) if report["uplift"]["status"] == "ok" else ""
    return render(request, "console/kpis/dashboard.html", context, status=400 if error else 200)


@require_GET
@dpo_required
def kpi_export(request: HttpRequest, table: str) -> HttpResponse:
    if table == "funnel":
        outcomes = ["accepted", "declined", "retained", "churned", "no_answer"]
        return _csv("funnel", ["type", "created", "claimed", "completed", "dismissed", "cancelled", "open", *outcomes],
                    [[r["type"], r["created"], r["claimed"], r["completed"], r["dismissed"], r["cancelled"], r["open"],
                      *[r["outcomes"][o] for o in outcomes]] for r in _funnel()])
    _form, report, error = _report(request)
    if report is None:
        return HttpResponse(error or "Invalid request.", status=400, content_type="text/plain; charset=utf-8")
    if table == "uplift":
        u = report["uplift"]
        rows = [["status", u["status"], "", ""]]
        for name in ("retention", "revenue_per_customer"):
            fig = u.get(name)
            if fig:
                rows.append([name, fig["uplift"], fig["ci95"][0], fig["ci95"][1]])
        if u.get("roi"):
            rows.append(["roi_net", u["roi"]["net"], u["roi"]["net_ci95"][0], u["roi"]["net_ci95"][1]])
        for key, value in u["have"].items():
            rows.append([f"have_{key}", value, "", ""])
        for key, value in u["needed"].items():
            rows.append([f"needed_{key}", value, "", ""])
        return _csv("uplift", ["figure", "value", "ci95_low", "ci95_high"], rows)
    metric = next((m for m in report["metrics"] if m["name"] == table), None)
    if metric is None:
        raise Http404("No such table.")
    return _csv(table, ["tier", "month", "value", "n"], metric_rows(metric, report["months"]))


urlpatterns = [
    path("kpis/", kpi_dashboard, name="kpis"),
    path("kpis/export/<slug:table>.csv", kpi_export, name="kpis-export"),
]
