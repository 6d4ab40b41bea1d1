"""The console's home: what needs the DPO today, read from the owning apps' selectors.

Each item has a count, a level ("bad" when something is overdue or broken, "warn" when it waits for the
DPO, "ok" when there is nothing to do) and a link to the page where it is handled. No personal data: the
requests are shown by type, pseudonym and due date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

#: Open requests listed on the home page, earliest deadline first (the queue page has all of them).
REQUESTS_SHOWN = 15


@dataclass(frozen=True)
class QueueItem:
    key: str
    title: str
    count: int
    link: str
    level: str  # "bad" | "warn" | "ok"
    detail: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)


def _level(count: int, *, bad: bool = False) -> str:
    if not count:
        return "ok"
    return "bad" if bad else "warn"


def _requests(now: datetime) -> tuple[QueueItem, list[dict[str, Any]]]:
    from subject_rights import selectors as dsr

    rows: list[dict[str, Any]] = []
    overdue = due_soon = 0
    for req in dsr.request_list(filters={"status": "open"}):
        alert = dsr.request_alert(request=req, now=now)
        overdue += alert == "overdue"
        due_soon += alert == "due_soon"
        if len(rows) < REQUESTS_SHOWN:
            rows.append({"req": req, "due_at": dsr.request_clock(request=req, now=now).due_at, "alert": alert})
    total = dsr.request_counts()["open"]
    detail = f"{overdue} overdue, {due_soon} due within 7 days"
    item = QueueItem("requests", "Subject requests open", total, reverse("console:requests"),
                     "bad" if overdue else _level(total), detail)
    return item, rows


def work_queue(*, now: datetime | None = None) -> dict[str, Any]:
    from audit import selectors as audit_selectors
    from scoring import selectors as scoring_selectors
    from subject_rights import selectors as dsr
    from webhooks import selectors as webhook_selectors

    now = now or timezone.now()
    requests_item, request_rows = _requests(now)
    reviews = dsr.review_stats().open
    contests = dsr.request_list(filters={"status": "open", "type": "contest"}).count()
    dead = webhook_selectors.delivery_health()["counts"].get("dead", 0)
    runs = audit_selectors.verification_runs(limit=20)
    broken = [r for r in runs if not r.ok]
    last = runs[0] if runs else None
    below = scoring_selectors.model_kinds_below_floor()
    flags = scoring_selectors.fairness_flags()
    breaches_open = audit_selectors.breach_open_count()
    breaches_overdue = audit_selectors.breach_overdue_count(now=now)
    items = [
        requests_item,
        QueueItem("reviews", "Human reviews waiting", reviews, reverse("console:reviews"), _level(reviews),
                  f"{contests} contest request(s) open"),
        QueueItem("contests", "Contests of automated decisions open", contests,
                  reverse("console:requests") + "?status=open&type=contest", _level(contests)),
        QueueItem("dead_letters", "Webhook dead letters", dead, reverse("console:webhooks"), _level(dead, bad=True)),
        QueueItem("chain", "Failed audit-chain checks (last 20 runs)", len(broken), reverse("console:chain-status"),
                  "bad" if broken else ("warn" if last is None else "ok"),
                  "never verified" if last is None else ("last check intact" if last.ok else
                                                         "the last check found the chain broken")),
        QueueItem("models", "Score kinds below their quality floor", len(below), reverse("console:model-overview"),
                  _level(len(below), bad=True), ", ".join(f"{b['kind']} ({b['version']})" for b in below)),
        QueueItem("fairness", "Fairness flags (four-fifths rule)", len(flags), reverse("console:model-governance"),
                  _level(len(flags), bad=True),
                  ", ".join(f"{f['characteristic']} ({f['version']})" for f in flags)),
        QueueItem("breaches", "Open personal-data breaches", breaches_open, reverse("console:breaches"),
                  "bad" if breaches_overdue else _level(breaches_open),
                  f"{breaches_overdue} past the 72-hour notification deadline"),
    ]
    return {"items": items, "requests": request_rows, "now": now,
            "to_do": sum(1 for i in items if i.level != "ok")}
