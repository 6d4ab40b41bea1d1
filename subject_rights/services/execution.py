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
from .erasure import request_erase
from .export import export_start
from .rectification import rectification_apply
from .reviews import review_open
from .workflow import (
    WORKABLE,
    field_error,
    request_close,
    request_lock,
    request_transition,
    subject_live,
    subject_of,
    text_scrubbed,
)


def request_dispatch_verified(req: SubjectRequest, *, actor: str) -> None:
    """After verification: answer at once where no human is needed (the DPO handles erasure and any
    rectification still waiting for values; contests go to human review)."""
    if not subject_live(req):
        request_transition(req, Status.IN_PROGRESS, actor=actor, code="no_data_held")
        request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return
    if req.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        export_start(req, actor=actor)
    elif req.type in (RequestType.RESTRICTION, RequestType.OBJECTION):
        request_transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_processing_flag(req, actor=actor)
    elif req.type == RequestType.CONTEST:
        request_transition(req, Status.IN_PROGRESS, actor=actor, code="review_opened")
        review_open(req)
    elif req.type == RequestType.RECTIFICATION and req.payload_sealed:
        request_transition(req, Status.IN_PROGRESS, actor=actor)
        rectification_apply(req, actor=actor)


def _apply_processing_flag(req: SubjectRequest, *, actor: str) -> None:
    purpose = req.purpose or None
    if req.type == RequestType.RESTRICTION:
        consent_services.processing_restrict(customer_id=subject_of(req), actor=actor, reason=f"dsr:{req.id}",
                                             purpose=purpose)
        outcome = Outcome.RESTRICTED
    else:
        consent_services.processing_object(customer_id=subject_of(req), actor=actor, purpose=purpose)
        outcome = Outcome.OBJECTED
    req.result = {**req.result, "purpose": req.purpose or None}
    request_close(req, Status.COMPLETED, actor=actor, outcome=outcome)


@transaction.atomic
def request_verify_on_behalf(*, request_id: UUID, actor: str) -> SubjectRequest:
    """The DPO confirms the requester's identity by other means."""
    req = request_lock(request_id)
    if req.status not in (Status.RECEIVED, Status.IDENTITY_PENDING):
        raise InvalidTransition()
    req.codes.filter(used_at__isnull=True).update(superseded=True)
    request_transition(req, Status.VERIFIED, actor=actor, code="verified_by_dpo")
    request_dispatch_verified(req, actor=actor)
    return req


@transaction.atomic
def request_start(*, request_id: UUID, actor: str) -> SubjectRequest:
    req = request_lock(request_id)
    if req.status == Status.IN_PROGRESS:
        return req
    request_transition(req, Status.IN_PROGRESS, actor=actor)
    return req


@transaction.atomic
def request_complete(*, request_id: UUID, actor: str, outcome: str = Outcome.ANSWERED) -> SubjectRequest:
    req = request_lock(request_id)
    if outcome not in Outcome.values or not outcome:
        raise field_error("outcome", "invalid_choice")
    if req.status not in WORKABLE:
        raise InvalidTransition()
    request_close(req, Status.COMPLETED, actor=actor, outcome=outcome)
    return req


@transaction.atomic
def request_reject(*, request_id: UUID, actor: str, code: str, reason: str = "") -> SubjectRequest:
    """Refuse with a reason code (and an optional explanation communicated to the requester)."""
    req = request_lock(request_id)
    if code not in RejectionCode.values:
        raise field_error("code", "invalid_choice")
    if code == RejectionCode.OTHER and not reason.strip():
        raise field_error("reason", "required")
    request_close(req, Status.REJECTED, actor=actor, rejection_code=code, reason=text_scrubbed(reason, req.subject))
    return req


@transaction.atomic
def request_execute(*, request_id: UUID, actor: str) -> SubjectRequest:
    """Carry out a verified request (the console's "execute" action)."""
    req = request_lock(request_id)
    if req.status not in WORKABLE:
        raise InvalidTransition()
    if not subject_live(req):
        request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return req
    if req.type == RequestType.ERASURE:
        request_erase(req, actor=actor)
    elif req.type in (RequestType.ACCESS, RequestType.PORTABILITY):
        export_start(req, actor=actor)
    elif req.type in (RequestType.RESTRICTION, RequestType.OBJECTION):
        if req.status != Status.IN_PROGRESS:
            request_transition(req, Status.IN_PROGRESS, actor=actor)
        _apply_processing_flag(req, actor=actor)
    elif req.type == RequestType.RECTIFICATION:
        if not req.payload_sealed:
            raise field_error("fields", "required")
        if req.status != Status.IN_PROGRESS:
            request_transition(req, Status.IN_PROGRESS, actor=actor)
        rectification_apply(req, actor=actor)
    elif req.type == RequestType.CONTEST:
        if req.status != Status.IN_PROGRESS:
            request_transition(req, Status.IN_PROGRESS, actor=actor, code="review_opened")
        review_open(req)
    return req


@transaction.atomic
def request_lift(*, request_id: UUID, actor: str) -> SubjectRequest:
    """Lift the restriction or objection a completed request set (audited by the consent app)."""
    req = request_lock(request_id)
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
