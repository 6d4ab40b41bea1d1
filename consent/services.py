"""Consent writes. Every service is keyword-only, ``@transaction.atomic``, and writes its governance record
(audit) in the same transaction: if the audit write fails, the consent event is rolled back with it.

Withdrawing has exactly the same shape as granting (``consent_withdraw`` takes the same arguments as
``consent_grant``; the API endpoints take the same body). A committed withdrawal stops everything that runs
after it, because ``processing_gate`` reads the committed state at execution time. Every recorded consent
event and processing flag also sends ``consent.signals.consent_changed`` in the same transaction (scoring
deletes the stored scores of a withdrawn/restricted/objected purpose there: Art. 7(3), 18, 21).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import services as audit_services
from config.blind_index import blind_index
from config.errors import ApplicationError, NotFound, PayloadTooLarge, ValidationFailed
from config.uuids import as_uuid
from consent import selectors, signals
from consent.models import (
    Channel,
    ConsentEvent,
    ConsentNotice,
    ConsentStateCurrent,
    FlagKind,
    ProcessingFlag,
    ProcessingFlagCurrent,
    erasure_bypass,
)

__all__ = [
    "BulkRecordResult",
    "consent_bulk_record",
    "consent_erase_subject",
    "consent_governance_fields",
    "consent_grant",
    "consent_merge_carry_over",
    "consent_record_many",
    "consent_record_import",
    "consent_withdraw",
    "notice_publish",
    "notice_text_hash",
    "processing_object",
    "processing_objection_lift",
    "processing_restrict",
    "processing_restriction_lift",
]

_CODE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_SAFE_REF = re.compile(r"^[A-Za-z0-9_.:/#-]{1,128}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_ACTOR = re.compile(r"^[a-z_]{1,16}(:\S{1,100})?$")

GRANT = ConsentEvent.Action.GRANT
WITHDRAW = ConsentEvent.Action.WITHDRAW

# Evidence keys accepted from callers (everything else is refused, so no personal data slips in).
# Values are identifiers of records in the calling system, hashes, or flags -- never personal data. A clear
# IP address is replaced by its keyed HMAC, checkbox text and user agent by hashes.
EVIDENCE_REFERENCE_KEYS = ("form_id", "form_version", "confirmation_id", "session_ref", "campaign", "import_batch")


def bulk_max_records() -> int:
    return int(getattr(settings, "CONSENT_BULK_MAX_RECORDS", 1000))


def invalid_field(field: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(
        "The request is invalid.", extra={"errors": {field: [{"code": code, "message": "Invalid value."}]}}
    )


def _error_field(exc: ApplicationError) -> tuple[str | None, str]:
    """(field, code) of an error: the first field error's code, or the error's own code."""
    errors = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
    if not isinstance(errors, dict) or not errors:
        return None, exc.code
    field, details = next(iter(errors.items()))
    code = details[0].get("code") if isinstance(details, list) and details and isinstance(details[0], dict) else None
    return str(field), str(code or exc.code)


def notice_text_hash(text: str) -> str:
    """sha256 hex of a notice text (what ``ConsentNotice.text_hash`` holds and receipts show)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Validation ------------------------------------------------------------------------------------------


def check_code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _CODE.match(value):
        raise invalid_field(field)
    return value


def _check_actor(actor: Any) -> str:
    if not isinstance(actor, str) or not _ACTOR.match(actor):
        raise invalid_field("actor")
    return actor


_CHANNELS = frozenset(Channel.values)


def check_channel(channel: Any) -> str:
    if not isinstance(channel, str) or channel not in _CHANNELS:
        raise invalid_field("channel", "invalid_choice")
    return str(channel)


def _check_customer(customer_id: Any) -> uuid.UUID:
    """The surviving pseudonym for ``customer_id``; ``NotFound`` for unknown or erased customers."""
    from profiles import selectors as profiles_selectors

    try:
        cid = as_uuid(customer_id)
    except (TypeError, ValueError, AttributeError) as exc:
        raise invalid_field("customer") from exc
    resolved = profiles_selectors.customer_resolve(customer_id=cid)
    if resolved is None:
        raise NotFound("Customer not found.")
    return resolved


def check_at(at: Any, field: str = "occurred_at") -> datetime:
    if isinstance(at, str):
        parsed = parse_datetime(at.strip())
        if parsed is None:
            raise invalid_field(field, "datetime")
        at = parsed
    if not isinstance(at, datetime) or timezone.is_naive(at):
        raise invalid_field(field, "datetime")
    at = at.astimezone(UTC)
    if at > timezone.now():
        raise invalid_field(field, "in_future")
    return at


def sanitize_evidence(evidence: Any) -> dict[str, Any]:
    """Turn caller evidence into PII-free proof: allow-listed references, hashes and keyed HMACs only."""
    if evidence in (None, ""):
        return {}
    if not isinstance(evidence, dict):
        raise invalid_field("evidence")
    clean: dict[str, Any] = {}
    for key, value in evidence.items():
        if value is None:
            continue
        if key in EVIDENCE_REFERENCE_KEYS:
            if not isinstance(value, str) or not _SAFE_REF.match(value):
                raise invalid_field("evidence")
            clean[key] = value
        elif key == "checkbox_text_hash":
            if not isinstance(value, str) or not _HEX64.match(value.lower()):
                raise invalid_field("evidence")
            clean[key] = value.lower()
        elif key == "checkbox_text":
            if not isinstance(value, str) or len(value) > 10_000:
                raise invalid_field("evidence")
            clean["checkbox_text_hash"] = notice_text_hash(value)
        elif key in ("ip", "ip_address"):
            try:
                address = ipaddress.ip_address(str(value).strip())
            except ValueError as exc:
                raise invalid_field("evidence") from exc
            clean["ip_hmac"] = blind_index("ip", address.compressed)
        elif key == "user_agent":
            if not isinstance(value, str) or len(value) > 2_000:
                raise invalid_field("evidence")
            clean["user_agent_hmac"] = blind_index("user_agent", value.strip())
        elif key in ("double_opt_in", "checkbox_unticked_by_default"):
            if not isinstance(value, bool):
                raise invalid_field("evidence")
            clean[key] = value
        elif key == "import_line":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise invalid_field("evidence")
            clean[key] = value
        else:
            # Unknown keys are refused (their names are never echoed: they could hold anything).
            raise invalid_field("evidence")
    return clean


def _resolve_notice(*, purpose_id: int, purpose: str, notice_version: Any, at: datetime) -> ConsentNotice:
    if notice_version in (None, ""):
        notice = (
            ConsentNotice.objects.filter(purpose_id=purpose_id, published_at__lte=at)
            .order_by("-published_at", "-id")
            .first()
        )
        if notice is None:
            raise invalid_field("notice_version", "no_notice")
        return notice
    if not isinstance(notice_version, str) or not VERSION.match(notice_version):
        raise invalid_field("notice_version")
    notice = ConsentNotice.objects.filter(purpose_id=purpose_id, version=notice_version).first()
    if notice is None:
        raise invalid_field("notice_version", "unknown_version")
    if notice.published_at > at:
        raise invalid_field("notice_version", "not_yet_published")
    return notice


# --- Recording events --------------------------------------------------------------------------------------


def event_dedupe_key(*, customer_id: uuid.UUID, purpose: str, action: str, at: datetime, source: str, channel: str,
                notice_version: str) -> str:
    fact = "|".join([str(customer_id), purpose, action, at.isoformat(), source, channel, notice_version])
    return blind_index("consent_event", fact)


def _update_current(event: ConsentEvent) -> None:
    """Keep ``ConsentStateCurrent`` = the latest event by (occurred_at, id), under a row lock."""
    current = (
        ConsentStateCurrent.objects.select_for_update()
        .filter(customer_id=event.customer_id, purpose_id=event.purpose_id)
        .first()
    )
    if current is None:
        try:
            with transaction.atomic():
                ConsentStateCurrent.objects.create(
                    customer_id=event.customer_id, purpose_id=event.purpose_id, event=event,
                    granted=event.action == GRANT, notice_id=event.notice_id, occurred_at=event.occurred_at,
                )
            return
        except IntegrityError:  # created concurrently: lock it and compare as below
            current = ConsentStateCurrent.objects.select_for_update().get(
                customer_id=event.customer_id, purpose_id=event.purpose_id
            )
    if (event.occurred_at, event.id) < (current.occurred_at, current.event_id):
        return  # a back-dated event: history changes, "now" does not
    current.event = event
    current.granted = event.action == GRANT
    current.notice_id = event.notice_id
    current.occurred_at = event.occurred_at
    current.updated_at = timezone.now()
    current.save(update_fields=["event", "granted", "notice", "occurred_at", "updated_at"])


def send_consent_changed(*, customer_id: uuid.UUID, purpose: str | None, kind: str) -> None:
    """Tell the apps above (scoring) in this transaction; a receiver's failure rolls the change back."""
    signals.consent_changed.send(sender=ConsentEvent, customer_id=customer_id, purpose=purpose, kind=kind)


def consent_governance_fields(event: ConsentEvent, purpose: str, notice_version: str, **extra: Any
                              ) -> dict[str, Any]:
    """The governance record of a written consent event (``kind``, ``actor``, ``subject``, PII-free
    ``details``), the one shape for the single path and the bulk path (``audit.services.governance_record``
    or ``governance_records_bulk``)."""
    return {
        "kind": "consent.granted" if event.action == GRANT else "consent.withdrawn",
        "actor": event.actor,
        "subject": event.customer_id,
        "details": {
            "event_id": event.id,
            "purpose": purpose,
            "notice_version": notice_version,
            "source": event.source,
            "channel": event.channel,
            **extra,
        },
    }


def _governance_consent(event: ConsentEvent, purpose: str, notice_version: str, **extra: Any) -> None:
    audit_services.governance_record(**consent_governance_fields(event, purpose, notice_version, **extra))


def _record(
    *, action: str, customer_id: Any, purpose: Any, source: Any, channel: Any, evidence: Any,
    notice_version: Any, actor: Any, at: Any,
) -> tuple[ConsentEvent, bool]:
    """Validate and append one consent event. Returns (event, created); an event recorded with an explicit
    time that repeats an existing one (same customer, purpose, action, time, source, channel, notice) is not
    duplicated: the existing event is returned with ``created=False``."""
    actor = _check_actor(actor)
    pid = selectors.purpose_id_for(purpose)
    source = check_code(source, "source")
    channel = check_channel(channel)
    clean_evidence = sanitize_evidence(evidence)
    explicit_time = at is not None
    occurred_at = check_at(at) if explicit_time else timezone.now()
    cid = _check_customer(customer_id)
    notice = _resolve_notice(purpose_id=pid, purpose=purpose, notice_version=notice_version, at=occurred_at)
    dedupe_key = None
    if explicit_time:
        dedupe_key = event_dedupe_key(customer_id=cid, purpose=purpose, action=action, at=occurred_at, source=source,
                                 channel=channel, notice_version=notice.version)
        existing = ConsentEvent.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            event = ConsentEvent.objects.create(
                customer_id=cid, purpose_id=pid, action=action, notice=notice, source=source, channel=channel,
                occurred_at=occurred_at, evidence=clean_evidence, actor=actor, dedupe_key=dedupe_key,
            )
    except IntegrityError:
        existing = ConsentEvent.objects.filter(dedupe_key=dedupe_key).first() if dedupe_key else None
        if existing is None:
            raise
        return existing, False
    _update_current(event)
    _governance_consent(event, purpose, notice.version)
    send_consent_changed(customer_id=cid, purpose=purpose,
                     kind=signals.GRANTED if action == GRANT else signals.WITHDRAWN)
    return event, True


@transaction.atomic
def consent_grant(
    *, customer_id: uuid.UUID, purpose: str, source: str, channel: str, evidence: dict | None = None,
    notice_version: str | None = None, actor: str, at: datetime | None = None,
) -> ConsentEvent:
    """Record that the customer granted consent for ``purpose`` (on ``notice_version``, default: the notice in
    force at ``at``; ``at`` default now, never in the future)."""
    event, _ = _record(action=GRANT, customer_id=customer_id, purpose=purpose, source=source, channel=channel,
                       evidence=evidence, notice_version=notice_version, actor=actor, at=at)
    return event


@transaction.atomic
def consent_withdraw(
    *, customer_id: uuid.UUID, purpose: str, source: str, channel: str, evidence: dict | None = None,
    notice_version: str | None = None, actor: str, at: datetime | None = None,
) -> ConsentEvent:
    """Record that the customer withdrew consent for ``purpose``. Same shape as :func:`consent_grant`."""
    event, _ = _record(action=WITHDRAW, customer_id=customer_id, purpose=purpose, source=source, channel=channel,
                       evidence=evidence, notice_version=notice_version, actor=actor, at=at)
    return event


# --- Bulk import (API and CSV) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkRecordResult:
    index: int
    status: str  # "created" | "unchanged" | "rejected"
    event_id: int | None = None
    code: str | None = None
    field: str | None = None


BULK_FIELDS = frozenset(
    {"customer", "purpose", "action", "source", "channel", "occurred_at", "notice_version", "evidence"}
)


def _bulk_one(record: Any, *, actor: str) -> tuple[ConsentEvent, bool]:
    if not isinstance(record, dict):
        raise invalid_field("record")
    if set(record) - BULK_FIELDS:
        raise invalid_field("record", "unknown_field")
    for field in ("customer", "purpose", "action", "source", "channel"):
        if record.get(field) in (None, ""):
            raise invalid_field(field, "required")
    action = record["action"]
    if action not in (GRANT, WITHDRAW):
        raise invalid_field("action", "invalid_choice")
    return _record(
        action=action, customer_id=record["customer"], purpose=record["purpose"], source=record["source"],
        channel=record["channel"], evidence=record.get("evidence"), notice_version=record.get("notice_version"),
        actor=actor, at=record.get("occurred_at") or None,
    )


@transaction.atomic
def consent_record_import(*, record: dict[str, Any], actor: str) -> tuple[ConsentEvent, bool]:
    """Record one imported consent record (same fields as a bulk record). Returns (event, created); an
    identical record with ``occurred_at`` that was already imported returns the existing event, created=False.
    Raises ``ValidationFailed`` (field + code) or ``NotFound`` (customer)."""
    return _bulk_one(record, actor=_check_actor(actor))


@transaction.atomic
def consent_bulk_record(*, records: list[Any], actor: str, source_label: str = "consent_bulk") -> list[BulkRecordResult]:
    """Record many consent events (a CRM export). Each record is validated and written in its own savepoint:
    a bad record is rejected with a field and a code and writes nothing; good records are committed.
    Records with ``occurred_at`` are idempotent (a re-import changes nothing).

    Record: ``customer`` (pseudonym), ``purpose``, ``action`` (grant|withdraw), ``source``, ``channel``,
    optional ``occurred_at`` (ISO 8601 with offset), ``notice_version``, ``evidence``.
    """
    actor = _check_actor(actor)
    if not isinstance(records, list):
        raise invalid_field("records", "not_a_list")
    if len(records) > bulk_max_records():
        raise PayloadTooLarge("Too many records in one request.", extra={"max_records": bulk_max_records()})
    results = _record_chunks(records, actor=actor)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("created", "unchanged", "rejected")}
    audit_services.governance_record(
        kind="import.completed", actor=actor, subject=None,
        details={"source": source_label, "records": len(records), **counts},
    )
    return results


BULK_CHUNK = 500


def _record_one_by_one(records: list[Any], *, actor: str, offset: int = 0) -> list[BulkRecordResult]:
    """The reference path: each record validated and written in its own savepoint."""
    results: list[BulkRecordResult] = []
    for index, record in enumerate(records, start=offset):
        try:
            with transaction.atomic():
                event, created = _bulk_one(record, actor=actor)
        except ApplicationError as exc:
            field, code = _error_field(exc)
            results.append(BulkRecordResult(index=index, status="rejected", code=code, field=field))
            continue
        results.append(BulkRecordResult(index=index, status="created" if created else "unchanged", event_id=event.id))
    return results


def _record_chunks(records: list[Any], *, actor: str) -> list[BulkRecordResult]:
    """Record ``records`` set-based per chunk (``consent.bulk``); a chunk the database refuses while writing
    (a duplicate committed concurrently) is rolled back to its savepoint and recorded the reference way."""
    from consent import bulk

    results: list[BulkRecordResult] = []
    for start in range(0, len(records), BULK_CHUNK):
        chunk = records[start:start + BULK_CHUNK]
        try:
            with transaction.atomic():
                outcomes = bulk.record_many(chunk, actor=actor)
        except IntegrityError:
            results.extend(_record_one_by_one(chunk, actor=actor, offset=start))
            continue
        for index, outcome in enumerate(outcomes, start=start):
            if outcome.error is not None:
                field, code = _error_field(outcome.error)
                results.append(BulkRecordResult(index=index, status="rejected", code=code, field=field))
            else:
                results.append(BulkRecordResult(index=index, status=outcome.status, event_id=outcome.event_id))
    return results


def consent_record_many(*, records: list[Any], actor: str) -> list[BulkRecordResult]:
    """Record many consent events (bulk fields) in the caller's transaction, set-based per chunk, without the
    ``import.completed`` summary of ``consent_bulk_record`` (the demo's set-up, CSV imports: their callers
    record their own). One result per record, in order; a bad record is rejected alone."""
    return _record_chunks(records, actor=_check_actor(actor))


# --- Processing flags (Art. 18 restriction, Art. 21 objection) -------------------------------------------


def _flag(*, kind: str, action: str, customer_id: Any, actor: Any, purpose: str | None, reason: Any,
          governance_kind: str) -> ProcessingFlag:
    actor = _check_actor(actor)
    reason = check_code(reason, "reason")
    pid = selectors.purpose_id_for(purpose) if purpose is not None else None
    cid = _check_customer(customer_id)
    flag = ProcessingFlag.objects.create(
        customer_id=cid, kind=kind, action=action, purpose_id=pid, reason=reason, at=timezone.now(), actor=actor
    )
    current = ProcessingFlagCurrent.objects.filter(customer_id=cid, kind=kind)
    same_scope = current.filter(purpose__isnull=True) if pid is None else current.filter(purpose_id=pid)
    if action == ProcessingFlag.Action.SET:
        if not same_scope.exists():
            ProcessingFlagCurrent.objects.create(customer_id=cid, kind=kind, purpose_id=pid, flag=flag, since=flag.at)
    elif pid is None:
        current.delete()  # lifting "all purposes" lifts every flag of this kind
    else:
        same_scope.delete()
    audit_services.governance_record(
        kind=governance_kind, actor=actor, subject=cid,
        details={"flag_id": flag.id, "kind": kind, "purpose": purpose, "reason": reason},
    )
    if action == ProcessingFlag.Action.LIFT:
        change = signals.LIFTED
    else:
        change = signals.RESTRICTED if kind == FlagKind.RESTRICTION else signals.OBJECTED
    send_consent_changed(customer_id=cid, purpose=purpose, kind=change)
    return flag


@transaction.atomic
def processing_restrict(
    *, customer_id: uuid.UUID, actor: str, reason: str, purpose: str | None = None
) -> ProcessingFlag:
    """Restrict processing (Art. 18) for ``purpose`` or, with ``purpose=None``, for every purpose.
    ``reason`` is a code (e.g. ``accuracy_contested``, ``unlawful_processing``, ``legal_claims``,
    ``objection_pending``), never free text."""
    return _flag(kind=FlagKind.RESTRICTION, action=ProcessingFlag.Action.SET, customer_id=customer_id, actor=actor,
                 purpose=purpose, reason=reason, governance_kind="processing.restricted")


@transaction.atomic
def processing_restriction_lift(
    *, customer_id: uuid.UUID, actor: str, purpose: str | None = None, reason: str = "lifted"
) -> ProcessingFlag:
    """Lift a restriction on ``purpose``; ``purpose=None`` lifts every restriction of the customer."""
    return _flag(kind=FlagKind.RESTRICTION, action=ProcessingFlag.Action.LIFT, customer_id=customer_id, actor=actor,
                 purpose=purpose, reason=reason, governance_kind="processing.restriction_lifted")


@transaction.atomic
def processing_object(
    *, customer_id: uuid.UUID, actor: str, purpose: str | None = None, reason: str = "objection"
) -> ProcessingFlag:
    """Record an objection (Art. 21) to processing for ``purpose`` or, with ``purpose=None``, every purpose."""
    return _flag(kind=FlagKind.OBJECTION, action=ProcessingFlag.Action.SET, customer_id=customer_id, actor=actor,
                 purpose=purpose, reason=reason, governance_kind="processing.objected")


@transaction.atomic
def processing_objection_lift(
    *, customer_id: uuid.UUID, actor: str, purpose: str | None = None, reason: str = "lifted"
) -> ProcessingFlag:
    """Lift an objection on ``purpose``; ``purpose=None`` lifts every objection of the customer."""
    return _flag(kind=FlagKind.OBJECTION, action=ProcessingFlag.Action.LIFT, customer_id=customer_id, actor=actor,
                 purpose=purpose, reason=reason, governance_kind="processing.objection_lifted")


# --- Erasure and merges --------------------------------------------------------------------------------------


@transaction.atomic
def consent_erase_subject(*, customer_id: uuid.UUID, actor: str) -> int:
    """Delete every consent event, processing flag and current-state row of the subject (erasure, Art. 17).
    Returns the number of events (consent + flag) deleted. Called by subject_rights' erasure, in its
    transaction, before ``profiles.customer_erase`` (which writes the ``customer.erased`` governance record).
    """
    _check_actor(actor)
    try:
        cid = as_uuid(customer_id)
    except (TypeError, ValueError, AttributeError) as exc:
        raise invalid_field("customer") from exc
    from profiles import selectors as profiles_selectors

    # The subject and the pseudonyms merged into it (profiles erases them together).
    group = [cid, *profiles_selectors.customer_aliases(customer_id=cid)]
    ConsentStateCurrent.objects.filter(customer_id__in=group).delete()
    ProcessingFlagCurrent.objects.filter(customer_id__in=group).delete()
    with erasure_bypass():
        consent_deleted, _ = ConsentEvent.objects.filter(customer_id__in=group).delete()
        flags_deleted, _ = ProcessingFlag.objects.filter(customer_id__in=group).delete()
    return consent_deleted + flags_deleted


@transaction.atomic
def consent_merge_carry_over(*, survivor_id: uuid.UUID, loser_ids: list[uuid.UUID], actor: str = "job:identity_merge") -> int:
    """Identity resolution joined ``loser_ids`` into ``survivor_id`` (same person): copy the losers' consent
    events onto the survivor at their original times (so the person's latest decision wins, e.g. a withdrawal
    made through another system) and carry their active restrictions/objections over. Idempotent. Returns the
    number of consent events copied. Called from the ``profiles.signals.customers_merged`` receiver, inside
    the merge transaction."""
    actor = _check_actor(actor)
    copied = 0
    for loser_id in loser_ids:
        for event in ConsentEvent.objects.filter(customer_id=loser_id).select_related("purpose", "notice").order_by(
            "occurred_at", "id"
        ):
            key = blind_index("consent_merge", f"{survivor_id}|{event.id}")
            if ConsentEvent.objects.filter(dedupe_key=key).exists():
                continue
            carried = ConsentEvent.objects.create(
                customer_id=survivor_id, purpose_id=event.purpose_id, action=event.action, notice_id=event.notice_id,
                source=event.source, channel=event.channel, occurred_at=event.occurred_at,
                evidence={**event.evidence, "carried_over_from_event": event.id}, actor=actor, dedupe_key=key,
            )
            _update_current(carried)
            _governance_consent(carried, event.purpose.code, event.notice.version, carried_over_from=event.id)
            send_consent_changed(customer_id=survivor_id, purpose=event.purpose.code,
                             kind=signals.GRANTED if event.action == GRANT else signals.WITHDRAWN)
            copied += 1
        for flag in ProcessingFlagCurrent.objects.filter(customer_id=loser_id).select_related("purpose"):
            survivor_flags = ProcessingFlagCurrent.objects.filter(customer_id=survivor_id, kind=flag.kind)
            if (survivor_flags.filter(purpose__isnull=True) if flag.purpose_id is None
                    else survivor_flags.filter(purpose_id=flag.purpose_id)).exists():
                continue
            _flag(
                kind=flag.kind, action=ProcessingFlag.Action.SET, customer_id=survivor_id, actor=actor,
                purpose=flag.purpose.code if flag.purpose else None, reason="identity_merge",
                governance_kind="processing.restricted" if flag.kind == FlagKind.RESTRICTION else "processing.objected",
            )
        # The alias is no processing subject any more: its "now" rows go (its events stay as history), so a
        # set-based gate given the alias id answers "no_consent"; single-customer reads resolve the alias.
        ConsentStateCurrent.objects.filter(customer_id=loser_id).delete()
        ProcessingFlagCurrent.objects.filter(customer_id=loser_id).delete()
    return copied


# --- Notices -----------------------------------------------------------------------------------------------


@transaction.atomic
def notice_publish(
    *, purpose: str, text: str, requires_reconsent: bool, actor: str, version: str | None = None
) -> ConsentNotice:
    """Publish a new notice version for ``purpose`` (now). With ``requires_reconsent``, grants on earlier
    versions stop counting from this moment until the person grants again on this (or a later) version."""
    actor = _check_actor(actor)
    pid = selectors.purpose_id_for(purpose)
    if not isinstance(text, str) or not text.strip() or len(text) > 50_000:
        raise invalid_field("text")
    existing = ConsentNotice.objects.select_for_update().filter(purpose_id=pid)
    if version is None:
        version = f"v{existing.count() + 1}"
        while existing.filter(version=version).exists():
            version = f"{version}.1"
    elif not isinstance(version, str) or not VERSION.match(version):
        raise invalid_field("version")
    elif existing.filter(version=version).exists():
        raise invalid_field("version", "unique")
    notice = ConsentNotice.objects.create(
        purpose_id=pid, version=version, text=text, text_hash=notice_text_hash(text),
        requires_reconsent=bool(requires_reconsent), published_at=timezone.now(),
    )
    audit_services.governance_record(
        kind="notice.published", actor=actor, subject=None,
        details={"purpose": purpose, "version": version, "text_hash": notice.text_hash,
                 "requires_reconsent": notice.requires_reconsent},
    )
    return notice
