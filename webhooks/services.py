"""All writes of the webhooks app: subscriptions, the outbox relay, delivery attempts, dead letters and replay.

Rules (GDPR Art. 19 and the privacy invariants):
- A subscription is tied to a purpose. It is offered an event of a type it subscribed to when the event has
  no purpose or the same purpose; a customer's event is SENT only if the customer's consent for the
  subscription's purpose is active at the moment of sending (``consent.selectors.processing_gates_bulk``,
  re-checked per attempt); otherwise the delivery is dropped with the gate's code as its reason.
- Exception, the notices ``consent.withdrawn`` and ``customer.erased``: sent although consent is gone, to
  every subscriber of the type for the purpose AND to every endpoint that was ever sent data about that
  customer (``WebhookRecipient``), subscribed to the type or not, so that it deletes its copy.
  ``customer.rectified`` also goes to those past recipients, but only while consent for their purpose holds.
- At least once: the event's stable ``event_id`` is the ``webhook-id``. Retries back off exponentially with
  jitter for ``WEBHOOK_RETRY_WINDOW_SECONDS`` (24 h), then the delivery is a dead letter (replayable).
- Order per customer and endpoint: a delivery is not attempted while an earlier delivery (lower outbox id)
  of the same customer to the same subscription is still pending.
- Payloads carry pseudonyms, purpose codes, scores, tiers and reasons: never personal data.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from audit import services as audit_services
from config.chunking import chunked
from config.errors import NotFound, ValidationFailed
from config.uuids import as_uuid
from consent import selectors as consent_selectors
from events import services as events_services
from events.models import OutboxEvent
from events.services import PUBLIC_EVENT_TYPES
from webhooks import signing
from webhooks.models import Delivery, WebhookRecipient, WebhookSubscription
from webhooks.transport import Outcome, Pool
from webhooks.url_safety import Target, UnsafeUrl, url_check

logger = logging.getLogger("webhooks")

#: Sent although consent is gone (to subscribers of the type and to every past recipient of the customer).
NOTICE_TYPES = frozenset({"consent.withdrawn", "customer.erased"})
#: Also offered to the customer's past recipients (Art. 19), consent-checked unless a notice.
PAST_RECIPIENT_TYPES = NOTICE_TYPES | {"customer.rectified"}
MAX_EVENTS_PER_SUBSCRIPTION = len(PUBLIC_EVENT_TYPES)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: WebhookSubscription
    secret: str  # shown once


def _invalid(field_name: str, code: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, code=code, extra={"errors": {field_name: [{"code": code}]}})


def _check_events(events: Any) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise _invalid("events", "required", "Give at least one event type.")
    if not all(isinstance(e, str) for e in events):
        raise _invalid("events", "invalid", "Event types are strings.")
    unknown = sorted(set(events) - set(PUBLIC_EVENT_TYPES))
    if unknown:
        raise _invalid("events", "unknown_event_type",
                       "Unknown event type; choose among: " + ", ".join(PUBLIC_EVENT_TYPES) + ".")
    return sorted(set(events), key=PUBLIC_EVENT_TYPES.index)


@transaction.atomic
def subscription_create(*, url: str, events: list[str], purpose: str, actor: str) -> CreatedSubscription:
    """Register an endpoint for ``events`` under ``purpose``; returns it with its signing secret (shown once)."""
    event_types = _check_events(events)
    if not consent_selectors.purpose_exists(code=purpose):
        raise _invalid("purpose", "invalid_choice", "Unknown purpose.")
    target = url_check(url, must_resolve=False)  # resolved and checked again before every delivery
    secret = signing.secret_new()
    sub = WebhookSubscription(id=uuid.uuid4(), url=url, events=event_types, purpose=purpose, created_by=actor[:200])
    sub.secret_sealed, sub.secret_kek_id = signing.secret_seal(subscription_id=sub.id, secret=secret)
    sub.save(force_insert=True)
    audit_services.governance_record(kind="webhook.subscribed", actor=actor, details={
        "subscription": str(sub.id), "host": target.host, "events": event_types, "purpose": purpose})
    return CreatedSubscription(sub, secret)


@transaction.atomic
def subscription_delete(*, subscription_id: uuid.UUID, actor: str) -> WebhookSubscription:
    """Stop an endpoint: nothing more is sent to it; its pending deliveries are dropped (kept for the record)."""
    sub = WebhookSubscription.objects.select_for_update().filter(id=subscription_id, deleted_at__isnull=True).first()
    if sub is None:
        raise NotFound("Webhook subscription not found.")
    now = timezone.now()
    sub.deleted_at = now
    sub.save(update_fields=["deleted_at"])
    dropped = Delivery.objects.filter(subscription=sub, state=Delivery.State.PENDING).update(
        state=Delivery.State.DROPPED, reason="subscription_deleted")
    audit_services.governance_record(kind="webhook.unsubscribed", actor=actor, details={
        "subscription": str(sub.id), "pending_dropped": dropped})
    return sub


# --------------------------------------------------------------------------------------------- outbox relay


def _matches(sub: WebhookSubscription, event: OutboxEvent) -> bool:
    return event.purpose is None or event.purpose == sub.purpose


def _notice_customers(event: OutboxEvent) -> list[uuid.UUID]:
    """The pseudonyms an event speaks for (an erasure also covers the pseudonyms merged into the customer)."""
    ids = [event.customer_id] if event.customer_id is not None else []
    for alias in (event.payload or {}).get("aliases", []) if event.type == "customer.erased" else []:
        try:
            ids.append(as_uuid(alias))
        except ValueError:
            continue
    return ids


@transaction.atomic
def outbox_relay(*, limit: int = 1000, now: datetime | None = None) -> int:
    """Fan the oldest undispatched outbox events out into ``Delivery`` rows (one bulk insert) and mark them
    dispatched, in one transaction. Returns the number of events relayed."""
    events = events_services.events_claim_undispatched(limit=limit)
    if not events:
        return 0
    now = now or timezone.now()
    subs = list(WebhookSubscription.objects.filter(deleted_at__isnull=True))
    by_id = {s.id: s for s in subs}
    past: dict[uuid.UUID, set[uuid.UUID]] = {}
    notice_ids = {cid for e in events if e.type in PAST_RECIPIENT_TYPES for cid in _notice_customers(e)}
    if notice_ids and subs:
        for sub_id, cid in WebhookRecipient.objects.filter(customer_id__in=list(notice_ids)).values_list(
                "subscription_id", "customer_id"):
            past.setdefault(cid, set()).add(sub_id)
    rows: list[Delivery] = []
    for event in events:
        targets = [s.id for s in subs if event.type in s.events and _matches(s, event)]
        if event.type in PAST_RECIPIENT_TYPES:
            for cid in _notice_customers(event):
                for sub_id in sorted(past.get(cid, ()), key=str):
                    sub = by_id.get(sub_id)
                    if sub is not None and _matches(sub, event) and sub_id not in targets:
                        targets.append(sub_id)
        rows.extend(
            Delivery(subscription_id=sub_id, event_id=event.pk, seq=event.pk, customer_id=event.customer_id,
                     event_type=event.type, next_attempt_at=now, window_started_at=now)
            for sub_id in targets
        )
    if rows:
        Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    erased = [cid for e in events if e.type == "customer.erased" for cid in _notice_customers(e)]
    if erased:  # the erasure notices are queued to every past recipient: the recipient records have served
        WebhookRecipient.objects.filter(customer_id__in=erased).delete()
    events_services.events_mark_dispatched(ids=[e.pk for e in events], at=now)
    return len(events)


def outbox_relay_all(*, batch: int = 1000, max_batches: int = 100, now: datetime | None = None) -> int:
    """Relay until the outbox is drained (bounded). Returns the number of events relayed."""
    from events import selectors as events_selectors

    total = 0
    if not events_selectors.events_undispatched_exist():  # no write transaction when there is nothing to do
        return 0
    for _ in range(max_batches):
        n = outbox_relay(limit=batch, now=now)
        total += n
        if n < batch:
            break
    return total


# --------------------------------------------------------------------------------------------- delivery


@dataclass
class SendCounts:
    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    dropped: int = 0
    dropped_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: SendCounts) -> None:
        self.attempted += other.attempted
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        self.dropped += other.dropped
        for key, n in other.dropped_reasons.items():
            self.dropped_reasons[key] = self.dropped_reasons.get(key, 0) + n


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: exponential, capped, with jitter
    ("equal jitter": half the step fixed, half random)."""
    base = float(_setting("WEBHOOK_RETRY_BASE_SECONDS", 5))
    cap = float(_setting("WEBHOOK_RETRY_MAX_INTERVAL_SECONDS", 3600))
    step = min(cap, base * (2 ** max(0, attempts - 1)))
    return step / 2 + random.uniform(0, step / 2)  # noqa: S311 (jitter, not a secret)


def _retry_window() -> timedelta:
    return timedelta(seconds=int(_setting("WEBHOOK_RETRY_WINDOW_SECONDS", 24 * 3600)))


def _lease() -> timedelta:
    return timedelta(seconds=int(_setting("WEBHOOK_LEASE_SECONDS", 120)))


def _claim(*, now: datetime, limit: int) -> list[Delivery]:
    """Due deliveries that are the oldest pending one of their (subscription, customer), leased to this pass
    (``next_attempt_at`` moves past the lease: a crashed sender's deliveries come back after it)."""
    earlier = Delivery.objects.filter(subscription_id=OuterRef("subscription_id"), customer_id=OuterRef("customer_id"),
                                      state=Delivery.State.PENDING, seq__lt=OuterRef("seq"))
    due = (Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now,
                                   subscription__deleted_at__isnull=True)
           .exclude(Exists(earlier)).order_by("seq", "id"))
    if not due.exists():  # nothing due: no write transaction (SQLite: no write lock taken)
        return []
    with transaction.atomic():
        qs = due
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        claimed = list(qs.select_related("subscription", "event")[: max(1, limit)])
        if claimed:
            # the retry window runs from the first attempt (not from the wait behind an earlier delivery)
            Delivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
                next_attempt_at=now + _lease(), attempts=F("attempts") + 1, last_attempt_at=now,
                window_started_at=Case(When(attempts=0, then=Value(now)), default=F("window_started_at")))
            for d in claimed:
                if d.attempts == 0:
                    d.window_started_at = now
                d.attempts += 1
                d.last_attempt_at = now
    return claimed


def event_body(event: OutboxEvent) -> bytes:
    """The JSON body of an event (the same bytes on every attempt): ``{"id", "type", "timestamp", "data"}``."""
    data: dict[str, Any] = {"customer": str(event.customer_id) if event.customer_id is not None else None,
                            "purpose": event.purpose}
    data.update(event.payload or {})
    body = {"id": str(event.event_id), "type": event.type, "timestamp": event.created_at.isoformat(), "data": data}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _gates(claimed: list[Delivery]) -> dict[tuple[uuid.UUID, str], Any]:
    """Consent now for each (customer, subscription purpose) of the claimed deliveries that need it:
    one set-based gate read for all of them."""
    need = [d for d in claimed if d.customer_id is not None and d.event_type not in NOTICE_TYPES]
    if not need:
        return {}
    purposes = sorted({d.subscription.purpose for d in need})
    ids = sorted({d.customer_id for d in need if d.customer_id is not None}, key=str)
    by_purpose = consent_selectors.processing_gates_bulk(customer_ids=ids, purposes=purposes)
    return {(cid, purpose): gate for purpose, gates in by_purpose.items() for cid, gate in gates.items()}


class _Sender:
    """POSTs a batch's requests concurrently (``WEBHOOK_SEND_CONCURRENCY`` threads, each with its own
    keep-alive connections). A batch holds at most one delivery per (subscription, customer), so sending
    its requests side by side never reorders a customer's events to an endpoint."""

    def __init__(self, *, timeout: float, concurrency: int) -> None:
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self._local = threading.local()
        self._pools: list[Pool] = []
        self._lock = threading.Lock()
        self._executor = (ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook-send")
                          if self.concurrency > 1 else None)

    def _pool(self) -> Pool:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = Pool(timeout=self.timeout)
            with self._lock:
                self._pools.append(pool)
        return pool

    def _post(self, job: tuple[Target, bytes, dict[str, str]]) -> Outcome:
        target, body, headers = job
        return self._pool().post(target, body=body, headers=headers)

    def post_all(self, jobs: list[tuple[Target, bytes, dict[str, str]]]) -> list[Outcome]:
        if self._executor is None or len(jobs) < 2:
            return [self._post(job) for job in jobs]
        return list(self._executor.map(self._post, jobs))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for pool in self._pools:
            pool.close()


def _send_batch(claimed: list[Delivery], *, now: datetime, sender: _Sender) -> SendCounts:
    counts = SendCounts()
    gates = _gates(claimed)
    targets: dict[str, Target | UnsafeUrl] = {}
    secrets: dict[uuid.UUID, str] = {}
    updates: list[Delivery] = []
    recipients: dict[tuple[uuid.UUID, uuid.UUID], WebhookRecipient] = {}
    window = _retry_window()
    outcomes: dict[int, Outcome] = {}
    jobs: list[tuple[Target, bytes, dict[str, str]]] = []
    job_deliveries: list[Delivery] = []
    to_send: list[Delivery] = []
    for d in claimed:  # consent now, URL check, body and signature (serial); the POSTs go out together below
        sub = d.subscription
        if d.customer_id is not None and d.event_type not in NOTICE_TYPES:
            gate = gates.get((d.customer_id, sub.purpose))
            if gate is None or not gate.allowed:
                reason = getattr(gate, "code", "no_consent")
                d.state, d.reason, d.attempts = Delivery.State.DROPPED, str(reason)[:64], d.attempts - 1
                counts.dropped += 1
                counts.dropped_reasons[d.reason] = counts.dropped_reasons.get(d.reason, 0) + 1
                updates.append(d)
                continue
        if sub.url not in targets:
            try:
                targets[sub.url] = url_check(sub.url)  # again at send time: addresses may have changed
            except UnsafeUrl as exc:
                targets[sub.url] = exc
        target = targets[sub.url]
        counts.attempted += 1
        to_send.append(d)
        if isinstance(target, UnsafeUrl):
            outcomes[d.pk] = Outcome(False, None, str(target.code)[:64])
            continue
        if sub.id not in secrets:
            secrets[sub.id] = signing.secret_open(subscription_id=sub.id, sealed=bytes(sub.secret_sealed),
                                                  kek_id=sub.secret_kek_id)
        body = event_body(d.event)
        headers = signing.signed_headers(secret=secrets[sub.id], msg_id=str(d.event.event_id), body=body,
                                         at=datetime.now(UTC))  # the real clock: receivers check it
        jobs.append((target, body, headers))
        job_deliveries.append(d)
        if d.customer_id is not None and d.event_type != "customer.erased":  # the last word: nothing to recall
            recipients[(sub.id, d.customer_id)] = WebhookRecipient(
                subscription_id=sub.id, customer_id=d.customer_id, first_sent_at=now, last_sent_at=now)
    for d, outcome in zip(job_deliveries, sender.post_all(jobs), strict=True):
        outcomes[d.pk] = outcome
    for d in to_send:
        outcome = outcomes[d.pk]
        d.last_status, d.last_error = outcome.status, outcome.error
        if outcome.ok:
            d.state, d.delivered_at, d.reason = Delivery.State.DELIVERED, now, ""
            counts.delivered += 1
        else:
            deadline = d.window_started_at + window
            if now >= deadline:
                d.state, d.reason = Delivery.State.DEAD, "retries_exhausted"
                counts.dead += 1
            else:
                d.next_attempt_at = min(now + timedelta(seconds=retry_delay(d.attempts)), deadline)
                counts.failed += 1
        updates.append(d)
    # One UPDATE per distinct outcome (all the deliveries of a healthy endpoint share one), not per row.
    groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
    for d in updates:
        values: dict[str, Any] = {"state": d.state, "reason": d.reason, "last_status": d.last_status,
                                  "last_error": d.last_error}
        if d.state == Delivery.State.DELIVERED:
            values["delivered_at"] = d.delivered_at
        elif d.state == Delivery.State.PENDING:
            values["next_attempt_at"] = d.next_attempt_at
        elif d.state == Delivery.State.DROPPED:
            values["attempts"] = d.attempts  # the claim counted an attempt that was not made
        groups.setdefault(tuple(sorted(values.items())), []).append(d.pk)
    with transaction.atomic():
        for key, pks in groups.items():
            for batch in chunked(pks, 500):
                Delivery.objects.filter(pk__in=batch).update(**dict(key))
        if recipients:
            WebhookRecipient.objects.bulk_create(list(recipients.values()), update_conflicts=True,
                                                 unique_fields=["subscription", "customer_id"],
                                                 update_fields=["last_sent_at"], batch_size=500)
    if counts.dead:
        logger.warning("webhook deliveries dead-lettered",
                       extra={"event": "webhooks.dead_letter", "count": counts.dead})
    return counts


def deliveries_send_due(*, now: datetime | None = None, batch: int = 200, max_batches: int = 100) -> SendCounts:
    """Attempt every due delivery (in order per customer and endpoint) until none is left, or
    ``max_batches`` batches. ``now`` drives the schedule (a controlled clock in tests); signatures always
    carry the real time."""
    total = SendCounts()
    sender = _Sender(timeout=float(_setting("WEBHOOK_TIMEOUT_SECONDS", 5)),
                     concurrency=int(_setting("WEBHOOK_SEND_CONCURRENCY", 8)))
    try:
        for _ in range(max_batches):
            at = now or timezone.now()
            claimed = _claim(now=at, limit=batch)
            if not claimed:
                break
            total.add(_send_batch(claimed, now=at, sender=sender))
    finally:
        sender.close()
    return total


@transaction.atomic
def delivery_replay(*, delivery_id: int, actor: str, now: datetime | None = None) -> Delivery:
    """Send a dead letter again: pending now, with a fresh retry window. Audited."""
    d = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
    if d is None:
        raise NotFound("Delivery not found.")
    if d.state != Delivery.State.DEAD:
        raise ValidationFailed("Only dead letters can be replayed.", code="not_dead_letter")
    if WebhookSubscription.objects.filter(pk=d.subscription_id, deleted_at__isnull=False).exists():
        raise ValidationFailed("The subscription was deleted.", code="subscription_deleted")
    now = now or timezone.now()
    d.state, d.reason, d.attempts = Delivery.State.PENDING, "", 0
    d.next_attempt_at = d.window_started_at = now
    d.save(update_fields=["state", "reason", "attempts", "next_attempt_at", "window_started_at"])
    audit_services.governance_record(kind="webhook.replayed", actor=actor, subject=d.customer_id, details={
        "delivery": d.pk, "subscription": str(d.subscription_id), "event_type": d.event_type})
    transaction.on_commit(kick, robust=True)
    return d


# --------------------------------------------------------------------------------------------- kicking


def kick() -> None:
    """After a commit that wrote events (or a replay): relay and deliver now. Embedded mode wakes the
    in-process loop when it runs (else the eager task runs here); with a broker, a Celery task is queued."""
    from webhooks import embedded, tasks

    if embedded.wake():
        return
    tasks.relay_outbox.delay()


def kick_on_commit() -> None:
    """Register ``kick`` once per transaction (many events, one kick). ``WEBHOOK_KICK_ON_COMMIT = False``
    leaves relaying to beat (or the embedded loop's timer)."""
    if not _setting("WEBHOOK_KICK_ON_COMMIT", True):
        return
    conn = transaction.get_connection()
    if conn.in_atomic_block and any(item[1] is kick for item in conn.run_on_commit):
        return
    transaction.on_commit(kick, robust=True)
