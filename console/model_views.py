"""DPO console: model governance -- the fairness report of each active model (four-fifths rule flagged),
feature drift (PSI, latest reports) and the training history (scheduled rescores and retrains).

Thin views over ``scoring.selectors``; the page holds no personal data (group labels of audit-only
characteristics appear only for groups of at least ``SCORING_FAIRNESS_MIN_GROUP`` customers).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from console.auth import dpo_required

FOUR_FIFTHS = 0.8


def _fairness_rows(fairness: Any) -> list[dict[str, Any]]:
    """One row per characteristic and group, the characteristic's ratio and flag on each of its rows."""
    rows: list[dict[str, Any]] = []
    characteristics = (fairness or {}).get("characteristics") or {} if isinstance(fairness, dict) else {}
    for name, report in characteristics.items():
        ratio = report.get("high_risk_ratio")
        flagged = ratio is not None and float(ratio) < FOUR_FIFTHS
        groups = report.get("groups") or {}
        for label, group in groups.items():
            rows.append({"characteristic": name, "group": label, "n": group.get("n"),
                         "tier_shares": sorted((group.get("tier_shares") or {}).items()),
                         "high_risk_rate": group.get("high_risk_rate"), "ratio": ratio, "flagged": flagged})
        if not groups:
            rows.append({"characteristic": name, "group": None, "n": None, "tier_shares": [],
                         "high_risk_rate": None, "ratio": ratio, "flagged": flagged})
    return rows


def _fairness_summary(fairness: Any) -> list[dict[str, Any]]:
    characteristics = (fairness or {}).get("characteristics") or {} if isinstance(fairness, dict) else {}
    return [{"characteristic": name, "ratio": r.get("high_risk_ratio"),
             "flagged": r.get("high_risk_ratio") is not None and float(r["high_risk_ratio"]) < FOUR_FIFTHS,
             "lowest": r.get("lowest_group"), "highest": r.get("highest_group"),
             "suppressed_groups": r.get("suppressed_groups"), "suppressed_customers": r.get("suppressed_customers"),
             "missing": r.get("missing")} for name, r in characteristics.items()]


@require_GET
@dpo_required
def model_governance(request: HttpRequest) -> HttpResponse:
    from scoring import selectors as scoring_selectors

    report = scoring_selectors.models_active_report()
    versions: dict[str, dict[str, Any]] = {}
    for item in report["models"]:  # one entry per model version (its kinds listed)
        entry = versions.setdefault(item["version"], {**item, "kinds": []})
        entry["kinds"].append({"kind": item["kind"], "quality": item["quality"], "labels": item["labels"]})
    active = [{**v, "fairness_rows": _fairness_rows(v.get("fairness")),
               "fairness_summary": _fairness_summary(v.get("fairness"))} for v in versions.values()]
    return render(request, "console/model_governance.html", {
        "active": active,
        "drift": scoring_selectors.drift_history(limit=20),
        "history": scoring_selectors.schedule_history(limit=30),
        "four_fifths": FOUR_FIFTHS,
    })


urlpatterns = [
    path("models/governance/", model_governance, name="model-governance"),
]
