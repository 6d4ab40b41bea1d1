"""The one definition of consent semantics: state and gate codes, the pure replay of flags and notices, and
the customer existence check (profiles).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists

from config.errors import ValidationFailed
from config.uuids import as_uuid
from consent.models import (
    ConsentEvent,
    ConsentNotice,
    FlagKind,
    ProcessingFlag,
)

RECEIPT_FORMAT = "consent-receipt/1"


STATUS_GRANTED = "granted"


STATUS_WITHDRAWN = "withdrawn"


STATUS_NEVER_ASKED = "never_asked"


STATUS_RECONSENT_REQUIRED = "reconsent_required"


GATE_OK = "ok"


GATE_NO_CONSENT = "no_consent"


GATE_RESTRICTED = "restricted"


GATE_OBJECTED = "objected"


GATE_ERASED = "erased"


GATE_NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ConsentState:
    customer_id: uuid.UUID
    purpose: str
    granted: bool
    status: str  # "granted" | "withdrawn" | "never_asked" | "reconsent_required"
    event_id: int | None = None
    notice_version: str | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    code: str  # "ok" | "no_consent" | "restricted" | "objected" | "erased" | "not_found"
    consent_event_id: int | None = None
    notice_version: str | None = None


# --- Customer existence (profiles) -----------------------------------------------------------------------
def customer_id_resolve(customer_id: uuid.UUID) -> tuple[uuid.UUID | None, str | None]:
    """(surviving pseudonym, None) for a live customer or a merge alias; (None, "erased" | "not_found")."""
    from profiles import selectors as profiles_selectors

    resolved = profiles_selectors.customer_resolve(customer_id=customer_id)
    if resolved is not None:
        return resolved, None
    erased = profiles_selectors.customer_is_erased(customer_id=customer_id)
    return None, GATE_ERASED if erased else GATE_NOT_FOUND


def absent_codes_bulk(customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Absent customers among ``customer_ids`` -> "erased" | "not_found" (one query, two if any is absent)."""
    from profiles import selectors as profiles_selectors

    existing = profiles_selectors.customers_existing(customer_ids=list(customer_ids))
    missing = [cid for cid in customer_ids if cid not in existing]
    if not missing:
        return {}
    erased = profiles_selectors.customers_erased(customer_ids=missing)
    return {cid: (GATE_ERASED if cid in erased else GATE_NOT_FOUND) for cid in missing}


def customer_uuid(value: Any) -> uuid.UUID:
    try:
        return as_uuid(value)
    except ValueError as exc:
        raise ValidationFailed("Invalid customer id.") from exc


def bulk_chunk_size() -> int:
    """How many ids one set-based gate query takes (the database's parameter limit, at most 10,000)."""
    limit = connection.features.max_query_params or 10_000
    return max(100, min(limit - 20, 10_000))


# --- Pure state replay (the single definition of the semantics) -------------------------------------------
def superseded_exists(*, purpose_ref: Any, published_ref: Any, at: datetime) -> Exists:
    return Exists(
        ConsentNotice.objects.filter(
            purpose_id=purpose_ref, requires_reconsent=True, published_at__gt=published_ref, published_at__lte=at
        )
    )


def flags_replay(flags: Iterable[tuple[str, str, int | None]]) -> dict[str, set[int | None]]:
    """Replay (kind, action, purpose_id) flag events in order -> active purpose ids per kind (None = all)."""
    active: dict[str, set[int | None]] = {FlagKind.RESTRICTION: set(), FlagKind.OBJECTION: set()}
    for kind, action, purpose_id in flags:
        if action == ProcessingFlag.Action.SET:
            active[kind].add(purpose_id)
        elif purpose_id is None:
            active[kind].clear()
        else:
            active[kind].discard(purpose_id)
    return active


def flag_code_for(active: dict[str, set[int | None]], purpose_id: int) -> str | None:
    if None in active[FlagKind.RESTRICTION] or purpose_id in active[FlagKind.RESTRICTION]:
        return GATE_RESTRICTED
    if None in active[FlagKind.OBJECTION] or purpose_id in active[FlagKind.OBJECTION]:
        return GATE_OBJECTED
    return None


def state_from_row(
    *, customer_id: uuid.UUID, purpose: str, row: dict[str, Any] | None
) -> ConsentState:
    if row is None:
        return ConsentState(customer_id=customer_id, purpose=purpose, granted=False, status=STATUS_NEVER_ASKED)
    if row["action"] != ConsentEvent.Action.GRANT:
        status = STATUS_WITHDRAWN
    elif row["superseded"]:
        status = STATUS_RECONSENT_REQUIRED
    else:
        status = STATUS_GRANTED
    return ConsentState(
        customer_id=customer_id,
        purpose=purpose,
        granted=status == STATUS_GRANTED,
        status=status,
        event_id=row["event_id"],
        notice_version=row["notice_version"],
        occurred_at=row["occurred_at"],
        source=row["source"],
        channel=row["channel"],
    )
