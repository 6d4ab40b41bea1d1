"""Signal receivers of the engagement app (connected in ``EngagementConfig.ready``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction


def on_event_recorded(sender: Any, event: Any, **kwargs: Any) -> None:
    """Score events create the actions they call for, in the decision's transaction (contract 3/4)."""
    from engagement import services

    if getattr(event, "type", None) in services.SCORE_EVENT_TYPES:
        services.actions_from_score_event(event=event)


def on_consent_changed(sender: Any, customer_id: UUID, purpose: str | None, kind: str, **kwargs: Any) -> None:
    """Withdrawal, restriction, objection: open actions of that purpose (None: all) are cancelled in the
    consent change's transaction; a failure rolls the consent change back with it."""
    from consent.signals import STOPPING_KINDS
    from engagement import services

    if kind in STOPPING_KINDS:
        services.actions_cancel_for_consent(customer_id=customer_id, purpose=purpose, kind=kind)


def on_rescore_run_completed(sender: Any, run_id: UUID, purpose: str, **kwargs: Any) -> None:
    """A rescore run of the scores' purpose finished: queue the sweep once the run's last chunk commits."""
    from engagement import services, tasks

    if purpose == services.score_purpose():
        transaction.on_commit(tasks.actions_sweep.delay)


def on_customers_merged(sender: Any, survivor_id: UUID, loser_ids: list[UUID], **kwargs: Any) -> None:
    """Identity resolution joined customers: the aliases' open actions describe no one any more (the survivor's
    scores are recomputed and the sweep creates what they call for)."""
    from engagement import services

    for loser in loser_ids:
        services.actions_cancel_for_customer(customer_id=loser, reason="merged")
