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
from .export import exports_shred
from .workflow import (
    WORKABLE,
    contact_open,
    field_error,
    request_close,
    request_transition,
    subject_of,
    text_scrubbed,
)


@transaction.atomic
def legal_hold_place(*, customer_id: UUID, reason: str, justification: str, actor: str) -> LegalHold:
    if reason not in settings.LEGAL_HOLD_REASONS:
        raise field_error("reason", "invalid_choice")
    if not justification or not justification.strip():
        raise field_error("justification", "required")
    if not profile_selectors.customer_exists(customer_id=customer_id):
        raise NotFound()
    hold = LegalHold.objects.create(subject=customer_id, reason=reason,
                                    justification=text_scrubbed(justification, customer_id, max_length=2000),
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

    exports_shred(Export.objects.filter(subject=customer_id, deleted_at__isnull=True))
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
    if settings.ERASURE_VACUUM:
        from ..tasks import vacuum_after_erasure

        vacuum_after_erasure.delay_on_commit()


def _erased_tables() -> list[str]:
    """The tables erasure deletes rows from (or overwrites rows of)."""
    from django.apps import apps

    names = {m._meta.db_table for m in apps.get_app_config("profiles").get_models()}
    names -= {"profiles_tombstone", "profiles_importjob", "profiles_importchunk", "profiles_mergerecord"}
    for label in ("scoring.CustomerScore", "consent.ConsentStateCurrent", "consent.ProcessingFlagCurrent",
                  "consent.ConsentEvent", "consent.ProcessingFlag", "subject_rights.SubjectRequest",
                  "subject_rights.Export"):
        names.add(apps.get_model(label)._meta.db_table)
    return sorted(names)


def erased_tables_vacuum() -> list[str]:
    """VACUUM the tables an erasure deleted from (PostgreSQL; SQLite overwrites deleted rows itself with
    ``secure_delete``). PostgreSQL keeps deleted rows in the table files as dead tuples until a vacuum prunes
    them; this prunes them seconds after the erasure's commit instead of at the next autovacuum. Pruned bytes
    can stay in a page's free space until it is reused, and the WAL holds what was written until its segments
    are recycled (docs/RELIABILITY.md): only ciphertext under the shredded key is harmless there."""
    from django.db import connection

    if connection.vendor != "postgresql" or connection.in_atomic_block:  # VACUUM cannot run in a transaction
        return []
    tables = _erased_tables()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM {connection.ops.quote_name(table)}")
    return tables


def _ledger_write(customer_id: UUID, *, request_id: UUID | None) -> ErasureLedgerEntry:
    now = timezone.now()
    ledger.ledger_append(customer=customer_id, request=request_id, erased_at=now)
    entry, _ = ErasureLedgerEntry.objects.update_or_create(
        customer_id=customer_id, defaults={"request_id": request_id, "erased_at": now})
    return entry


def request_erase(req: SubjectRequest, *, actor: str) -> None:
    customer_id = subject_of(req)
    holds = list(LegalHold.objects.filter(subject=customer_id, released_at__isnull=True).order_by("placed_at"))
    if holds:
        hold = holds[0]
        req.result = {**req.result, "legal_hold": hold.pk}
        request_close(req, Status.REJECTED, actor=actor, rejection_code=RejectionCode.LEGAL_HOLD,
               reason=f"{hold.reason}: {hold.justification}")
        return
    address = contact_open(req)  # read before the key is destroyed
    if req.status != Status.IN_PROGRESS:
        request_transition(req, Status.IN_PROGRESS, actor=actor)
    _erase_subject_data(customer_id, actor=actor)
    _ledger_write(customer_id, request_id=req.id)
    ReviewTask.objects.filter(subject=customer_id, state=ReviewTask.State.OPEN).exclude(request=req).update(
        state=ReviewTask.State.CANCELLED)
    req.refresh_from_db()
    req.result = {**req.result, "ledger": True}
    request_close(req, Status.COMPLETED, actor=actor, outcome=Outcome.ERASED, address=address)
    # Other requests already being worked on are moot now; pending ones end as "no data held" once verified.
    for other in SubjectRequest.objects.select_for_update().filter(subject=customer_id,
                                                                  status__in=WORKABLE).exclude(id=req.id):
        request_close(other, Status.COMPLETED, actor=actor, outcome=Outcome.NO_DATA_HELD, code="subject_erased",
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
