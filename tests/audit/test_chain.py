"""Sealing: committed records are linked into the chain shortly after commit, in order, exactly once,
without a lock held through business transactions; checkpoints are signed when due."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from freezegun import freeze_time

from audit import canonical, services, tasks
from audit.checkpoints import DirectoryStore
from audit.models import ChainLink, Checkpoint, DecisionRecord, PendingSeal
from audit.verify import verify_chain
from config.celery import app
from tests.audit.conftest import decision_kwargs

pytestmark = pytest.mark.django_db


def test_seal_links_every_waiting_record_in_order_with_recomputable_hashes(mixed_chain):
    records = mixed_chain(9)
    chain = list(ChainLink.objects.order_by("seq").values_list(
        "seq", "record_type", "row_id", "entry_hash", "prev_link_hash", "link_hash"))
    assert [(c[1], c[2]) for c in chain] == [(r.RECORD_TYPE, r.pk) for r in records]
    prev = canonical.GENESIS_HASH
    for seq, record_type, row_id, entry, prev_hash, link in chain:
        assert entry == next(r for r in records if (r.RECORD_TYPE, r.pk) == (record_type, row_id)).content_hash
        assert prev_hash == prev and link == canonical.link_hash(seq, record_type, row_id, entry, prev)
        prev = link
    assert [c[0] for c in chain] == list(range(1, 10))
    assert PendingSeal.objects.count() == 0
    assert services.chain_seal() == 0  # nothing waits


def test_audit_write_queues_one_seal_after_commit_and_none_on_rollback(django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.delete(services.SEAL_REQUEST_FLAG)
    with mock.patch.object(tasks.seal_chain, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            services.decision_record(**decision_kwargs())
            services.access_record(actor="user:dpo", purpose="accountability", subject=None, what="x")
        assert delay.call_count == 1
        cache.delete(services.SEAL_REQUEST_FLAG)
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), \
                transaction.atomic():
            services.decision_record(**decision_kwargs())
            raise RuntimeError("business write failed")
        assert callbacks == [] and delay.call_count == 1
    assert DecisionRecord.objects.count() == 1


def test_seal_task_runs_on_commit_and_chains_the_record(django_capture_on_commit_callbacks):
    from django.core.cache import cache

    cache.delete(services.SEAL_REQUEST_FLAG)
    with django_capture_on_commit_callbacks(execute=True):
        record = services.decision_record(**decision_kwargs())
    assert ChainLink.objects.get().row_id == record.pk
    assert cache.get(services.SEAL_REQUEST_FLAG) is None


def test_checkpoint_is_written_every_n_links(settings, make_decision, checkpoint_dir):
    settings.AUDIT_CHECKPOINT_EVERY_N = 3
    settings.AUDIT_CHECKPOINT_EVERY_MINUTES = 60
    for _ in range(2):
        make_decision()
    tasks.seal_chain()
    assert Checkpoint.objects.count() == 0
    make_decision()
    tasks.seal_chain()
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [3]
    assert [c.seq for c in DirectoryStore().read_all()] == [3]
    assert services.checkpoint_write() is None  # nothing new to sign


def test_checkpoint_is_written_when_the_oldest_unsigned_link_is_old_enough(settings, make_decision):
    settings.AUDIT_CHECKPOINT_EVERY_N = 1000
    settings.AUDIT_CHECKPOINT_EVERY_MINUTES = 10
    start = timezone.now()
    with freeze_time(start):
        make_decision()
        services.chain_seal()
        assert services.checkpoint_write() is None
    with freeze_time(start + timedelta(minutes=9)):
        assert tasks.write_checkpoint() is None
    with freeze_time(start + timedelta(minutes=10, seconds=1)):
        assert tasks.write_checkpoint() == 1
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.link_hash == ChainLink.objects.get(seq=1).link_hash
    assert verify_chain().checkpoints_checked == 1


class MemoryStore:
    written: list = []

    def write(self, checkpoint):
        MemoryStore.written.append(checkpoint)
        return f"memory:{checkpoint.seq}"

    def read_all(self):
        return list(MemoryStore.written)

    def describe(self):
        return "memory"


def test_checkpoint_store_is_pluggable(settings, mixed_chain):
    settings.AUDIT_CHECKPOINT_STORE = "tests.audit.test_chain.MemoryStore"
    MemoryStore.written = []
    mixed_chain(4)
    checkpoint = services.checkpoint_write(force=True)
    assert checkpoint.location == "memory:4" and [c.seq for c in MemoryStore.written] == [4]
    assert verify_chain().checkpoints_checked == 1


def test_beat_schedule_runs_the_audit_tasks():
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"audit.tasks.seal_chain", "audit.tasks.write_checkpoint"} <= schedule
    assert {"audit.tasks.seal_chain", "audit.tasks.write_checkpoint", "audit.tasks.verify_chain"} <= set(app.tasks)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL (SQLite serialises)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_sealers_link_every_record_exactly_once():
    writers, per_writer = 6, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers + 2)

    def writer() -> None:
        try:
            barrier.wait()
            for _ in range(per_writer):
                with transaction.atomic():
                    services.decision_record(**decision_kwargs(customer=uuid.uuid4()))
                    services.access_record(actor="api:crm", purpose="automated_scoring", subject=None, what="score")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def sealer() -> None:
        try:
            barrier.wait()
            for _ in range(20):
                services.chain_seal()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(writers)] + [threading.Thread(target=sealer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    services.chain_seal()
    total = writers * per_writer * 2
    assert ChainLink.objects.count() == total
    assert list(ChainLink.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    assert verify_chain().ok


@pytest.mark.integration
def test_a_committed_audit_write_is_sealed_by_the_worker_shortly_after(celery_worker):
    from django.core.cache import cache

    cache.delete(services.SEAL_REQUEST_FLAG)
    with transaction.atomic():
        record = services.decision_record(**decision_kwargs())
    assert celery_worker.wait(lambda: ChainLink.objects.filter(record_type="decision", row_id=record.pk).exists(),
                              timeout=60)
    assert PendingSeal.objects.count() == 0
    assert verify_chain().ok


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the unique-violation race needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_first_seal_racing_another_creates_the_head_row_without_a_unique_violation():
    """Two sealers on the very first seal: the second must not run into ``audit_chainhead_pkey`` (PostgreSQL
    logs every unique violation as an ERROR, even one the application handles): the head row is created with
    ``INSERT ... ON CONFLICT DO NOTHING``, and the second sealer waits for the first's commit."""
    from audit.models import ChainHead

    ChainHead.objects.all().delete()
    inserted, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_sealer() -> None:  # holds a fresh head row uncommitted until the other sealer waits on it
        try:
            with transaction.atomic():
                ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
                inserted.set()
                with connection.cursor() as c:
                    for _ in range(600):
                        c.execute("SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))")
                        if c.fetchone()[0]:
                            break
                        done.wait(0.05)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    failed: list[str] = []

    def record_failures(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {sql}")
            raise

    thread = threading.Thread(target=first_sealer)
    thread.start()
    assert inserted.wait(30)
    with connection.execute_wrapper(record_failures):
        services.chain_seal()  # blocks on the uncommitted row, then locks it
    thread.join(60)
    assert errors == []
    assert failed == []
    assert ChainHead.objects.count() == 1
