"""All writes of the engagement app: next-best actions and the holdout group.

Invariants
- Nothing is created without consent *now*: an action needs the processing gate open for the scores' purpose
  (``ENGAGEMENT_SCORE_PURPOSE``) and for the action's own purpose (``ENGAGEMENT_ACTION_PURPOSES``: marketing
  actions need the marketing consent), checked in the creating transaction.
- Holdout members never receive proactive actions (``sla_breach``, a late answer to the customer's own
  ticket, is service, not a proactive action: both groups get it).
- One open action per customer and type: a database constraint; the services check first and treat a lost
  race (``IntegrityError`` in a savepoint) as "already open". A proactive action closed less than
  ``ENGAGEMENT_COOLDOWN_DAYS`` ago is not created again; an ``sla_breach`` is created once per ticket.
- Withdrawal, restriction, objection and erasure cancel open actions in the same transaction.
- Each created or closed action writes ``action.created`` / ``action.closed`` to the outbox in its transaction.
- The holdout assignment is an automated decision: recorded with ``audit.services.decision_record`` (type
  ``holdout_assignment``, key ``holdout:<customer>``) in the transaction that assigns it, once per customer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import services as audit_services
from config.chunking import chunked
from config.errors import Conflict, NotFound, ValidationFailed
from config.uuids import as_uuid
from consent import selectors as consent_selectors
from engagement.models import OPEN_STATUSES, Action, HoldoutAssignment
from events import services as event_services

logger = logging.getLogger("engagement")

SCORE_EVENT_TYPES = ("score.tier_changed", "score.risk_raised")
SCORE_DECISION_TYPES = ("batch_rescore", "tier_change", "served_score")
HIGH_VALUE_TIERS = ("VIP", "Premium")
TIER_WEIGHT = {"VIP": 4, "Premium": 3, "Standard": 2, "Basic": 1}
#: Base priority per type; the value at stake adds ``10 * log10(1 + value)`` (see docs/KPIS.md).
TYPE_BASE = {"sla_breach": 50.0, "retention_call": 40.0, "win_back": 20.0, "upsell_offer": 15.0,
             "advocacy_ask": 10.0}
PROACTIVE_TYPES = frozenset({"retention_call", "upsell_offer", "advocacy_ask", "win_back"})
HOLDOUT_KEY_LABEL = b"engagement.holdout.v1"
HOLDOUT_DECISION = "holdout_assignment"
HOLDOUT_MODEL = {"holdout": "keyed-hash-v1"}

#: A completion's outcome -> the scoring outcome kind it records (a training label), per action type.
#: Pairs not listed (e.g. ``no_answer``, an advocacy ask declined) record no label.
OUTCOME_LABELS: dict[tuple[str, str], str] = {
    ("retention_call", "retained"): "renewed",
    ("retention_call", "accepted"): "renewed",
    ("win_back", "retained"): "renewed",
    ("win_back", "accepted"): "renewed",
    ("upsell_offer", "accepted"): "upsell_accepted",
    ("upsell_offer", "declined"): "upsell_declined",
    **{(t, "churned"): "churned" for t in ("retention_call", "upsell_offer", "advocacy_ask", "sla_breach",
                                           "win_back")},
    ("sla_breach", "retained"): "renewed",
}


# --------------------------------------------------------------------------- settings

def score_purpose() -> str:
    return str(getattr(settings, "ENGAGEMENT_SCORE_PURPOSE", "automated_scoring"))


def action_purpose(action_type: str) -> str:
    mapping = getattr(settings, "ENGAGEMENT_ACTION_PURPOSES", {}) or {}
    return str(mapping.get(action_type) or score_purpose())


def holdout_share() -> float:
    share = float(getattr(settings, "ENGAGEMENT_HOLDOUT_SHARE", 0.10))
    return min(max(share, 0.0), 0.5)


def _threshold() -> float:
    return float(getattr(settings, "ENGAGEMENT_PROPENSITY_THRESHOLD", 0.6))


# --------------------------------------------------------------------------- holdout

def _holdout_key() -> bytes:
    """A key of its own, derived from the blind-index key (HMAC with a fixed label): the raw key is never
    used for anything else, and the holdout hash cannot be joined with a blind index."""
    return hmac.new(bytes(settings.BLIND_INDEX_KEY), HOLDOUT_KEY_LABEL, hashlib.sha256).digest()


def holdout_bucket(customer_id: uuid.UUID, *, key: bytes | None = None) -> float:
    """The customer's keyed hash as a number in [0, 1): stable for a key, uniform across customers."""
    digest = hmac.new(key or _holdout_key(), as_uuid(customer_id).bytes, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def holdout_is_member(customer_id: uuid.UUID, *, share: float | None = None, key: bytes | None = None) -> bool:
    return holdout_bucket(customer_id, key=key) < (holdout_share() if share is None else share)


@transaction.atomic
def holdout_assign(*, customer_id: uuid.UUID, gate: Any | None = None,
                   requester: str = "job:engagement") -> HoldoutAssignment | None:
    """The customer's holdout assignment, made once (keyed hash) and recorded as an audited decision in
    this transaction. Only for customers whose scores' purpose is consented now (else None, nothing written)."""
    cid = as_uuid(customer_id)
    existing = HoldoutAssignment.objects.filter(customer_id=cid).first()
    if existing is not None:
        return existing
    purpose = score_purpose()
    gate = gate or consent_selectors.processing_gate(customer_id=cid, purpose=purpose)
    if not gate.allowed:
        return None
    share = holdout_share()
    bucket = holdout_bucket(cid)
    member = bucket < share
    decision = audit_services.decision_record(
        customer=cid, purpose=purpose, decision_type=HOLDOUT_DECISION, requester=requester,
        consent_event_id=gate.consent_event_id, notice_version=gate.notice_version, model_versions=HOLDOUT_MODEL,
        features_hash=hashlib.sha256(HOLDOUT_KEY_LABEL).hexdigest(),
        outputs={"holdout": member, "share": share,
                 "effect": "no proactive actions" if member else "proactive actions allowed"},
        sealed_details=None, decision_key=f"holdout:{cid}",
    )
    try:
        with transaction.atomic():
            return HoldoutAssignment.objects.create(customer_id=cid, holdout=member, share=share, bucket=bucket,
                                                    decision_id=decision.pk)
    except IntegrityError:  # assigned concurrently: the first one stands
        return HoldoutAssignment.objects.get(customer_id=cid)


# --------------------------------------------------------------------------- candidates

@dataclass
class Candidate:
    type: str
    tier: str
    scores: dict[str, Any]
    value_at_stake: float
    reason: str
    decision_id: int | None
    response_hours: float
    ticket_id: int | None = None

    @property
    def priority(self) -> float:
        return round(TYPE_BASE[self.type] + 10.0 * math.log10(1.0 + max(self.value_at_stake, 0.0)), 3)


def _pct(p: float) -> str:
    return f"{round(100 * float(p))} %"


def _reason(head: str, reasons: Sequence[str]) -> str:
    shown = [str(r) for r in reasons if r][:3]
    return head + (" Main reasons: " + "; ".join(shown) + "." if shown else "")


def _response_hours(service_level: Any, tier: str) -> float:
    if isinstance(service_level, dict):
        for key in ("response_time_hours", "response_hours", "first_response_hours"):
            value = service_level.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    from scoring import selectors as scoring_selectors

    return scoring_selectors.first_response_hours(tier=tier)


def candidates_from_score(score: dict[str, Any]) -> list[Candidate]:
    """The proactive actions a score calls for (rules in docs/KPIS.md), before consent and holdout checks.

    ``score`` keys: tier, risk_level, clv, churn_probability, upsell, advocacy, service_level, decision_id,
    reasons ({"churn": [...], "upsell": [...], "advocacy": [...]} or a flat list)."""
    tier = str(score.get("tier") or "")
    risk = str(score.get("risk_level") or "")
    clv = max(float(score.get("clv") or 0.0), 0.0)
    churn = float(score.get("churn_probability") or 0.0)
    upsell = float(score.get("upsell") or 0.0)
    advocacy = float(score.get("advocacy") or 0.0)
    raw_reasons = score.get("reasons") or {}

    def reasons(kind: str) -> list[str]:
        if isinstance(raw_reasons, dict):
            return list(raw_reasons.get(kind) or [])
        return list(raw_reasons)

    snapshot = {"clv": round(clv, 2), "churn_probability": round(churn, 4), "risk_level": risk,
                "upsell": round(upsell, 4), "advocacy": round(advocacy, 4)}
    hours = _response_hours(score.get("service_level"), tier)
    decision_id = score.get("decision_id")
    decision_id = int(decision_id) if isinstance(decision_id, int) and not isinstance(decision_id, bool) else None
    out: list[Candidate] = []
    threshold = _threshold()
    if tier in HIGH_VALUE_TIERS and risk == "high":
        out.append(Candidate("retention_call", tier, snapshot, round(clv * churn, 2),
                             _reason(f"{tier} customer at high churn risk ({_pct(churn)}).", reasons("churn")),
                             decision_id, hours))
    if upsell >= threshold:
        out.append(Candidate("upsell_offer", tier, snapshot, round(clv * upsell, 2),
                             _reason(f"High upsell propensity ({_pct(upsell)}).", reasons("upsell")),
                             decision_id, hours))
    if advocacy >= threshold and risk != "high":
        out.append(Candidate("advocacy_ask", tier, snapshot, round(clv * advocacy, 2),
                             _reason(f"Likely advocate ({_pct(advocacy)}).", reasons("advocacy")),
                             decision_id, hours))
    return out


# --------------------------------------------------------------------------- creation

def _action_payload(action: Action) -> dict[str, Any]:
    return {
        "action_id": action.pk, "action_type": action.type, "status": action.status,
        "outcome": action.outcome or None, "tier": action.tier, "priority": action.priority,
        "value_at_stake": action.value_at_stake, "due_at": action.due_at.isoformat(), "reason": action.reason,
        "decision_id": action.decision_id,
    }


def _emit(action: Action, event_type: str) -> None:
    event_services.event_record(type=event_type, customer_id=action.customer_id, purpose=action.purpose,
                                payload=_action_payload(action))


def cooldown() -> timedelta:
    return timedelta(days=int(getattr(settings, "ENGAGEMENT_COOLDOWN_DAYS", 30)))


def _open_types(customer_ids: Iterable[uuid.UUID], *, now: datetime | None = None) -> set[tuple[uuid.UUID, str]]:
    """(customer, type) pairs not to create now: open ones, and proactive ones closed within the cool-down
    (a declined offer is not offered again the next night). ``sla_breach`` is blocked per ticket instead."""
    ids = list(customer_ids)
    if not ids:
        return set()
    blocked = set(Action.objects.filter(customer_id__in=ids, status__in=OPEN_STATUSES)
                  .values_list("customer_id", "type"))
    since = (now or timezone.now()) - cooldown()
    blocked |= set(Action.objects.filter(customer_id__in=ids, closed_at__gte=since, type__in=PROACTIVE_TYPES)
                   .values_list("customer_id", "type"))
    return blocked


def _ticket_handled(ticket_id: int | None) -> bool:
    return ticket_id is not None and Action.objects.filter(type="sla_breach", ticket_id=ticket_id).exists()


def _insert(customer_id: uuid.UUID, c: Candidate, *, source: str, now: datetime) -> Action | None:
    """Create one action in a savepoint; None when one of the type is already open (the constraint)."""
    due = now if c.type == "sla_breach" else now + timedelta(hours=c.response_hours)
    from scoring import selectors as scoring_selectors

    try:
        with transaction.atomic():
            action = Action.objects.create(
                customer_id=customer_id, type=c.type, status=Action.Status.OPEN, purpose=action_purpose(c.type),
                tier=c.tier, scores=c.scores, priority=c.priority, value_at_stake=c.value_at_stake,
                currency=scoring_selectors.score_currency(), due_at=due, reason=c.reason[:2000], decision_id=c.decision_id, source=source,
                ticket_id=c.ticket_id, created_at=now,
            )
    except IntegrityError:
        return None
    _emit(action, "action.created")
    return action


@transaction.atomic
def actions_create_for_customer(*, customer_id: uuid.UUID, candidates: Sequence[Candidate], source: str,
                                now: datetime | None = None) -> list[Action]:
    """Create the candidates that pass the checks now: the scores' purpose and the action's purpose consented
    (processing gate), not a holdout member (proactive types), none of the type already open."""
    cid = as_uuid(customer_id)
    if not candidates:
        return []
    now = now or timezone.now()
    base = consent_selectors.processing_gate(customer_id=cid, purpose=score_purpose())
    if not base.allowed:
        return []
    gates: dict[str, bool] = {score_purpose(): True}
    assignment: HoldoutAssignment | None = None
    open_types = {t for _, t in _open_types([cid], now=now)}
    created: list[Action] = []
    for c in candidates:
        if c.type in open_types:
            continue
        purpose = action_purpose(c.type)
        if purpose not in gates:
            gates[purpose] = consent_selectors.processing_gate(customer_id=cid, purpose=purpose).allowed
        if not gates[purpose]:
            continue
        if c.type in PROACTIVE_TYPES:
            assignment = assignment or holdout_assign(customer_id=cid, gate=base)
            if assignment is None or assignment.holdout:
                continue
        action = _insert(cid, c, source=source, now=now)
        if action is not None:
            created.append(action)
            open_types.add(c.type)
    return created


def actions_from_score_event(*, event: Any) -> list[Action]:
    """A ``score.tier_changed`` / ``score.risk_raised`` event (contract 3): the actions it calls for, created
    in the event's (the decision's) transaction."""
    if event.type not in SCORE_EVENT_TYPES or event.customer_id is None:
        return []
    payload = dict(event.payload or {})
    score = {
        "tier": payload.get("tier"), "risk_level": payload.get("risk_level"), "clv": payload.get("clv"),
        "churn_probability": payload.get("churn_probability"), "upsell": payload.get("upsell"),
        "advocacy": payload.get("advocacy"), "service_level": payload.get("service_level"),
        "decision_id": payload.get("decision_id"), "reasons": payload.get("reasons") or [],
    }
    return actions_create_for_customer(customer_id=event.customer_id, candidates=candidates_from_score(score),
                                       source="event")


# --------------------------------------------------------------------------- the sweep

@dataclass
class SweepCounts:
    scanned: int = 0
    created: dict[str, int] = field(default_factory=dict)
    skipped_no_consent: int = 0
    skipped_holdout: int = 0
    already_open: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "created": dict(self.created),
                "skipped_no_consent": self.skipped_no_consent, "skipped_holdout": self.skipped_holdout,
                "already_open": self.already_open}


def _win_back_candidate(score: dict[str, Any], summary: tuple[datetime, float] | None, now: datetime
                        ) -> Candidate | None:
    if summary is None:
        return None
    last, total = summary
    lapsed_days = int(getattr(settings, "ENGAGEMENT_LAPSED_DAYS", 180))
    if last is None or last > now - timedelta(days=lapsed_days):
        return None
    if total < float(getattr(settings, "ENGAGEMENT_WIN_BACK_MIN_REVENUE", 500.0)):
        return None
    tier = str(score.get("tier") or "")
    days = (now - last).days
    churn = float(score.get("churn_probability") or 0.0)
    return Candidate("win_back", tier, {"clv": round(float(score.get("clv") or 0.0), 2),
                                        "churn_probability": round(churn, 4),
                                        "risk_level": score.get("risk_level") or "", "past_revenue": round(total, 2),
                                        "days_since_last_order": days},
                     round(total * max(churn, 0.1), 2),
                     f"Lapsed customer of high past value: no order for {days} days after {round(total, 2)} "
                     "in past orders.", score.get("decision_id"), _response_hours(score.get("service_level"), tier))


def _sla_candidates(scores: dict[uuid.UUID, dict[str, Any]], now: datetime) -> dict[uuid.UUID, Candidate]:
    """One ``sla_breach`` per customer with an open, unanswered ticket past the tier's first-response time."""
    from profiles import selectors as profiles_selectors

    out: dict[uuid.UUID, Candidate] = {}
    for ticket_id, cid, opened_at in profiles_selectors.tickets_unanswered(opened_before=now):
        score = scores.get(cid)
        if score is None or cid in out:
            continue
        tier = str(score.get("tier") or "")
        hours = _response_hours(score.get("service_level"), tier)
        if opened_at + timedelta(hours=hours) >= now:
            continue
        late = (now - opened_at - timedelta(hours=hours)).total_seconds() / 3600
        clv = max(float(score.get("clv") or 0.0), 0.0)
        churn = float(score.get("churn_probability") or 0.0)
        out[cid] = Candidate(
            "sla_breach", tier, {"clv": round(clv, 2), "churn_probability": round(churn, 4),
                                 "risk_level": score.get("risk_level") or ""},
            round(clv * churn, 2),
            f"Ticket unanswered {round(late, 1)} h past the {tier} first-response time of {hours:g} h.",
            score.get("decision_id"), hours, ticket_id=ticket_id)
    return out


def actions_sweep(*, now: datetime | None = None, batch: int = 1000) -> SweepCounts:
    """After a rescore run: create the actions the current scores call for and that are missing (also
    ``sla_breach`` for late tickets and ``win_back`` for lapsed high-value customers). One transaction per
    batch of customers; consent is checked per customer and purpose when the batch runs."""
    from profiles import selectors as profiles_selectors
    from scoring import selectors as scoring_selectors

    now = now or timezone.now()
    counts = SweepCounts()
    purpose = score_purpose()
    scores = {row["customer_id"]: row for row in scoring_selectors.scores_for_engagement(purpose=purpose)}
    missing = [cid for cid, row in scores.items() if row.get("decision_id") is None]
    if missing:  # batch rescoring records its decisions in bulk: find each score's decision
        from audit import selectors as audit_selectors

        found = audit_selectors.latest_decision_ids(customers=missing, purpose=purpose, types=SCORE_DECISION_TYPES)
        for cid in missing:
            scores[cid]["decision_id"] = found.get(cid)
    sla = _sla_candidates(scores, now)
    ids = list(scores)
    for chunk in chunked(ids, batch):
        summaries = profiles_selectors.order_summaries(customer_ids=chunk)
        with transaction.atomic():
            gates = consent_selectors.processing_gates_bulk(
                customer_ids=chunk, purposes=list(dict.fromkeys([purpose, *[action_purpose(t) for t in TYPE_BASE]])))
            open_pairs = _open_types(chunk, now=now)
            assignments = {a.customer_id: a for a in HoldoutAssignment.objects.filter(customer_id__in=chunk)}
            for cid in chunk:
                counts.scanned += 1
                score = scores[cid]
                wanted = candidates_from_score(score)
                win_back = _win_back_candidate(score, summaries.get(cid), now)
                if win_back is not None:
                    wanted.append(win_back)
                if cid in sla:
                    wanted.append(sla[cid])
                if not wanted:
                    continue
                base = gates[purpose][cid]
                if not base.allowed:
                    counts.skipped_no_consent += len(wanted)
                    continue
                for c in wanted:
                    if (cid, c.type) in open_pairs or (c.type == "sla_breach" and _ticket_handled(c.ticket_id)):
                        counts.already_open += 1
                        continue
                    if not gates[action_purpose(c.type)][cid].allowed:
                        counts.skipped_no_consent += 1
                        continue
                    if c.type in PROACTIVE_TYPES:
                        if cid not in assignments:
                            assigned = holdout_assign(customer_id=cid, gate=base, requester="job:actions_sweep")
                            if assigned is None:
                                counts.skipped_no_consent += 1
                                continue
                            assignments[cid] = assigned
                        if assignments[cid].holdout:
                            counts.skipped_holdout += 1
                            continue
                    action = _insert(cid, c, source="sweep", now=now)
                    if action is None:
                        counts.already_open += 1
                        continue
                    open_pairs.add((cid, c.type))
                    counts.created[c.type] = counts.created.get(c.type, 0) + 1
    logger.info("actions sweep done", extra={"event": "engagement.sweep.done", "total": counts.scanned,
                                             "n_created": sum(counts.created.values())})
    return counts


@transaction.atomic
def holdout_assign_consented(*, customer_ids: Sequence[uuid.UUID] | None = None, requester: str = "job:holdout"
                             ) -> int:
    """Assign every consented, scored customer not yet assigned (so that treatment and holdout can be compared
    whether or not a score called for an action). Returns the number of new assignments."""
    from scoring import selectors as scoring_selectors

    purpose = score_purpose()
    ids = list(customer_ids) if customer_ids is not None else [
        row["customer_id"] for row in scoring_selectors.scores_for_engagement(purpose=purpose)]
    done = set(HoldoutAssignment.objects.filter(customer_id__in=ids).values_list("customer_id", flat=True))
    todo = [cid for cid in ids if cid not in done]
    if not todo:
        return 0
    gates = consent_selectors.processing_gate_bulk(customer_ids=todo, purpose=purpose)
    n = 0
    for cid in todo:
        if gates[cid].allowed and holdout_assign(customer_id=cid, gate=gates[cid], requester=requester) is not None:
            n += 1
    return n


# --------------------------------------------------------------------------- claim, complete, dismiss

def _locked(action_id: int) -> Action:
    if not isinstance(action_id, int) or isinstance(action_id, bool):
        raise NotFound("Action not found.")
    action = Action.objects.select_for_update().filter(pk=action_id).first()
    if action is None:
        raise NotFound("Action not found.")
    return action


def _close(action: Action, *, status: str, now: datetime, outcome: str = "", close_reason: str = "") -> None:
    action.status = status
    action.outcome = outcome
    action.close_reason = close_reason
    action.closed_at = now
    action.save(update_fields=["status", "outcome", "close_reason", "closed_at"])
    _emit(action, "action.closed")


@transaction.atomic
def action_claim(*, action_id: int, actor: str) -> Action:
    action = _locked(action_id)
    if action.status != Action.Status.OPEN:
        raise Conflict("Only an open action can be claimed.", code="action_not_open")
    action.status = Action.Status.CLAIMED
    action.claimed_by = str(actor)[:150]
    action.claimed_at = timezone.now()
    action.save(update_fields=["status", "claimed_by", "claimed_at"])
    return action


@transaction.atomic
def action_complete(*, action_id: int, outcome: str, actor: str) -> Action:
    """Close with an outcome; the outcome becomes a scoring outcome (a training label) per ``OUTCOME_LABELS``."""
    from scoring import services as scoring_services

    if outcome not in Action.Outcome.values:
        raise ValidationFailed("Unknown outcome.", extra={"errors": {"outcome": [{"code": "invalid_choice"}]}})
    action = _locked(action_id)
    if action.status not in OPEN_STATUSES:
        raise Conflict("The action is already closed.", code="action_closed")
    now = timezone.now()
    _close(action, status=Action.Status.COMPLETED, now=now, outcome=outcome)
    kind = OUTCOME_LABELS.get((action.type, outcome))
    if kind is not None:
        scoring_services.outcome_record(customer_id=action.customer_id, kind=kind, at=now,
                                        source=f"action:{action.type}"[:64], actor=str(actor)[:120])
    return action


@transaction.atomic
def action_dismiss(*, action_id: int, actor: str) -> Action:
    action = _locked(action_id)
    if action.status not in OPEN_STATUSES:
        raise Conflict("The action is already closed.", code="action_closed")
    _close(action, status=Action.Status.DISMISSED, now=timezone.now(), close_reason="dismissed")
    return action


# --------------------------------------------------------------------------- consent and erasure

@transaction.atomic
def actions_cancel_for_consent(*, customer_id: uuid.UUID, purpose: str | None, kind: str) -> int:
    """Cancel the customer's open actions that depend on ``purpose`` (``None``: all purposes; the scores'
    purpose: all actions, since every action is built on the scores) and strip the score snapshots, reasons
    and values of all those actions, closed ones too. In the consent change's transaction."""
    every = Action.objects.filter(customer_id=customer_id)
    if purpose is not None and purpose != score_purpose():
        every = every.filter(purpose=purpose)
    now = timezone.now()
    n = 0
    for action in every.select_for_update().filter(status__in=OPEN_STATUSES).order_by("id"):
        _close(action, status=Action.Status.CANCELLED, now=now, close_reason=f"consent_{kind}"[:32])
        n += 1
    # Nothing about the customer is served for that purpose any more: closed actions keep only their counts.
    every.update(scores={}, reason="", value_at_stake=0.0)
    return n


@transaction.atomic
def actions_cancel_for_customer(*, customer_id: uuid.UUID, reason: str) -> int:
    """Erasure: cancel every open action of the customer, strip the score snapshots and reasons of all their
    actions (the rows keep type, status and outcome for the funnel counts) and delete the holdout assignment."""
    cid = as_uuid(customer_id)
    now = timezone.now()
    n = 0
    for action in Action.objects.select_for_update().filter(customer_id=cid, status__in=OPEN_STATUSES).order_by("id"):
        _close(action, status=Action.Status.CANCELLED, now=now, close_reason=str(reason)[:32])
        n += 1
    Action.objects.filter(customer_id=cid).update(scores={}, reason="", value_at_stake=0.0)
    HoldoutAssignment.objects.filter(customer_id=cid).delete()
    return n
