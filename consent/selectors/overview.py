"""The consent overview for the DPO console."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, OuterRef
from django.db.models.functions import TruncDate
from django.utils import timezone

from consent.models import (
    ConsentEvent,
    ConsentStateCurrent,
)

from .purposes import purpose_list
from .semantics import superseded_exists


# --- Overview for the DPO console -------------------------------------------------------------------------
def _live_customer_count() -> int:
    from profiles import selectors as profiles_selectors

    return int(profiles_selectors.customer_count())


def consent_overview(*, days: int = 90) -> dict[str, Any]:
    """Per purpose: customers granted / withdrawn / re-consent required / never asked, and a daily series of
    grants and withdrawals over the last ``days`` days (UTC dates, oldest first, zero-filled)."""
    days = max(1, min(int(days), 3660))
    now = timezone.now()
    live = _live_customer_count()
    purposes = purpose_list()
    superseded = superseded_exists(
        purpose_ref=OuterRef("purpose_id"), published_ref=OuterRef("notice__published_at"), at=now
    )
    counts: dict[int, dict[str, int]] = {p.id: {"granted": 0, "withdrawn": 0, "reconsent_required": 0} for p in purposes}
    for pid, granted, is_superseded, n in (
        ConsentStateCurrent.objects.annotate(superseded=superseded)
        .values("purpose_id", "granted", "superseded")
        .annotate(n=Count("id"))
        .values_list("purpose_id", "granted", "superseded", "n")
    ):
        bucket = counts.setdefault(pid, {"granted": 0, "withdrawn": 0, "reconsent_required": 0})
        if not granted:
            bucket["withdrawn"] += n
        elif is_superseded:
            bucket["reconsent_required"] += n
        else:
            bucket["granted"] += n

    first_day: date = (now - timedelta(days=days - 1)).date()
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    dates = [first_day + timedelta(days=i) for i in range(days)]
    series: dict[int, dict[date, dict[str, int]]] = {p.id: {} for p in purposes}
    for pid, day, action, n in (
        ConsentEvent.objects.filter(occurred_at__gte=start, occurred_at__lte=now)
        .annotate(day=TruncDate("occurred_at"))
        .values("purpose_id", "day", "action")
        .annotate(n=Count("id"))
        .values_list("purpose_id", "day", "action", "n")
    ):
        key = "grants" if action == ConsentEvent.Action.GRANT else "withdrawals"
        series.setdefault(pid, {}).setdefault(day, {"grants": 0, "withdrawals": 0})[key] += n

    result_purposes = []
    trend: dict[str, list[dict[str, Any]]] = {}
    for p in purposes:
        c = counts[p.id]
        asked = c["granted"] + c["withdrawn"] + c["reconsent_required"]
        result_purposes.append(
            {
                "code": p.code,
                "name": p.name,
                "lawful_basis": p.lawful_basis,
                "granted": c["granted"],
                "withdrawn": c["withdrawn"],
                "reconsent_required": c["reconsent_required"],
                "never_asked": max(0, live - asked),
                "granted_share": round(c["granted"] / live, 4) if live else 0.0,
            }
        )
        per_day = series.get(p.id, {})
        trend[p.code] = [
            {"date": d.isoformat(), **per_day.get(d, {"grants": 0, "withdrawals": 0})} for d in dates
        ]
    return {
        "generated_at": now.isoformat(),
        "days": days,
        "live_customers": live,
        "purposes": result_purposes,
        "trend": trend,
    }
