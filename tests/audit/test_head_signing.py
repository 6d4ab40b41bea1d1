"""Issue 20, fault 5: recent audit records are protected. The chain head is signed within
``AUDIT_HEAD_SIGN_SECONDS`` of a write (after every seal, and by beat / the embedded timer), and
verification cross-checks the chain-head row against the signed checkpoints and the signed head.

Each tampering of the issue's list is made with raw SQL behind the application's back (on PostgreSQL with
the append-only trigger off, as a database owner could), then ``manage.py audit_verify`` must exit 1 naming
the first bad sequence number, and the console's chain page must show the break. The remaining window (records
sealed after the last head signature, cut off together with the head row) is asserted too, so that
docs/AUDIT.md states it exactly. Runs on SQLite and, with ``DATABASE_URL``, on PostgreSQL (both engines).
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.urls import reverse

from audit import canonical, selectors, services, tasks
from audit.checkpoints import DirectoryStore, SignedCheckpoint, sign, signature_valid
from audit.models import RECORD_TYPES, ChainHead, ChainLink, DecisionRecord, VerificationRun
from audit.verify import verify_chain
from tests.audit.test_tamper import _recompute_chain_from, disable_append_only, execute, links, qn

pytestmark = pytest.mark.django_db
FIRST = 48  # records covered by permanent checkpoints at 16, 32, 48


def run_verify() -> tuple[int, dict[str, Any], str]:
    out, err = StringIO(), StringIO()
    code = 0
    try:
        call_command("audit_verify", "--json", "--no-seal", stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code)
    return code, json.loads(out.getvalue()), err.getvalue()


def engines_agree() -> None:
    if connection.vendor == "postgresql":
        sql, python = verify_chain(engine="sql"), verify_chain(engine="python")
        assert (sql.ok, sql.first_bad_seq, sql.first_bad_record, sql.reason) == (
            python.ok, python.first_bad_seq, python.first_bad_record, python.reason)


def signed_head(checkpoint_dir) -> SignedCheckpoint | None:
    return DirectoryStore(checkpoint_dir).read_head()


@pytest.fixture
def chain(mixed_chain) -> None:
    """48 records with permanent checkpoints at 16, 32 and 48 (and the head signed at 48)."""
    for _ in range(3):
        mixed_chain(16)
        assert services.checkpoint_write(force=True) is not None
    services.chain_head_sign()
    assert verify_chain().ok


def sealed_not_signed(mixed_chain, n: int) -> None:
    """n more records, sealed (the head row moves on) but no head signature since."""
    mixed_chain(n)


def signed_not_checkpointed(mixed_chain, n: int) -> None:
    """n more records, sealed and the head signed, no permanent checkpoint since."""
    mixed_chain(n)
    assert services.chain_head_sign() is not None


def assert_detected(expected_seq: int, *phrases: str, record: str | None = None) -> dict[str, Any]:
    engines_agree()
    code, result, err = run_verify()
    assert code == 1, result
    assert result["ok"] is False and result["first_bad_seq"] == expected_seq, result
    if record is not None:
        assert result["first_bad_record"] == record
    for phrase in phrases:
        assert phrase in result["reason"], result["reason"]
    run = VerificationRun.objects.order_by("-id").first()
    assert (run.ok, run.first_bad_seq) == (False, expected_seq)
    return result


def console_shows_break(client, dpo_user, expected_seq: int) -> None:
    client.force_login(dpo_user)
    page = client.get(reverse("console:chain-status")).content.decode()
    assert f"broken at sequence {expected_seq}" in page
    assert "Signed head</dt><dd>sequence " in page  # the page shows what the newest head signature covers
    status = selectors.chain_status()
    assert status["last_verification"].ok is False and status["last_verification"].first_bad_seq == expected_seq


# ------------------------------------------------------------------------------------ head signing

def test_the_head_is_signed_by_every_seal_and_never_replaced_by_an_older_one(mixed_chain, make_decision,
                                                                            checkpoint_dir):
    mixed_chain(5)
    assert signed_head(checkpoint_dir) is None  # sealing alone signs nothing ...
    make_decision()
    assert tasks.seal_chain() == 1  # ... the seal task (on commit and by beat) seals and signs
    head = signed_head(checkpoint_dir)
    last = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    assert head is not None and (head.seq, head.link_hash) == last == (6, ChainHead.objects.get().link_hash)
    assert signature_valid(head)
    assert services.chain_head_sign() is None  # unchanged head: no new signature
    make_decision()
    make_decision()
    tasks.seal_chain()
    assert signed_head(checkpoint_dir).seq == 8
    assert [c.seq for c in DirectoryStore(checkpoint_dir).read_all()] == []  # head signatures are no checkpoints
    # A signed head beyond the chain (as after a restore) is never replaced by an older one.
    forged_ahead = sign(seq=50, link_hash="a" * 64, signed_at=canonical.iso_utc(ChainHead.objects.get().updated_at))
    DirectoryStore(checkpoint_dir).write_head(forged_ahead)
    make_decision()
    tasks.seal_chain()
    assert signed_head(checkpoint_dir).seq == 50


def test_the_head_is_not_signed_when_the_head_row_disagrees_with_the_chain(mixed_chain, checkpoint_dir):
    mixed_chain(4)
    with transaction.atomic():
        execute(f"UPDATE {qn(ChainHead._meta.db_table)} SET seq = 9 WHERE id = 1")
        assert services.chain_head_sign() is None
        transaction.set_rollback(True)
    assert signed_head(checkpoint_dir) is None


def test_beat_seals_and_signs_every_audit_head_sign_seconds():
    from config.celery import app

    entry = app.conf.beat_schedule["audit-seal"]
    assert entry["task"] == "audit.tasks.seal_chain"
    from django.conf import settings

    assert float(entry["schedule"]) == settings.AUDIT_HEAD_SIGN_SECONDS == 5.0


def test_embedded_timer_starts_only_in_the_serving_runserver_process_and_seals_and_signs(
        mixed_chain, make_decision, checkpoint_dir, settings):
    from audit import embedded

    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert embedded.should_start(["manage.py", "runserver", "--noreload"]) is False  # never under pytest
    assert embedded.should_start(["manage.py", "runserver", "--noreload"], testing=False) is True
    assert embedded.should_start(["manage.py", "migrate"], testing=False) is False
    settings.AUDIT_HEAD_SIGN_SECONDS = 0
    assert embedded.should_start(["manage.py", "runserver", "--noreload"], testing=False) is False
    settings.AUDIT_HEAD_SIGN_SECONDS = 5.0
    settings.CELERY_TASK_ALWAYS_EAGER = False  # production: beat does it
    assert embedded.should_start(["manage.py", "runserver", "--noreload"], testing=False) is False
    mixed_chain(3)
    make_decision()  # waiting: a throttled commit left it for the timer
    assert embedded.run_once() == 1
    assert signed_head(checkpoint_dir).seq == 4


# ------------------------------------------------------------------------------- tampering (issue list)

def test_field_changed_in_a_middle_record_is_detected(chain, client, dpo_user):
    seq, _, row_id = next(link for link in links() if link[1] == "decision" and link[0] == 25)
    with transaction.atomic():
        disable_append_only()
        execute(f"UPDATE {qn(DecisionRecord._meta.db_table)} SET tier = %s WHERE id = %s", ["Basic", row_id])
        assert_detected(seq, "altered", record=f"decision:{row_id}")
        console_shows_break(client, dpo_user, seq)
        transaction.set_rollback(True)
    assert verify_chain().ok


def test_middle_record_deleted_is_detected(chain, client, dpo_user):
    seq, record_type, row_id = links()[20]
    with transaction.atomic():
        disable_append_only()
        execute(f"DELETE FROM {qn(RECORD_TYPES[record_type]._meta.db_table)} WHERE id = %s", [row_id])
        assert_detected(seq, "missing", record=f"{record_type}:{row_id}")
        console_shows_break(client, dpo_user, seq)
        transaction.set_rollback(True)


def _truncate(k: int, *, head_row: bool) -> int:
    """Delete the last k links and their records; with ``head_row``, also set the chain-head row to the new
    end (a careful attacker). Returns the first removed sequence number."""
    chain = links()
    for seq, record_type, row_id in chain[-k:]:
        execute(f"DELETE FROM {qn(ChainLink._meta.db_table)} WHERE seq = %s", [seq])
        execute(f"DELETE FROM {qn(RECORD_TYPES[record_type]._meta.db_table)} WHERE id = %s", [row_id])
    if head_row:
        new_end = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
        execute(f"UPDATE {qn(ChainHead._meta.db_table)} SET seq = %s, link_hash = %s WHERE id = 1", list(new_end))
    return chain[-k][0]


def test_last_records_truncated_after_the_last_checkpoint_are_detected(chain, mixed_chain, client, dpo_user):
    signed_not_checkpointed(mixed_chain, 6)  # 49..54 signed as the head, last checkpoint at 48
    for head_row in (False, True):
        with transaction.atomic():
            disable_append_only()
            first_removed = _truncate(3, head_row=head_row)
            assert first_removed == 52
            if head_row:  # the row was moved back to 51: it contradicts the signed head
                assert_detected(52, "the chain-head row (seq 51) is behind the signed head (seq 54)")
            else:
                assert_detected(52, "chain ends at seq 51, before seq 54 named by the signed head and the "
                                    "chain-head row: records were removed from the end")
            console_shows_break(client, dpo_user, 52)
            transaction.set_rollback(True)


def test_truncation_with_no_checkpoint_signed_since_the_last_write_is_detected_by_the_head_row(
        chain, mixed_chain, client, dpo_user, checkpoint_dir):
    sealed_not_signed(mixed_chain, 6)  # 49..54 sealed, newest signature (checkpoint and head) at 48
    assert signed_head(checkpoint_dir).seq == FIRST and ChainHead.objects.get().seq == 54
    with transaction.atomic():
        disable_append_only()
        _truncate(3, head_row=False)
        assert_detected(52, "chain ends at seq 51, before seq 54 named by the chain-head row")
        console_shows_break(client, dpo_user, 52)
        transaction.set_rollback(True)
    # Cut below the signed head while rewriting the head row too: the row and the signed head disagree.
    with transaction.atomic():
        disable_append_only()
        _truncate(8, head_row=True)  # 47..54 gone, row set to 46
        result = assert_detected(47, "the chain-head row (seq 46) is behind the signed head (seq 48)")
        assert result["problems"] == 2  # and the chain ends before the signed checkpoint and head at 48
        transaction.set_rollback(True)


def test_the_remaining_window_is_what_was_sealed_after_the_last_head_signature(chain, mixed_chain):
    """docs/AUDIT.md, "The remaining window": records sealed after the last head signature, cut off together
    with the head row, leave nothing to compare with. This is the exact window; one head signature closes it."""
    sealed_not_signed(mixed_chain, 6)
    with transaction.atomic():
        disable_append_only()
        _truncate(6, head_row=True)  # exactly the unsigned tail
        assert verify_chain().ok
        transaction.set_rollback(True)
    assert services.chain_head_sign().seq == 54  # what beat / the seal task does within AUDIT_HEAD_SIGN_SECONDS
    with transaction.atomic():
        disable_append_only()
        _truncate(6, head_row=True)
        assert_detected(49, "the chain-head row (seq 48) is behind the signed head (seq 54)")
        transaction.set_rollback(True)


def _rewrite(seq: int, *, head_row: bool = True) -> int:
    """Change the decision at ``seq`` (or the next decision after it) with a recomputed content hash, then
    recompute every later link. Returns the changed record's seq."""
    target_seq, _, row_id = next(link for link in links() if link[1] == "decision" and link[0] >= seq)
    table = qn(DecisionRecord._meta.db_table)
    execute(f"UPDATE {table} SET tier = %s, outputs = %s WHERE id = %s", ["Basic", '{"tier":"Basic"}', row_id])
    execute(f"UPDATE {table} SET content_hash = %s WHERE id = %s",
            [canonical.content_hash(DecisionRecord.objects.get(pk=row_id)), row_id])
    _recompute_chain_from(target_seq, head_row=head_row)
    return target_seq


def test_record_changed_with_every_later_hash_recomputed_before_the_last_checkpoint(chain, client, dpo_user):
    with transaction.atomic():
        disable_append_only()
        assert 20 <= _rewrite(20) < 32
        assert_detected(17, "chain differs from the signed checkpoint at seq 32 (rewritten after seq 16)")
        console_shows_break(client, dpo_user, 17)
        transaction.set_rollback(True)


def test_record_changed_with_every_later_hash_recomputed_after_the_last_checkpoint(chain, mixed_chain, client,
                                                                                   dpo_user):
    signed_not_checkpointed(mixed_chain, 8)  # 49..56, head signed at 56, last permanent checkpoint 48
    with transaction.atomic():
        disable_append_only()
        assert _rewrite(50) > FIRST
        assert_detected(49, "chain differs from the signed head at seq 56 (rewritten after seq 48)")
        console_shows_break(client, dpo_user, 49)
        transaction.set_rollback(True)


def test_rewrite_after_the_last_head_signature_is_caught_by_the_head_row_unless_it_is_rewritten_too(
        chain, mixed_chain):
    signed_not_checkpointed(mixed_chain, 4)  # head signed at 52
    sealed_not_signed(mixed_chain, 6)  # 53..58 sealed only
    with transaction.atomic():
        disable_append_only()
        assert _rewrite(54, head_row=False) > 52
        assert_detected(53, "chain differs from the chain-head row at seq 58 (rewritten after seq 52)")
        transaction.set_rollback(True)
    with transaction.atomic():  # the remaining window: the row rewritten as well
        disable_append_only()
        _rewrite(54, head_row=True)
        assert verify_chain().ok
        transaction.set_rollback(True)


def test_a_forged_head_signature_is_rejected(chain, checkpoint_dir):
    path = checkpoint_dir / DirectoryStore.HEAD_NAME
    data = json.loads(path.read_text())
    data["payload"]["seq"] = 60
    path.write_text(json.dumps(data))
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 60) and "signed head head.json: signature invalid" in result.reason
    path.write_text("not json")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 1) and "signature invalid" in result.reason


def test_verification_beside_a_sealer_sees_no_false_break(chain, mixed_chain):
    """Witnesses are read before the links: links sealed after the head row are normal."""
    mixed_chain(3)
    execute(f"UPDATE {qn(ChainHead._meta.db_table)} SET seq = %s, link_hash = %s WHERE id = 1",
            list(ChainLink.objects.filter(seq=FIRST + 1).values_list("seq", "link_hash").get()))
    assert verify_chain().ok  # as if links 50 and 51 were committed after the row was read
