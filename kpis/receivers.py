"""Signal receivers of the KPI app (connected in ``KpisConfig.ready``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction


def on_rescore_run_completed(sender: Any, run_id: UUID, purpose: str, **kwargs: Any) -> None:
    """A rescore of the scores' purpose finished: the tiers changed, so refresh the rollup once it commits."""
    from kpis import selectors, tasks

    if purpose == selectors.score_purpose():
        transaction.on_commit(lambda: tasks.rollup_refresh.delay("rescore"))
