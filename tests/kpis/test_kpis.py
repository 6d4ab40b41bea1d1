"""KPI figures against hand-computed values on a small fixture; suppression; insufficient data; uplift; API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kpis.stats import TOTAL

pytestmark = pytest.mark.django_db


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def _customer(tier: str, clv: float = 365.0) -> uuid.UUID:
    from profiles.models import Customer
    from tests.engagement.helpers import store_score

    cid = Customer.objects.create().id
    store_score(cid, tier=tier, clv=clv, risk="low", churn=0.1, decision_id=None)
    return cid


def _order(cid: uuid.UUID, when: datetime, amount: str) -> None:
    from profiles.models import Order

    Order.objects.create(customer_id=cid, source="erp", external_digest=uuid.uuid4().hex, ordered_at=when,
                         amount=Decimal(amount))


def _ticket(cid: uuid.UUID, opened: datetime, responded: datetime | None, satisfaction: int | None) -> None:
    from profiles.models import Ticket

    Ticket.objects.create(customer_id=cid, source="support", external_digest=uuid.uuid4().hex, opened_at=opened,
                          first_response_at=responded, satisfaction=satisfaction)


@pytest.fixture
def fixture(settings: Any) -> dict[str, uuid.UUID]:
    """VIP: A, B, C; Premium: D, E, F. Orders Jan-Mar 2025, tickets, NPS, referrals, upsell outcomes."""
    from engagement.models import Action
    from profiles.models import NpsAnswer, Referral

    settings.KPI_MIN_CELL = 2
    settings.KPI_ACTIVE_MONTHS = 1
    c = {name: _customer("VIP" if name in "ABC" else "Premium") for name in "ABCDEF"}
    for name, month, amount in [("A", 1, "100"), ("A", 2, "50"), ("B", 1, "200"), ("C", 2, "30"), ("C", 3, "70"),
                                ("D", 1, "10"), ("D", 2, "20"), ("D", 3, "30"), ("E", 3, "40"), ("F", 2, "5")]:
        _order(c[name], at(month, 10), amount)
    _ticket(c["A"], at(2, 3), at(2, 3, 11), 5)  # 1 h, VIP SLA 2 h: within
    _ticket(c["B"], at(2, 4), at(2, 4, 13), 3)  # 3 h: breach
    _ticket(c["D"], at(2, 5), at(2, 5, 14), 4)  # 4 h, Premium SLA 8 h: within
    _ticket(c["E"], at(2, 6), None, None)  # never answered, long past due: breach
    for name, score in [("A", 10), ("B", 9), ("C", 3)]:
        NpsAnswer.objects.create(customer_id=c[name], source="web", external_digest=uuid.uuid4().hex,
                                 at=at(2, 20), score=score)
    for _ in range(2):
        Referral.objects.create(customer_id=c["A"], source="web", external_digest=uuid.uuid4().hex, at=at(3, 2))
    for name, outcome in [("A", "accepted"), ("B", "declined"), ("C", "accepted")]:
        Action.objects.create(customer_id=c[name], type="upsell_offer", status="completed", outcome=outcome,
                              purpose="marketing", tier="VIP", priority=1, due_at=at(2, 1), reason="r",
                              source="test", created_at=at(2, 1), closed_at=at(2, 15))
    return c


def _report(**kwargs: Any) -> dict[str, Any]:
    from kpis.selectors import kpi_report

    return kpi_report(start=at(2, 1).date(), end=at(3, 1).date(), now=at(6, 1), **kwargs)


def _table(report: dict[str, Any], name: str) -> dict[tuple[str, str], dict[str, Any]]:
    [metric] = [m for m in report["metrics"] if m["name"] == name]
    return {(row["tier"], month): cell for row in metric["rows"] for month, cell in row["months"].items()}


def _value(report: dict[str, Any], name: str, tier: str, month: str) -> Any:
    cell = _table(report, name)[(tier, month)]
    return "suppressed" if cell["suppressed"] else (cell["value"], cell["n"])


def test_figures_match_hand_computed_values(fixture: dict[str, uuid.UUID]) -> None:
    r = _report()
    assert r["months"] == ["2025-02", "2025-03"] and r["tiers"] == ["VIP", "Premium", TOTAL] and r["k"] == 2
    # retention, Feb: VIP live at start (ordered Jan) A, B; still live (ordered Feb) A -> 1/2. Premium: D alone
    # (n=1 < k: suppressed), so VIP is suppressed as its complement; the total 2/3 (A, D of A, B, D) is shown.
    assert _value(r, "retention_rate", "VIP", "2025-02") == "suppressed"
    assert _value(r, "retention_rate", "Premium", "2025-02") == "suppressed"
    assert _value(r, "retention_rate", TOTAL, "2025-02") == (0.6667, 3)
    assert _value(r, "churn_rate", TOTAL, "2025-02") == (0.3333, 3)
    # Mar: VIP start A, C -> C still live: 1/2; Premium start D, F -> D: 1/2; total 2/4
    assert _value(r, "retention_rate", "VIP", "2025-03") == (0.5, 2)
    assert _value(r, "retention_rate", "Premium", "2025-03") == (0.5, 2)
    assert _value(r, "retention_rate", TOTAL, "2025-03") == (0.5, 4)
    # revenue: Feb VIP 50 + 30, Premium 20 + 5; Mar VIP only C (n=1, primary) -> Premium complementary
    assert _value(r, "revenue", "VIP", "2025-02") == (80.0, 2)
    assert _value(r, "revenue", "Premium", "2025-02") == (25.0, 2)
    assert _value(r, "revenue", TOTAL, "2025-02") == (105.0, 4)
    assert _value(r, "revenue", "VIP", "2025-03") == "suppressed"
    assert _value(r, "revenue", "Premium", "2025-03") == "suppressed"
    assert _value(r, "revenue", TOTAL, "2025-03") == (140.0, 3)
    # CLV 365 over a 365-day horizon: 28 per customer in February; realised 80 / 3 VIP customers
    assert _value(r, "clv_predicted", "VIP", "2025-02") == (28.0, 3)
    assert _value(r, "clv_realised", "VIP", "2025-02") == (26.6667, 3)
    assert _value(r, "clv_calibration", "VIP", "2025-02") == (0.9524, 3)
    assert _value(r, "clv_calibration", "Premium", "2025-02") == (0.2976, 3)
    # upsell: A, C accepted, B declined
    assert _value(r, "upsell_acceptance_rate", "VIP", "2025-02") == (0.6667, 3)
    # SLA: VIP A within 2 h, B 3 h late; Premium D within 8 h, E never answered -> 1/2 each, 2/4 overall
    assert _value(r, "sla_adherence", "VIP", "2025-02") == (0.5, 2)
    assert _value(r, "sla_adherence", "Premium", "2025-02") == (0.5, 2)
    assert _value(r, "sla_adherence", TOTAL, "2025-02") == (0.5, 4)
    # first response: VIP [1, 3] h -> median 2, p90 2.8; Premium [4] alone -> suppressed, VIP complementary
    assert _value(r, "first_response_median_hours", "Premium", "2025-02") == "suppressed"
    assert _value(r, "first_response_median_hours", "VIP", "2025-02") == "suppressed"
    assert _value(r, "first_response_median_hours", TOTAL, "2025-02") == (3.0, 3)
    assert _value(r, "first_response_p90_hours", TOTAL, "2025-02") == (3.8, 3)
    # CSAT: Premium only D (rated 4): suppressed, VIP (5 and 3) its complement; overall 2 of 3 rated 4-5
    assert _value(r, "csat", "VIP", "2025-02") == "suppressed"
    assert _value(r, "csat", TOTAL, "2025-02") == (66.6667, 3)
    # NPS: A 10, B 9 promoters, C 3 detractor -> 66.67 - 33.33
    assert _value(r, "nps", "VIP", "2025-02") == (33.33, 3)
    # referrals: two by A alone -> one customer: suppressed (and no Premium cell to complement: total too)
    assert _value(r, "referrals", "VIP", "2025-03") == "suppressed"
    assert _value(r, "referrals", TOTAL, "2025-03") == "suppressed"


def test_vip_percentiles_without_suppression(fixture: dict[str, uuid.UUID], settings: Any) -> None:
    settings.KPI_MIN_CELL = 1
    r = _report()
    assert _value(r, "first_response_median_hours", "VIP", "2025-02") == (2.0, 2)
    assert _value(r, "first_response_p90_hours", "VIP", "2025-02") == (2.8, 2)
    assert _value(r, "referrals", "VIP", "2025-03") == (2.0, 1)
    assert _value(r, "csat", "VIP", "2025-02") == (50.0, 2)


def test_suppressed_cells_cannot_be_worked_out_from_totals(fixture: dict[str, uuid.UUID], settings: Any) -> None:
    settings.KPI_MIN_CELL = 3
    r = _report()
    for metric in r["metrics"]:
        table = _table(r, metric["name"])
        for month in r["months"]:
            hidden = [t for t in ("VIP", "Premium") if table[(t, month)]["suppressed"]]
            total = table[(TOTAL, month)]
            # never exactly one hidden cell next to a published total: total - shown would reveal it
            assert not (len(hidden) == 1 and not total["suppressed"]), (metric["name"], month)
            for cell in table.values():
                assert cell["suppressed"] or cell["n"] is None or cell["n"] == 0 or cell["n"] >= 3
                if cell["suppressed"]:
                    assert cell["value"] is None and cell["n"] is None and cell["suppression"] in (
                        "primary", "complementary")


def test_tier_filter_keeps_the_full_tables_suppression(fixture: dict[str, uuid.UUID]) -> None:
    r = _report(tier="Premium")
    assert r["tiers"] == ["Premium"]
    assert _value(r, "retention_rate", "Premium", "2025-02") == "suppressed"
    assert _value(r, "revenue", "Premium", "2025-03") == "suppressed"  # complement of VIP, also when filtered


def test_uplift_is_insufficient_data_with_the_numbers_needed(fixture: dict[str, uuid.UUID]) -> None:
    uplift = _report()["uplift"]
    assert uplift["status"] == "insufficient_data"
    assert uplift["needed"] == {"treatment_customers": 30, "holdout_customers": 30, "window_days": 28}
    assert uplift["have"] == {"treatment_customers": 0, "holdout_customers": 0, "window_days": 59}
    assert uplift["retention"] is None and uplift["roi"] is None


def test_uplift_too_short_a_window_is_insufficient(settings: Any) -> None:
    from kpis.selectors import kpi_report

    settings.KPI_UPLIFT_MIN_DAYS = 28
    report = kpi_report(start=at(2, 1).date(), end=at(2, 1).date(), now=at(2, 15))
    assert report["uplift"]["status"] == "insufficient_data"
    assert report["uplift"]["have"]["window_days"] == 14


def test_uplift_and_roi_against_hand_computed_values(settings: Any) -> None:
    from engagement.models import Action, HoldoutAssignment
    from kpis.selectors import kpi_report

    settings.KPI_COST_PER_ACTION = 5.0
    treated = [_customer("Standard") for _ in range(40)]
    held = [_customer("Standard") for _ in range(40)]
    for i, cid in enumerate(treated):
        HoldoutAssignment.objects.create(customer_id=cid, holdout=False, share=0.5, bucket=0.9, assigned_at=at(1, 1))
        if i < 30:
            _order(cid, at(2, 10), "100")
        if i < 10:
            Action.objects.create(customer_id=cid, type="retention_call", status="completed", outcome="retained",
                                  purpose="service_prioritization", tier="Standard", priority=1, due_at=at(2, 1),
                                  reason="r", source="test", created_at=at(2, 1), closed_at=at(2, 2))
    for i, cid in enumerate(held):
        HoldoutAssignment.objects.create(customer_id=cid, holdout=True, share=0.5, bucket=0.1, assigned_at=at(1, 1))
        if i < 20:
            _order(cid, at(2, 10), "100")
    uplift = kpi_report(start=at(2, 1).date(), end=at(3, 1).date(), now=at(6, 1))["uplift"]
    assert uplift["status"] == "ok"
    assert uplift["retention"]["treatment"] == 0.75 and uplift["retention"]["holdout"] == 0.5
    assert uplift["retention"]["uplift"] == 0.25
    low, high = uplift["retention"]["ci95"]
    assert 0.0 < low < 0.25 < high < 0.5
    assert uplift["revenue_per_customer"]["uplift"] == 25.0
    assert uplift["ci_method"]["retention"].startswith("percentile bootstrap, 2000 resamples, seed 17")
    assert uplift["roi"] == {"value": 1000.0, "cost": 50.0, "actions": 10, "cost_per_action": 5.0, "net": 950.0,
                             "net_ci95": uplift["roi"]["net_ci95"], "ratio": 19.0}
    lo_net, hi_net = uplift["roi"]["net_ci95"]
    assert lo_net < 950.0 < hi_net
    # the same data, the same interval (fixed seed)
    again = kpi_report(start=at(2, 1).date(), end=at(3, 1).date(), now=at(6, 1))["uplift"]
    assert again["retention"]["ci95"] == uplift["retention"]["ci95"]


def test_api_answers_and_validates(api: Any, fixture: dict[str, uuid.UUID]) -> None:
    response = api.get("/api/v1/kpis", {"from": "2025-02-01", "to": "2025-03-31"})
    assert response.status_code == 200
    body = response.json()
    assert body["months"] == ["2025-02", "2025-03"] and body["uplift"]["status"] == "insufficient_data"
    assert "from" in body and body["k"] == 2
    empty = api.get("/api/v1/kpis", {"from": "2025-04-01", "to": "2025-03-01"})  # from after to: no months
    assert empty.status_code == 200
    assert (empty.json()["months"], empty.json()["uplift"]["status"]) == ([], "insufficient_data")
    assert all(row["months"] == {} for metric in empty.json()["metrics"] for row in metric["rows"])
    assert api.get("/api/v1/kpis", {"from": "nonsense"}).status_code == 400
    assert api.get("/api/v1/kpis", {"tier": "Gold"}).status_code == 400
    vip = api.get("/api/v1/kpis", {"from": "2025-02-01", "to": "2025-03-31", "tier": "VIP"}).json()
    assert vip["tiers"] == ["VIP"]
    assert body["next"] is None
    first = api.get("/api/v1/kpis", {"from": "2020-01-15", "to": "2025-03-01"})  # 63 months: pages of 36
    assert first.status_code == 200
    assert (first.json()["from"], first.json()["to"]) == ("2020-01-01", "2022-12-31")
    assert first.json()["months"] == [f"{y}-{m:02d}" for y in (2020, 2021, 2022) for m in range(1, 13)]
    assert first.json()["next"] == {"from": "2023-01-01", "to": "2025-03-01"}
    rest = api.get("/api/v1/kpis", first.json()["next"]).json()
    assert rest["months"][0] == "2023-01" and rest["months"][-1] == "2025-03" and rest["next"] is None
    oldest = api.get("/api/v1/kpis", {"from": "0001-01-01", "to": "9999-12-31"})
    assert oldest.status_code == 200 and oldest.json()["next"] == {"from": "0004-01-01", "to": "9999-12-31"}
    last = api.get("/api/v1/kpis", {"from": "9999-01-01", "to": "9999-12-31"})  # the calendar's edges: no 500
    assert last.status_code == 200 and last.json()["months"][-1] == "9999-12" and last.json()["next"] is None


def test_api_needs_kpis_read(make_api_client: Any) -> None:
    assert make_api_client(scopes=["actions:read"]).get("/api/v1/kpis").status_code == 403
    assert make_api_client(scopes=["kpis:read"]).get("/api/v1/kpis").status_code == 200
