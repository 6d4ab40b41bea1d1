"""API ingest entry point: shape-validated records of any kind, one savepoint each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction

from config.errors import ApplicationError

from ..errors import IdentifierInUse, MergeConflict, RecordInvalid
from .customer_batch import customer_ingest_batch
from .facts import FACT_KINDS, facts_ingest_batch
from .governance import record_governance

INGEST_KINDS = ("customers", *FACT_KINDS)


@dataclass(frozen=True)
class BatchRecordResult:
    index: int
    outcome: str
    customer_id: UUID | None = None
    errors: tuple[tuple[str, str], ...] = ()  # (field, code)


@transaction.atomic
def ingest_batch(*, kind: str, records: Sequence[tuple[int, dict[str, Any]]], actor: str, channel: str = "api",
                 prior_rejections: int = 0) -> list[BatchRecordResult]:
    """Ingest already shape-validated records ``(index, record)`` of one kind; each record in its own
    savepoint. Writes one ``import.completed`` governance record with the counts (PII-free)."""
    if kind not in INGEST_KINDS:
        raise ApplicationError("Unknown record kind.", code="unknown_kind")
    results: list[BatchRecordResult] = []
    if kind == "customers":
        batch = customer_ingest_batch(records=[r for _, r in records], actor=actor)
        for (index, _), res in zip(records, batch, strict=True):
            exc = res.error
            if exc is None:
                results.append(BatchRecordResult(index=index, outcome=res.outcome, customer_id=res.customer_id))
            elif isinstance(exc, RecordInvalid):
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((exc.field, exc.field_code),)))
            elif isinstance(exc, MergeConflict):
                field = exc.reason.removeprefix("conflicting_")
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((field, exc.code),)))
            elif isinstance(exc, IdentifierInUse):
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=((exc.field, exc.code),)))
            elif isinstance(exc, IntegrityError):  # a concurrent writer took the identifier; can be retried
                results.append(BatchRecordResult(index=index, outcome="rejected", errors=(("record", "conflict"),)))
            else:
                raise exc
    else:
        fact_results = facts_ingest_batch(kind=kind, records=[r for _, r in records], actor=actor)
        for (index, _), fr in zip(records, fact_results, strict=True):
            errors = ((fr.field or "record", fr.code or "invalid"),) if fr.outcome == "rejected" else ()
            results.append(BatchRecordResult(index=index, outcome=fr.outcome, customer_id=fr.customer_id,
                                             errors=errors))
    counts = dict.fromkeys(("created", "updated", "merged", "unchanged", "rejected"), 0)
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    counts["rejected"] += prior_rejections
    record_governance(kind="import.completed", actor=actor,
                details={"channel": channel, "kind": kind, "total": len(records) + prior_rejections, **counts})
    return results
