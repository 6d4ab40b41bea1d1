"""The KPI rollup (fast path) against the live report: exactly the same answer on a randomized fixture with four
tiers, 18 months of orders, tickets whose tier in force differs from the current one, overrides, NPS, referrals,
upsell outcomes, a holdout with outcomes and actions, small cells (primary and complementary suppression) and
insufficient-data windows. Then freshness, fallback reasons, the API's ``source`` and the refresh triggers."""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 17, 9, 30, tzinfo=UTC)
TIERS = ("VIP", "Premium", "Standard", "Basic")


def _decision(cid: uuid.UUID, tier: str, when: datetime) -> None:
    from freezegun import freeze_time

    from audit import services as audit_services

    with freeze_time(when):
        audit_services.decision_records_bulk(records=[{
            "customer": cid, "purpose": "automated_scoring", "decision_type": "batch_rescore",
            "requester": "job:test", "consent_event_id": None, "notice_version": "v1",
            "model_versions": {"clv": "t", "churn": "t"}, "features_hash": hashlib.sha256(cid.bytes).hexdigest(),
            "outputs": {"tier": tier}, "sealed_details": None, "decision_key": f"kpi-test:{cid}:{when.isoformat()}"}])


def build(seed: int, settings: Any) -> dict[str, Any]:
    """A randomized population; returns a few facts for the assertions."""
    from engagement.models import Action, HoldoutAssignment
    from profiles.models import Customer, NpsAnswer, Order, Referral, Ticket
    from scoring.models import Outcome, ScoreOverride
    from tests.engagement.helpers import store_score

    settings.KPI_MIN_CELL = 3
    settings.KPI_ACTIVE_MONTHS = 2
    settings.KPI_UPLIFT_MIN_PER_GROUP = 8
    settings.KPI_UPLIFT_MIN_DAYS = 28
    settings.KPI_ROLLUP_MONTHS = 18
    settings.KPI_ROLLUP_UPLIFT_WINDOWS = [12, 3, 1]
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = (NOW + timedelta(days=20) - start).total_seconds()  # a few orders after "now" too

    def when() -> datetime:
        return start + timedelta(seconds=rng.random() * span)

    # Tier sizes: a small one (primary suppression) and a large one.
    sizes = {"VIP": 4 + seed % 3, "Premium": 14, "Standard": 30, "Basic": 22}
    customers: list[tuple[uuid.UUID, str]] = []
    for tier, size in sizes.items():
        for _ in range(size):
            cid = Customer.objects.create().id
            store_score(cid, tier=tier, clv=round(rng.uniform(-50, 5000), 2), risk="low", churn=0.1, decision_id=None)
            customers.append((cid, tier))
    unscored = [Customer.objects.create().id for _ in range(5)]  # not in the population: ignored by both paths
    # Overrides: a human review moved two customers (one of them with no stored score).
    for cid, _tier in customers[:2]:
        ScoreOverride.objects.create(customer_id=cid, purpose="automated_scoring", decision_id=1, tier="Basic",
                                     reviewer="dpo", active=True)
    ScoreOverride.objects.create(customer_id=unscored[0], purpose="automated_scoring", decision_id=2, tier="Premium",
                                 reviewer="dpo", active=True)
    everyone = [c for c, _ in customers] + unscored
    for cid in everyone:
        for _ in range(rng.choice([0, 1, 2, 4, 8, 12])):
            Order.objects.create(customer_id=cid, source="erp", external_digest=uuid.uuid4().hex, ordered_at=when(),
                                 amount=Decimal(f"{rng.uniform(1, 400):.2f}"), returned=rng.random() < 0.08,
                                 kind=rng.choice(["order", "invoice"]))
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            opened = when()
            r = rng.random()
            responded = (None if r < 0.25 else opened + timedelta(minutes=rng.choice([5, 59, 120, 121, 479, 480, 481,
                                                                                      1440, 1441, 2880, 5000])))
            closed = opened + timedelta(days=3) if (responded is not None or rng.random() < 0.3) else None
            Ticket.objects.create(customer_id=cid, source="support", external_digest=uuid.uuid4().hex,
                                  opened_at=opened, first_response_at=responded, closed_at=closed,
                                  satisfaction=rng.choice([None, 1, 2, 3, 4, 5]))
        if rng.random() < 0.4:
            NpsAnswer.objects.create(customer_id=cid, source="web", external_digest=uuid.uuid4().hex, at=when(),
                                     score=rng.randint(0, 10))
        if rng.random() < 0.15:
            Referral.objects.create(customer_id=cid, source="web", external_digest=uuid.uuid4().hex, at=when())
    # Tier history: some customers were in another tier when their tickets opened.
    for cid, tier in customers[::3]:
        _decision(cid, rng.choice([t for t in TIERS if t != tier]), start + timedelta(days=rng.randint(0, 400)))
        _decision(cid, tier, start + timedelta(days=rng.randint(401, 500)))
    # Holdout, outcomes, actions (proactive and not), upsell outcomes.
    for i, (cid, tier) in enumerate(customers):
        if i % 7 == 6:
            continue  # not assigned
        HoldoutAssignment.objects.create(customer_id=cid, holdout=rng.random() < 0.35, share=0.35,
                                         bucket=rng.random(), assigned_at=start - timedelta(days=1))
        if rng.random() < 0.2:
            Outcome.objects.create(customer_id=cid, kind=rng.choice(["churned", "renewed"]), at=when(),
                                   source="test", actor="test")
        if rng.random() < 0.3:
            kind = rng.choice(["retention_call", "upsell_offer", "sla_breach", "advocacy_ask"])
            created = when()
            outcome = rng.choice(["accepted", "declined", "no_answer"])
            Action.objects.create(customer_id=cid, type=kind, status="completed", outcome=outcome,
                                  purpose="marketing", tier=tier, priority=1, due_at=created, reason="r",
                                  source="test", created_at=created, closed_at=created + timedelta(days=2))
    return {"customers": customers}


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[Any]:
    out: list[Any] = [k for k in a if k not in ("metrics",) and a[k] != b.get(k)]
    for ma, mb in zip(a["metrics"], b["metrics"], strict=True):
        for ra, rb in zip(ma["rows"], mb["rows"], strict=True):
            for month, cell in ra["months"].items():
                if cell != rb["months"][month]:
                    out.append((ma["name"], ra["tier"], month, cell, rb["months"][month]))
    return out[:8]


def _compare(start: date, end: date, tier: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    from kpis import selectors

    served, reason = selectors.rollup_report(start=start, end=end, tier=tier, now=NOW + timedelta(minutes=5))
    assert reason is None and served is not None
    live = selectors.kpi_report(start=start, end=end, tier=tier, now=NOW)
    assert served.pop("source")["kind"] == "rollup" and live.pop("source")["kind"] == "live"
    return served, live


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_serves_exactly_the_live_report(seed: int, settings: Any) -> None:
    from kpis import services

    build(seed, settings)
    snapshot = services.kpi_rollup_refresh(trigger="test", now=NOW)
    assert (snapshot.first_month, snapshot.last_month) == ("2024-01", "2025-06")
    windows = [(date(2024, 7, 1), date(2025, 6, 30)), (date(2025, 4, 1), date(2025, 6, 17)),
               (date(2025, 6, 1), date(2025, 6, 30))]
    suppressed = primary = complementary = 0
    statuses = set()
    for start, end in windows:
        for tier in (None, *TIERS):
            served, live = _compare(start, end, tier)
            assert served == live, (start, end, tier, _diff(served, live))
            statuses.add(live["uplift"]["status"])
            for metric in live["metrics"]:
                for row in metric["rows"]:
                    for cell in row["months"].values():
                        suppressed += cell["suppressed"]
                        primary += cell["suppression"] == "primary"
                        complementary += cell["suppression"] == "complementary"
    # the fixture exercises what it claims to: both suppression kinds, and both uplift answers
    assert primary and complementary and suppressed
    assert statuses == {"ok", "insufficient_data"}


def test_rollup_matches_live_when_tickets_are_still_open_at_the_snapshot(settings: Any) -> None:
    """SLA adherence depends on "now" (an unanswered ticket past due is a breach): the snapshot is the live
    report at its own time, not later."""
    from kpis import services
    from profiles.models import Ticket

    build(4, settings)
    cid = Ticket.objects.order_by("id").first().customer_id
    for minutes in (30, 200, 600, 3000):  # unanswered, open, due before or after NOW depending on the tier
        Ticket.objects.create(customer_id=cid, source="support", external_digest=uuid.uuid4().hex,
                              opened_at=NOW - timedelta(minutes=minutes))
    services.kpi_rollup_refresh(trigger="test", now=NOW)
    served, live = _compare(date(2024, 7, 1), date(2025, 6, 30), None)
    assert served == live


def test_fallback_reasons_and_the_api_says_which(settings: Any, api: Any) -> None:
    from kpis import selectors, services

    build(5, settings)
    today = datetime.now(UTC)
    start, end = (today - timedelta(days=150)).date(), today.date()  # 5-6 months: not precomputed
    assert selectors.rollup_report(start=start, end=end, tier=None)[1] == "no_snapshot"
    body = api.get("/api/v1/kpis").json()
    assert body["source"] == {"kind": "live", "as_of": body["source"]["as_of"], "snapshot_id": None,
                              "reason": "no_snapshot"}
    snapshot = services.kpi_rollup_refresh(trigger="test")
    body = api.get("/api/v1/kpis").json()  # the default window (12 months) is precomputed
    assert body["source"]["kind"] == "rollup" and body["source"]["snapshot_id"] == snapshot.pk
    assert body["source"]["reason"] is None
    assert datetime.fromisoformat(body["source"]["as_of"].replace("Z", "+00:00")) == snapshot.taken_at
    live = api.get("/api/v1/kpis", {"from": start.isoformat(), "to": end.isoformat()}).json()
    assert live["source"]["kind"] == "live" and live["source"]["reason"] == "window_not_in_snapshot"
    older = (today - timedelta(days=600)).date()
    assert selectors.rollup_report(start=older, end=end, tier=None)[1] == "months_not_in_snapshot"
    settings.KPI_MIN_CELL = 4  # k is applied when served, but the uplift's "needed" depends on it
    assert selectors.rollup_report(start=start, end=end, tier=None)[1] == "settings_changed"
    settings.KPI_MIN_CELL = 3
    later = snapshot.taken_at + timedelta(seconds=settings.KPI_ROLLUP_MAX_AGE_SECONDS + 1)
    default_start = selectors.add_months(selectors.month_start(today), -11).date()
    assert selectors.rollup_report(start=default_start, end=end, tier=None, now=later)[1] == "snapshot_stale"
    settings.KPI_ROLLUP_MAX_AGE_SECONDS = 0
    assert selectors.rollup_report(start=default_start, end=end, tier=None)[1] == "rollup_disabled"


def test_refresh_keeps_the_two_newest_snapshots(settings: Any) -> None:
    from kpis import services
    from kpis.models import KpiCell, KpiSnapshot

    build(6, settings)
    first = services.kpi_rollup_refresh(trigger="test", now=NOW)
    second = services.kpi_rollup_refresh(trigger="test", now=NOW + timedelta(minutes=15))
    third = services.kpi_rollup_refresh(trigger="test", now=NOW + timedelta(minutes=30))
    assert list(KpiSnapshot.objects.order_by("id").values_list("id", flat=True)) == [second.pk, third.pk]
    assert KpiCell.objects.filter(snapshot_id=third.pk).count() == KpiCell.objects.filter(snapshot_id=second.pk).count()
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("kpi_rollup_refresh", stdout=out)
    newest = KpiSnapshot.objects.order_by("-id").first()
    assert out.getvalue().startswith(f"snapshot={newest.pk} ") and newest.trigger == "command"
    assert KpiSnapshot.objects.count() == 2
    assert not KpiCell.objects.filter(snapshot_id=first.pk).exists()
    # aggregates only: rows are tiers and the total, never a customer
    from kpis.stats import TOTAL

    assert set(KpiCell.objects.values_list("tier", flat=True)) <= {*TIERS, TOTAL}


def test_a_completed_rescore_of_the_scores_purpose_refreshes_the_rollup(settings: Any,
                                                                        django_capture_on_commit_callbacks: Any) -> None:
    from kpis.models import KpiSnapshot
    from scoring import signals as scoring_signals
    from scoring.models import RescoreRun

    build(8, settings)
    with django_capture_on_commit_callbacks(execute=True):
        scoring_signals.rescore_run_completed.send(sender=RescoreRun, run_id=uuid.uuid4(), purpose="marketing")
    assert not KpiSnapshot.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        scoring_signals.rescore_run_completed.send(sender=RescoreRun, run_id=uuid.uuid4(),
                                                   purpose="automated_scoring")
    assert list(KpiSnapshot.objects.values_list("trigger", flat=True)) == ["rescore"]


def test_embedded_scheduler_runs_the_refresh_job(settings: Any) -> None:
    from kpis import schedule
    from kpis.models import KpiSnapshot
    from scoring.schedule import Cron, InProcessScheduler, Job

    settings.KPI_ROLLUP_REFRESH_SECONDS = 900
    assert schedule.refresh_cron() == "*/15 * * * *"
    build(9, settings)
    clock = {"now": datetime(2025, 6, 17, 9, 1, tzinfo=UTC)}
    from kpis import services

    scheduler = InProcessScheduler(
        [Job("kpis-rollup-refresh", Cron.parse(schedule.refresh_cron()),
             lambda: services.kpi_rollup_refresh(trigger="schedule"))], clock=lambda: clock["now"])
    assert scheduler.tick(datetime(2025, 6, 17, 9, 14, tzinfo=UTC)) == []
    assert scheduler.tick(datetime(2025, 6, 17, 9, 15, tzinfo=UTC)) == ["kpis-rollup-refresh"]
    assert list(KpiSnapshot.objects.values_list("trigger", flat=True)) == ["schedule"]
