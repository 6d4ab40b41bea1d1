"""Service tiers from CLV, risk levels, next-best actions and ticket routing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_SHARES: dict[str, float] = {"VIP": 0.10, "Premium": 0.20, "Standard": 0.60, "Basic": 0.10}
HIGH_VALUE_TIERS = ("VIP", "Premium")
DEFAULT_RISK_THRESHOLDS = (0.3, 0.6)  # churn probability: < 0.3 low, < 0.6 medium, else high


@dataclass(frozen=True)
class ServiceLevel:
    tier: str
    response_hours: int
    handler: str
    perks: str


SERVICE_LEVELS: dict[str, ServiceLevel] = {
    "VIP": ServiceLevel("VIP", 2, "senior advisor", "express service"),
    "Premium": ServiceLevel("Premium", 8, "experienced agent", "priority appointments"),
    "Standard": ServiceLevel("Standard", 24, "standard support", "self-service portal"),
    "Basic": ServiceLevel("Basic", 48, "junior agent or bot", "FAQ and documentation"),
}


def assign_tiers(
    clv: np.ndarray, shares: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Tiers by CLV rank (highest first), percentile 0-100 and each tier's minimum CLV.

    ``shares`` is ordered from the highest tier down and must sum to 1. Ranking is by value
    (descending), ties broken by the stable input index; tier boundaries are ``round(n * cumulative
    share)``, so each tier's count is within 1 of ``round(n * share)``.
    """
    shares = dict(DEFAULT_SHARES if shares is None else shares)
    if not shares or abs(sum(shares.values()) - 1.0) > 1e-9 or min(shares.values()) < 0:
        raise ValueError("tier shares must be non-negative and sum to 1")
    values = np.asarray(clv, dtype=np.float64)
    n = len(values)
    safe = np.where(np.isfinite(values), values, -np.inf)
    order = np.lexsort((np.arange(n), -safe))  # value desc, then index asc
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    names = list(shares)
    bounds = np.rint(np.cumsum([shares[t] for t in names]) * n).astype(np.int64)
    bounds[-1] = n
    tier_idx = np.searchsorted(bounds, rank, side="right")
    tiers = np.asarray(names, dtype=object)[tier_idx]
    percentile = 100.0 * (n - 1 - rank) / max(n - 1, 1) if n > 1 else np.full(n, 100.0)
    thresholds: dict[str, float] = {}
    start = 0
    for name, end in zip(names, bounds, strict=True):
        thresholds[name] = float(safe[order[end - 1]]) if end > start else float("nan")
        start = end
    return tiers, percentile, thresholds


def risk_level(
    churn_p: np.ndarray | float, thresholds: tuple[float, float] = DEFAULT_RISK_THRESHOLDS
) -> np.ndarray | str:
    """'low' / 'medium' / 'high' churn risk (vectorized; a scalar in gives a str out)."""
    lo, hi = thresholds
    p = np.asarray(churn_p, dtype=np.float64)
    out = np.where(p >= hi, "high", np.where(p >= lo, "medium", "low")).astype(object)
    return str(out) if out.ndim == 0 else out


ACTIONS: dict[str, str] = {
    "retention_call": "Retention call by a senior advisor: high-value customer at risk of churning.",
    "proactive_checkin": "Proactive check-in by the account team: valuable customer showing early churn signs.",
    "win_back": "Automated win-back offer: lower-value customer at high churn risk.",
    "upsell_offer": "Offer an upgrade or complementary product: high upsell propensity.",
    "referral_invite": "Invite to the referral programme: likely advocate.",
    "nurture": "Nurture with onboarding/engagement content: medium churn risk.",
    "standard_service": "No special action: standard service for the tier.",
}


def recommend_action(
    tier: str,
    churn_p: float,
    upsell: float,
    advocacy: float,
    *,
    risk_thresholds: tuple[float, float] = DEFAULT_RISK_THRESHOLDS,
    propensity_threshold: float = 0.5,
) -> tuple[str, str]:
    """Next best action ``(code, text)``; retention first, then upsell, then referral."""
    risk = risk_level(churn_p, risk_thresholds)
    high_value = tier in HIGH_VALUE_TIERS
    if risk == "high":
        code = "retention_call" if high_value else "win_back"
    elif risk == "medium" and high_value:
        code = "proactive_checkin"
    elif upsell >= propensity_threshold and upsell >= advocacy:
        code = "upsell_offer"
    elif advocacy >= propensity_threshold:
        code = "referral_invite"
    elif upsell >= propensity_threshold:
        code = "upsell_offer"
    elif risk == "medium":
        code = "nurture"
    else:
        code = "standard_service"
    return code, ACTIONS[code]


TICKET_QUEUES = {
    "billing": "billing",
    "technical": "technical_support",
    "complaint": "customer_care",
    "cancellation": "retention",
    "general": "general_support",
}


def ticket_categories(mapping: Mapping[str, str] | None = None) -> list[str]:
    """Every category a ticket may carry: the known ones, plus the keys of a configured mapping."""
    return sorted(set(TICKET_QUEUES) | {k.strip().lower() for k in (mapping or {})})


def ticket_category_resolve(category: str, mapping: Mapping[str, str] | None = None) -> str | None:
    """The known category a ticket category stands for (case-insensitive; a configured mapping may map other
    names onto known ones), or None when it is unknown."""
    name = category.strip().lower()
    if name in TICKET_QUEUES:
        return name
    target = {k.strip().lower(): v.strip().lower() for k, v in (mapping or {}).items()}.get(name)
    return target if target in TICKET_QUEUES else None


def route_default(ticket_category: str = "general") -> dict[str, object]:
    """The non-personalised queue for a ticket whose customer may not be profiled (no consent, restriction,
    objection): by category only, with the Standard service level; nothing about the person is used."""
    level = SERVICE_LEVELS["Standard"]
    category = ticket_category if ticket_category in TICKET_QUEUES else "general"
    queue, sla = TICKET_QUEUES[category], level.response_hours
    if category == "cancellation":
        queue = "retention"
    return {"queue": queue, "sla_hours": int(sla), "escalation_level": 0, "handler": level.handler}


def route(tier: str, risk: str, ticket_category: str = "general") -> dict[str, object]:
    """Queue, SLA hours and escalation level for a ticket.

    High-value (VIP/Premium) customers at high risk go straight to a senior advisor with the VIP SLA.
    """
    level = SERVICE_LEVELS.get(tier, SERVICE_LEVELS["Standard"])
    category = ticket_category if ticket_category in TICKET_QUEUES else "general"
    queue = TICKET_QUEUES[category]
    sla = level.response_hours
    escalation = 0
    if tier == "VIP":
        queue, escalation = "senior_advisor", 1
    if tier in HIGH_VALUE_TIERS and risk == "high":
        queue, sla, escalation = "senior_advisor", min(sla, SERVICE_LEVELS["VIP"].response_hours), 2
    elif category == "cancellation" or (risk == "high" and category == "complaint"):
        queue, escalation = "retention", max(escalation, 1)
        sla = min(sla, SERVICE_LEVELS["Premium"].response_hours)
    elif risk == "high":
        escalation = max(escalation, 1)
    return {
        "queue": queue,
        "sla_hours": int(sla),
        "escalation_level": int(escalation),
        "handler": level.handler,
    }
