"""Rectification: corrected values applied, the customer rescored, before/after decisions kept."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from audit import selectors as audit_selectors
from config.errors import ServiceUnavailable
from events import services as events_services
from profiles import selectors as profile_selectors
from profiles import services as profile_services

from ..errors import (
    InvalidTransition,
)
from ..models import (
    Outcome,
    RequestType,
    Status,
    SubjectRequest,
)
from .workflow import (
    PAYLOAD_LABEL,
    WORKABLE,
    attr_or_key,
    check_fields,
    request_close,
    request_lock,
    request_transition,
    sealed_bytes,
    subject_live,
    subject_of,
)


def _latest_decision_ids(customer_id: UUID) -> dict[str, int]:
    """The latest decision record per purpose (PII-free ids)."""
    latest: dict[str, int] = {}
    for decision in audit_selectors.decisions_for_subject(customer=customer_id):  # oldest first
        latest[attr_or_key(decision, "purpose")] = attr_or_key(decision, "id")
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


def rectification_apply(req: SubjectRequest, *, actor: str) -> None:
    subject = subject_of(req)
    payload = profile_selectors.customer_unseal(customer_id=subject, label=f"{PAYLOAD_LABEL}|{req.id}",
                                                blob=sealed_bytes(req.payload_sealed))
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
    request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.RECTIFIED)


@transaction.atomic
def request_rectification_provide(*, request_id: UUID, fields: dict[str, str | None], actor: str) -> SubjectRequest:
    """The verified requester (or the DPO) supplies the corrected values; they are applied at once,
    the customer is rescored, and the before/after decision records are kept on the request."""
    req = request_lock(request_id)
    if req.type != RequestType.RECTIFICATION or req.status not in WORKABLE:
        raise InvalidTransition()
    fields = check_fields(fields)
    if not subject_live(req):
        request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD)
        return req
    req.payload_sealed = profile_services.customer_seal(
        customer_id=subject_of(req), label=f"{PAYLOAD_LABEL}|{req.id}", payload={"fields": fields})
    if req.status != Status.IN_PROGRESS:
        request_transition(req, Status.IN_PROGRESS, actor=actor)
    rectification_apply(req, actor=actor)
    return req
