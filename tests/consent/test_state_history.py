"""Consent state at past instants reproduces the event history exactly (property tests).

Random histories of grants and withdrawals (recorded in random order, with ties in time), random notice
versions (some requiring re-consent), and random processing flags are compared, at random instants and at
every boundary, with a brute-force replay of the events. The denormalized "now" tables must agree too.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import selectors, services
from consent.models import ConsentNotice, ConsentStateCurrent, Purpose
from tests.consent.conftest import ACTOR

BASE = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
# More examples in a long run: CONSENT_PROPERTY_EXAMPLES=500 pytest tests/consent/test_state_history.py
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("CONSENT_PROPERTY_EXAMPLES", "25")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@dataclass(frozen=True)
class NoticeFact:
    version: str
    published_at: datetime
    requires_reconsent: bool


@dataclass(frozen=True)
class EventFact:
    id: int
    occurred_at: datetime
    action: str
    notice_published_at: datetime


def brute_force_state(events: list[EventFact], notices: list[NoticeFact], at: datetime) -> tuple[str, int | None]:
    """The reference semantics, by plain replay of the whole history."""
    past = [e for e in events if e.occurred_at <= at]
    if not past:
        return "never_asked", None
    last = max(past, key=lambda e: (e.occurred_at, e.id))
    if last.action == "withdraw":
        return "withdrawn", last.id
    superseded = any(
        n.requires_reconsent and last.notice_published_at < n.published_at <= at for n in notices
    )
    return ("reconsent_required" if superseded else "granted"), last.id


histories = st.fixed_dictionaries(
    {
        # extra notice versions after v1: (minutes after BASE, requires_reconsent)
        "notices": st.lists(st.tuples(st.integers(1, 11_000), st.booleans()), max_size=3,
                            unique_by=lambda n: n[0]),
        # events: (action, time slot of 4 hours -- ties are frequent, notice pick, channel pick)
        "events": st.lists(
            st.tuples(st.sampled_from(["grant", "withdraw"]), st.integers(0, 50), st.integers(0, 9),
                      st.sampled_from(["web", "app", "email"])),
            max_size=14,
        ),
        "probes": st.lists(st.integers(-60, 13_000), max_size=12),
    }
)


def _new_purpose() -> Purpose:
    purpose = Purpose.objects.create(
        code=f"prop_{uuid.uuid4().hex[:12]}", name="Property test", description="-", lawful_basis="consent",
        retention_days=30,
    )
    ConsentNotice.objects.create(purpose=purpose, version="v1", text="v1", text_hash="0" * 64,
                                 published_at=BASE - timedelta(days=1))
    return purpose


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(history=histories)
def test_consent_state_at_any_instant_reproduces_the_event_history(customer: uuid.UUID, history: dict) -> None:
    purpose = _new_purpose()
    notices = [NoticeFact("v1", BASE - timedelta(days=1), False)]
    for n, (minutes, reconsent) in enumerate(sorted(history["notices"]), start=2):
        published = BASE + minutes * MINUTE
        ConsentNotice.objects.create(purpose=purpose, version=f"v{n}", text=f"v{n}", text_hash="0" * 64,
                                     requires_reconsent=reconsent, published_at=published)
        notices.append(NoticeFact(f"v{n}", published, reconsent))

    events: dict[int, EventFact] = {}
    for action, slot, notice_pick, channel in history["events"]:  # recorded in random time order
        at = BASE + timedelta(hours=4 * slot)
        available = [n for n in notices if n.published_at <= at]
        notice = available[notice_pick % len(available)]
        record = services.consent_grant if action == "grant" else services.consent_withdraw
        event = record(customer_id=customer, purpose=purpose.code, source="crm", channel=channel,
                       notice_version=notice.version, actor=ACTOR, at=at)
        events[event.id] = EventFact(event.id, at, action, notice.published_at)
    history_events = list(events.values())

    instants = {BASE + m * MINUTE for m in history["probes"]}
    for e in history_events:
        instants |= {e.occurred_at, e.occurred_at - timedelta(microseconds=1)}
    for n in notices:
        instants |= {n.published_at, n.published_at - timedelta(microseconds=1)}
    for at in sorted(instants):
        expected_status, expected_event = brute_force_state(history_events, notices, at)
        state = selectors.consent_state(customer_id=customer, purpose=purpose.code, at=at)
        assert (state.status, state.event_id) == (expected_status, expected_event), at
        assert state.granted == (expected_status == "granted")
        gate = selectors.processing_gate(customer_id=customer, purpose=purpose.code, at=at)
        assert gate.allowed == (expected_status == "granted")
        assert gate.code == ("ok" if expected_status == "granted" else "no_consent")
        assert gate.consent_event_id == expected_event
        assert selectors.processing_gate_bulk(customer_ids=[customer], purpose=purpose.code, at=at)[customer] == gate

    # "Now": the denormalized current table agrees with the replay of the whole history.
    now = timezone.now()
    expected_status, expected_event = brute_force_state(history_events, notices, now)
    state = selectors.consent_state(customer_id=customer, purpose=purpose.code)
    assert (state.status, state.event_id) == (expected_status, expected_event)
    gate_now = selectors.processing_gate(customer_id=customer, purpose=purpose.code)
    assert (gate_now.allowed, gate_now.consent_event_id) == (expected_status == "granted", expected_event)
    assert selectors.processing_gate_bulk(customer_ids=[customer], purpose=purpose.code)[customer] == gate_now
    current = ConsentStateCurrent.objects.filter(customer_id=customer, purpose=purpose).first()
    assert (current.event_id if current else None) == expected_event


def brute_force_flags(ops: list[tuple[datetime, str, str, str | None]], at: datetime, purpose: str) -> str | None:
    active: dict[str, set[str | None]] = {"restriction": set(), "objection": set()}
    for when, kind, action, scope in ops:
        if when > at:
            break
        if action == "set":
            active[kind].add(scope)
        elif scope is None:
            active[kind].clear()
        else:
            active[kind].discard(scope)
    for kind, code in (("restriction", "restricted"), ("objection", "objected")):
        if None in active[kind] or purpose in active[kind]:
            return code
    return None


FLAG_SERVICES = {
    ("restriction", "set"): lambda **kw: services.processing_restrict(reason="accuracy_contested", **kw),
    ("restriction", "lift"): services.processing_restriction_lift,
    ("objection", "set"): services.processing_object,
    ("objection", "lift"): services.processing_objection_lift,
}


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["restriction", "objection"]), st.sampled_from(["set", "lift"]),
                  st.sampled_from([None, "automated_scoring", "marketing"])),
        max_size=10,
    ),
)
def test_processing_flags_at_any_instant_reproduce_the_flag_history(new_customer, ops: list) -> None:
    cid = new_customer()
    services.consent_grant(customer_id=cid, purpose="automated_scoring", source="web", channel="web", actor=ACTOR,
                           at=BASE - timedelta(days=1))
    timeline: list[tuple[datetime, str, str, str | None]] = []
    for step, (kind, action, scope) in enumerate(ops):
        when = BASE + timedelta(hours=step + 1)
        with freeze_time(when):
            FLAG_SERVICES[(kind, action)](customer_id=cid, actor=ACTOR, purpose=scope)
        timeline.append((when, kind, action, scope))
    # Every instant at which the answer can change, and the instants just before.
    instants = [BASE - timedelta(days=2)] + [BASE + timedelta(hours=h) - d for h in range(len(ops) + 2)
                                             for d in (timedelta(0), timedelta(microseconds=1))]
    for at in instants:
        for purpose in ("automated_scoring", "marketing"):
            expected = brute_force_flags(timeline, at, purpose)
            gate = selectors.processing_gate(customer_id=cid, purpose=purpose, at=at)
            consented = purpose == "automated_scoring" and at >= BASE - timedelta(days=1)
            assert gate.code == (expected or ("ok" if consented else "no_consent")), (at, purpose)
            assert selectors.processing_gate_bulk(customer_ids=[cid], purpose=purpose, at=at)[cid] == gate
    for purpose in ("automated_scoring", "marketing"):
        expected = brute_force_flags(timeline, timezone.now(), purpose)
        gate = selectors.processing_gate(customer_id=cid, purpose=purpose)
        assert gate.code == (expected or ("ok" if purpose == "automated_scoring" else "no_consent"))
        assert selectors.processing_gate_bulk(customer_ids=[cid], purpose=purpose)[cid] == gate
