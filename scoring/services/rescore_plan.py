"""Pass 1 of the batch rescore, the planning: runs and chunks created, then each chunk ranked by any worker.

1. ``rescore_runs_create`` (serial, cheap: a keyset scan of the customer ids) creates one run per purpose
   (``preparing``) and the chunk rows they share. A subset run takes the latest full run's reference (or the
   model's training population) and is ``running`` at once.
2. ``rescore_chunk_plan`` ranks one chunk for all the runs planned together — in any process, in any order,
   any number of times (at-least-once delivery): per purpose the consent gate now, then the CLV rank of the
   customers some purpose allows (features by set-based SQL, no explanations, no decision). Each run's
   ``(rank, tie-break key)`` pairs are stored on its chunk row, the chunk row locked and marked planned in the
   same transaction, so a redelivered chunk counts once.
3. The transaction that plans a run's last chunk also reduces: the run's tier cut-offs and CLV quantiles
   (``reference_from_keys``: a sort and quantiles, independent of the order the chunks were planned in, so
   the reference is the one a serial pass computes), the stored pairs cleared, the runs ``running``; from a
   Celery task it queues pass 2 (``rescore_chunks``) on commit.

``rescore_runs_start`` does all three in the calling process (the nightly job in tests, the schedule).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.errors import NotFound, ValidationFailed
from consent import selectors as consent_selectors
from scoring import engine, registry
from scoring import selectors as scoring_selectors
from scoring.models import RescoreChunk, RescoreRun
from scoring.population import reference_from_keys, tiebreak
from scoring.services.checks import check_purpose, parse_uuid
from scoring.services.rescore import (
    chunk_digest,
    feature_cache_put,
    rescore_runs_dispatch,
    run_models,
    runs_mark_failed,
    split_chunks,
)

logger = logging.getLogger("scoring")

RESCORE_PLAN_FLUSH_CHUNKS = 100  # chunk rows committed per transaction while the runs are created
KEY_BYTES = 16  # a tie-break key: 16 hexadecimal characters (``scoring.population.tiebreak``)


def plan_encode(ranks: np.ndarray, keys: np.ndarray) -> bytes:
    """A chunk's ``(rank, tie-break key)`` pairs as stored: float64 ranks, then the keys as ASCII."""
    return (np.asarray(ranks, dtype="<f8").tobytes()
            + np.asarray(keys, dtype=f"S{KEY_BYTES}").tobytes())


def plan_decode(blob: bytes | memoryview | None) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``plan_encode`` (keys as the ``<U16`` strings ``tiebreak`` gives)."""
    data = bytes(blob or b"")
    n = len(data) // (8 + KEY_BYTES)
    ranks = np.frombuffer(data[: 8 * n], dtype="<f8")
    keys = np.frombuffer(data[8 * n:], dtype=f"S{KEY_BYTES}").astype(f"<U{KEY_BYTES}")
    return ranks, keys


def rescore_runs_create(
    *, purposes: Sequence[str], requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None,
) -> list[RescoreRun]:
    """Create one run per purpose over the same chunks of customers (step 1 of the planning).

    A *full* run (``customer_ids=None``) covers every live customer, streamed in chunks (keyset); its runs
    stay ``preparing`` until every chunk is planned (``rescore_chunk_plan``); ``chunks_total`` is set once
    every chunk row exists. A subset run uses the latest full run's reference and is ``running`` (nothing
    to plan). Short transactions: the runs are visible from the start, the chunk rows committed as they go.
    """
    from profiles import selectors as profiles_selectors

    purposes = list(dict.fromkeys(check_purpose(p) for p in purposes))
    if not purposes:
        raise ValidationFailed("At least one purpose is required.")
    size = int(chunk_size or settings.RESCORE_CHUNK_SIZE)
    if size <= 0:
        raise ValidationFailed("chunk_size must be positive.")
    models = registry.active_models()
    now = timezone.now()
    full = customer_ids is None
    churn_id = models.churn_ref.id if models.churn_ref is not None else None
    with transaction.atomic():
        runs = [
            RescoreRun.objects.create(
                purpose=purpose, requester=requester, full=full, model_version_id=models.full.id, as_of=now,
                started_at=now, thresholds={"churn_model_version_id": churn_id},
            )
            for purpose in purposes
        ]
    try:
        if full:
            chunk_iter: Any = profiles_selectors.customer_id_chunks(chunk_size=size)
        else:
            chunk_iter = split_chunks(list(dict.fromkeys(parse_uuid(c) for c in customer_ids or ())), size)
        rows: list[RescoreChunk] = []
        total = 0
        chunks_total = 0

        def flush() -> None:
            with transaction.atomic():
                RescoreChunk.objects.bulk_create(rows, batch_size=500)
                RescoreRun.objects.filter(pk__in=[r.pk for r in runs]).update(total=total)
            rows.clear()

        for chunk_no, raw in enumerate(chunk_iter):
            ids = [parse_uuid(c) for c in raw]
            digest = chunk_digest(ids)
            str_ids = [str(c) for c in ids]
            rows.extend(RescoreChunk(run=run, chunk_no=chunk_no, digest=digest, customer_ids=str_ids,
                                     planned=not full, planned_at=None if full else now) for run in runs)
            total += len(ids)
            chunks_total += 1
            if len(rows) >= RESCORE_PLAN_FLUSH_CHUNKS * len(runs):
                flush()
        flush()
        with transaction.atomic():
            for run in runs:
                run.total = total
                run.chunks_total = chunks_total
                fields = ["total", "chunks_total"]
                if not full or not chunks_total:  # nothing to plan: the reference now
                    reference = (registry.reference_for(models, run.purpose) if not full
                                 else reference_from_keys(np.zeros(0), np.zeros(0, dtype="<U16"),
                                                          source=f"run:{run.id}"))
                    run.thresholds = {**run.thresholds, **reference.to_json()}
                    run.chunks_planned = chunks_total
                    run.status = RescoreRun.Status.RUNNING if chunks_total else RescoreRun.Status.COMPLETED
                    run.finished_at = None if chunks_total else timezone.now()
                    fields += ["thresholds", "chunks_planned", "status", "finished_at"]
                run.save(update_fields=fields)
    except BaseException:
        runs_mark_failed(runs)
        raise
    for run in runs:
        logger.info("rescore run created", extra={"event": "scoring.run.created", "run_id": str(run.id),
                                                  "purpose": run.purpose, "total": total, "count": chunks_total})
    return runs


def rescore_chunk_plan(
    *, run_ids: Sequence[uuid.UUID | str], customer_ids: Sequence[uuid.UUID | str], keep_features: bool = False,
    dispatch: bool = False,
) -> bool:
    """Plan one chunk of runs created together (step 2); reduce if it is their last (step 3).

    Idempotent: the chunk rows are locked, and a chunk already planned for every run is left alone
    (returns False). The gate read here only chooses the population of the reference; pass 2 checks
    it again, held, when the chunk is written. With ``keep_features`` the chunk's aggregate columns are
    kept in this process for its pass 2, should this process score it (``feature_cache_put``). With
    ``dispatch``, the transaction that completes the plan queues pass 2 on commit."""
    from scoring.features.aggregates import fact_aggregates

    ids = [parse_uuid(c) for c in customer_ids]
    given = list(dict.fromkeys(parse_uuid(r, "run") for r in run_ids))  # pass 2 is queued in this order
    keys = sorted(given)  # rows are locked in key order
    digest = chunk_digest(ids)
    with transaction.atomic():
        runs = {r.pk: r for r in RescoreRun.objects.select_related("model_version").filter(pk__in=keys)}
        if len(runs) != len(keys):
            raise NotFound("Rescore run not found.")
        chunks = {c.run_id: c for c in RescoreChunk.objects.select_for_update().filter(
            run_id__in=keys, digest=digest).order_by("run_id")}
        if len(chunks) != len(keys):
            raise ValidationFailed("These customers are not a chunk of this run.")
        pending = [runs[key] for key in keys if not chunks[key].planned]
        if not pending:
            return False
        purposes = [run.purpose for run in pending]
        as_of = pending[0].as_of
        gates_by = consent_selectors.processing_gates_columns(customer_ids=ids, purposes=purposes)
        allowed = {run.pk: gates_by[run.purpose].allowed for run in pending}
        union = np.logical_or.reduce(list(allowed.values()))
        ranks = np.zeros(0, dtype=np.float64)
        tiebreaks = np.zeros(0, dtype=f"<U{KEY_BYTES}")
        if union.any():
            uids = [c for c, ok in zip(ids, union.tolist(), strict=True) if ok]
            columns = fact_aggregates(customer_ids=uids, as_of=as_of)
            ranks = np.asarray(engine.rank_values(run_models(pending[0]), columns), dtype=np.float64)
            tiebreaks = np.asarray([tiebreak(c) for c in uids])
            if keep_features:
                feature_cache_put(as_of, digest, uids, columns)
        now = timezone.now()
        for run in pending:
            chunk = chunks[run.pk]
            mask = allowed[run.pk][union]
            chunk.plan = plan_encode(ranks[mask], tiebreaks[mask])
            chunk.planned = True
            chunk.planned_at = now
        RescoreChunk.objects.bulk_update([chunks[run.pk] for run in pending], ["plan", "planned", "planned_at"])
        for run in pending:  # one row at a time, in key order: concurrent chunks lock the runs alike
            RescoreRun.objects.filter(pk=run.pk).update(chunks_planned=F("chunks_planned") + 1)
        # Each chunk task plans all the runs together: the one whose update made the counters reach the
        # totals (it waited for the others' commits on the run rows) is the only one to see them there.
        state = RescoreRun.objects.filter(pk__in=keys).values_list("chunks_planned", "chunks_total", "status")
        if all(0 < t <= p and s in (RescoreRun.Status.PREPARING, RescoreRun.Status.FAILED) for p, t, s in state):
            _plan_reduce(runs=[runs[key] for key in given], dispatch=dispatch)
    return True


def _plan_reduce(*, runs: list[RescoreRun], dispatch: bool) -> None:
    """Each run's reference from its chunks' stored pairs (in chunk order; the result does not depend on
    it), the pairs cleared, the runs ``running``; with ``dispatch`` pass 2 is queued on commit."""
    for run in runs:
        parts = [plan_decode(blob) for blob in RescoreChunk.objects.filter(run=run).order_by("chunk_no")
                 .values_list("plan", flat=True).iterator(chunk_size=200)]
        ranks = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0)
        keys = np.concatenate([k for _, k in parts]) if parts else np.zeros(0, dtype=f"<U{KEY_BYTES}")
        reference = reference_from_keys(ranks, keys, source=f"run:{run.id}")
        run.refresh_from_db(fields=["thresholds"])
        run.thresholds = {**run.thresholds, **reference.to_json()}
        run.status = RescoreRun.Status.RUNNING
        run.finished_at = None
        run.save(update_fields=["thresholds", "status", "finished_at"])
        RescoreChunk.objects.filter(run=run).update(plan=None)
        logger.info("rescore run planned", extra={"event": "scoring.run.planned", "run_id": str(run.id),
                                                  "purpose": run.purpose, "total": run.total,
                                                  "count": run.chunks_total})
    if dispatch:
        rescore_runs_dispatch(run_ids=[run.pk for run in runs])


def rescore_runs_plan_dispatch(*, run_ids: Sequence[uuid.UUID]) -> int:
    """Queue one ``rescore_plan_chunk`` task per chunk not planned yet of runs created together (all their
    purposes at once), after commit; the task that plans the last one queues pass 2. Returns how many."""
    from scoring import tasks

    keys = [str(parse_uuid(r, "run")) for r in run_ids]
    queued = 0
    for ids in scoring_selectors.rescore_unplanned_chunk_ids(run_ids=run_ids):
        tasks.rescore_plan_chunk.delay_on_commit(keys, ids)
        queued += 1
    return queued


def rescore_runs_plan(
    *, run_ids: Sequence[uuid.UUID], progress: Callable[[int], None] | None = None, keep_features: bool = False,
    worker: int = 0, workers: int = 1,
) -> int:
    """Plan, in this process, the chunks not planned yet of runs created together (with ``workers > 1``
    only those whose number is ``worker`` modulo ``workers``). ``progress(n)`` gets each chunk's size.
    Returns how many chunks this call planned."""
    planned = 0
    for ids in scoring_selectors.rescore_unplanned_chunk_ids(run_ids=run_ids, worker=worker, workers=workers):
        planned += int(rescore_chunk_plan(run_ids=run_ids, customer_ids=ids, keep_features=keep_features))
        if progress is not None:
            progress(len(ids))
    return planned


def rescore_runs_start(
    *, purposes: Sequence[str], requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None, progress: Callable[[int], None] | None = None, keep_features: bool = False,
) -> list[RescoreRun]:
    """Create and plan, in this process, one run per purpose over the same chunks (the whole pass 1).

    Pass 2 (``rescore_chunks``) re-checks the gate and writes. ``progress(n)`` gets the number of customers
    planned after each chunk. With ``keep_features`` the aggregate columns are kept in this process for
    pass 2 (bounded by ``RESCORE_FEATURE_CACHE_CUSTOMERS``). To plan on the workers instead:
    ``rescore_runs_create`` then ``rescore_runs_plan_dispatch``."""
    runs = rescore_runs_create(purposes=purposes, requester=requester, customer_ids=customer_ids,
                               chunk_size=chunk_size)
    try:
        rescore_runs_plan(run_ids=[run.pk for run in runs], progress=progress, keep_features=keep_features)
    except BaseException:
        runs_mark_failed(runs)
        raise
    for run in runs:
        run.refresh_from_db()
    return runs


def rescore_run_start(
    *, purpose: str, requester: str, customer_ids: Sequence[uuid.UUID] | None = None,
    chunk_size: int | None = None, progress: Callable[[int], None] | None = None,
) -> RescoreRun:
    """Plan a rescoring run for one purpose (see ``rescore_runs_start``)."""
    return rescore_runs_start(purposes=[purpose], requester=requester, customer_ids=customer_ids,
                              chunk_size=chunk_size, progress=progress)[0]
