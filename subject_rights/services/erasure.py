"""Erasure: legal holds, the erasure steps in the contract's order, the ledger and its replay."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit_services
from config.errors import NotFound
from consent import services as consent_services
from events import services as events_services
from profiles import selectors as profile_selectors
from profiles import services as profile_services

from .. import ledger
from ..models import (
    ErasureLedgerEntry,
    Export,
    LegalHold,
    Outcome,
    RejectionCode,
    ReviewTask,
    Status,
    SubjectRequest,
)
from .export import _exports_shred
from .workflow import WORKABLE, _close, _contact_open, _field_error, _scrubbed, _subject_of, _transition


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
