"""Scenario 6: tampering with the audit chain in the database, as a database superuser without the signing key
would (append-only triggers off with ``session_replication_role = replica``). Each case is detected by
``manage.py audit_verify`` (exit 1, naming the first bad sequence number) and shown as broken on the console's
chain page.

Each case runs on its own copy (``CREATE DATABASE ... TEMPLATE``) of a small chain: 40 records signed by a
checkpoint, then 20 more records chained but not yet covered by a checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.resilience.client import DPO_USER, Console, Db
from tests.resilience.servers import BIN, GUNICORN_CONF, Proc, Stack, port_open, spare_port, wait_for

BASE, CASE = "tamper_base", "tamper_case"
SIGNED, UNSIGNED = 40, 20

BUILD = f"""
from audit import services
for i in range({SIGNED}):
    services.governance_record(kind="resilience.signed", actor="job:resilience", details={{"n": i}})
services.chain_seal()
services.checkpoint_write(force=True)
for i in range({UNSIGNED}):
    services.governance_record(kind="resilience.unsigned", actor="job:resilience", details={{"n": i}})
services.chain_seal_and_sign()  # as the seal task does: chained, and the head signed (no checkpoint since)
"""

# Rewrite one record and recompute its content hash, every later link hash and the head row (no signing key).
RECOMPUTE = """
from django.db import connection
from audit import canonical
from audit.models import GovernanceEvent
SEQ = {seq}
with connection.cursor() as c:
    c.execute("SET session_replication_role = replica")
    c.execute("SELECT row_id, prev_link_hash FROM audit_chainlink WHERE seq = %s", [SEQ])
    row_id, prev = c.fetchone()
    record = GovernanceEvent.objects.get(pk=row_id)
    record.details = {{"n": 999, "rewritten": True}}
    entry = canonical.content_hash(record)
    c.execute("UPDATE audit_governanceevent SET details = %s, content_hash = %s WHERE id = %s",
              [canonical.canonical_text(record.details), entry, row_id])
    c.execute("SELECT seq, record_type, row_id, entry_hash FROM audit_chainlink WHERE seq >= %s ORDER BY seq", [SEQ])
    for seq, record_type, rid, old_entry in c.fetchall():
        entry_hash = entry if seq == SEQ else old_entry
        digest = canonical.link_hash(seq, record_type, rid, entry_hash, prev)
        c.execute("UPDATE audit_chainlink SET entry_hash = %s, prev_link_hash = %s, link_hash = %s WHERE seq = %s",
                  [entry_hash, prev, digest, seq])
        prev = digest
    c.execute("UPDATE audit_chainhead SET link_hash = %s WHERE id = 1", [prev])
"""


@dataclass
class Chain:
    stack: Stack
    first: int  # first sequence number of the resilience records
    checkpoint: int  # sequence number of the signed checkpoint
    head: int
    checkpoints_base: Path
    checkpoints_case: Path
    web: Proc
    port: int


@pytest.fixture(scope="module")
def chain(stack: Stack) -> Iterator[Chain]:
    stack.pg.psql("postgres", f"CREATE DATABASE {BASE} TEMPLATE {stack.blank_db}")  # migrated, empty
    base_dir = stack.root / "tamper-checkpoints" / "base"
    case_dir = stack.root / "tamper-checkpoints" / "case"
    env = {"AUDIT_CHECKPOINT_DIR": str(base_dir)}
    stack.manage("shell", "-c", DPO_USER + BUILD, db=BASE, extra_env=env)
    base = Db(stack, BASE)
    head = base.value("SELECT max(seq) FROM audit_chainlink")
    checkpoint = base.value("SELECT max(seq) FROM audit_checkpoint")
    first = base.value("SELECT min(l.seq) FROM audit_chainlink l JOIN audit_governanceevent g ON g.id = l.row_id "
                       "AND l.record_type = 'governance' WHERE g.kind = 'resilience.signed'")
    assert head - checkpoint == UNSIGNED and checkpoint - first + 1 == SIGNED, (first, checkpoint, head)
    port = spare_port()
    web_env = {**stack.app_env(CASE), "AUDIT_CHECKPOINT_DIR": str(case_dir), "DB_CONN_MAX_AGE": "0"}
    web = Proc(name="tamper-web", cmd=[str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
                                       "--workers", "1", "--timeout", "60", "--config", str(GUNICORN_CONF)],
               env=web_env, log=stack.root / "logs" / "tamper-web.log")
    web.start()
    try:
        wait_for(lambda: port_open(port), 90, "the console for the tampered copies")
        yield Chain(stack, first, checkpoint, head, base_dir, case_dir, web, port)
    finally:
        web.stop()


def _fresh_case(chain: Chain) -> Db:
    chain.stack.pg.psql("postgres", f"DROP DATABASE IF EXISTS {CASE} WITH (FORCE)")
    chain.stack.pg.psql("postgres", f"CREATE DATABASE {CASE} TEMPLATE {BASE}")
    shutil.rmtree(chain.checkpoints_case, ignore_errors=True)
    shutil.copytree(chain.checkpoints_base, chain.checkpoints_case)
    return Db(chain.stack, CASE)


def _tamper(db: Db, *statements: str) -> None:
    with db.stack.pg.connect(db.name) as conn:
        conn.execute("SET session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


def _verify(chain: Chain) -> dict:
    done = chain.stack.manage("audit_verify", "--json", db=CASE, check=False,
                              extra_env={"AUDIT_CHECKPOINT_DIR": str(chain.checkpoints_case)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == (0 if result["ok"] else 1)
    return result


def _console_shows_broken(chain: Chain, first_bad: int | None) -> None:
    console = Console(f"http://127.0.0.1:{chain.port}")
    console.login()
    page = console.get("/console/chain/")
    assert page.status_code == 200, page.status_code
    # the copy holds no verification but the tampered one's: "broken" anywhere on the page is its result
    text = re.sub(r"<[^>]+>", " ", page.text)
    assert "broken" in text, text[:2000]
    if first_bad is not None:
        assert f"at sequence {first_bad}" in " ".join(text.split()), text[:2000]


def _row_of(db: Db, seq: int) -> int:
    return int(db.value("SELECT row_id FROM audit_chainlink WHERE seq = %s", [seq]))


def test_untampered_copy_verifies(chain: Chain) -> None:
    _fresh_case(chain)
    result = _verify(chain)
    assert result["ok"] and result["head_seq"] == chain.head, result


def test_field_changed_in_a_middle_record_is_detected(chain: Chain) -> None:
    db = _fresh_case(chain)
    seq = chain.first + SIGNED // 2
    _tamper(db, f"UPDATE audit_governanceevent SET details = '{{\"n\":999}}' WHERE id = {_row_of(db, seq)}")
    result = _verify(chain)
    assert not result["ok"] and result["first_bad_seq"] == seq, result
    _console_shows_broken(chain, seq)


def test_middle_record_deleted_is_detected(chain: Chain) -> None:
    db = _fresh_case(chain)
    seq = chain.first + SIGNED // 2
    _tamper(db, f"DELETE FROM audit_governanceevent WHERE id = {_row_of(db, seq)}")
    result = _verify(chain)
    assert not result["ok"] and result["first_bad_seq"] == seq, result
    _console_shows_broken(chain, seq)


def test_middle_record_and_its_link_deleted_is_detected(chain: Chain) -> None:
    db = _fresh_case(chain)
    seq = chain.first + SIGNED // 2
    _tamper(db, f"DELETE FROM audit_governanceevent WHERE id = {_row_of(db, seq)}",
            f"DELETE FROM audit_chainlink WHERE seq = {seq}")
    result = _verify(chain)
    assert not result["ok"] and result["first_bad_seq"] == seq, result
    _console_shows_broken(chain, seq)


def _truncate_from(db: Db, seq: int) -> None:
    """Delete the records from ``seq`` on, their links, and set the head row back: a clean-looking shorter chain."""
    rows = [r for (r,) in db.rows("SELECT row_id FROM audit_chainlink WHERE seq >= %s", [seq])]
    prev = db.value("SELECT link_hash FROM audit_chainlink WHERE seq = %s", [seq - 1])
    _tamper(db, f"DELETE FROM audit_governanceevent WHERE id IN ({','.join(map(str, rows))})",
            f"DELETE FROM audit_chainlink WHERE seq >= {seq}",
            f"UPDATE audit_chainhead SET seq = {seq - 1}, link_hash = '{prev}' WHERE id = 1")


def test_last_records_truncated_past_the_checkpoint_is_detected(chain: Chain) -> None:
    db = _fresh_case(chain)
    _truncate_from(db, chain.checkpoint - 5)
    result = _verify(chain)
    assert not result["ok"], result
    _console_shows_broken(chain, None)


def test_last_records_truncated_with_no_checkpoint_signed_since_is_detected(chain: Chain) -> None:
    """Only records newer than the last signed checkpoint are cut: the signed head must catch it (issue 20,
    fault 5: the head is signed within seconds of a write and cross-checked)."""
    db = _fresh_case(chain)
    _truncate_from(db, chain.checkpoint + 1)
    result = _verify(chain)
    assert not result["ok"], result
    _console_shows_broken(chain, None)


def test_record_changed_and_later_hashes_recomputed_before_the_checkpoint_is_detected(chain: Chain) -> None:
    _fresh_case(chain)
    seq = chain.checkpoint - 10
    chain.stack.manage("shell", "-c", RECOMPUTE.format(seq=seq), db=CASE)
    result = _verify(chain)
    assert not result["ok"], result
    _console_shows_broken(chain, None)


def test_record_changed_and_later_hashes_recomputed_after_the_checkpoint_is_detected(chain: Chain) -> None:
    _fresh_case(chain)
    seq = chain.checkpoint + 5
    chain.stack.manage("shell", "-c", RECOMPUTE.format(seq=seq), db=CASE)
    result = _verify(chain)
    assert not result["ok"], result
    _console_shows_broken(chain, None)
