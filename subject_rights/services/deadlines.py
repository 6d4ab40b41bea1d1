"""The statutory clock: extensions (told to the requester) and the daily check of due requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from .. import clock, links, notifications
from ..errors import (
    ExtensionExhausted,
    ExtensionTooLate,
    InvalidTransition,
)
from ..models import (
    OPEN_STATUSES,
    ExtensionCode,
    Status,
    SubjectRequest,
)
from .workflow import (
    WORKABLE,
    contact_open,
    field_error,
    logger,
    request_lock,
    request_transition,
    text_scrubbed,
)


@transaction.atomic
def request_extend(*, request_id: UUID, actor: str, months: int, code: str, reason: str) -> SubjectRequest:
    """Extend the deadline by up to two further months (Art. 12(3)) - only before the first month
    ends, with a reason that is communicated to the requester."""
    req = request_lock(request_id)
    if code not in ExtensionCode.values:
        raise field_error("code", "invalid_choice")
    if not reason or not reason.strip():
        raise field_error("reason", "required")
    if not isinstance(months, int) or months < 1:
        raise field_error("months", "min_value")
    if req.status not in WORKABLE:
        raise InvalidTransition()
    now = timezone.now()
    state = clock.clock_state(received_at=req.received_at, paused_total=req.paused_total,
                              paused_since=req.paused_since, extension_months=req.extension_months, now=now)
    if now >= state.first_month_end:
        raise ExtensionTooLate()
    if req.extension_months + months > clock.MAX_EXTENSION_MONTHS:
        raise ExtensionExhausted()
    req.extension_months += months
    req.extension_code = code
    req.extension_reason = text_scrubbed(reason, req.subject)
    req.extended_at = now
    request_transition(req, Status.EXTENDED, actor=actor, code=code, extra={"months": months})
    address = contact_open(req)
    if address:
        notifications.send_extension(
            to=address, language=req.language, request_id=str(req.id), months=months, due_at=req.due_at,
            reason_label=ExtensionCode(code).label, reason_text=req.extension_reason,
            status_link=links.status_url(req.id),
        )
    return req


@dataclass(frozen=True)
class FlagCounts:
    due_soon: int
    overdue: int
    changed: int


@transaction.atomic
def requests_flag_due(*, now: datetime | None = None) -> FlagCounts:
    """Flag open requests due within 7 days or overdue, and alert the DPO (e-mail; the console shows
    the flags). Paused requests (identity pending) are not flagged: their clock is not running."""
    now = now or timezone.now()
    due_soon = overdue = changed = 0
    lines: list[str] = []
    for req in SubjectRequest.objects.select_for_update().filter(status__in=OPEN_STATUSES).order_by("due_at"):
        state = clock.clock_state(received_at=req.received_at, paused_total=req.paused_total,
                                  paused_since=req.paused_since, extension_months=req.extension_months, now=now)
        level = "" if state.paused else clock.alert_level(due_at=state.due_at, now=now)
        if level != req.alert_level:
            req.alert_level = level
            req.alerted_at = now if level else None
            req.save(update_fields=["alert_level", "alerted_at"])
            changed += 1
        if level == "overdue":
            overdue += 1
        elif level == "due_soon":
            due_soon += 1
        if level:
            lines.append(f"{level}: {req.id} ({req.type}, due {state.due_at:%Y-%m-%d %H:%M} UTC)")
    if lines:
        notifications.send_dpo_alert(lines=lines, due_soon=due_soon, overdue=overdue)
    logger.info("subject request deadlines checked", extra={"event": "dsr.flagged", "count": due_soon + overdue,
                                                            "updated": changed})
    return FlagCounts(due_soon=due_soon, overdue=overdue, changed=changed)
