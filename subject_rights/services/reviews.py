"""Human review of contested decisions (and the override a reviewer may set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import selectors as audit_selectors
from audit import services as audit_services
from config.envelope import DecryptionError
from config.errors import NotFound
from profiles import selectors as profile_selectors

from ..errors import (
    InvalidTransition,
)
from ..models import (
    Outcome,
    RequestType,
    ReviewTask,
    Status,
    SubjectRequest,
)
from .workflow import (
    STATEMENT_LABEL,
    attr_or_key,
    decision_belongs,
    field_error,
    request_close,
    request_transition,
    sealed_bytes,
    subject_of,
    text_scrubbed,
)


def review_open(req: SubjectRequest) -> ReviewTask:
    existing = ReviewTask.objects.filter(request=req).first()
    if existing is not None:
        return existing
    if req.decision_id is None:
        raise field_error("decision_id", "required")
    decision = decision_belongs(req.decision_id, req.subject)
    return ReviewTask.objects.create(request=req, subject=subject_of(req), decision_id=req.decision_id,
                                     purpose=attr_or_key(decision, "purpose") or "")


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
    sealed = attr_or_key(decision, "sealed_details")
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
                blob=sealed_bytes(req.payload_sealed)).get("statement") or "")
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
        raise field_error("rationale", "required")
    rationale = text_scrubbed(rationale, review.subject)
    if outcome == ReviewTask.Result.OVERRIDDEN:
        if not tier:
            raise field_error("tier", "required")
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
        raise field_error("outcome", "invalid_choice")
    latest = audit_selectors.review_latest(decision_id=review.decision_id)
    review.audit_review_id = attr_or_key(latest, "pk")
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
            request_transition(req, Status.IN_PROGRESS, actor=reviewer)
        request_close(req, Status.COMPLETED, actor=reviewer, outcome=req_outcome, message=rationale)
    return review
