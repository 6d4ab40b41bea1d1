"""Erasure of a customer: keys shredded, blind indexes deleted, tombstone kept."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from config.errors import NotFound

from .. import data_keys
from ..models import (
    BlindIndexEntry,
    Customer,
    CustomerKey,
    Interaction,
    Note,
    NpsAnswer,
    Order,
    PersonalField,
    PlaceholderState,
    Referral,
    Review,
    SourceIdentity,
    Ticket,
    Tombstone,
)
from .governance import record_governance
from .identity import resolve_alias


@transaction.atomic
def customer_erase(*, customer_id: UUID, actor: str, reason: str = "erasure_request") -> None:
    """Erase a customer and its aliases: crypto-shred the data key, delete personal fields, blind indexes,
    source identities, facts and placeholder state; keep a PII-free tombstone per pseudonym."""
    if Tombstone.objects.filter(customer_id=customer_id).exists() and not Customer.objects.filter(
        id=customer_id
    ).exists():
        return
    root_id = resolve_alias(customer_id)
    root = Customer.objects.select_for_update().filter(id=root_id).first()
    if root is None:
        raise NotFound()
    group = [root.id]
    frontier = [root.id]
    while frontier:
        frontier = list(Customer.objects.filter(merged_into_id__in=frontier).values_list("id", flat=True))
        group.extend(frontier)
    now = timezone.now()
    # Facts first, then the customer rows (their keys, fields, indexes and identities cascade).
    fact_models: tuple[Any, ...] = (Order, Interaction, Ticket, Note, Review, NpsAnswer, Referral)
    for model in fact_models:
        model.objects.filter(customer_id__in=group).delete()
    CustomerKey.objects.filter(customer_id__in=group).delete()
    PersonalField.objects.filter(customer_id__in=group).delete()
    BlindIndexEntry.objects.filter(customer_id__in=group).delete()
    SourceIdentity.objects.filter(customer_id__in=group).delete()
    PlaceholderState.objects.filter(customer_id__in=group).delete()
    Customer.objects.filter(id__in=group).exclude(id=root.id).update(merged_into=None)
    Customer.objects.filter(id__in=group).delete()
    for cid in group:
        Tombstone.objects.update_or_create(customer_id=cid, defaults={"erased_at": now, "reason": reason[:32]})
        data_keys.cache_clear(cid)
    record_governance(
        kind="customer.erased", actor=actor, subject=root.id,
        details={"reason": reason[:32], "aliases": [str(c) for c in group[1:]]},
    )
    transaction.on_commit(lambda: _cache_clear_all(group))


def _cache_clear_all(customer_ids: list[UUID]) -> None:
    for cid in customer_ids:
        data_keys.cache_clear(cid)
