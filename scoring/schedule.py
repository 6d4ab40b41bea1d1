"""Learning on a schedule: a daily rescore and a weekly retrain, drift (PSI) on every run, triggered retrains.

Jobs (each recorded as a ``ScheduleRun``; the console's model governance page shows them as the training
history):

- ``scheduled_rescore`` (daily, ``SCORING_RESCORE_SCHEDULE``, default ``0 2 * * *``): computes feature drift of
  the current population against the active model's training population (``DriftReport``), retrains first
  when a trigger fires (see below), then rescores every batch purpose with the active model.
- ``scheduled_retrain`` (weekly, ``SCORING_RETRAIN_SCHEDULE``, default ``0 3 * * sun``): computes drift, trains
  a new version from the database and offers it to the activation gate (``scoring.services.model_train``:
  quality floors and "not worse than the active model"); when it goes live, rescores with it.

A retrain is also triggered by a rescore when the PSI of one of the ``SCORING_DRIFT_TOP_FEATURES`` (5) most
important features exceeds ``SCORING_DRIFT_PSI_THRESHOLD`` (0.2), or when at least
``SCORING_RETRAIN_MIN_NEW_OUTCOMES`` (100) explicit outcomes arrived since the active model was trained.

Where they run: in production Celery beat sends ``scoring.tasks.scheduled_rescore`` / ``scheduled_retrain`` on
these cron expressions (``beat_entries``, merged into the beat schedule by ``config.celery``). In embedded mode
(``make run``: no broker, tasks in-process) ``InProcessScheduler`` runs them from a daemon thread of the
``runserver`` process only (``SCORING_INPROCESS_SCHEDULER``; never in tests or other management commands).

This module imports no models at import time (``config.celery`` imports it for the beat entries).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

logger = logging.getLogger("scoring.schedule")

RESCORE_TASK = "scoring.tasks.scheduled_rescore"
RETRAIN_TASK = "scoring.tasks.scheduled_retrain"
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
STALE_RUN_HOURS = 6  # a "running" job older than this is taken as crashed: the next run may start


# --------------------------------------------------------------------------- settings


def rescore_cron() -> str:
    return str(getattr(settings, "SCORING_RESCORE_SCHEDULE", "0 2 * * *"))


def retrain_cron() -> str:
    return str(getattr(settings, "SCORING_RETRAIN_SCHEDULE", "0 3 * * sun"))


def psi_threshold() -> float:
    return float(getattr(settings, "SCORING_DRIFT_PSI_THRESHOLD", 0.2))


def top_feature_count() -> int:
    return int(getattr(settings, "SCORING_DRIFT_TOP_FEATURES", 5))


def min_new_outcomes() -> int:
    return int(getattr(settings, "SCORING_RETRAIN_MIN_NEW_OUTCOMES", 100))


def drift_sample() -> int:
    return int(getattr(settings, "SCORING_DRIFT_SAMPLE", 20_000))


# --------------------------------------------------------------------------- cron expressions


def _value(text: str, names: dict[str, int] | None) -> int:
    return names[text] if names and text in names else int(text)


def _field(spec: str, lo: int, hi: int, names: dict[str, int] | None = None) -> set[int]:
    """Values of one cron field: ``*``, ``n``, ``a-b``, lists and ``/step``; day names for the weekday."""
    out: set[int] = set()
    for part in spec.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", ""):
            a, b = lo, hi
        elif "-" in base:
            x, y = base.split("-", 1)
            a, b = _value(x, names), _value(y, names)
        else:
            a = _value(base, names)
            b = hi if step_text else a
        if step <= 0 or a < lo or b > hi + (1 if names else 0) or a > b:
            raise ValueError(f"invalid cron field {spec!r}")
        out.update(range(a, b + 1, step))
    if names is not None and 7 in out:  # 7 = Sunday as well
        out.discard(7)
        out.add(0)
    return out


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), UTC."""

    expr: str
    minutes: frozenset[int] = field(default_factory=frozenset)
    hours: frozenset[int] = field(default_factory=frozenset)
    days: frozenset[int] = field(default_factory=frozenset)
    months: frozenset[int] = field(default_factory=frozenset)
    weekdays: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, expr: str) -> Cron:
        parts = expr.split()
        if len(parts) != 5:
            raise ValueError(f"a cron expression has five fields: {expr!r}")
        m, h, dom, mon, dow = parts
        return cls(expr, frozenset(_field(m, 0, 59)), frozenset(_field(h, 0, 23)), frozenset(_field(dom, 1, 31)),
                   frozenset(_field(mon, 1, 12)), frozenset(_field(dow, 0, 6, _DAYS)))

    def matches(self, at: datetime) -> bool:
        weekday = (at.weekday() + 1) % 7  # cron: 0 = Sunday
        return (at.minute in self.minutes and at.hour in self.hours and at.day in self.days
                and at.month in self.months and weekday in self.weekdays)

    def next_after(self, after: datetime) -> datetime:
        """The first matching minute strictly after ``after`` (within a year and a day)."""
        at = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(367 * 24 * 60):
            if self.matches(at):
                return at
            if at.hour not in self.hours or at.day not in self.days or at.month not in self.months:
                at = at.replace(minute=0) + timedelta(hours=1)  # skip to the next hour
                continue
            at += timedelta(minutes=1)
        raise ValueError(f"the cron expression never fires: {self.expr!r}")

    def celery(self) -> Any:
        """The same schedule as a Celery ``crontab`` (for beat)."""
        from celery.schedules import crontab

        m, h, dom, mon, dow = self.expr.split()
        return crontab(minute=m, hour=h, day_of_month=dom, month_of_year=mon, day_of_week=dow)


def beat_entries() -> dict[str, dict[str, Any]]:
    """The beat schedule entries of the scoring jobs (production: ``config.celery``)."""
    return {
        "scoring-daily-rescore": {"task": RESCORE_TASK, "schedule": Cron.parse(rescore_cron()).celery()},
        "scoring-weekly-retrain": {"task": RETRAIN_TASK, "schedule": Cron.parse(retrain_cron()).celery()},
    }


# --------------------------------------------------------------------------- drift and triggers


def drift_compute(*, job: str, now: datetime | None = None) -> Any:
    """Feature drift of the current population (customers the training purpose allows now; a seeded sample of
    at most ``SCORING_DRIFT_SAMPLE``) against the active full model's training population, stored as a
    ``DriftReport``. ``None`` without an active model or when its card has no training distribution."""
    import numpy as np
    from django.utils import timezone

    from scoring import drift, registry, training
    from scoring.engine import bundle_matrix
    from scoring.features.aggregates import fact_aggregates
    from scoring.models import DriftReport, ModelVersion

    version = ModelVersion.objects.filter(kind=ModelVersion.Kind.FULL, status=ModelVersion.Status.ACTIVE).first()
    card = (version.card or {}) if version is not None else {}
    reference = card.get("feature_distribution")
    if version is None or not reference:
        return None
    bundle = registry.load(registry.ref_of(version))
    now = now or timezone.now()
    ids = training.consented_customers(purpose=training.training_purpose(), limit=drift_sample())
    parts = [bundle_matrix(bundle, fact_aggregates(customer_ids=ids[i:i + training.CHUNK], as_of=now))
             for i in range(0, len(ids), training.CHUNK)]
    names = [str(n) for n in bundle.feature_names]
    X = np.vstack(parts) if parts else np.zeros((0, len(names)))
    psi = drift.feature_drift(reference, X, names) if len(X) else {}
    top = drift.top_features(card.get("feature_importance") or {}, top_feature_count())
    summary = drift.drift_summary(psi, top, psi_threshold())
    return DriftReport.objects.create(
        model_version=version, computed_at=now, job=job, population=len(ids), psi=psi, top_features=top,
        drifted_features=summary["drifted_top_features"], threshold=psi_threshold(), max_psi=summary["max_psi"],
    )


def new_outcomes_since_training() -> int:
    """Explicit outcomes recorded since the active full model was trained (all of them without a model)."""
    from scoring.models import ModelVersion, Outcome

    version = ModelVersion.objects.filter(kind=ModelVersion.Kind.FULL, status=ModelVersion.Status.ACTIVE).first()
    qs = Outcome.objects.all()
    if version is not None:
        qs = qs.filter(created_at__gt=version.created_at)
    return qs.count()


def retrain_trigger(report: Any) -> tuple[str | None, dict[str, Any]]:
    """Why a retrain is due now (``"drift"``, ``"outcomes"``) or ``None``, with the evidence."""
    if report is not None and report.drifted_features:
        return "drift", {"drifted_features": list(report.drifted_features), "threshold": report.threshold}
    new = new_outcomes_since_training()
    if new >= min_new_outcomes():
        return "outcomes", {"new_outcomes": new, "threshold": min_new_outcomes()}
    return None, {"new_outcomes": new}


# --------------------------------------------------------------------------- jobs


def _start(job: str, trigger: str) -> Any:
    from django.utils import timezone

    from scoring.models import ScheduleRun

    recent = timezone.now() - timedelta(hours=STALE_RUN_HOURS)
    if ScheduleRun.objects.filter(job=job, status=ScheduleRun.Status.RUNNING, started_at__gte=recent).exists():
        return None
    return ScheduleRun.objects.create(job=job, trigger=trigger)


def _finish(run: Any, status: str, t0: float, **fields: Any) -> Any:
    from django.utils import timezone

    run.status = status
    run.finished_at = timezone.now()
    run.seconds = round(time.perf_counter() - t0, 3)
    for k, v in fields.items():
        setattr(run, k, v)
    run.save()
    logger.info("scheduled job finished", extra={"event": f"scoring.schedule.{run.job}", "status": status,
                                                 "duration_ms": int(run.seconds * 1000)})
    return run


def _rescore_all() -> dict[str, Any]:
    """A full rescore of every batch purpose with the active models: the runs and their chunks created here,
    both passes dispatched as chunk tasks (run in-process in embedded mode, fanned out to the workers in
    production: the planning chunks first, the task that plans the last one queues the scoring chunks)."""
    from django.db import transaction

    from scoring import services
    from scoring.registry import ModelUnavailable

    try:
        runs = services.rescore_runs_create(purposes=services.batch_purposes(), requester="job:scheduled_rescore")
    except ModelUnavailable:
        return {"rescore": "model_unavailable"}
    with transaction.atomic():  # queued on commit
        services.rescore_runs_plan_dispatch(run_ids=[run.id for run in runs])
    return {"rescore_runs": [str(run.id) for run in runs]}


def scheduled_retrain(*, trigger: str = "schedule", rescore: bool = True) -> Any:
    """Drift, then a new version trained from the database and offered to the activation gate; when it goes
    live (and ``rescore``), a full rescore with it. Returns the ``ScheduleRun`` (``None`` if one is running)."""
    from config.errors import ApplicationError
    from scoring import services
    from scoring.models import ModelVersion, ScheduleRun

    run = _start(ScheduleRun.Job.RETRAIN, trigger)
    if run is None:
        return None
    t0 = time.perf_counter()
    try:
        report = drift_compute(job="retrain")
        try:
            version = services.model_train(actor=f"job:scheduled_retrain:{trigger}")
        except ApplicationError as exc:  # too little data, no facts, ...: recorded, nothing activated
            return _finish(run, ScheduleRun.Status.SKIPPED, t0, drift_report=report,
                           detail={"code": exc.code, "reason": str(exc.detail)})
        version.refresh_from_db()
        activated = version.status == ModelVersion.Status.ACTIVE
        detail: dict[str, Any] = {"labels": (version.card or {}).get("labels"),
                                  "outcome": "activated" if activated else "kept_as_candidate"}
        if activated and rescore:
            detail.update(_rescore_all())
        return _finish(run, ScheduleRun.Status.COMPLETED, t0, model_version=version, activated=activated,
                       drift_report=report, detail=detail)
    except Exception as exc:
        _finish(run, ScheduleRun.Status.FAILED, t0, detail={"code": "error", "reason": type(exc).__name__})
        raise


def scheduled_rescore(*, trigger: str = "schedule") -> Any:
    """Drift of the current population; a retrain first when drift on a top feature or enough new explicit
    outcomes call for one; then a full rescore with the active model. Returns the ``ScheduleRun``."""
    from scoring.models import DriftReport, ModelVersion, ScheduleRun

    run = _start(ScheduleRun.Job.RESCORE, trigger)
    if run is None:
        return None
    t0 = time.perf_counter()
    try:
        report = drift_compute(job="rescore")
        reason, evidence = retrain_trigger(report)
        detail: dict[str, Any] = {"retrain_trigger": reason, **evidence}
        if reason is not None:
            if report is not None:
                DriftReport.objects.filter(pk=report.pk).update(retrain_triggered=True)
            retrain = scheduled_retrain(trigger=reason, rescore=False)
            detail["retrain_run"] = retrain.pk if retrain is not None else None
        detail.update(_rescore_all())
        active = ModelVersion.objects.filter(kind=ModelVersion.Kind.FULL, status=ModelVersion.Status.ACTIVE).first()
        return _finish(run, ScheduleRun.Status.COMPLETED, t0, model_version=active, drift_report=report,
                       detail=detail)
    except Exception as exc:
        _finish(run, ScheduleRun.Status.FAILED, t0, detail={"code": "error", "reason": type(exc).__name__})
        raise


# --------------------------------------------------------------------------- in-process scheduler


@dataclass
class Job:
    name: str
    cron: Cron
    run: Callable[[], Any]
    next_at: datetime | None = None


class InProcessScheduler:
    """Runs due jobs from one daemon thread (embedded mode). ``tick(now)`` runs every job whose next fire time
    is at or before ``now`` (once, however many fire times were missed) and schedules its next one; the thread
    calls it every ``interval`` seconds with the wall clock. Tests drive ``tick`` with their own clock."""

    def __init__(self, jobs: list[Job], *, clock: Callable[[], datetime] | None = None,
                 interval: float = 30.0) -> None:
        self.jobs = jobs
        self.clock = clock or (lambda: datetime.now(UTC))
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        start = self.clock()
        for job in self.jobs:
            job.next_at = job.cron.next_after(start)

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or self.clock()
        ran: list[str] = []
        for job in self.jobs:
            if job.next_at is not None and job.next_at <= now:
                job.next_at = job.cron.next_after(now)
                try:
                    job.run()
                    ran.append(job.name)
                except Exception:  # noqa: BLE001 - logged; the scheduler keeps going
                    logger.exception("scheduled job failed", extra={"event": "scoring.schedule.failed"})
        return ran

    def _loop(self) -> None:
        from django.db import close_old_connections

        while not self._stop.wait(self.interval):
            try:
                self.tick()
            finally:
                close_old_connections()  # this thread's own connection, as after a request

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scoring-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def default_jobs() -> list[Job]:
    return [
        Job("scoring-daily-rescore", Cron.parse(rescore_cron()), lambda: scheduled_rescore()),
        Job("scoring-weekly-retrain", Cron.parse(retrain_cron()), lambda: scheduled_retrain()),
    ]


_scheduler: InProcessScheduler | None = None


def should_start_in_process(argv: list[str] | None = None) -> bool:
    """Only the ``runserver`` process of embedded mode (no broker), when ``SCORING_INPROCESS_SCHEDULER`` is on;
    never under pytest or any other management command (with the autoreloader: only its serving child)."""
    import os

    argv = list(sys.argv if argv is None else argv)
    if not getattr(settings, "SCORING_INPROCESS_SCHEDULER", False) or "pytest" in sys.modules:
        return False
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    return "--noreload" in argv or os.environ.get("RUN_MAIN") == "true"


def start_in_process() -> InProcessScheduler | None:
    """Start the in-process scheduler once per process (called from ``ScoringConfig.ready``)."""
    global _scheduler
    if _scheduler is not None or not should_start_in_process():
        return None
    _scheduler = InProcessScheduler(default_jobs(),
                                    interval=float(getattr(settings, "SCORING_SCHEDULER_INTERVAL", 30.0)))
    _scheduler.start()
    logger.info("in-process scheduler started", extra={"event": "scoring.schedule.started"})
    return _scheduler
