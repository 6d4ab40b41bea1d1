"""Consent events recorded set-based per chunk (issue 21 §2): the REST bulk endpoint, the CSV import and the
demo's set-up record many events at once through :func:`record_many`.

It stores exactly what recording the same records one at a time through ``consent.services._bulk_one`` (the
reference path) stores, in the same order: the same events (ids ascending in record order), the same current
state per customer and purpose (the latest event by ``(occurred_at, id)``), one governance record per created
event with the same content, the same ``consent_changed`` signals, and the same outcome per record ("created",
"unchanged" with the existing event's id, or the same error). ``tests/consent/test_bulk_differential.py``
checks that on random batches. What it saves: per record, the purpose, customer, notice and duplicate lookups
and the state row's lock (one query each for the chunk), the savepoint, and one insert each for the event,
the state, the governance record and its sealing outbox row (one bulk insert each for the chunk).

Validation is done in memory before anything is written, so a bad record costs only itself. Anything the
database refuses while writing (a duplicate inserted concurrently by another transaction) raises
``IntegrityError``: the caller rolls the chunk's savepoint back and records the chunk the reference way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config.bulk_insert import instances_insert
from config.errors import ApplicationError, NotFound
from config.instances import instance_new
from config.lookups import ids_in, texts_in
from consent import services, signals
from consent.models import ConsentEvent, ConsentNotice, ConsentStateCurrent, Purpose

GRANT = services.GRANT
WITHDRAW = services.WITHDRAW


@dataclass
class Outcome:
    status: str  # "created" | "unchanged" | "rejected"
    event_id: int | None = None
    error: ApplicationError | None = None


@dataclass
class _Item:
    index: int
    action: str
    purpose: str
    purpose_id: int
    source: str
    channel: str
    evidence: dict[str, Any]
    explicit_time: bool
    occurred_at: datetime
    customer: uuid.UUID
    notice_version: Any
    resolved: uuid.UUID | None = None
    notice: ConsentNotice | None = None
    dedupe_key: str | None = None


def _prevalidate(record: Any, purposes: dict[str, int]) -> _Item | ApplicationError:
    """The checks of ``_bulk_one`` and ``_record`` that need no database, in their order."""
    try:
        if not isinstance(record, dict):
            raise services.invalid_field("record")
        if set(record) - services.BULK_FIELDS:
            raise services.invalid_field("record", "unknown_field")
        for field in ("customer", "purpose", "action", "source", "channel"):
            if record.get(field) in (None, ""):
                raise services.invalid_field(field, "required")
        action = record["action"]
        if action not in (GRANT, WITHDRAW):
            raise services.invalid_field("action", "invalid_choice")
        purpose = record["purpose"]
        pid = purposes.get(purpose) if isinstance(purpose, str) else None
        if pid is None:
            from consent import selectors

            pid = selectors.purpose_id_for(purpose)  # raises the reference error (unknown purpose)
        source = services.check_code(record["source"], "source")
        channel = services.check_channel(record["channel"])
        evidence = services.sanitize_evidence(record.get("evidence"))
        at = record.get("occurred_at") or None
        explicit = at is not None
        occurred_at = services.check_at(at) if explicit else timezone.now()
        raw = record["customer"]
        try:
            cid = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        except (TypeError, ValueError, AttributeError) as exc:
            raise services.invalid_field("customer") from exc
    except ApplicationError as exc:
        return exc
    return _Item(index=0, action=action, purpose=purpose, purpose_id=pid, source=source, channel=channel,
                 evidence=evidence, explicit_time=explicit, occurred_at=occurred_at, customer=cid,
                 notice_version=record.get("notice_version"))


def resolve_customers(ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
    """``profiles.selectors.customer_resolve`` for many ids: the surviving pseudonym, or None if unknown."""
    from profiles.models import Customer

    parent: dict[uuid.UUID, uuid.UUID | None] = {}
    frontier = set(ids)
    for _ in range(17):
        if not frontier:
            break
        rows = dict(Customer.objects.filter(ids_in("id", list(frontier))).values_list("id", "merged_into_id"))
        parent.update(rows)
        frontier = {p for p in rows.values() if p is not None and p not in parent}
    out: dict[uuid.UUID, uuid.UUID | None] = {}
    for cid in ids:
        if cid not in parent:
            out[cid] = None
            continue
        current = cid
        for _ in range(16):  # the reference follows at most 16 links
            nxt = parent.get(current)
            if nxt is None:
                break
            if nxt not in parent:
                current = None  # type: ignore[assignment]  # a dangling link: unknown, as the reference
                break
            current = nxt
        out[cid] = current
    return out


def _notice_for(item: _Item, notices: dict[int, list[ConsentNotice]]) -> ConsentNotice:
    """``services._resolve_notice`` over the purpose's notices read once (ordered by published_at, id)."""
    options = notices.get(item.purpose_id, [])
    version = item.notice_version
    if version in (None, ""):
        published = [n for n in options if n.published_at <= item.occurred_at]
        if not published:
            raise services.invalid_field("notice_version", "no_notice")
        return published[-1]
    if not isinstance(version, str) or not services.VERSION.match(version):
        raise services.invalid_field("notice_version")
    found = [n for n in options if n.version == version]
    if not found:
        raise services.invalid_field("notice_version", "unknown_version")
    notice = found[0]  # (purpose, version) is unique
    if notice.published_at > item.occurred_at:
        raise services.invalid_field("notice_version", "not_yet_published")
    return notice


def record_many(records: list[Any], *, actor: str) -> list[Outcome]:
    """Record ``records`` (bulk fields, see ``services.consent_bulk_record``) set-based; one outcome per record.
    Runs in the caller's transaction; ``actor`` is already checked. May raise ``IntegrityError`` (see above)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_many must run inside a transaction")
    purposes = dict(Purpose.objects.values_list("code", "id"))
    outcomes: list[Outcome | None] = [None] * len(records)
    items: list[_Item] = []
    for index, record in enumerate(records):
        checked = _prevalidate(record, purposes)
        if isinstance(checked, ApplicationError):
            outcomes[index] = Outcome("rejected", error=checked)
            continue
        checked.index = index
        items.append(checked)
    resolved = resolve_customers({i.customer for i in items})
    notices: dict[int, list[ConsentNotice]] = {}
    for notice in ConsentNotice.objects.filter(purpose_id__in={i.purpose_id for i in items}).order_by(
            "published_at", "id"):
        notices.setdefault(notice.purpose_id, []).append(notice)
    ready: list[_Item] = []
    for item in items:
        try:
            item.resolved = resolved.get(item.customer)
            if item.resolved is None:
                raise NotFound("Customer not found.")
            item.notice = _notice_for(item, notices)
        except ApplicationError as exc:
            outcomes[item.index] = Outcome("rejected", error=exc)
            continue
        if item.explicit_time:
            item.dedupe_key = services.event_dedupe_key(
                customer_id=item.resolved, purpose=item.purpose, action=item.action, at=item.occurred_at,
                source=item.source, channel=item.channel, notice_version=item.notice.version)
        ready.append(item)
    keys = [i.dedupe_key for i in ready if i.dedupe_key]
    existing = (dict(ConsentEvent.objects.filter(texts_in("dedupe_key", keys)).values_list("dedupe_key", "id"))
                if keys else {})
    to_create: list[tuple[_Item, ConsentEvent]] = []
    first_of_key: dict[str, ConsentEvent] = {}
    repeats: list[tuple[_Item, str]] = []
    for item in ready:
        if item.dedupe_key is not None:
            if item.dedupe_key in existing:
                outcomes[item.index] = Outcome("unchanged", event_id=existing[item.dedupe_key])
                continue
            if item.dedupe_key in first_of_key:  # the same record twice in the batch: the first one counts
                repeats.append((item, item.dedupe_key))
                continue
        assert item.notice is not None and item.resolved is not None
        event = instance_new(ConsentEvent, customer_id=item.resolved, purpose_id=item.purpose_id,
                             action=item.action, notice=item.notice, source=item.source, channel=item.channel,
                             occurred_at=item.occurred_at, evidence=item.evidence, actor=actor,
                             dedupe_key=item.dedupe_key)
        if item.dedupe_key is not None:
            first_of_key[item.dedupe_key] = event
        to_create.append((item, event))
    if to_create:
        instances_insert(ConsentEvent, [event for _, event in to_create])  # COPY on PostgreSQL; ids set
        if any(event.pk is None for _, event in to_create):  # no ids returned by this backend
            raise RuntimeError("bulk insert returned no ids")
        _update_current([event for _, event in to_create])
        audit_services.governance_records_bulk(records=[
            {"kind": "consent.granted" if event.action == GRANT else "consent.withdrawn", "actor": event.actor,
             "subject": event.customer_id,
             "details": {"event_id": event.id, "purpose": item.purpose, "notice_version": event.notice.version,
                         "source": event.source, "channel": event.channel}}
            for item, event in to_create
        ])
        for item, event in to_create:
            outcomes[item.index] = Outcome("created", event_id=event.id)
            services.send_consent_changed(customer_id=event.customer_id, purpose=item.purpose,
                                      kind=signals.GRANTED if event.action == GRANT else signals.WITHDRAWN)
    for item, key in repeats:
        outcomes[item.index] = Outcome("unchanged", event_id=first_of_key[key].id)
    return [o if o is not None else Outcome("rejected") for o in outcomes]


def _update_current(events: list[ConsentEvent]) -> None:
    """``services._update_current`` for every event in order, as one read (locked) and at most one insert and
    one update: the state ends as the latest event by ``(occurred_at, id)`` per customer and purpose."""
    latest: dict[tuple[uuid.UUID, int], ConsentEvent] = {}
    for event in events:
        key = (event.customer_id, event.purpose_id)
        best = latest.get(key)
        if best is None or (event.occurred_at, event.id) >= (best.occurred_at, best.id):
            latest[key] = event
    rows = {
        (row.customer_id, row.purpose_id): row
        for row in ConsentStateCurrent.objects.select_for_update().filter(
            ids_in("customer_id", list({k[0] for k in latest})), purpose_id__in={k[1] for k in latest})
        if (row.customer_id, row.purpose_id) in latest
    }
    now = timezone.now()
    create: list[ConsentStateCurrent] = []
    changed: list[ConsentStateCurrent] = []
    for key, event in latest.items():
        row = rows.get(key)
        if row is None:
            create.append(instance_new(ConsentStateCurrent, customer_id=event.customer_id,
                                       purpose_id=event.purpose_id, event=event, granted=event.action == GRANT,
                                       notice_id=event.notice_id, occurred_at=event.occurred_at))
            continue
        if (event.occurred_at, event.id) < (row.occurred_at, row.event_id):
            continue  # back-dated: history changes, "now" does not
        row.event = event
        row.granted = event.action == GRANT
        row.notice_id = event.notice_id
        row.occurred_at = event.occurred_at
        row.updated_at = now
        changed.append(row)
    if create:
        instances_insert(ConsentStateCurrent, create)
    if changed:
        ConsentStateCurrent.objects.bulk_update(changed, ["event", "granted", "notice", "occurred_at", "updated_at"])
