"""Filing and verification: submissions (API, self-service, contests), verification codes."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.blind_index import InvalidIdentifier, email_index
from config.errors import NotFound
from profiles import selectors as profile_selectors
from profiles import services as profile_services

from .. import clock, notifications, verification
from ..errors import (
    IdempotencyKeyReused,
    TooManyRequests,
)
from ..models import (
    Channel,
    RequestType,
    ReviewTask,
    Status,
    StatusChange,
    SubjectRequest,
    VerificationCode,
)
from .execution import request_dispatch_verified
from .workflow import (
    MAX_STATEMENT_LENGTH,
    PAYLOAD_LABEL,
    SELF,
    STATEMENT_LABEL,
    check_fields,
    check_purpose,
    check_type,
    contact_open,
    contact_seal,
    decision_belongs,
    field_error,
    hmac_hex,
    idempotency_key_hash,
    logger,
    profile_email,
    request_lock,
    request_status_governance,
    request_transition,
    subject_resolve,
)


@dataclass(frozen=True)
class Submission:
    request: SubjectRequest
    created: bool


def _key_lock(idempotency_hash: str) -> None:
    """On PostgreSQL, serialise the submissions that carry one idempotency key (a transaction-scoped advisory
    lock keyed by the key's HMAC): a concurrent duplicate waits for the first one's commit and then finds
    it, instead of failing its insert on the unique index (which PostgreSQL logs as an ERROR per loser).
    SQLite serialises writers already; the ``IntegrityError`` fallback below stays for any other race."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [int(idempotency_hash[:15], 16)])


def _create(*, idempotency_hash: str | None, fingerprint: str, **fields: Any) -> Submission:
    """Insert the request; a concurrent insert with the same key waits for (or loses to) the first and
    returns it."""
    if idempotency_hash:
        _key_lock(idempotency_hash)
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
    request_status_governance(req=req, actor=req.requester, from_status="", to_status=Status.RECEIVED)
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
    check_type(type)
    if channel not in (Channel.API, Channel.DPO):
        raise field_error("channel", "invalid_choice")
    purpose_code = check_purpose(purpose)
    subject, identifier = subject_resolve(customer_id=customer_id, email=email, source=source,
                                           external_id=external_id)
    if type == RequestType.CONTEST:
        if decision_id is None:
            raise field_error("decision_id", "required")
        decision_belongs(decision_id, subject)
    elif decision_id is not None:
        raise field_error("decision_id", "invalid")
    if type == RequestType.RECTIFICATION:
        fields = check_fields(fields)
    elif fields:
        raise field_error("fields", "invalid")
    address = None
    if contact_email:
        try:
            email_index(contact_email)
        except InvalidIdentifier as exc:
            raise field_error("contact_email") from exc
        address = contact_email.strip()
    fingerprint = hmac_hex(
        "submit", type, channel, identifier, purpose_code, str(decision_id or ""),
        json.dumps(fields or {}, sort_keys=True),
    )
    submission = _create(
        idempotency_hash=idempotency_key_hash(requester, idempotency_key), fingerprint=fingerprint,
        type=type, channel=channel, requester=requester, subject=subject, purpose=purpose_code,
        decision_id=decision_id, language=(language or "")[:8],
    )
    if not submission.created:
        return submission
    req = submission.request
    if address:
        contact_seal(req, address)
    if fields and subject is not None and profile_selectors.customer_exists(customer_id=subject):
        req.payload_sealed = profile_services.customer_seal(
            customer_id=subject, label=f"{PAYLOAD_LABEL}|{req.id}", payload={"fields": fields})
    req.save()
    request_transition(req, Status.VERIFIED, actor=requester, code=f"vouched_by_{channel}")
    request_dispatch_verified(req, actor=requester)
    return submission


@transaction.atomic
def request_submit_self_service(
    *, type: str, email: str, client_address: str, idempotency_key: str | None = None,  # noqa: A002
    language: str = "",
) -> SubjectRequest:
    """File a request from the customer pages. Whatever the e-mail, the same happens: a request is
    created, the clock is paused, and a one-time code is sent to the address. Whether the address
    belongs to a customer is never revealed; if it does not, the request ends as "no data held"."""
    check_type(type)
    if type == RequestType.CONTEST:
        raise field_error("type", "invalid_choice")
    try:
        digest = email_index(email)
    except InvalidIdentifier as exc:
        raise field_error("email") from exc
    key_hash = idempotency_key_hash(SELF, idempotency_key)
    fingerprint = hmac_hex("self", type, digest)
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
    contact_seal(req, address)
    req.save()
    request_transition(req, Status.IDENTITY_PENDING, actor=SELF, code="code_sent")
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
    req = request_lock(request_id)
    if req.status != Status.IDENTITY_PENDING:
        return
    if verification.limit_exceeded(email_digest=req.email_digest, client_address=client_address):
        raise TooManyRequests()
    address = contact_open(req)
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
    req = request_lock(request_id)
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
    request_transition(req, Status.VERIFIED, actor=SELF, code="otp")
    request_dispatch_verified(req, actor=SELF)
    return VerifyResult.OK


@transaction.atomic
def request_contest_submit(*, from_request_id: UUID, decision_id: int, requester: str = SELF,
                           statement: str = "") -> SubjectRequest:
    """A verified requester contests one of their automated decisions (from the "why" page): a new
    contest request, verified through the existing one, opening a human review. The customer's own
    ``statement`` is sealed under their data key for the reviewer (read on the review page, with an access
    record) and shredded when the request closes."""
    origin = request_lock(from_request_id)
    if origin.verified_at is None or origin.subject is None:
        raise NotFound()
    decision_belongs(decision_id, origin.subject)
    open_review = ReviewTask.objects.filter(subject=origin.subject, decision_id=decision_id,
                                            state=ReviewTask.State.OPEN).select_related("request").first()
    if open_review is not None:
        return open_review.request
    submission = _create(
        idempotency_hash=None, fingerprint=hmac_hex("contest", str(origin.id), str(decision_id)),
        type=RequestType.CONTEST, channel=origin.channel, requester=requester, subject=origin.subject,
        decision_id=decision_id, language=origin.language,
    )
    req = submission.request
    # Where to tell the outcome: the origin's address while it is open; once that request closed (its
    # contact shredded), the e-mail address on the customer's profile, which the requester proved theirs.
    address = contact_open(origin) or profile_email(origin.subject)
    if address:
        contact_seal(req, address)
    text = (statement or "").strip()
    if len(text) > MAX_STATEMENT_LENGTH:
        raise field_error("statement", "max_length")
    if text:
        req.payload_sealed = profile_services.customer_seal(
            customer_id=origin.subject, label=f"{STATEMENT_LABEL}|{req.id}", payload={"statement": text})
    if address or text:
        req.save()
    request_transition(req, Status.VERIFIED, actor=requester, code="verified_via_request")
    request_dispatch_verified(req, actor=requester)
    return req
