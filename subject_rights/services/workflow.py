"""Workflow primitives of a subject request: the status machine, locking, transitions with their audit record,
closing, the requester's contact address (sealed under the customer's key or a per-request key, shredded
on close), and the input checks shared by the stages.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from audit import selectors as audit_selectors
from audit import services as audit_services
from config import envelope
from config.blind_index import InvalidIdentifier, email_index, source_index
from config.envelope import DecryptionError, WrappedKey
from config.errors import NotFound, ValidationFailed
from consent import selectors as consent_selectors
from profiles import selectors as profile_selectors
from profiles import services as profile_services

from .. import clock, links, notifications
from ..errors import (
    InvalidTransition,
)
from ..models import (
    Outcome,
    RejectionCode,
    RequestType,
    Status,
    StatusChange,
    SubjectRequest,
)

logger = logging.getLogger("subject_rights.services")  # the name it had before the split


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


def request_lock(request_id: UUID | str) -> SubjectRequest:
    try:
        return SubjectRequest.objects.select_for_update().get(id=request_id)
    except (SubjectRequest.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound() from exc


def subject_of(req: SubjectRequest) -> UUID:
    """The request's pseudonym (callers have checked that a customer matched)."""
    if req.subject is None:
        raise NotFound()
    return req.subject


def text_scrubbed(text: str, subject: UUID | None, *, max_length: int = MAX_REASON_LENGTH) -> str:
    """Free text typed by the DPO (reasons, rationales, justifications) is pseudonymized like any customer
    text before it is stored: it is about a person and may name them."""
    return profile_services.free_text_scrub(text=text.strip(), customer_id=subject)[:max_length]


def sealed_bytes(value: bytes | memoryview | None) -> bytes:
    if value is None:
        raise NotFound()
    return bytes(value)


def request_status_governance(*, req: SubjectRequest, actor: str, from_status: str, to_status: str, code: str = "",
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


def request_transition(req: SubjectRequest, to_status: str, *, actor: str, code: str = "",
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
    request_status_governance(req=req, actor=actor, from_status=from_status, to_status=to_status, code=code, extra=extra)
    logger.info("subject request status changed", extra={"event": "dsr.status_changed", "request_id": str(req.id),
                                                          "status": to_status, "code": code})


def request_close(req: SubjectRequest, to_status: str, *, actor: str, outcome: str = "", rejection_code: str = "",
           reason: str = "", code: str = "", address: str | None = None, notify: bool = True,
           message: str = "") -> None:
    """Complete or reject: record the outcome, shred contact details and pending payloads, tell the requester
    (``message``: the reviewer's explanation of a contest's outcome, already scrubbed of others' data)."""
    if address is None and notify:
        address = contact_open(req)
    req.outcome = outcome
    req.rejection_code = rejection_code
    req.rejection_reason = reason[:MAX_REASON_LENGTH]
    req.completed_at = timezone.now()
    req.alert_level = ""
    req.email_digest = ""
    req.payload_sealed = None
    _contact_shred(req)
    request_transition(req, to_status, actor=actor, code=code or outcome or rejection_code,
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


def _request_key_aad(req: SubjectRequest) -> bytes:
    return f"dsr-contact|{req.id}".encode()


def contact_seal(req: SubjectRequest, address: str) -> None:
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


def contact_open(req: SubjectRequest) -> str | None:
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


def hmac_hex(*parts: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def idempotency_key_hash(requester: str, key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise ValidationFailed(extra={"errors": {"idempotency_key": [{"code": "invalid", "message": "Invalid value."}]}})
    return hashlib.sha256(f"{requester}\x00{key}".encode()).hexdigest()


def field_error(field: str, code: str = "invalid") -> ValidationFailed:
    from config.errors import field_message

    return ValidationFailed(extra={"errors": {field: [{"code": code, "message": field_message(code)}]}})


def check_type(request_type: str) -> str:
    if request_type not in RequestType.values:
        raise field_error("type", "invalid_choice")
    return request_type


def check_purpose(purpose: str | None) -> str:
    if not purpose:
        return ""
    try:
        consent_selectors.purpose_get(code=purpose)
    except NotFound as exc:
        raise field_error("purpose", "invalid_choice") from exc
    return purpose


def check_fields(fields: dict[str, str | None] | None) -> dict[str, str | None]:
    if not isinstance(fields, dict) or not fields or len(fields) > MAX_FIELDS:
        raise field_error("fields", "invalid")
    for name, value in fields.items():
        if not isinstance(name, str) or not name or len(name) > 63 or not (value is None or isinstance(value, str)):
            raise field_error("fields", "invalid")
        if isinstance(value, str) and len(value) > 500:
            raise field_error("fields", "max_length")
    return fields


def subject_resolve(*, customer_id: UUID | None, email: str | None, source: str | None,
                     external_id: str | None) -> tuple[UUID | None, str]:
    """The pseudonym (or None) and a keyed digest of the identifier used (for the fingerprint)."""
    given = [customer_id is not None, bool(email), bool(source or external_id)]
    if sum(given) != 1:
        raise field_error("customer", "required")
    if customer_id is not None:
        resolved = profile_selectors.customer_resolve(customer_id=customer_id)
        return resolved, f"id:{customer_id}"
    if email:
        try:
            digest = email_index(email)
        except InvalidIdentifier as exc:
            raise field_error("email") from exc
        return profile_selectors.customer_find(email=email), f"email:{digest}"
    if not source or not external_id:
        raise field_error("external_id" if source else "source", "required")
    try:
        digest = source_index(source, external_id)
    except InvalidIdentifier as exc:
        raise field_error("external_id") from exc
    return profile_selectors.customer_find(source=source, external_id=external_id), f"source:{digest}"


def profile_email(subject: UUID) -> str | None:
    try:
        return profile_selectors.customer_personal_data(customer_id=subject).get("email") or None
    except (NotFound, DecryptionError):
        return None


def decision_belongs(decision_id: int, subject: UUID | None) -> Any:
    """The decision, when it is about this subject. Otherwise 404 ``decision_not_found``, whether it is
    someone else's, missing, or the subject is unknown: the answer never tells which."""
    missing = NotFound("No such decision about this customer.", code="decision_not_found")
    if subject is None:
        raise missing
    try:
        decision = audit_selectors.decision_get(decision_id=decision_id)
    except NotFound as exc:
        raise missing from exc
    if str(attr_or_key(decision, "customer")) != str(subject):
        raise missing
    return decision


def attr_or_key(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def subject_live(req: SubjectRequest) -> bool:
    return req.subject is not None and profile_selectors.customer_exists(customer_id=req.subject)
