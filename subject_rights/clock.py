"""The statutory clock of Art. 12(3) GDPR, as pure date arithmetic.

- The answer is due one calendar month after receipt (31 January -> 28/29 February).
- The clock pauses while identity verification is pending: the due date moves by the paused time.
- The controller may extend by up to two further months, but only before the first month ends.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

DUE_SOON_DAYS = 7
MAX_EXTENSION_MONTHS = 2


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months, clamped to the last day of the target month."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class ClockState:
    first_month_end: datetime  # the deadline before any extension (pauses included)
    due_at: datetime  # the deadline including extensions and pauses
    paused: bool


def clock_state(
    *,
    received_at: datetime,
    paused_total: timedelta,
    paused_since: datetime | None,
    extension_months: int,
    now: datetime,
) -> ClockState:
    running_pause = (now - paused_since) if paused_since is not None and now > paused_since else timedelta(0)
    pause = paused_total + running_pause
    return ClockState(
        first_month_end=add_calendar_months(received_at, 1) + pause,
        due_at=add_calendar_months(received_at, 1 + extension_months) + pause,
        paused=paused_since is not None,
    )


def alert_level(*, due_at: datetime, now: datetime) -> str:
    """``"overdue"`` after the due date, ``"due_soon"`` within 7 days of it, else ``""``."""
    if now > due_at:
        return "overdue"
    if due_at - now <= timedelta(days=DUE_SOON_DAYS):
        return "due_soon"
    return ""
