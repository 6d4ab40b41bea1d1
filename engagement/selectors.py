"""All reads of the engagement app: the action queue, the funnel and the holdout group."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import Count, QuerySet

from engagement.models import Action, HoldoutAssignment


def action_queryset(*, status: str | None = None, type: str | None = None, tier: str | None = None,
                    purposes: list[str] | None = None) -> QuerySet[Action]:
    """The queue, highest priority first (then oldest), filtered (``purposes``: those the caller may use)."""
    qs = Action.objects.all()
    if purposes is not None:
        qs = qs.filter(purpose__in=purposes)
    if status:
        qs = qs.filter(status=status)
    if type:
        qs = qs.filter(type=type)
    if tier:
        qs = qs.filter(tier=tier)
    return qs.order_by("-priority", "id")


def actions_for_customer(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    """The customer's actions (export, console): type, status, outcome, dates; no score snapshot."""
    return [
        {"type": a.type, "status": a.status, "outcome": a.outcome or None, "purpose": a.purpose,
         "reason": a.reason, "created_at": a.created_at, "closed_at": a.closed_at}
        for a in Action.objects.filter(customer_id=customer_id).order_by("created_at", "id")
    ]


def action_purpose(*, action_id: int) -> str | None:
    return Action.objects.filter(pk=action_id).values_list("purpose", flat=True).first()


def holdout_for_customer(*, customer_id: uuid.UUID) -> dict[str, Any] | None:
    """The customer's holdout assignment in words (their right to know it), or None if never assigned."""
    a = HoldoutAssignment.objects.filter(customer_id=customer_id).first()
    if a is None:
        return None
    text = ("You are in a randomly chosen comparison group that receives no proactive offers or calls, so that "
            "we can measure whether those contacts help customers." if a.holdout else
            "You may receive proactive service calls or offers allowed by your consent choices.")
    return {"holdout": a.holdout, "assigned_at": a.assigned_at, "decision_id": a.decision_id, "summary": text,
            "how_chosen": "By a keyed hash of your pseudonymous id (a fixed random draw), not by anything about you."}


def holdout_groups(*, assigned_before: datetime | None = None) -> dict[uuid.UUID, bool]:
    """Pseudonym -> in the holdout group, for every assigned customer (KPI uplift)."""
    qs = HoldoutAssignment.objects.all()
    if assigned_before is not None:
        qs = qs.filter(assigned_at__lt=assigned_before)
    return dict(qs.values_list("customer_id", "holdout"))


def actions_between(*, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Actions created in ``[start, end)``: customer, type, tier, status, outcome, created and closed times."""
    return [dict(r) for r in Action.objects.filter(created_at__gte=start, created_at__lt=end)
            .values("customer_id", "type", "tier", "status", "outcome", "created_at", "closed_at")]


def action_funnel(*, start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
    """Per type: created, claimed (ever), completed, dismissed, cancelled, open, and completed per outcome."""
    qs = Action.objects.all()
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    rows: dict[str, dict[str, Any]] = {}
    for t in Action.Type.values:
        rows[t] = {"type": t, "created": 0, "claimed": 0, "completed": 0, "dismissed": 0, "cancelled": 0,
                   "open": 0, "outcomes": dict.fromkeys(Action.Outcome.values, 0)}
    for r in qs.values("type", "status", "outcome").annotate(n=Count("id")):
        row = rows[r["type"]]
        row["created"] += r["n"]
        if r["status"] in ("open", "claimed"):
            row["open"] += r["n"]
        else:
            row[r["status"]] += r["n"]
        if r["status"] == "completed" and r["outcome"]:
            row["outcomes"][r["outcome"]] += r["n"]
    claimed = qs.filter(claimed_at__isnull=False).values("type").annotate(n=Count("id"))
    for c in claimed:
        rows[c["type"]]["claimed"] = c["n"]
    return list(rows.values())


def actions_closed_between(*, start: datetime, end: datetime, type: str | None = None) -> list[dict[str, Any]]:
    """Actions closed in ``[start, end)``: customer, type, tier, status, outcome, closed time."""
    qs = Action.objects.filter(closed_at__gte=start, closed_at__lt=end)
    if type:
        qs = qs.filter(type=type)
    return [dict(r) for r in qs.values("customer_id", "type", "tier", "status", "outcome", "closed_at")]
