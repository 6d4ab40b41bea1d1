"""Processing flags (restriction, objection): active now or at an instant, and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from consent.models import (
    ProcessingFlag,
    ProcessingFlagCurrent,
    Purpose,
)

from .semantics import customer_uuid, flags_replay


# --- Processing flags ------------------------------------------------------------------------------------
def processing_flags_active(*, customer_id: uuid.UUID, at: datetime | None = None) -> list[dict[str, Any]]:
    """Restrictions and objections holding now (or at ``at``): [{"kind", "purpose" (None = all)}]."""
    cid = customer_uuid(customer_id)
    codes = dict(Purpose.objects.values_list("id", "code"))
    pairs: list[tuple[str, int | None]]
    if at is None:
        rows = ProcessingFlagCurrent.objects.filter(customer_id=cid).values_list("kind", "purpose_id")
        pairs = sorted({(kind, pid) for kind, pid in rows}, key=lambda kp: (kp[0], kp[1] or 0))
    else:
        flags = ProcessingFlag.objects.filter(customer_id=cid, at__lte=at).order_by("at", "id")
        active = flags_replay(flags.values_list("kind", "action", "purpose_id"))
        pairs = sorted(((k, p) for k, ps in active.items() for p in ps), key=lambda kp: (kp[0], kp[1] or 0))
    return [{"kind": kind, "purpose": codes.get(pid) if pid else None} for kind, pid in pairs]


def processing_flag_history(*, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    cid = customer_uuid(customer_id)
    flags = ProcessingFlag.objects.filter(customer_id=cid).select_related("purpose").order_by("at", "id")
    return [
        {
            "flag_id": f.id,
            "kind": f.kind,
            "action": f.action,
            "purpose": f.purpose.code if f.purpose else None,
            "reason": f.reason,
            "at": f.at,
            "actor": f.actor,
        }
        for f in flags
    ]
