"""Signal receivers of the consent app (connected in ``ConsentConfig.ready``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def on_customers_merged(sender: Any, survivor_id: UUID, loser_ids: list[UUID], **kwargs: Any) -> None:
    """Identity resolution joined customers (inside its transaction): carry consent over to the survivor."""
    from consent.services import consent_merge_carry_over

    consent_merge_carry_over(survivor_id=survivor_id, loser_ids=list(loser_ids))
