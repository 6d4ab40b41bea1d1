"""Batch rescoring, pass 2: each chunk scored in one transaction by any worker (pass 1, the planning, is in
``scoring.services.rescore_plan``).

One run per purpose (``RescoreRun``), but the runs of the batch purposes are planned together and their
chunks (the same customers) scored together: the gate is checked per purpose when the chunk executes, while
features, model outputs, explanations and the sealed details are computed once per customer; the decision
records and scores are written per customer-purpose, with the chunk rows marked done, in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from audit import services as audit_services
from config.errors import NotFound, ValidationFailed
from config.lookups import ids_in
from consent import selectors as consent_selectors
from profiles import services as profiles_services
from scoring import engine, registry
from scoring import selectors as scoring_selectors
from scoring import signals as scoring_signals
from scoring.models import CustomerScore, ModelVersion, RescoreChunk, RescoreRun
from scoring.population import Reference
from scoring.registry import LoadedModels
from scoring.services import rescore_fast
from scoring.services.checks import parse_uuid
from scoring.services.scores import (
    EncodedJson,
    computed_fields,
    effective_outputs,
    score_event_types,
    score_events,
    score_events_record,
    score_rows_upsert,
)

logger = logging.getLogger("scoring")

SKIP_FIELDS = {
    "no_consent": "skipped_no_consent",
    "restricted": "skipped_restricted",
    "objected": "skipped_objected",
    "erased": "skipped_erased",
    "not_found": "skipped_erased",
}


def batch_purposes() -> list[str]:
    """Purposes the nightly job rescores (``SCORING_BATCH_PURPOSES``)."""
    return list(getattr(settings, "SCORING_BATCH_PURPOSES", ["automated_scoring", "service_prioritization"]))


@dataclass
class ChunkCounts:
    total: int = 0
    scored: int = 0
    tier_changes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    already_done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "scored": self.scored, "tier_changes": self.tier_changes,
                "skipped": dict(self.skipped)}


def chunk_digest(customer_ids: Sequence[Any]) -> str:
    return hashlib.sha256(",".join(sorted(str(c) for c in customer_ids)).encode()).hexdigest()


def split_chunks(values: list[Any], size: int) -> list[list[Any]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


# Aggregate columns computed by the planning pass (``rescore_plan``), kept (bounded) for the scoring pass of
# the same process (``manage.py rescore`` scores the chunks its processes planned; a Celery worker keeps
# those it planned, in case it gets their pass 2). Keyed by the run's as-of time and the chunk digest; taken
# (removed) when the chunk is scored. Only customers some purpose's gate allowed at planning are in it, and
# the gate is checked again when the chunk is scored.
_FEATURE_CACHE: OrderedDict[tuple[str, str], tuple[dict[uuid.UUID, int], dict[str, np.ndarray]]] = OrderedDict()
_FEATURE_CACHE_ROWS = [0]


def feature_cache_put(as_of: datetime, digest: str, ids: list[uuid.UUID], columns: dict[str, np.ndarray]) -> None:
    limit = int(getattr(settings, "RESCORE_FEATURE_CACHE_CUSTOMERS", 2_000_000))
    if len(ids) > limit:
        return
    while _FEATURE_CACHE and _FEATURE_CACHE_ROWS[0] + len(ids) > limit:
        _, (pos, _cols) = _FEATURE_CACHE.popitem(last=False)
        _FEATURE_CACHE_ROWS[0] -= len(pos)
    _FEATURE_CACHE[(as_of.isoformat(), digest)] = ({c: i for i, c in enumerate(ids)}, columns)
    _FEATURE_CACHE_ROWS[0] += len(ids)


def _feature_cache_take(as_of: datetime, digest: str, ids: list[uuid.UUID]) -> dict[str, np.ndarray] | None:
    entry = _FEATURE_CACHE.pop((as_of.isoformat(), digest), None)
    if entry is None:
        return None
    pos, columns = entry
    _FEATURE_CACHE_ROWS[0] -= len(pos)
    try:
        rows = np.asarray([pos[c] for c in ids], dtype=np.int64)
    except KeyError:  # someone granted consent since planning: compute the chunk afresh
        return None
    return {name: col[rows] for name, col in columns.items()}


def rescore_feature_cache_clear() -> None:
    _FEATURE_CACHE.clear()
    _FEATURE_CACHE_ROWS[0] = 0


def runs_mark_failed(runs: list[RescoreRun]) -> None:
    try:
        RescoreRun.objects.filter(pk__in=[r.pk for r in runs]).update(
            status=RescoreRun.Status.FAILED, finished_at=timezone.now())
    except Exception:  # noqa: BLE001 - the original error is what matters
        logger.warning("could not mark the runs failed", extra={"event": "scoring.run.mark_failed_failed"})


def rescore_run_dispatch(*, run_id: uuid.UUID) -> int:
    """Queue ``rescore_chunk`` tasks for the run's pending chunks (after commit). Returns how many."""
    return rescore_runs_dispatch(run_ids=[run_id])


def rescore_runs_dispatch(*, run_ids: Sequence[uuid.UUID]) -> int:
    """Queue one task per pending chunk of runs planned together (``rescore_chunks``: all their purposes
    at once), after commit. Returns how many."""
    from scoring import tasks

    keys = [str(parse_uuid(r, "run")) for r in run_ids]
    queued = 0
    for ids in scoring_selectors.rescore_pending_chunk_ids(run_ids=run_ids):
        if len(keys) == 1:
            tasks.rescore_chunk.delay_on_commit(keys[0], ids)
        else:
            tasks.rescore_chunks.delay_on_commit(keys, ids)
        queued += 1
    return queued


def _details_plaintext(features_json: str, explanation_json: str) -> bytes:
    """The sealed-details plaintext ``customer_seal`` would encode for ``{"features", "explanation"}``
    (sorted keys, compact), from the two values already encoded that way."""
    return ('{"explanation":' + explanation_json + ',"features":' + features_json + "}").encode()


def _seal_many(items: list[tuple[uuid.UUID, dict[str, Any] | bytes]]) -> dict[uuid.UUID, bytes]:
    """Seal decision details for many customers (one key query); erased customers are left out."""
    label = audit_services.DECISION_DETAILS_LABEL
    return dict(profiles_services.customer_seal_many(items=[(cid, label, payload) for cid, payload in items]))


def rescore_fast_path() -> bool:
    """``RESCORE_FAST_PATH`` (default on): chunks are written by ``rescore_fast.group_write``; off, by the
    reference path below (one object per customer and purpose through the generic writers). Both write the
    same rows (tests/scoring/test_rescore_fast.py)."""
    return bool(getattr(settings, "RESCORE_FAST_PATH", True))


def _done_counts(chunk: RescoreChunk) -> ChunkCounts:
    counts = chunk.counts or {}
    return ChunkCounts(total=int(counts.get("total", 0)), scored=int(counts.get("scored", 0)),
                       tier_changes=int(counts.get("tier_changes", 0)), skipped=dict(counts.get("skipped", {})),
                       already_done=True)


_REFERENCES: dict[uuid.UUID, Reference] = {}


def _run_reference(run: RescoreRun) -> Reference:
    reference = _REFERENCES.get(run.pk)
    if reference is None:
        if len(_REFERENCES) > 64:
            _REFERENCES.clear()
        reference = _REFERENCES[run.pk] = Reference.from_json(run.thresholds)
    return reference


def run_models(run: RescoreRun) -> LoadedModels:
    if run.model_version is None:
        raise registry.ModelUnavailable()
    churn_id = (run.thresholds or {}).get("churn_model_version_id")
    churn_ref = None
    if churn_id:
        churn_version = ModelVersion.objects.filter(pk=churn_id).first()
        churn_ref = registry.ref_of(churn_version) if churn_version is not None else None
    return registry.loaded_models(registry.ref_of(run.model_version), churn_ref)


@transaction.atomic
def rescore_chunk(*, run_id: uuid.UUID, customer_ids: Sequence[uuid.UUID | str]) -> ChunkCounts:
    """Score one chunk of one run (see ``rescore_chunks``)."""
    key = parse_uuid(run_id, "run")
    return rescore_chunks(run_ids=[key], customer_ids=customer_ids)[key]


@transaction.atomic
def rescore_chunks(*, run_ids: Sequence[uuid.UUID | str], customer_ids: Sequence[uuid.UUID | str]
                   ) -> dict[uuid.UUID, ChunkCounts]:
    """Score one chunk of customers for runs planned together, in one transaction; re-checks the gate of
    each run's purpose now; idempotent under retry.

    Customers a purpose's gate refuses now are skipped and counted in that run, and their stored score for
    the purpose is deleted. Features, model outputs, explanations and sealed details are computed once per
    customer for all the runs. Decision records carry ``decision_key = "<run>:<customer>:<purpose>"``
    (unique); the chunk rows are locked and marked done in the same transaction: a retried or duplicated
    chunk writes nothing twice, and a chunk killed mid-way rolls back completely and is redone on
    redelivery. Runs whose chunk is already done are left alone (their stored counts are returned).
    """
    ids = [parse_uuid(c) for c in customer_ids]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("The customers of a chunk must be distinct.")
    keys = list(dict.fromkeys(parse_uuid(r, "run") for r in run_ids))
    runs = {r.pk: r for r in RescoreRun.objects.select_related("model_version").filter(pk__in=keys)}
    if len(runs) != len(keys):
        raise NotFound("Rescore run not found.")
    digest = chunk_digest(ids)
    chunks = {c.run_id: c for c in RescoreChunk.objects.select_for_update().filter(run_id__in=keys, digest=digest)
              .order_by("run_id")}
    if len(chunks) != len(keys):
        raise ValidationFailed("These customers are not a chunk of this run.")
    result: dict[uuid.UUID, ChunkCounts] = {}
    pending: list[RescoreRun] = []
    for key in keys:
        if chunks[key].done:
            result[key] = _done_counts(chunks[key])
        else:
            pending.append(runs[key])
    if not pending:
        return result
    counts = {run.pk: ChunkCounts(total=len(ids)) for run in pending}
    gates: dict[uuid.UUID, consent_selectors.GateColumns] = {}
    # held: the consent-state rows stay locked FOR SHARE until this chunk commits (as the real-time path);
    # by column: position i answers for ids[i]
    gates_by = consent_selectors.processing_gates_columns_held(customer_ids=ids,
                                                               purposes=[run.purpose for run in pending])
    for run in pending:
        run_gates = gates_by[run.purpose]
        gates[run.pk] = run_gates
        refused = np.flatnonzero(~run_gates.allowed).tolist()
        skipped = counts[run.pk].skipped
        for refused_code in run_gates.codes[refused].tolist():
            code = SKIP_FIELDS.get(refused_code, "skipped_no_consent")
            skipped[code] = skipped.get(code, 0) + 1
        if refused:
            CustomerScore.objects.filter(ids_in("customer_id", [ids[i] for i in refused]),
                                         purpose=run.purpose).delete()
    # Runs planned together share their model and as-of time: one group, scored once.
    groups: dict[tuple[Any, ...], list[RescoreRun]] = {}
    for run in pending:
        group_key = (run.model_version_id, (run.thresholds or {}).get("churn_model_version_id"), run.as_of)
        groups.setdefault(group_key, []).append(run)
    fast = rescore_fast_path()
    records: list[dict[str, Any]] = []
    score_rows: list[dict[str, Any]] = []
    event_candidates: list[tuple[uuid.UUID, str, str, tuple[str, str] | None, dict[str, Any], dict[str, Any]]] = []
    for group in groups.values():
        union = np.flatnonzero(np.logical_or.reduce([gates[run.pk].allowed for run in group]))
        if not union.size:
            continue
        allowed = [ids[i] for i in union.tolist()]
        # the gates of the group's runs by position in ``allowed``
        group_gates = {run.pk: gates[run.pk].take(union) for run in group}
        models = run_models(group[0])
        as_of = group[0].as_of
        columns = _feature_cache_take(as_of, digest, allowed)
        if columns is None:
            from scoring.features.aggregates import fact_aggregates

            columns = fact_aggregates(customer_ids=allowed, as_of=as_of)
        batch = engine.score_batch(allowed, columns=columns, models=models, encoded=fast)
        # features and explanation encoded once per customer: sealed details and both purposes' score rows
        sealed = _seal_many([(cid, _details_plaintext(batch.features_json[i], batch.explanation_json[i]))
                             for i, cid in enumerate(allowed)])
        purposes = [run.purpose for run in group]
        previous = scoring_selectors.scores_previous_many(customer_ids=allowed, purposes=purposes)
        overrides = scoring_selectors.score_overrides_active_many(customer_ids=allowed, purposes=purposes)
        positions = {cid: i for i, cid in enumerate(allowed)}
        versions = models.versions()
        model_fields = {"model_version_id": models.full.id,
                        "churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None}
        now = timezone.now()
        currency = engine.currency()
        if fast:
            event_candidates.extend(rescore_fast.group_write(
                group=group, allowed=allowed, batch=batch, sealed=sealed, gates=group_gates, previous=previous,
                overrides=overrides, versions=versions, model_fields=model_fields, now=now, currency=currency,
                counts=counts, reference_of=_run_reference))
            continue
        for run in group:
            run_gates = group_gates[run.pk]
            rows = np.flatnonzero(run_gates.allowed).tolist()
            kept = [i for i in rows if allowed[i] in sealed]
            if len(kept) < len(rows):  # erased meanwhile: no decision, no score
                skipped = counts[run.pk].skipped
                skipped["skipped_erased"] = skipped.get("skipped_erased", 0) + len(rows) - len(kept)
            reference = _run_reference(run)
            purpose = run.purpose
            thresholds_ref = reference.source[:80]
            for c in engine.finish_scores(batch, reference=reference, rows=kept):
                cid = c.customer_id
                before = previous.get((cid, purpose))
                changed = before is not None and before[0] != c.tier
                counts[run.pk].tier_changes += int(changed)
                row = {"customer_id": cid, "purpose": purpose, **model_fields,
                       **computed_fields(c, thresholds_ref=thresholds_ref, as_of=run.as_of, run_id=run.id, now=now,
                                          currency=currency)}
                i = positions[cid]
                gate = run_gates.decision(i)
                row["features"] = EncodedJson(batch.features_json[i])
                row["explanation"] = EncodedJson(batch.explanation_json[i])
                score_rows.append(row)
                if score_event_types(before, c.tier, c.risk_level):
                    event_candidates.append((cid, purpose, f"{run.id}:{cid}:{purpose}", before, row, c.explanation))
                records.append({
                    "customer": cid, "purpose": purpose,
                    "decision_type": "tier_change" if changed else "batch_rescore",
                    "requester": run.requester, "consent_event_id": gate.consent_event_id,
                    "notice_version": gate.notice_version, "model_versions": versions,
                    "features_hash": c.features_hash,
                    "outputs": effective_outputs(row, overrides.get((cid, purpose))),
                    "sealed_details": sealed[cid], "decision_key": f"{run.id}:{cid}:{purpose}",
                })
            counts[run.pk].scored = len(kept)
    if records:
        audit_services.decision_records_bulk(records=records)
        score_rows_upsert(score_rows)
    if event_candidates:  # tier changes / risk rises of this chunk: one id lookup, one bulk insert
        from audit import selectors as audit_selectors

        decision_ids = audit_selectors.decision_ids_by_key(keys=[key for _, _, key, _, _, _ in event_candidates])
        score_events_record([event for cid, purpose, key, before, row, explanation in event_candidates
                              for event in score_events(customer_id=cid, purpose=purpose,
                                                         decision_id=decision_ids[key], previous=before, row=row,
                                                         explanation=explanation)])
    # processed (scored, or refused and its stored score deleted): no longer stale as of the run
    profiles_services.customer_mark_fresh(customer_ids=ids, as_of=max(run.as_of for run in pending))
    finished = timezone.now()
    for run in pending:
        chunk = chunks[run.pk]
        run_counts = counts[run.pk]
        chunk.done = True
        chunk.counts = run_counts.to_json()
        chunk.finished_at = finished
        chunk.save(update_fields=["done", "counts", "finished_at"])
        updates: dict[str, Any] = {
            "chunks_done": F("chunks_done") + 1, "done": F("done") + run_counts.total,
            "scored": F("scored") + run_counts.scored, "tier_changes": F("tier_changes") + run_counts.tier_changes,
        }
        for name, n in run_counts.skipped.items():
            updates[name] = F(name) + n
        RescoreRun.objects.filter(pk=run.pk).update(**updates)
        run.refresh_from_db(fields=["chunks_done", "chunks_total", "status"])
        if run.chunks_done >= run.chunks_total and run.status != RescoreRun.Status.COMPLETED:
            RescoreRun.objects.filter(pk=run.pk).update(status=RescoreRun.Status.COMPLETED, finished_at=timezone.now())
            RescoreChunk.objects.filter(run=run).update(customer_ids=[])
            _REFERENCES.pop(run.pk, None)
            if run.model_version_id is not None:
                registry.reference_forget(run.model_version_id, run.purpose)
            logger.info("rescore run completed", extra={"event": "scoring.run.completed", "run_id": str(run.id)})
            scoring_signals.rescore_run_completed.send(sender=RescoreRun, run_id=run.id, purpose=run.purpose)
        logger.info("rescore chunk done", extra={"event": "scoring.chunk.done", "run_id": str(run.id),
                                                 "chunk": chunk.chunk_no, "scored": run_counts.scored,
                                                 "skipped": sum(run_counts.skipped.values())})
        result[run.pk] = run_counts
    return {key: result[key] for key in keys}

# --------------------------------------------------------------------------- stale-run watchdog (issue 20)


def rescore_runs_watchdog(*, now: datetime | None = None) -> dict[str, list[str]]:
    """Resume or fail runs that stopped making progress (a killed worker, retries exhausted by an outage).

    A ``running`` run whose last progress (its latest finished chunk, else its start) is older than
    ``RESCORE_WATCHDOG_STALE_MINUTES`` gets its pending chunks queued again (chunks are idempotent: a chunk
    that is in fact still running, or redelivered later by the broker, writes nothing twice). A ``preparing``
    run (pass 1) whose last planned chunk is as old gets its chunks not yet planned queued again (planning
    is idempotent too; the last one queues pass 2); one whose chunk rows were never all created (the
    creating process died: ``chunks_total`` still 0) cannot be resumed and is marked ``failed``. A run
    started more than ``RESCORE_WATCHDOG_GIVE_UP_HOURS`` ago is marked ``failed`` instead, for ``rescore
    --resume`` by an operator. Run by beat (``scoring.tasks.rescore_watchdog``)."""
    from scoring.services.rescore_plan import rescore_runs_plan_dispatch

    now = now or timezone.now()
    stale_before = now - timedelta(minutes=int(getattr(settings, "RESCORE_WATCHDOG_STALE_MINUTES", 15)))
    give_up_before = now - timedelta(hours=float(getattr(settings, "RESCORE_WATCHDOG_GIVE_UP_HOURS", 24)))
    resumed: list[str] = []
    failed: list[str] = []
    # Runs planned together (one plan: same as-of time, models, requester; the same chunks) are resumed
    # together, as they were dispatched: one task per chunk plans or scores all their purposes (features once).
    together: dict[tuple[Any, ...], list[RescoreRun]] = {}
    runs = RescoreRun.objects.filter(status__in=[RescoreRun.Status.PREPARING, RescoreRun.Status.RUNNING]).annotate(
        last_done=Max("chunks__finished_at"), last_planned=Max("chunks__planned_at")).order_by("as_of", "purpose")
    for run in runs:
        preparing = run.status == RescoreRun.Status.PREPARING
        last = max(filter(None, [run.last_planned if preparing else run.last_done, run.started_at]))
        if last >= stale_before:
            continue
        if run.started_at < give_up_before or (preparing and not run.chunks_total):
            RescoreRun.objects.filter(pk=run.pk, status=run.status).update(
                status=RescoreRun.Status.FAILED, finished_at=now)
            logger.error("stale rescore run given up", extra={"event": "scoring.watchdog.failed", "run_id": str(run.pk)})
            failed.append(str(run.pk))
            continue
        plan = (run.status, run.as_of, run.model_version_id, (run.thresholds or {}).get("churn_model_version_id"),
                run.requester, run.full, run.chunks_total)
        together.setdefault(plan, []).append(run)
    for plan, group in together.items():
        run_ids = [stale.pk for stale in group]
        with transaction.atomic():
            if plan[0] == RescoreRun.Status.PREPARING:
                queued = rescore_runs_plan_dispatch(run_ids=run_ids)
            else:
                queued = rescore_runs_dispatch(run_ids=run_ids)
        for stale in group:
            logger.warning("stale rescore run resumed", extra={"event": "scoring.watchdog.resumed",
                                                              "run_id": str(stale.pk), "count": queued,
                                                              "status": stale.status})
            resumed.append(str(stale.pk))
    return {"resumed": resumed, "failed": failed}
