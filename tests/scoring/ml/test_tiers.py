from __future__ import annotations

import numpy as np
import pytest

from scoring.ml.tiers import DEFAULT_SHARES, SERVICE_LEVELS, assign_tiers, recommend_action, risk_level, route


@pytest.mark.parametrize("n", [1, 2, 7, 10, 99, 1000, 12345])
def test_tier_counts_match_shares(n: int) -> None:
    clv = np.random.default_rng(n).lognormal(3, 1, n)
    tiers, pct, thr = assign_tiers(clv)
    for tier, share in DEFAULT_SHARES.items():
        assert abs(int((tiers == tier).sum()) - round(n * share)) <= 1
    assert (tiers != None).all() and len(tiers) == n  # noqa: E711
    if n >= 10:
        top = int(np.argmax(clv))
        assert tiers[top] == "VIP" and pct[top] == 100.0 and pct.min() == 0.0
        assert thr["VIP"] >= thr["Premium"] >= thr["Standard"] >= thr["Basic"]


def test_ties_are_deterministic_by_index() -> None:
    tiers, pct, _ = assign_tiers(np.zeros(10))
    assert tiers.tolist() == [
        "VIP",
        "Premium",
        "Premium",
        "Standard",
        "Standard",
        "Standard",
        "Standard",
        "Standard",
        "Standard",
        "Basic",
    ]
    assert np.all(np.diff(pct) < 0)


def test_custom_shares_validation() -> None:
    tiers, _, _ = assign_tiers(np.arange(4.0), {"Gold": 0.5, "Rest": 0.5})
    assert tiers.tolist() == ["Rest", "Rest", "Gold", "Gold"]
    with pytest.raises(ValueError):
        assign_tiers(np.arange(4.0), {"A": 0.5, "B": 0.6})


def test_service_levels_table() -> None:
    assert SERVICE_LEVELS["VIP"].response_hours == 2 and SERVICE_LEVELS["VIP"].handler == "senior advisor"
    assert SERVICE_LEVELS["Premium"].response_hours == 8
    assert SERVICE_LEVELS["Standard"].response_hours == 24
    assert SERVICE_LEVELS["Basic"].response_hours == 48


def test_risk_and_actions() -> None:
    assert risk_level(0.1) == "low" and risk_level(0.45) == "medium" and risk_level(0.9) == "high"
    assert risk_level(np.array([0.1, 0.7])).tolist() == ["low", "high"]
    assert risk_level(0.45, thresholds=(0.5, 0.8)) == "low"
    assert recommend_action("VIP", 0.8, 0.9, 0.9)[0] == "retention_call"
    assert recommend_action("Basic", 0.8, 0.9, 0.9)[0] == "win_back"
    assert recommend_action("Premium", 0.4, 0.9, 0.1)[0] == "proactive_checkin"
    assert recommend_action("Standard", 0.1, 0.7, 0.2)[0] == "upsell_offer"
    assert recommend_action("Standard", 0.1, 0.2, 0.7)[0] == "referral_invite"
    code, text = recommend_action("Standard", 0.1, 0.1, 0.1)
    assert code == "standard_service" and text


def test_routing() -> None:
    r = route("VIP", "high", "billing")
    assert r["queue"] == "senior_advisor" and r["sla_hours"] == 2 and r["escalation_level"] == 2
    r = route("Premium", "high", "technical")
    assert r["queue"] == "senior_advisor" and r["sla_hours"] == 2
    assert route("Standard", "low", "technical") == {
        "queue": "technical_support",
        "sla_hours": 24,
        "escalation_level": 0,
        "handler": "standard support",
    }
    assert route("Basic", "low", "cancellation")["queue"] == "retention"
    assert route("Basic", "low", "weird")["sla_hours"] == 48
