"""Signal receivers of the scoring app (connected in ``ScoringConfig.ready``)."""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from django.db import transaction

#: Above this many customers in one change (imports, purges) the per-customer tasks are not queued:
#: ``rescore_stale`` (beat, every 5 minutes) picks the customers up in bounded batches instead.
MAX_IMMEDIATE = 50


def on_customer_facts_changed(sender: Any, customer_ids: list[UUID], **kwargs: Any) -> None:
    """New or changed facts: the stored scores become stale now (same transaction) and, for a few
    customers, a rescore per stored purpose is queued once the transaction commits."""
    from scoring.models import CustomerScore
    from scoring.tasks import rescore_customer

    ids = list(customer_ids)
    if not ids:
        return
    CustomerScore.objects.filter(customer_id__in=ids, stale=False).update(stale=True)
    if len(ids) > MAX_IMMEDIATE:
        return
    pairs = list(CustomerScore.objects.filter(customer_id__in=ids).values_list("customer_id", "purpose"))
    for cid, purpose in pairs:
        transaction.on_commit(partial(rescore_customer.delay, str(cid), purpose))


def on_customers_merged(sender: Any, survivor_id: UUID, loser_ids: list[UUID], **kwargs: Any) -> None:
    """Identity resolution joined customers: the aliases' scores no longer describe anyone; the
    survivor's become stale (its facts changed)."""
    from scoring.models import CustomerScore

    CustomerScore.objects.filter(customer_id__in=list(loser_ids)).delete()
    CustomerScore.objects.filter(customer_id=survivor_id).update(stale=True)


def on_consent_changed(sender: Any, customer_id: UUID, purpose: str | None, kind: str, **kwargs: Any) -> None:
    """Consent withdrawn, processing restricted or objected to (``purpose=None``: every purpose): the stored
    scores for that purpose are invalidated at once, in the consent change's transaction (Art. 7(3), 18, 21).
    If invalidation fails, the consent change rolls back with it. Grants and lifts change nothing stored."""
    from consent.signals import STOPPING_KINDS
    from scoring import services

    if kind not in STOPPING_KINDS:
        return
    services.scores_invalidate(customer_id=customer_id, purpose=purpose)
