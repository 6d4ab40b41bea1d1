"""Fault 2 (consent withdrawal race): score_serve read the gate with a plain SELECT and wrote the decision in a
separate statement, so a decision could be committed after the withdrawal's commit. Now gate and decision are
one transaction holding the consent state FOR SHARE. Proven with a deterministic interleaving of two
PostgreSQL connections (the server's track_commit_timestamp is off): the withdrawal is observed BLOCKED BY the
scoring transaction (pg_blocking_pids) until the decision has committed, and a withdrawal in flight makes the
score wait and then refuse."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections

from config.errors import NoConsent
from tests.scoring.helpers import SCORING, customer_with_history, decisions_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and pg_blocking_pids: PostgreSQL (SQLite serializes writers with IMMEDIATE)")


def _pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _blocked_by(pid: int) -> set[int]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_blocking_pids(%s)", [pid])
        return set(cursor.fetchone()[0] or [])


def _wait_for(predicate, what: str, limit_s: float = 60.0) -> None:
    """Synchronisation, not a timing assertion: poll until the other connection reaches the state."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached: {what}")
        time.sleep(0.02)


class _Thread(threading.Thread):
    def __init__(self, target) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.result: Any = None
        self.error: BaseException | None = None
        self.pid: int | None = None

    def run(self) -> None:
        try:
            self.pid = _pid()
            self.result = self._target_fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
        finally:
            connection.close()


def _withdraw(cid) -> Any:
    from consent.services import consent_withdraw

    return consent_withdraw(customer_id=cid, purpose=SCORING, source="web", channel="web", actor="api:race-test")


def test_a_withdrawal_waits_for_a_decision_whose_gate_was_already_read(active_model, monkeypatch):
    from scoring import services
    from scoring.services import serve

    cid = customer_with_history()
    gate_read, release = threading.Event(), threading.Event()
    original = serve._serve_decision

    def paused(*args: Any, **kwargs: Any) -> Any:
        gate_read.set()
        release.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(serve, "_serve_decision", paused)
    scorer = _Thread(lambda: services.score_serve(customer_id=cid, purpose=SCORING, requester="api:race-test"))
    scorer.start()
    assert gate_read.wait(60)
    withdrawal = _Thread(lambda: _withdraw(cid))
    withdrawal.start()
    _wait_for(lambda: withdrawal.pid is not None and scorer.pid in _blocked_by(withdrawal.pid),
              "the withdrawal is blocked by the scoring transaction")
    assert withdrawal.is_alive() and withdrawal.result is None  # not committed while the decision is pending
    release.set()
    scorer.join(60)
    withdrawal.join(60)
    assert scorer.error is None and withdrawal.error is None, (scorer.error, withdrawal.error)
    [decision] = decisions_for(cid)
    assert decision.pk == scorer.result.decision_id
    # Committed in this order: the decision (its transaction ended first), then the withdrawal; the gate
    # is closed from now on.
    from consent.selectors import processing_gate

    assert not processing_gate(customer_id=cid, purpose=SCORING).allowed


def _score_during_an_uncommitted_withdrawal(cid: Any) -> tuple[_Thread, _Thread]:
    """A withdrawal holds its transaction open; a score request starts, is seen waiting for it, and then the
    withdrawal commits. Returns the (finished) withdrawal and scorer threads."""
    from django.db import transaction

    from scoring import services

    withdrawn, release = threading.Event(), threading.Event()

    def withdraw_and_hold() -> Any:
        with transaction.atomic():
            event = _withdraw(cid)
            withdrawn.set()
            release.wait(60)
        return event

    withdrawal = _Thread(withdraw_and_hold)
    withdrawal.start()
    assert withdrawn.wait(60)
    scorer = _Thread(lambda: services.score_serve(customer_id=cid, purpose=SCORING, requester="api:race-test"))
    scorer.start()
    _wait_for(lambda: scorer.pid is not None and withdrawal.pid in _blocked_by(scorer.pid),
              "the score request waits for the withdrawal")
    release.set()
    withdrawal.join(60)
    scorer.join(60)
    assert withdrawal.error is None
    return withdrawal, scorer


def test_a_score_requested_during_an_uncommitted_withdrawal_waits_and_is_refused(active_model):
    cid = customer_with_history()
    _, scorer = _score_during_an_uncommitted_withdrawal(cid)
    assert isinstance(scorer.error, NoConsent)
    assert decisions_for(cid) == []


def test_repeated_races_never_commit_a_decision_after_the_withdrawal(active_model):
    """8 threads score while consent is withdrawn, three times. Commit-order evidence without commit
    timestamps: inside the withdrawal's transaction, once it holds the consent-state row, a snapshot is taken.
    Every decision must be visible in it, i.e. committed before the withdrawal took its lock (so before its
    commit); a decision whose gate was read before that lock but committed later would be invisible."""
    from django.db import transaction

    from audit.models import DecisionRecord
    from scoring import services

    table = DecisionRecord._meta.db_table
    for _ in range(3):
        cid = customer_with_history()
        stop = threading.Event()
        refused = []

        def run_scorer() -> None:
            try:
                while not stop.is_set():  # noqa: B023
                    try:
                        services.score_serve(customer_id=cid, purpose=SCORING, requester="api:race-test")  # noqa: B023
                    except NoConsent:
                        refused.append(1)  # noqa: B023
                        return
            finally:
                connection.close()

        scorers = [threading.Thread(target=run_scorer, daemon=True) for _ in range(8)]
        for thread in scorers:
            thread.start()
        _wait_for(lambda: len(decisions_for(cid)) >= 8, "some decisions served")  # noqa: B023
        with transaction.atomic():
            _withdraw(cid)  # holds the consent-state row FOR UPDATE from here to the commit
            with connection.cursor() as cursor:
                cursor.execute("SELECT txid_current_snapshot()::text")
                snapshot = cursor.fetchone()[0]
        for thread in scorers:
            thread.join(60)
        stop.set()
        assert len(refused) == 8  # every thread was stopped by the gate, none by an error
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, txid_visible_in_snapshot(xmin::text::bigint, %s::txid_snapshot) "  # noqa: S608
                           f"FROM {table} WHERE customer = %s", [snapshot, cid])
            rows = cursor.fetchall()
        assert len(rows) >= 8
        assert [decision_id for decision_id, visible in rows if not visible] == []


def test_a_withdrawal_waits_for_a_rescore_chunk_whose_gate_was_already_read(active_model, monkeypatch):
    """The batch path holds the gate like the real-time path: once a chunk has read the gate of its
    customers (one set-based query, FOR SHARE), a withdrawal waits for the chunk's commit; the chunk's
    decision for that customer is committed before the withdrawal, and the next chunk run refuses."""
    from scoring import services
    from scoring.services import rescore_fast

    cid = customer_with_history()
    other = customer_with_history()
    run = services.rescore_run_start(purpose=SCORING, requester="job:race-test", customer_ids=[cid, other])
    [chunk] = services.rescore_pending_chunks(run_id=run.id)
    gate_read, release = threading.Event(), threading.Event()
    original = rescore_fast.group_write

    def paused(**kwargs: Any) -> Any:
        gate_read.set()
        release.wait(60)
        return original(**kwargs)

    monkeypatch.setattr(rescore_fast, "group_write", paused)
    scorer = _Thread(lambda: services.rescore_chunk(run_id=run.id, customer_ids=chunk))
    scorer.start()
    assert gate_read.wait(60)
    withdrawal = _Thread(lambda: _withdraw(cid))
    withdrawal.start()
    _wait_for(lambda: withdrawal.pid is not None and scorer.pid in _blocked_by(withdrawal.pid),
              "the withdrawal is blocked by the rescore chunk's transaction")
    assert withdrawal.is_alive() and withdrawal.result is None
    release.set()
    scorer.join(60)
    withdrawal.join(60)
    assert scorer.error is None and withdrawal.error is None, (scorer.error, withdrawal.error)
    assert scorer.result.scored == 2
    assert [d.decision_key for d in decisions_for(cid)] == [f"{run.id}:{cid}:{SCORING}"]
    later = services.rescore_run_start(purpose=SCORING, requester="job:race-test", customer_ids=[cid, other])
    [ids] = services.rescore_pending_chunks(run_id=later.id)
    counts = services.rescore_chunk(run_id=later.id, customer_ids=ids)
    assert (counts.scored, counts.skipped) == (1, {"skipped_no_consent": 1})
    assert len(decisions_for(cid)) == 1


def test_a_withdrawal_committed_while_the_combined_statement_waits_is_read_again_and_refuses(active_model,
                                                                                              monkeypatch):
    """The lock, the gate and the stored score are one statement: its snapshot predates a withdrawal it waited
    for, so the gate's row (granted) and the locked row (withdrawn) differ; the gate is then read again by a
    statement of its own (seen here), which refuses, and nothing is recorded."""
    from consent.selectors import gate as consent_gate
    from scoring import services

    cid = customer_with_history()
    services.score_serve(customer_id=cid, purpose=SCORING, requester="api:race-test")  # a stored score
    reread = []
    original = consent_gate.processing_gate

    def spied(**kwargs: Any) -> Any:
        reread.append(kwargs["customer_id"])
        return original(**kwargs)

    monkeypatch.setattr(consent_gate, "processing_gate", spied)
    _, scorer = _score_during_an_uncommitted_withdrawal(cid)
    assert isinstance(scorer.error, NoConsent)
    assert reread == [cid]  # the gate read again once, after the lock
    assert len(decisions_for(cid)) == 1  # the first serve's only
