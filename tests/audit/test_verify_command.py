"""``manage.py audit_verify``: seals, verifies, records the run, names the first bad sequence number and
exits non-zero on a break."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit import selectors
from audit.models import ChainLink, PendingSeal, VerificationRun

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code)
    return code, out.getvalue(), err.getvalue()


def test_audit_verify_seals_waiting_records_then_reports_intact_chain(mixed_chain, make_decision):
    mixed_chain(10)
    make_decision()  # committed but not chained yet
    assert PendingSeal.objects.count() == 1
    code, out, _ = run("--json")
    result = json.loads(out)
    assert code == 0
    assert (result["ok"], result["checked"], result["head_seq"], result["unsealed"]) == (True, 11, 11, 0)
    run_row = VerificationRun.objects.get()
    assert (run_row.ok, run_row.checked, run_row.first_bad_seq, run_row.actor) == (True, 11, None, "cli")
    assert selectors.chain_status()["last_verification"] == run_row


def test_audit_verify_names_the_first_bad_sequence_number_and_exits_non_zero(mixed_chain):
    mixed_chain(12)
    seq, record_type, row_id = ChainLink.objects.filter(record_type="access").order_by("seq").values_list(
        "seq", "record_type", "row_id")[1]
    with transaction.atomic():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("UPDATE audit_accessrecord SET what = %s WHERE id = %s", ["nothing.to.see", row_id])
        code, _, err = run()
        json_code, out, _ = run("--json", "--no-seal")
        runs = list(VerificationRun.objects.order_by("id").values_list("ok", "first_bad_seq", "first_bad_record"))
        transaction.set_rollback(True)
    assert code == 1 and json_code == 1
    assert f"first bad sequence number {seq} (access:{row_id})" in err
    assert json.loads(out)["first_bad_seq"] == seq
    assert runs == [(False, seq, f"access:{row_id}")] * 2


def test_audit_verify_from_seq_checks_only_the_tail(mixed_chain):
    mixed_chain(20)
    code, out, _ = run("--json", "--from-seq", "15")
    assert code == 0 and json.loads(out)["checked"] == 6


def test_audit_verify_can_write_a_checkpoint_after_success(mixed_chain, checkpoint_dir):
    mixed_chain(5)
    code, out, _ = run("--json", "--checkpoint")
    assert code == 0 and json.loads(out)["checkpoint_seq"] == 5
    assert [p.name for p in checkpoint_dir.iterdir()] == ["checkpoint-000000000005.json"]


def test_audit_verify_without_no_seal_flags_records_waiting_too_long(make_decision, settings):
    make_decision()
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = -1
    code, _, err = run("--no-seal")
    assert code == 1 and "waited more than" in err
    assert run()[0] == 0  # sealing first fixes it
