"""All writes of the scoring app, one module per job; the public names are re-exported here, so callers
keep writing ``from scoring import services`` / ``services.score_serve(...)``.

- ``serve``: real time (``score_serve``, ``route_ticket``, ``score_refresh``);
- ``rescore``: the batch run, planned in chunks that any worker scores (``rescore_*``);
- ``overrides``: reviewer overrides and reported outcomes;
- ``model_registry``: storing, activating, rolling back and training model versions;
- ``scores``: the stored score rows, the outputs a decision records (one body for both paths), score
  events, erasure and invalidation;
- ``checks``: argument checks shared by the others.
Reads (the stored score for serving, pending chunks, a chunk's previous scores) are in ``scoring.selectors``.

Invariants
- No score is computed or served unless ``consent.selectors.processing_gate`` allows the customer for
  the purpose *at the moment the computation runs* (batch chunks re-check it when they execute).
  A refusal raises ``NoConsent`` / ``Restricted`` / ``Objected`` (403) or ``NotFound`` (erased/unknown),
  is logged without personal data and is not a decision: nothing is written.
- Every automated decision (served score, routing, batch rescore, tier change) is recorded through
  ``audit.services`` in the same transaction as the score it reports; features and explanation go into
  ``sealed_details``, encrypted under the customer's data key (crypto-shredded by erasure).
"""

from __future__ import annotations

from scoring.registry import ModelRef, ModelUnavailable
from scoring.selectors import rescore_pending_chunk_ids, rescore_pending_chunks
from scoring.services.model_registry import (
    model_activate,
    model_rollback,
    model_train,
    model_train_from_attributes,
    model_version_store,
)
from scoring.services.overrides import (
    OUTCOME_KINDS,
    SERVICE_LEVEL_KEYS,
    outcome_record,
    score_override_apply,
    score_override_clear,
)
from scoring.services.rescore import (
    SKIP_FIELDS,
    ChunkCounts,
    batch_purposes,
    rescore_chunk,
    rescore_chunks,
    rescore_feature_cache_clear,
    rescore_run_dispatch,
    rescore_runs_dispatch,
    rescore_runs_watchdog,
)
from scoring.services.rescore_plan import (
    RESCORE_PLAN_FLUSH_CHUNKS,
    rescore_chunk_plan,
    rescore_run_start,
    rescore_runs_create,
    rescore_runs_plan,
    rescore_runs_plan_dispatch,
    rescore_runs_start,
)
from scoring.services.scores import (
    REASONS_PER_EVENT,
    SCORE_FIELDS,
    effective_outputs,
    score_event_types,
    scores_erase_customer,
    scores_invalidate,
    scores_mark_stale,
)
from scoring.services.serve import (
    REFUSALS,
    TICKET_CATEGORY_MAX,
    RouteResult,
    ScoreResult,
    route_ticket,
    score_max_age,
    score_refresh,
    score_serve,
)

__all__ = [
    "OUTCOME_KINDS", "REASONS_PER_EVENT", "REFUSALS", "RESCORE_PLAN_FLUSH_CHUNKS", "SCORE_FIELDS",
    "SERVICE_LEVEL_KEYS", "SKIP_FIELDS", "TICKET_CATEGORY_MAX", "ChunkCounts", "ModelRef", "ModelUnavailable",
    "RouteResult", "ScoreResult", "batch_purposes", "effective_outputs", "model_activate", "model_rollback",
    "model_train", "model_train_from_attributes", "model_version_store", "outcome_record", "rescore_chunk",
    "rescore_chunk_plan", "rescore_chunks", "rescore_feature_cache_clear", "rescore_pending_chunk_ids", "rescore_pending_chunks",
    "rescore_run_dispatch", "rescore_run_start", "rescore_runs_create", "rescore_runs_dispatch", "rescore_runs_plan",
    "rescore_runs_plan_dispatch", "rescore_runs_start",
    "rescore_runs_watchdog", "route_ticket", "score_event_types", "score_max_age", "score_override_apply",
    "score_override_clear", "score_refresh", "score_serve", "scores_erase_customer", "scores_invalidate",
    "scores_mark_stale",
]
