"""A completed rescore run of the scores' purpose queues the next-best-action sweep (issue 17), once, on commit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scoring.helpers import SCORING


@pytest.mark.django_db
def test_the_last_chunk_of_a_run_queues_the_sweep_once(active_model: Any, seed_population: Any, monkeypatch: Any,
                                                       django_capture_on_commit_callbacks: Any) -> None:
    from engagement import services as engagement_services
    from scoring import services

    calls: list[int] = []
    real = engagement_services.actions_sweep

    def counting(**kwargs: Any) -> Any:
        calls.append(1)
        return real(**kwargs)

    monkeypatch.setattr(engagement_services, "actions_sweep", counting)
    seed_population(12)
    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=5)
    chunks = services.rescore_pending_chunks(run_id=run.id)
    assert len(chunks) == 3
    with django_capture_on_commit_callbacks(execute=True):
        services.rescore_chunk(run_id=run.id, customer_ids=chunks[0])
    assert calls == []  # the run is not complete yet
    with django_capture_on_commit_callbacks(execute=True):
        for ids in chunks[1:]:
            services.rescore_chunk(run_id=run.id, customer_ids=ids)
    assert calls == [1]
