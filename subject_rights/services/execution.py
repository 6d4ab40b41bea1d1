"""Carrying verified requests out: the dispatch after verification, restriction and objection, and the DPO's
actions (verify on behalf, start, complete, reject, execute, lift).
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from config.errors import NotFound
from consent import services as consent_services
from profiles import selectors as profile_selectors

from ..errors import (
    InvalidTransition,
)
from ..models import (
    Outcome,
    RejectionCode,
    RequestType,
    Status,
    SubjectRequest,
)
from .erasure import _erase
from .export import _start_export
from .rectification import _apply_rectification
from .reviews import _open_review
from .workflow import (
    WORKABLE,
    _close,
    _field_error,
    _lock,
    _scrubbed,
    _subject_live,
    _subject_of,
    _transition,
)


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
