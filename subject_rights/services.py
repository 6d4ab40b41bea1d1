"""All writes of the subject-rights app: requests and their workflow, the statutory clock, verification
codes, exports, erasure (with the ledger), restriction/objection, rectification and human reviews.

Every service is keyword-only and ``@transaction.atomic``; every status change writes the audit
governance record ``dsr.status_changed`` in the same transaction. Other apps are used only through
their ``services`` and ``selectors`` modules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import selectors as audit_selectors
from audit import services as audit_services
from config import envelope
from config.blind_index import InvalidIdentifier, email_index, source_index
from config.envelope import DecryptionError, WrappedKey
from config.errors import NotFound, ServiceUnavailable, ValidationFailed
from config.file_modes import open_private, private_dir
from consent import selectors as consent_selectors
from consent import services as consent_services
from events import services as events_services
from profiles import selectors as profile_selectors
from profiles import services as profile_services

from . import clock, ledger, links, notifications, verification
from .errors import (
    ExtensionExhausted,
    ExtensionTooLate,
    IdempotencyKeyReused,
    InvalidTransition,
    TooManyRequests,
)
from .models import (
    OPEN_STATUSES,
    Channel,
    ErasureLedgerEntry,
    Export,
    ExtensionCode,
    LegalHold,
    Outcome,
    RejectionCode,
    RequestType,
    ReviewTask,
    Status,
    StatusChange,
    SubjectRequest,
    VerificationCode,
)

logger = logging.getLogger(__name__)

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.RECEIVED: frozenset({Status.IDENTITY_PENDING, Status.VERIFIED, Status.REJECTED}),
    Status.IDENTITY_PENDING: frozenset({Status.VERIFIED, Status.REJECTED}),
    Status.VERIFIED: frozenset({Status.IN_PROGRESS, Status.EXTENDED, Status.COMPLETED, Status.REJECTED}),
    Status.IN_PROGRESS: frozenset({Status.EXTENDED, Status.COMPLETED, Status.REJECTED}),
    Status.EXTENDED: frozenset({Status.EXTENDED, Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED}),
    Status.COMPLETED: frozenset(),
    Status.REJECTED: frozenset(),
}
WORKABLE = (Status.VERIFIED, Status.IN_PROGRESS, Status.EXTENDED)
SELF = "subject:self"
CONTACT_LABEL = "dsr.contact"
PAYLOAD_LABEL = "dsr.rectification"
STATEMENT_LABEL = "dsr.contest_statement"
MAX_STATEMENT_LENGTH = 2000
MAX_REASON_LENGTH = 2000
MAX_FIELDS = 20


# --------------------------------------------------------------------------------------------------------
# Workflow primitives
# --------------------------------------------------------------------------------------------------------


def _lock(request_id: UUID | str) -> SubjectRequest:
    try:
        return SubjectRequest.objects.select_for_update().get(id=request_id)
    except (SubjectRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


def _subject_of(req: SubjectRequest) -> UUID:
    """The request's pseudonym (callers have checked that a customer matched)."""
    if req.subject is None:
        raise NotFound()
    return req.subject


def _scrubbed(text: str, subject: UUID | None, *, max_length: int = MAX_REASON_LENGTH) -> str:
    """Free text typed by the DPO (reasons, rationales, justifications) is pseudonymized like any customer
    text before it is stored: it is about a person and may name them."""
    return profile_services.free_text_scrub(text=text.strip(), customer_id=subject)[:max_length]


def _blob(value: bytes | memoryview | None) -> bytes:
    if value is None:
        raise NotFound()
    return bytes(value)


def _governance(*, req: SubjectRequest, actor: str, from_status: str, to_status: str, code: str = "",
                extra: dict[str, Any] | None = None) -> None:
    details: dict[str, Any] = {
        "request": str(req.id), "type": req.type, "channel": req.channel,
        "from": from_status or None, "to": to_status,
    }
    if code:
        details["code"] = code
    if extra:
        details.update(extra)
    audit_services.governance_record(kind="dsr.status_changed", actor=actor, subject=req.subject, details=details)


def _recompute_due(req: SubjectRequest, now: datetime) -> None:
    state = clock.clock_state(received_at=req.received_at, paused_total=req.paused_total,
                              paused_since=req.paused_since, extension_months=req.extension_months, now=now)
    req.due_at = state.due_at


def _transition(req: SubjectRequest, to_status: str, *, actor: str, code: str = "",
                extra: dict[str, Any] | None = None) -> None:
    """Move ``req`` (locked) to ``to_status``: checks the workflow, runs the clock, records the change."""
    from_status = req.status
    if to_status not in TRANSITIONS[from_status]:
        raise InvalidTransition(extra={"from": from_status, "to": to_status})
    now = timezone.now()
    if from_status == Status.IDENTITY_PENDING and req.paused_since is not None:
        req.paused_total += max(now - req.paused_since, timedelta(0))
        req.paused_since = None
    if to_status == Status.IDENTITY_PENDING:
        req.paused_since = now
    if to_status == Status.VERIFIED:
        req.verified_at = now
    req.status = to_status
    req.status_changed_at = now
    _recompute_due(req, now)
    req.save()
    StatusChange.objects.create(request=req, from_status=from_status, to_status=to_status, actor=actor,
                                code=code[:32], at=now)
    _governance(req=req, actor=actor, from_status=from_status, to_status=to_status, code=code, extra=extra)
    logger.info("subject request status changed", extra={"event": "dsr.status_changed", "request_id": str(req.id),
                                                          "status": to_status, "code": code})


def _close(req: SubjectRequest, to_status: str, *, actor: str, outcome: str = "", rejection_code: str = "",
           reason: str = "", code: str = "", address: str | None = None, notify: bool = True,
           message: str = "") -> None:
    """Complete or reject: record the outcome, shred contact details and pending payloads, tell the requester
    (``message``: the reviewer's explanation of a contest's outcome, already scrubbed of others' data)."""
    if address is None and notify:
        address = _contact_open(req)
    req.outcome = outcome
    req.rejection_code = rejection_code
    req.rejection_reason = reason[:MAX_REASON_LENGTH]
    req.completed_at = timezone.now()
    req.alert_level = ""
    req.email_digest = ""
    req.payload_sealed = None
    _contact_shred(req)
    _transition(req, to_status, actor=actor, code=code or outcome or rejection_code,
                extra={"outcome": outcome} if outcome else None)
    if notify and address:
        notifications.send_status(
            to=address, language=req.language, request_id=str(req.id),
            status_label=Outcome(outcome).label if outcome else Status(to_status).label,
            status_link=links.status_url(req.id),
            reason_label=RejectionCode(rejection_code).label if rejection_code else "",
            reason_text=req.rejection_reason if rejection_code else "",
            message=message,
        )


# --------------------------------------------------------------------------------------------------------
# The requester's contact address: sealed under the customer's key, or under a per-request key
# --------------------------------------------------------------------------------------------------------


def _request_key_aad(req: SubjectRequest) -> bytes:
    return f"dsr-contact|{req.id}".encode()


def _contact_seal(req: SubjectRequest, address: str) -> None:
    if req.subject is not None and profile_selectors.customer_exists(customer_id=req.subject):
        req.contact_mode = "customer"
        req.contact_sealed = profile_services.customer_seal(
            customer_id=req.subject, label=f"{CONTACT_LABEL}|{req.id}", payload={"email": address})
        return
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id=f"dsr:{req.id}")
    req.contact_mode = "request"
    req.contact_kek_id = wrapped.kek_id
    req.contact_key_wrapped = wrapped.wrapped
    req.contact_sealed = envelope.encrypt_text(dek, address, _request_key_aad(req))


def _contact_open(req: SubjectRequest) -> str | None:
    """The requester's e-mail, or None (no contact, or already shredded/erased)."""
    if not req.contact_sealed:
        return None
    try:
        if req.contact_mode == "customer" and req.subject is not None:
            payload = profile_selectors.customer_unseal(
                customer_id=req.subject, label=f"{CONTACT_LABEL}|{req.id}", blob=bytes(req.contact_sealed))
            return str(payload.get("email") or "") or None
        if req.contact_mode == "request" and req.contact_key_wrapped:
            dek = envelope.unwrap_data_key(WrappedKey(req.contact_kek_id, bytes(req.contact_key_wrapped)),
                                           customer_id=f"dsr:{req.id}")
            return envelope.decrypt_text(dek, bytes(req.contact_sealed), _request_key_aad(req))
    except (DecryptionError, NotFound):
        return None
    return None


def _contact_shred(req: SubjectRequest) -> None:
    req.contact_sealed = None
    req.contact_key_wrapped = None
    req.contact_kek_id = ""
    req.contact_mode = ""


# --------------------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    request: SubjectRequest
    created: bool


def _hmac_hex(*parts: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def _idempotency_hash(requester: str, key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise ValidationFailed(extra={"errors": {"idempotency_key": [{"code": "invalid", "message": "Invalid value."}]}})
    return hashlib.sha256(f"{requester}\x00{key}".encode()).hexdigest()


def _field_error(field: str, code: str = "invalid") -> ValidationFailed:
    from config.errors import _FIELD_MESSAGES

    return ValidationFailed(extra={"errors": {field: [{"code": code,
                                                       "message": _FIELD_MESSAGES.get(code, "Invalid value.")}]}})


def _check_type(request_type: str) -> str:
    if request_type not in RequestType.values:
        raise _field_error("type", "invalid_choice")
    return request_type


def _check_purpose(purpose: str | None) -> str:
    if not purpose:
        return ""
    try:
        consent_selectors.purpose_get(code=purpose)
    except NotFound as exc:
        raise _field_error("purpose", "invalid_choice") from exc
    return purpose


def _check_fields(fields: dict[str, str | None] | None) -> dict[str, str | None]:
    if not isinstance(fields, dict) or not fields or len(fields) > MAX_FIELDS:
        raise _field_error("fields", "invalid")
    for name, value in fields.items():
        if not isinstance(name, str) or not name or len(name) > 63 or not (value is None or isinstance(value, str)):
            raise _field_error("fields", "invalid")
        if isinstance(value, str) and len(value) > 500:
            raise _field_error("fields", "max_length")
    return fields


def _resolve_subject(*, customer_id: UUID | None, email: str | None, source: str | None,
                     external_id: str | None) -> tuple[UUID | None, str]:
    """The pseudonym (or None) and a keyed digest of the identifier used (for the fingerprint)."""
    given = [customer_id is not None, bool(email), bool(source or external_id)]
    if sum(given) != 1:
        raise _field_error("customer", "required")
    if customer_id is not None:
        resolved = profile_selectors.customer_resolve(customer_id=customer_id)
        return resolved, f"id:{customer_id}"
    if email:
        try:
            digest = email_index(email)
        except InvalidIdentifier as exc:
            raise _field_error("email") from exc
        return profile_selectors.customer_find(email=email), f"email:{digest}"
    if not source or not external_id:
        raise _field_error("external_id" if source else "source", "required")
    try:
        digest = source_index(source, external_id)
    except InvalidIdentifier as exc:
        raise _field_error("external_id") from exc
    return profile_selectors.customer_find(source=source, external_id=external_id), f"source:{digest}"


def _profile_email(subject: UUID) -> str | None:
    try:
        return profile_selectors.customer_personal_data(customer_id=subject).get("email") or None
    except (NotFound, DecryptionError):
        return None


def _decision_belongs(decision_id: int, subject: UUID | None) -> Any:
    """The decision, when it is about this subject. Otherwise 404 ``decision_not_found``, whether it is
    someone else's, missing, or the subject is unknown: the answer never tells which."""
    missing = NotFound("No such decision about this customer.", code="decision_not_found")
    if subject is None:
        raise missing
    try:
        decision = audit_selectors.decision_get(decision_id=decision_id)
    except NotFound as exc:
        raise missing from exc
    if str(_attr(decision, "customer")) != str(subject):
        raise missing
    return decision


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _create(*, idempotency_hash: str | None, fingerprint: str, **fields: Any) -> Submission:
    """Insert the request; a concurrent insert with the same key loses and returns the winner."""
    if idempotency_hash:
        existing = SubjectRequest.objects.filter(idempotency_key=idempotency_hash).first()
        if existing is not None:
            return _replayed(existing, fingerprint)
    now = timezone.now()
    try:
        with transaction.atomic():
            req = SubjectRequest.objects.create(
                idempotency_key=idempotency_hash, fingerprint=fingerprint, received_at=now, status_changed_at=now,
                due_at=clock.add_calendar_months(now, 1), **fields,
            )
    except IntegrityError:
        existing = SubjectRequest.objects.filter(idempotency_key=idempotency_hash).first()
        if idempotency_hash is None or existing is None:
            raise
        return _replayed(existing, fingerprint)
    StatusChange.objects.create(request=req, from_status="", to_status=Status.RECEIVED, actor=req.requester, at=now)
    _governance(req=req, actor=req.requester, from_status="", to_status=Status.RECEIVED)
    return Submission(request=req, created=True)


def _replayed(existing: SubjectRequest, fingerprint: str) -> Submission:
    if not hmac.compare_digest(existing.fingerprint, fingerprint):
        raise IdempotencyKeyReused()
    return Submission(request=existing, created=False)


@transaction.atomic
def request_submit(
    *,
    type: str,  # noqa: A002 - the domain word
    channel: str,
    requester: str,
    customer_id: UUID | None = None,
    email: str | None = None,
    source: str | None = None,
    external_id: str | None = None,
    idempotency_key: str | None = None,
    purpose: str | None = None,
    decision_id: int | None = None,
    fields: dict[str, str | None] | None = None,
    contact_email: str | None = None,
    language: str = "",
) -> Submission:
    """File a request on the customer's behalf (internal API or the DPO). The caller vouches for the
    requester's identity, so the request is verified at once and, where no human is needed, carried out.

    The subject is resolved through the blind index; when nobody matches, the request is answered as
    "no data held". The same idempotency key from the same requester returns the same request.
    """
    _check_type(type)
    if channel not in (Channel.API, Channel.DPO):
        raise _field_error("channel", "invalid_choice")
    purpose_code = _check_purpose(purpose)
    subject, identifier = _resolve_subject(customer_id=customer_id, email=email, source=source,
                                           external_id=external_id)
    if type == RequestType.CONTEST:
        if decision_id is None:
            raise _field_error("decision_id", "required")
        _decision_belongs(decision_id, subject)
    elif decision_id is not None:
        raise _field_error("decision_id", "invalid")
    if type == RequestType.RECTIFICATION:
        fields = _check_fields(fields)
    elif fields:
        raise _field_error("fields", "invalid")
    address = None
    if contact_email:
        try:
            email_index(contact_email)
        except InvalidIdentifier as exc:
            raise _field_error("contact_email") from exc
        address = contact_email.strip()
    fingerprint = _hmac_hex(
        "submit", type, channel, identifier, purpose_code, str(decision_id or ""),
        json.dumps(fields or {}, sort_keys=True),
    )
    submission = _create(
        idempotency_hash=_idempotency_hash(requester, idempotency_key), fingerprint=fingerprint,
        type=type, channel=channel, requester=requester, subject=subject, purpose=purpose_code,
        decision_id=decision_id, language=(language or "")[:8],
    )
    if not submission.created:
        return submission
    req = submission.request
    if address:
        _contact_seal(req, address)
    if fields and subject is not None and profile_selectors.customer_exists(customer_id=subject):
        req.payload_sealed = profile_services.customer_seal(
            customer_id=subject, label=f"{PAYLOAD_LABEL}|{req.id}", payload={"fields": fields})
    req.save()
    _transition(req, Status.VERIFIED, actor=requester, code=f"vouched_by_{channel}")
    _dispatch_verified(req, actor=requester)
    return submission


@transaction.atomic
def request_submit_self_service(
    *, type: str, email: str, client_address: str, idempotency_key: str | None = None,  # noqa: A002
    language: str = "",
) -> SubjectRequest:
    """File a request from the customer pages. Whatever the e-mail, the same happens: a request is
    created, the clock is paused, and a one-time code is sent to the address. Whether the address
    belongs to a customer is never revealed; if it does not, the request ends as "no data held"."""
    _check_type(type)
    if type == RequestType.CONTEST:
        raise _field_error("type", "invalid_choice")
    try:
        digest = email_index(email)
    except InvalidIdentifier as exc:
        raise _field_error("email") from exc
    key_hash = _idempotency_hash(SELF, idempotency_key)
    fingerprint = _hmac_hex("self", type, digest)
    if key_hash:
        existing = SubjectRequest.objects.filter(idempotency_key=key_hash).first()
        if existing is not None:
            return _replayed(existing, fingerprint).request
    if verification.limit_exceeded(email_digest=digest, client_address=client_address):
        raise TooManyRequests()
    subject = profile_selectors.customer_find(email=email)
    submission = _create(
        idempotency_hash=key_hash, fingerprint=fingerprint, type=type, channel=Channel.SELF_SERVICE,
        requester=SELF, subject=subject, email_digest=digest, language=(language or "")[:8],
    )
    req = submission.request
    if not submission.created:
        return req
    address = email.strip()
    _contact_seal(req, address)
    req.save()
    _transition(req, Status.IDENTITY_PENDING, actor=SELF, code="code_sent")
    _issue_code(req, address)
    return req


def _issue_code(req: SubjectRequest, address: str) -> None:
    req.codes.filter(used_at__isnull=True, superseded=False).update(superseded=True)
    code = verification.code_generate()
    now = timezone.now()
    VerificationCode.objects.create(
        request=req, code_hash=verification.code_hash(request_id=req.id, code=code), created_at=now,
        expires_at=now + timedelta(seconds=settings.DSR_OTP_TTL_SECONDS),
    )
    notifications.send_code(to=address, code=code, ttl_minutes=max(1, settings.DSR_OTP_TTL_SECONDS // 60),
                            language=req.language, request_id=str(req.id))


@transaction.atomic
def verification_resend(*, request_id: UUID, client_address: str) -> None:
    """Send a fresh code (throttled). Silently does nothing when the request no longer waits for one."""
    req = _lock(request_id)
    if req.status != Status.IDENTITY_PENDING:
        return
    if verification.limit_exceeded(email_digest=req.email_digest, client_address=client_address):
        raise TooManyRequests()
    address = _contact_open(req)
    if address:
        _issue_code(req, address)


class VerifyResult:
    OK = "ok"
    WRONG = "wrong"
    EXPIRED = "expired"
    LOCKED = "locked"
    NOT_PENDING = "not_pending"


@transaction.atomic
def request_verify_code(*, request_id: UUID, code: str) -> str:
    """Check a one-time code. Returns a ``VerifyResult`` value; failed attempts are counted (and kept)."""
    req = _lock(request_id)
    if req.status != Status.IDENTITY_PENDING:
        return VerifyResult.OK if req.verified_at else VerifyResult.NOT_PENDING
    current = req.codes.filter(used_at__isnull=True, superseded=False).order_by("-created_at", "-id").first()
    if current is None:
        return VerifyResult.EXPIRED
    if current.attempts >= settings.DSR_OTP_MAX_ATTEMPTS:
        return VerifyResult.LOCKED
    if current.expires_at <= timezone.now():
        return VerifyResult.EXPIRED
    cleaned = "".join(ch for ch in str(code) if ch.isdigit())[: verification.CODE_DIGITS + 2]
    if not verification.code_matches(request_id=req.id, code=cleaned, stored_hash=current.code_hash):
        current.attempts += 1
        current.save(update_fields=["attempts"])
        logger.info("verification code rejected", extra={"event": "dsr.code_rejected", "request_id": str(req.id),
                                                         "attempt": current.attempts})
        return VerifyResult.LOCKED if current.attempts >= settings.DSR_OTP_MAX_ATTEMPTS else VerifyResult.WRONG
    current.used_at = timezone.now()
    current.save(update_fields=["used_at"])
    _transition(req, Status.VERIFIED, actor=SELF, code="otp")
    _dispatch_verified(req, actor=SELF)
    return VerifyResult.OK


# --------------------------------------------------------------------------------------------------------
# Carrying requests out
# --------------------------------------------------------------------------------------------------------


def _subject_live(req: SubjectRequest) -> bool:
    return req.subject is not None and profile_selectors.customer_exists(customer_id=req.subject)


def _dispatch_verified(req: SubjectRequest, *, actor: str) -> None:
    """After verification: answer at once where no human is needed (the DPO handles erasure and any
    rectification still waiting for values; contests go to human review)."""
    if not _subject_live(req):
        _transition(req, Status.IN_PROGRESS, actor=actor, code="no_data_held")
        _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return
    if req.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        _start_export(req, actor=actor)
    elif req.type in (RequestType.RESTRICTION, RequestType.OBJECTION):
        _transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_processing_flag(req, actor=actor)
    elif req.type == RequestType.CONTEST:
        _transition(req, Status.IN_PROGRESS, actor=actor, code="review_opened")
        _open_review(req)
    elif req.type == RequestType.RECTIFICATION and req.payload_sealed:
        _transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_rectification(req, actor=actor)


def _start_export(req: SubjectRequest, *, actor: str) -> None:
    from subject_rights.tasks import build_export

    if req.status != Status.IN_PROGRESS:
        _transition(req, Status.IN_PROGRESS, actor=actor, code="export_queued")
    build_export.delay_on_commit(str(req.id))


def _apply_processing_flag(req: SubjectRequest, *, actor: str) -> None:
    purpose = req.purpose or None
    if req.type == RequestType.RESTRICTION:
        consent_services.processing_restrict(customer_id=_subject_of(req), actor=actor, reason=f"dsr:{req.id}",
                                             purpose=purpose)
        outcome = Outcome.RESTRICTED
    else:
        consent_services.processing_object(customer_id=_subject_of(req), actor=actor, purpose=purpose)
        outcome = Outcome.OBJECTED
    req.result = {**req.result, "purpose": req.purpose or None}
    _close(req, Status.COMPLETED, actor=actor, outcome=outcome)


def _latest_decision_ids(customer_id: UUID) -> dict[str, int]:
    """The latest decision record per purpose (PII-free ids)."""
    latest: dict[str, int] = {}
    for decision in audit_selectors.decisions_for_subject(customer=customer_id):  # oldest first
        latest[_attr(decision, "purpose")] = _attr(decision, "id")
    return latest


def _rescore(customer_id: UUID, *, actor: str) -> dict[str, str]:
    """Rescore one customer for every scoring purpose now; the scoring gate decides what may run.
    Returns the outcome per purpose ("scored", a gate code, or "model_unavailable")."""
    from scoring import services as scoring_services

    outcomes: dict[str, str] = {}
    for purpose in scoring_services.batch_purposes():
        try:
            outcomes[purpose] = scoring_services.score_refresh(customer_id=customer_id, purpose=purpose,
                                                               requester=actor)
        except ServiceUnavailable:
            outcomes[purpose] = "model_unavailable"
    return outcomes


def _apply_rectification(req: SubjectRequest, *, actor: str) -> None:
    subject = _subject_of(req)
    payload = profile_selectors.customer_unseal(customer_id=subject, label=f"{PAYLOAD_LABEL}|{req.id}",
                                                blob=_blob(req.payload_sealed))
    before = _latest_decision_ids(subject)
    changed = profile_services.customer_rectify(customer_id=subject, fields=payload["fields"], actor=actor)
    if changed:  # GDPR Art. 19: recipients are told (field NAMES only, never values), in this transaction
        events_services.event_record(type="customer.rectified", customer_id=subject, purpose=None,
                                     payload={"fields": sorted(changed)})
    rescored = _rescore(subject, actor=actor) if changed else {}
    after = _latest_decision_ids(subject)
    req.result = {**req.result, "changed_fields": changed, "rescored": rescored,
                  "decisions_before": sorted(before.values()),
                  "decisions_after": sorted(v for k, v in after.items() if before.get(k) != v)}
    _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.RECTIFIED)


def _open_review(req: SubjectRequest) -> ReviewTask:
    existing = ReviewTask.objects.filter(request=req).first()
    if existing is not None:
        return existing
    if req.decision_id is None:
        raise _field_error("decision_id", "required")
    decision = _decision_belongs(req.decision_id, req.subject)
    return ReviewTask.objects.create(request=req, subject=_subject_of(req), decision_id=req.decision_id,
                                     purpose=_attr(decision, "purpose") or "")


@transaction.atomic
def request_rectification_provide(*, request_id: UUID, fields: dict[str, str | None], actor: str) -> SubjectRequest:
    """The verified requester (or the DPO) supplies the corrected values; they are applied at once,
    the customer is rescored, and the before/after decision records are kept on the request."""
    req = _lock(request_id)
    if req.type != RequestType.RECTIFICATION or req.status not in WORKABLE:
        raise InvalidTransition()
    fields = _check_fields(fields)
    if not _subject_live(req):
        _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return req
    req.payload_sealed = profile_services.customer_seal(
        customer_id=_subject_of(req), label=f"{PAYLOAD_LABEL}|{req.id}", payload={"fields": fields})
    if req.status != Status.IN_PROGRESS:
        _transition(req, Status.IN_PROGRESS, actor=actor)
    _apply_rectification(req, actor=actor)
    return req


@transaction.atomic
def request_contest_submit(*, from_request_id: UUID, decision_id: int, requester: str = SELF,
                           statement: str = "") -> SubjectRequest:
    """A verified requester contests one of their automated decisions (from the "why" page): a new
    contest request, verified through the existing one, opening a human review. The customer's own
    ``statement`` is sealed under their data key for the reviewer (read on the review page, with an access
    record) and shredded when the request closes."""
    origin = _lock(from_request_id)
    if origin.verified_at is None or origin.subject is None:
        raise NotFound()
    _decision_belongs(decision_id, origin.subject)
    open_review = ReviewTask.objects.filter(subject=origin.subject, decision_id=decision_id,
                                            state=ReviewTask.State.OPEN).select_related("request").first()
    if open_review is not None:
        return open_review.request
    submission = _create(
        idempotency_hash=None, fingerprint=_hmac_hex("contest", str(origin.id), str(decision_id)),
        type=RequestType.CONTEST, channel=origin.channel, requester=requester, subject=origin.subject,
        decision_id=decision_id, language=origin.language,
    )
    req = submission.request
    # Where to tell the outcome: the origin's address while it is open; once that request closed (its
    # contact shredded), the e-mail address on the customer's profile, which the requester proved theirs.
    address = _contact_open(origin) or _profile_email(origin.subject)
    if address:
        _contact_seal(req, address)
    text = (statement or "").strip()
    if len(text) > MAX_STATEMENT_LENGTH:
        raise _field_error("statement", "max_length")
    if text:
        req.payload_sealed = profile_services.customer_seal(
            customer_id=origin.subject, label=f"{STATEMENT_LABEL}|{req.id}", payload={"statement": text})
    if address or text:
        req.save()
    _transition(req, Status.VERIFIED, actor=requester, code="verified_via_request")
    _dispatch_verified(req, actor=requester)
    return req


# --------------------------------------------------------------------------------------------------------
# DPO actions
# --------------------------------------------------------------------------------------------------------


@transaction.atomic
def request_verify_on_behalf(*, request_id: UUID, actor: str) -> SubjectRequest:
    """The DPO confirms the requester's identity by other means."""
    req = _lock(request_id)
    if req.status not in (Status.RECEIVED, Status.IDENTITY_PENDING):
        raise InvalidTransition()
    req.codes.filter(used_at__isnull=True).update(superseded=True)
    _transition(req, Status.VERIFIED, actor=actor, code="verified_by_dpo")
    _dispatch_verified(req, actor=actor)
    return req


@transaction.atomic
def request_start(*, request_id: UUID, actor: str) -> SubjectRequest:
    req = _lock(request_id)
    if req.status == Status.IN_PROGRESS:
        return req
    _transition(req, Status.IN_PROGRESS, actor=actor)
    return req


@transaction.atomic
def request_complete(*, request_id: UUID, actor: str, outcome: str = Outcome.ANSWERED) -> SubjectRequest:
    req = _lock(request_id)
    if outcome not in Outcome.values or not outcome:
        raise _field_error("outcome", "invalid_choice")
    if req.status not in WORKABLE:
        raise InvalidTransition()
    _close(req, Status.COMPLETED, actor=actor, outcome=outcome)
    return req


@transaction.atomic
def request_reject(*, request_id: UUID, actor: str, code: str, reason: str = "") -> SubjectRequest:
    """Refuse with a reason code (and an optional explanation communicated to the requester)."""
    req = _lock(request_id)
    if code not in RejectionCode.values:
        raise _field_error("code", "invalid_choice")
    if code == RejectionCode.OTHER and not reason.strip():
        raise _field_error("reason", "required")
    _close(req, Status.REJECTED, actor=actor, rejection_code=code, reason=_scrubbed(reason, req.subject))
    return req


@transaction.atomic
def request_extend(*, request_id: UUID, actor: str, months: int, code: str, reason: str) -> SubjectRequest:
    """Extend the deadline by up to two further months (Art. 12(3)) - only before the first month
    ends, with a reason that is communicated to the requester."""
    req = _lock(request_id)
    if code not in ExtensionCode.values:
        raise _field_error("code", "invalid_choice")
    if not reason or not reason.strip():
        raise _field_error("reason", "required")
    if not isinstance(months, int) or months < 1:
        raise _field_error("months", "min_value")
    if req.status not in WORKABLE:
        raise InvalidTransition()
    now = timezone.now()
    state = clock.clock_state(received_at=req.received_at, paused_total=req.paused_total,
                              paused_since=req.paused_since, extension_months=req.extension_months, now=now)
    if now >= state.first_month_end:
        raise ExtensionTooLate()
    if req.extension_months + months > clock.MAX_EXTENSION_MONTHS:
        raise ExtensionExhausted()
    req.extension_months += months
    req.extension_code = code
    req.extension_reason = _scrubbed(reason, req.subject)
    req.extended_at = now
    _transition(req, Status.EXTENDED, actor=actor, code=code, extra={"months": months})
    address = _contact_open(req)
    if address:
        notifications.send_extension(
            to=address, language=req.language, request_id=str(req.id), months=months, due_at=req.due_at,
            reason_label=ExtensionCode(code).label, reason_text=req.extension_reason,
            status_link=links.status_url(req.id),
        )
    return req


@transaction.atomic
def request_execute(*, request_id: UUID, actor: str) -> SubjectRequest:
    """Carry out a verified request (the console's "execute" action)."""
    req = _lock(request_id)
    if req.status not in WORKABLE:
        raise InvalidTransition()
    if not _subject_live(req):
        _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return req
    if req.type == RequestType.ERASURE:
        _erase(req, actor=actor)
    elif req.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        _start_export(req, actor=actor)
    elif req.type in (RequestType.RESTRICTION, RequestType.OBJECTION):
        if req.status != Status.IN_PROGRESS:
            _transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_processing_flag(req, actor=actor)
    elif req.type == RequestType.RECTIFICATION:
        if not req.payload_sealed:
            raise _field_error("fields", "required")
        if req.status != Status.IN_PROGRESS:
            _transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_rectification(req, actor=actor)
    elif req.type == RequestType.CONTEST:
        if req.status != Status.IN_PROGRESS:
            _transition(req, Status.IN_PROGRESS, actor=actor, code="review_opened")
        _open_review(req)
    return req


@transaction.atomic
def request_lift(*, request_id: UUID, actor: str) -> SubjectRequest:
    """Lift the restriction or objection a completed request set (audited by the consent app)."""
    req = _lock(request_id)
    if req.outcome not in (Outcome.RESTRICTED, Outcome.OBJECTED) or req.result.get("lifted_at"):
        raise InvalidTransition()
    if req.subject is None or not profile_selectors.customer_exists(customer_id=req.subject):
        raise NotFound()
    purpose = req.purpose or None
    if req.outcome == Outcome.RESTRICTED:
        consent_services.processing_restriction_lift(customer_id=req.subject, actor=actor, purpose=purpose)
    else:
        consent_services.processing_objection_lift(customer_id=req.subject, actor=actor, purpose=purpose)
    req.result = {**req.result, "lifted_at": timezone.now().isoformat(), "lifted_by": actor}
    req.save(update_fields=["result"])
    return req


# --------------------------------------------------------------------------------------------------------
# Erasure
# --------------------------------------------------------------------------------------------------------


@transaction.atomic
def legal_hold_place(*, customer_id: UUID, reason: str, justification: str, actor: str) -> LegalHold:
    if reason not in settings.LEGAL_HOLD_REASONS:
        raise _field_error("reason", "invalid_choice")
    if not justification or not justification.strip():
        raise _field_error("justification", "required")
    if not profile_selectors.customer_exists(customer_id=customer_id):
        raise NotFound()
    hold = LegalHold.objects.create(subject=customer_id, reason=reason,
                                    justification=_scrubbed(justification, customer_id, max_length=2000),
                                    placed_by=actor)
    audit_services.governance_record(kind="dsr.legal_hold_placed", actor=actor, subject=customer_id,
                                     details={"hold": hold.pk, "reason": reason})
    return hold


@transaction.atomic
def legal_hold_release(*, hold_id: int, actor: str) -> LegalHold:
    hold = LegalHold.objects.select_for_update().filter(pk=hold_id).first()
    if hold is None:
        raise NotFound()
    if hold.released_at is None:
        hold.released_at = timezone.now()
        hold.released_by = actor
        hold.save(update_fields=["released_at", "released_by"])
        audit_services.governance_record(kind="dsr.legal_hold_released", actor=actor, subject=hold.subject,
                                         details={"hold": hold.pk, "reason": hold.reason})
    return hold


def _erase_subject_data(customer_id: UUID, *, actor: str) -> None:
    """The erasure steps after the legal-hold check, in the contract's order."""
    from engagement import services as engagement_services
    from scoring import services as scoring_services

    _exports_shred(Export.objects.filter(subject=customer_id, deleted_at__isnull=True))
    # GDPR Art. 19: every recipient is told, in this transaction (the pseudonyms merged into the subject too)
    aliases = profile_selectors.customer_aliases(customer_id=customer_id)
    events_services.event_record(type="customer.erased", customer_id=customer_id, purpose=None,
                                 payload={"aliases": [str(a) for a in aliases]})
    scoring_services.scores_erase_customer(customer_id=customer_id)
    engagement_services.actions_cancel_for_customer(customer_id=customer_id, reason="erasure")
    consent_services.consent_erase_subject(customer_id=customer_id, actor=actor)
    profile_services.customer_erase(customer_id=customer_id, actor=actor)
    # Other requests of the subject lose their (now undecryptable) contact and payload.
    SubjectRequest.objects.filter(subject=customer_id).update(
        contact_sealed=None, contact_key_wrapped=None, contact_kek_id="", contact_mode="", payload_sealed=None,
        email_digest="",
    )


def _ledger_write(customer_id: UUID, *, request_id: UUID | None) -> ErasureLedgerEntry:
    now = timezone.now()
    ledger.ledger_append(customer=customer_id, request=request_id, erased_at=now)
    entry, _ = ErasureLedgerEntry.objects.update_or_create(
        customer_id=customer_id, defaults={"request_id": request_id, "erased_at": now})
    return entry


def _erase(req: SubjectRequest, *, actor: str) -> None:
    customer_id = _subject_of(req)
    holds = list(LegalHold.objects.filter(subject=customer_id, released_at__isnull=True).order_by("placed_at"))
    if holds:
        hold = holds[0]
        req.result = {**req.result, "legal_hold": hold.pk}
        _close(req, Status.REJECTED, actor=actor, rejection_code=RejectionCode.LEGAL_HOLD,
               reason=f"{hold.reason}: {hold.justification}")
        return
    address = _contact_open(req)  # read before the key is destroyed
    if req.status != Status.IN_PROGRESS:
        _transition(req, Status.IN_PROGRESS, actor=actor)
    _erase_subject_data(customer_id, actor=actor)
    _ledger_write(customer_id, request_id=req.id)
    ReviewTask.objects.filter(subject=customer_id, state=ReviewTask.State.OPEN).exclude(request=req).update(
        state=ReviewTask.State.CANCELLED)
    req.refresh_from_db()
    req.result = {**req.result, "ledger": True}
    _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.ERASED, address=address)
    # Other requests already being worked on are moot now; pending ones end as "no data held" once verified.
    for other in SubjectRequest.objects.select_for_update().filter(subject=customer_id,
                                                                  status__in=WORKABLE).exclude(id=req.id):
        _close(other, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD, code="subject_erased",
               notify=False)


@transaction.atomic
def erasure_replay(*, customer_id: UUID, actor: str) -> bool:
    """Re-apply a ledgered erasure (after a backup restore). True if anything was erased again."""
    erased = False
    if profile_selectors.customer_exists(customer_id=customer_id):
        _erase_subject_data(customer_id, actor=actor)
        erased = True
    entry = ErasureLedgerEntry.objects.filter(customer_id=customer_id).first()
    if entry is None:
        entry = ErasureLedgerEntry.objects.create(customer_id=customer_id)
    if erased:
        entry.replayed_at = timezone.now()
        entry.save(update_fields=["replayed_at"])
    return erased


# --------------------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------------------


def _export_path(export: Export) -> Path:
    return Path(settings.EXPORT_DIR) / export.file_name


def _export_aad(export_id: UUID) -> bytes:
    return f"export|{export_id}".encode()


@transaction.atomic
def export_build(*, request_id: UUID, actor: str = "job:build_export") -> Export | None:
    """Build the subject's export (JSON, validated against the published schema), write it encrypted
    under a fresh per-export key, and complete the request. Idempotent; a no-op for closed requests."""
    from .export import export_document, export_validate

    req = _lock(request_id)
    if req.type not in (RequestType.ACCESS, RequestType.PORTABILITY) or req.status not in WORKABLE:
        return None
    live = Export.objects.filter(request=req, deleted_at__isnull=True).first()
    if live is not None:
        return live
    if not _subject_live(req):
        _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return None
    if req.status != Status.IN_PROGRESS:
        _transition(req, Status.IN_PROGRESS, actor=actor)
    now = timezone.now()
    subject = _subject_of(req)
    export = Export(id=uuid4(), request=req, subject=subject, created_at=now,
                    expires_at=now + timedelta(seconds=settings.EXPORT_LINK_TTL_SECONDS))
    document = export_document(customer_id=subject, request_id=req.id, request_type=req.type, generated_at=now)
    export_validate(document)
    plaintext = json.dumps(document, ensure_ascii=False, sort_keys=False, default=str).encode("utf-8")
    dek = envelope.new_data_key()
    wrapped = envelope.wrap_data_key(dek, customer_id=f"export:{export.id}")
    blob = envelope.encrypt(dek, plaintext, _export_aad(export.id))
    del plaintext, document
    export.kek_id = wrapped.kek_id
    export.wrapped_key = wrapped.wrapped
    export.size_bytes = len(blob)
    export.sha256 = hashlib.sha256(blob).hexdigest()
    path = _export_path(export)
    private_dir(path.parent)  # exports: directory 0700, files 0600 (config.file_modes)
    partial = path.with_suffix(".part")
    with os.fdopen(open_private(partial), "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    try:
        export.save(force_insert=True)
        audit_services.access_record(actor=actor, purpose="dsr.access", subject=req.subject, what="export.build",
                                     details={"request": str(req.id), "export": str(export.id)})
        req.result = {**req.result, "export": str(export.id)}
        _close(req, Status.COMPLETED, actor=actor, outcome=Outcome.EXPORTED)
    except Exception:
        path.unlink(missing_ok=True)  # the key was never committed: the file is unreadable anyway
        raise
    return export


def _export_live(export_id: UUID) -> Export:
    export = Export.objects.select_for_update().filter(id=export_id).first()
    if export is None or export.deleted_at is not None or export.expires_at <= timezone.now() \
            or not export.wrapped_key:
        raise NotFound()
    return export


@transaction.atomic
def export_download(*, export_id: UUID, actor: str) -> tuple[bytes, Export]:
    """Decrypt an export for download (an access record is written). NotFound once expired or shredded."""
    export = _export_live(export_id)
    try:
        blob = _export_path(export).read_bytes()
        dek = envelope.unwrap_data_key(WrappedKey(export.kek_id, _blob(export.wrapped_key)),
                                       customer_id=f"export:{export.id}")
        plaintext = envelope.decrypt(dek, blob, _export_aad(export.id))
    except (OSError, DecryptionError) as exc:
        raise NotFound() from exc
    export.downloads += 1
    export.save(update_fields=["downloads"])
    audit_services.access_record(actor=actor, purpose="dsr.access", subject=export.subject, what="export.download",
                                 details={"request": str(export.request_id), "export": str(export.id)})
    return plaintext, export


def _exports_shred(queryset: Any) -> int:
    count = 0
    for export in queryset.select_for_update():
        _export_path(export).unlink(missing_ok=True)
        export.wrapped_key = None
        export.deleted_at = timezone.now()
        export.save(update_fields=["wrapped_key", "deleted_at"])
        count += 1
    return count


@transaction.atomic
def exports_delete_expired(*, now: datetime | None = None) -> int:
    """Delete expired export files and shred their keys; remove orphaned partial files."""
    now = now or timezone.now()
    count = _exports_shred(Export.objects.filter(deleted_at__isnull=True, expires_at__lte=now))
    directory = Path(settings.EXPORT_DIR)
    if directory.is_dir():
        known = {e.file_name for e in Export.objects.filter(deleted_at__isnull=True)}
        cutoff = now.timestamp() - 3600
        for path in directory.iterdir():
            if path.is_file() and path.name not in known and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                count += 1
    if count:
        logger.info("expired exports deleted", extra={"event": "dsr.exports_deleted", "count": count})
    return count


# --------------------------------------------------------------------------------------------------------
# Human review of contested decisions
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewView:
    review: ReviewTask
    decision: Any
    details: dict[str, Any] | None  # the sealed inputs and explanation, None if no longer decryptable
    statement: str = ""  # the customer's own statement with the contest, while the review is open


@transaction.atomic
def review_view(*, review_id: int, actor: str) -> ReviewView:
    """The reviewer opens a contested decision: inputs and explanation are decrypted (an access record)."""
    review = ReviewTask.objects.select_related("request").filter(pk=review_id).first()
    if review is None:
        raise NotFound()
    decision = audit_selectors.decision_get(decision_id=review.decision_id)
    sealed = _attr(decision, "sealed_details")
    details = None
    if sealed:
        try:
            details = profile_selectors.customer_unseal(
                customer_id=review.subject, label=audit_services.DECISION_DETAILS_LABEL, blob=bytes(sealed))
        except (DecryptionError, NotFound):
            details = None
    statement = ""
    req = review.request
    if req.type == RequestType.CONTEST and req.payload_sealed:
        try:
            statement = str(profile_selectors.customer_unseal(
                customer_id=review.subject, label=f"{STATEMENT_LABEL}|{req.id}",
                blob=_blob(req.payload_sealed)).get("statement") or "")
        except (DecryptionError, NotFound):
            statement = ""
    audit_services.access_record(actor=actor, purpose="dsr.contest_review", subject=review.subject,
                                 what="decision.details", details={"decision_id": review.decision_id,
                                                                   "review": review.pk,
                                                                   "statement": bool(statement)})
    return ReviewView(review=review, decision=decision, details=details, statement=statement)


@transaction.atomic
def review_decide(*, review_id: int, reviewer: str, outcome: str, rationale: str, tier: str | None = None,
                  service_level: dict[str, Any] | None = None) -> ReviewTask:
    """Confirm or override a contested decision, with a rationale. An override (a tier, optionally a
    changed service level) becomes the effective outcome served to internal systems until the next
    review; a confirmation ends any earlier override. Both are recorded as audit human reviews."""
    from scoring import services as scoring_services

    review = ReviewTask.objects.select_for_update().filter(pk=review_id).first()
    if review is None:
        raise NotFound()
    if review.state != ReviewTask.State.OPEN:
        raise InvalidTransition()
    if not rationale or not rationale.strip():
        raise _field_error("rationale", "required")
    rationale = _scrubbed(rationale, review.subject)
    if outcome == ReviewTask.Result.OVERRIDDEN:
        if not tier:
            raise _field_error("tier", "required")
        scoring_services.score_override_apply(
            customer_id=review.subject, purpose=review.purpose, decision_id=review.decision_id, tier=tier,
            service_level=service_level or None, rationale=rationale, reviewer=reviewer,
        )
        review.override = {"tier": tier, "service_level": service_level or None}
        req_outcome = Outcome.REVIEW_OVERRIDDEN
    elif outcome == ReviewTask.Result.CONFIRMED:
        scoring_services.score_override_clear(customer_id=review.subject, purpose=review.purpose,
                                              decision_id=review.decision_id, rationale=rationale,
                                              reviewer=reviewer)
        req_outcome = Outcome.REVIEW_CONFIRMED
    else:
        raise _field_error("outcome", "invalid_choice")
    latest = audit_selectors.review_latest(decision_id=review.decision_id)
    review.audit_review_id = _attr(latest, "pk")
    review.state = ReviewTask.State.DECIDED
    review.outcome = outcome
    review.reviewer = reviewer
    review.rationale = rationale
    review.decided_at = timezone.now()
    review.save()
    req = SubjectRequest.objects.select_for_update().get(pk=review.request_id)
    if req.is_open:
        req.result = {**req.result, "review": review.pk, "review_outcome": outcome}
        if req.status == Status.VERIFIED:
            _transition(req, Status.IN_PROGRESS, actor=reviewer)
        _close(req, Status.COMPLETED, actor=reviewer, outcome=req_outcome, message=rationale)
    return review


# --------------------------------------------------------------------------------------------------------
# The clock's daily check
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagCounts:
    due_soon: int
    overdue: int
    changed: int


@transaction.atomic
def requests_flag_due(*, now: datetime | None = None) -> FlagCounts:
    """Flag open requests due within 7 days or overdue, and alert the DPO (e-mail; the console shows
    the flags). Paused requests (identity pending) are not flagged: their clock is not running."""
    now = now or timezone.now()
    due_soon = overdue = changed = 0
    lines: list[str] = []
    for req in SubjectRequest.objects.select_for_update().filter(status__in=OPEN_STATUSES).order_by("due_at"):
        state = clock.clock_state(received_at=req.received_at, paused_total=req.paused_total,
                                  paused_since=req.paused_since, extension_months=req.extension_months, now=now)
        level = "" if state.paused else clock.alert_level(due_at=state.due_at, now=now)
        if level != req.alert_level:
            req.alert_level = level
            req.alerted_at = now if level else None
            req.save(update_fields=["alert_level", "alerted_at"])
            changed += 1
        if level == "overdue":
            overdue += 1
        elif level == "due_soon":
            due_soon += 1
        if level:
            lines.append(f"{level}: {req.id} ({req.type}, due {state.due_at:%Y-%m-%d %H:%M} UTC)")
    if lines:
        notifications.send_dpo_alert(lines=lines, due_soon=due_soon, overdue=overdue)
    logger.info("subject request deadlines checked", extra={"event": "dsr.flagged", "count": due_soon + overdue,
                                                            "updated": changed})
    return FlagCounts(due_soon=due_soon, overdue=overdue, changed=changed)
