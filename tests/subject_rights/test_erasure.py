"""Erasure (Art. 17): crypto-shredding, deletion of rows and blind-index entries, a PII-free tombstone and
ledger entry; legal holds; and replaying the ledger after a backup restore.

The completeness test seeds a canary (unique fake name, e-mail, phone, IBAN, ticket phrase) for 50
customers, erases 25, and scans every table and column (text and bytes), the log records, Celery
messages, export files and temp files: 0 hits for the erased 25, at least one hit for each of the other
25 (so the scan can see), leftover ciphertext of the erased cannot be decrypted, and the audit chain
verifies.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.core.management import call_command
from django.db import connection

from config.envelope import DecryptionError
from config.errors import NotFound
from config.logging import JsonFormatter
from subject_rights.models import ErasureLedgerEntry, Export, LegalHold, SubjectRequest
from tests.privacy_scan import Canary, as_bytes, keyed_needles, scan_database, scan_text
from tests.subject_rights.canary import make_canary, new_tag
from tests.task_messages import TaskMessages

URL = "/api/v1/subject-requests"
MAX_SCANNED_FILE = 50 * 1024 * 1024


# --------------------------------------------------------------------------------------- scanners


def _by_customer(canaries: list[Canary], keys: set[tuple[str, str]]) -> dict[Any, set[str]]:
    """Needle keys (external id, name) of ``keyed_needles`` grouped as customer id -> needle names."""
    customer_of = {c.external_id: c.customer_id for c in canaries}
    found: dict[Any, set[str]] = defaultdict(set)
    for external_id, name in keys:
        found[customer_of[external_id]].add(name)
    return found


def _scan_database(canaries: list[Canary]) -> dict[Any, set[tuple[str, str, str]]]:
    """Every table, every column (text, JSON and bytes, raw): which canary values and digests appear where."""
    customer_of = {c.external_id: c.customer_id for c in canaries}
    found: dict[Any, set[tuple[str, str, str]]] = defaultdict(set)
    for hit in scan_database(keyed_needles(canaries)):
        external_id, name = hit.needle
        found[customer_of[external_id]].add((hit.table, hit.column, name))
    return found


def _scan_decrypted(canaries: list[Canary]) -> dict[Any, set[str]]:
    """What the services can still decrypt about each pseudonym."""
    from profiles import selectors

    found: dict[Any, set[str]] = defaultdict(set)
    for canary in canaries:
        try:
            data = {
                "personal": selectors.customer_personal_data(customer_id=canary.customer_id),
                "identities": selectors.customer_source_identities(customer_id=canary.customer_id),
                "facts": selectors.customer_facts(customer_id=canary.customer_id),
            }
        except (NotFound, DecryptionError):
            continue
        found[canary.customer_id] = scan_text(data, canary.needles())
    return found


def _scan_files(paths: list[Path], canaries: list[Canary]) -> dict[Any, set[tuple[str, str]]]:
    needles = keyed_needles(canaries)
    found: dict[Any, set[tuple[str, str]]] = defaultdict(set)
    for path in paths:
        try:
            if not path.is_file() or path.stat().st_size > MAX_SCANNED_FILE:
                continue
            blob = path.read_bytes()
        except OSError:
            continue
        for cid, names in _by_customer(canaries, scan_text(blob, needles)).items():
            found[cid].update((str(path), name) for name in names)
    return found


def _files_changed_since(root: Path, since: float) -> list[Path]:
    changed = []
    for dirpath, _dirs, files in os.walk(root, onerror=lambda _: None):
        for name in files:
            path = Path(dirpath) / name
            try:
                if path.stat().st_mtime >= since:
                    changed.append(path)
            except OSError:
                continue
    return changed


# ------------------------------------------------------------------------------------------ tests


def _erase_via_request(api: Any, canary: Canary, capture: Any) -> SubjectRequest:
    from subject_rights.services import request_execute

    response = api.post(URL, {"type": "erasure", "customer": str(canary.customer_id),
                              "contact_email": canary.email}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "verified"
    with capture(execute=True):
        req = request_execute(request_id=response.json()["id"], actor="user:dpo")
    return req


@pytest.mark.django_db
def test_erasure_leaves_no_trace_of_25_erased_canaries_and_keeps_the_other_25(
    api: Any, active_model: Any, purposes: None, caplog: Any, task_messages: TaskMessages,
    django_capture_on_commit_callbacks: Any, settings: Any, mailoutbox: Any,
) -> None:
    from audit.models import DecisionRecord
    from audit.selectors import chain_verify
    from profiles.selectors import customer_find, customer_unseal
    from subject_rights.tasks import build_export

    started = time.time() - 1
    caplog.set_level(logging.DEBUG)
    tag = new_tag()
    canaries = [make_canary(tag, i) for i in range(50)]
    erased, kept = canaries[:25], canaries[25:]

    # Exports exist for some of both groups before the erasure; one erased customer also has an access
    # request whose export task is still queued when the erasure runs.
    for canary in erased[:3] + kept[:3]:
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(URL, {"type": "access", "customer": str(canary.customer_id)},
                            format="json").status_code == 201
    pending = api.post(URL, {"type": "access", "customer": str(erased[5].customer_id)}, format="json").json()["id"]
    assert Export.objects.filter(deleted_at__isnull=True).count() == 6

    for canary in erased:
        req = _erase_via_request(api, canary, django_capture_on_commit_callbacks)
        assert (req.status, req.outcome) == ("completed", "erased")
    assert build_export.delay(pending).get() is None  # the queued task is a no-op now

    # 1. Every table and column.
    db_hits = _scan_database(canaries)
    leaks = {str(c.customer_id): sorted(db_hits[c.customer_id]) for c in erased if db_hits[c.customer_id]}
    assert leaks == {}
    for canary in kept:  # the raw scan can see: the stored ticket text keeps the phrase
        assert ("profiles_ticket", "text_pseudonymized", "phrase") in db_hits[canary.customer_id]
        # the blind-index digests of the living: in their index entries and nowhere else
        assert {hit for hit in db_hits[canary.customer_id] if hit[2].endswith("_digest")} == {
            ("profiles_blindindexentry", "digest", "email_digest"),
            ("profiles_blindindexentry", "digest", "phone_digest"),
            ("profiles_sourceidentity", "digest", "source_digest"),
        }

    # 2. Decrypted through the services: nothing for the erased, every field for the others.
    decrypted = _scan_decrypted(canaries)
    assert all(not decrypted[c.customer_id] for c in erased)
    for canary in kept:
        assert {"name", "email", "phone", "iban", "phrase", "external_id"} <= decrypted[canary.customer_id]
        assert customer_find(email=canary.email) == canary.customer_id
    assert all(customer_find(email=c.email) is None for c in erased)

    # 3. Log records captured during the test (message, arguments, extra fields, JSON output).
    formatter = JsonFormatter()
    log_blob = b"\n".join(
        as_bytes(record.getMessage()) + as_bytes(repr(record.__dict__)) + as_bytes(formatter.format(record))
        for record in caplog.records
    )
    assert caplog.records
    erased_needles = keyed_needles(erased)  # plain values and blind-index digests
    assert _by_customer(erased, scan_text(log_blob, erased_needles)) == {}

    # 4. Celery messages.
    assert len(task_messages)  # exports and audit sealing ran as tasks
    assert _by_customer(erased, scan_text(task_messages.blob(), erased_needles)) == {}

    # 5. Export files and temp files (including the erasure ledger and, on SQLite, the database file).
    files = _files_changed_since(Path(settings.EXPORT_DIR), 0) + _files_changed_since(
        Path(tempfile.gettempdir()), started) + _files_changed_since(Path(settings.ERASURE_LEDGER_DIR), 0)
    assert files
    file_hits = _scan_files(files, erased)
    assert {str(cid): sorted(h) for cid, h in file_hits.items() if h} == {}
    assert Export.objects.filter(subject__in=[c.customer_id for c in erased], deleted_at__isnull=True).count() == 0
    assert Export.objects.filter(subject__in=[c.customer_id for c in kept], deleted_at__isnull=True).count() == 3

    # 6. Leftover ciphertext of the erased cannot be decrypted; decision records keep pseudonym + facts.
    for canary in erased:
        [decision] = DecisionRecord.objects.filter(customer=canary.customer_id)
        assert decision.sealed_details and decision.outputs["tier"]
        with pytest.raises(DecryptionError):
            customer_unseal(customer_id=canary.customer_id, label="decision_details",
                            blob=bytes(decision.sealed_details))
    for canary in kept:
        decision = DecisionRecord.objects.get(customer=canary.customer_id)
        assert customer_unseal(customer_id=canary.customer_id, label="decision_details",
                               blob=bytes(decision.sealed_details))["features"]

    # 7. Tombstones and ledger entries without personal data; the chain verifies.
    assert ErasureLedgerEntry.objects.filter(customer_id__in=[c.customer_id for c in erased]).count() == 25
    ledger_lines = (Path(settings.ERASURE_LEDGER_DIR) / "ledger.jsonl").read_text().splitlines()
    assert {json.loads(line)["customer"] for line in ledger_lines} == {str(c.customer_id) for c in erased}
    result = chain_verify()
    assert result.ok is True and result.checked > 0
    # The requesters were told (their address was only decrypted in memory to send this).
    assert len([m for m in mailoutbox if m.to == [erased[0].email]]) == 1


@pytest.mark.django_db
def test_legal_hold_blocks_erasure_with_its_recorded_justification(
    api: Any, active_model: Any, purposes: None, dsr_status_events: Any, governance: Any,
) -> None:
    from profiles.selectors import customer_exists, customer_personal_data
    from subject_rights.services import legal_hold_place, legal_hold_release, request_execute

    canary = make_canary(new_tag(), 1)
    hold = legal_hold_place(customer_id=canary.customer_id, reason="litigation",
                            justification="Pending court case 2025-117 about a disputed invoice.", actor="user:dpo")
    assert [e.details["reason"] for e in governance("dsr.legal_hold_placed")] == ["litigation"]
    request_id = api.post(URL, {"type": "erasure", "customer": str(canary.customer_id)}, format="json").json()["id"]
    req = request_execute(request_id=request_id, actor="user:dpo")
    assert (req.status, req.rejection_code) == ("rejected", "legal_hold")
    assert "Pending court case 2025-117" in req.rejection_reason
    assert req.result["legal_hold"] == hold.pk
    assert dsr_status_events(request_id)[-1] == ("verified", "rejected")
    assert customer_exists(customer_id=canary.customer_id)
    assert customer_personal_data(customer_id=canary.customer_id)["name"] == canary.name
    assert ErasureLedgerEntry.objects.count() == 0
    # Once released, a new erasure request goes through.
    legal_hold_release(hold_id=hold.pk, actor="user:dpo")
    assert LegalHold.objects.get(pk=hold.pk).released_by == "user:dpo"
    second = api.post(URL, {"type": "erasure", "customer": str(canary.customer_id)}, format="json").json()["id"]
    assert request_execute(request_id=second, actor="user:dpo").outcome == "erased"
    assert not customer_exists(customer_id=canary.customer_id)


@pytest.mark.django_db
def test_legal_hold_needs_a_configured_reason_and_a_justification(purposes: None, customer_factory: Any) -> None:
    from config.errors import ValidationFailed
    from subject_rights.services import legal_hold_place

    cid = customer_factory()
    with pytest.raises(ValidationFailed):
        legal_hold_place(customer_id=cid, reason="because", justification="x", actor="user:dpo")
    with pytest.raises(ValidationFailed):
        legal_hold_place(customer_id=cid, reason="litigation", justification="  ", actor="user:dpo")
    assert LegalHold.objects.count() == 0


def _profiles_snapshot() -> str:
    """A "backup" of the profiles app's tables."""
    from django.apps import apps

    objects = []
    for model in apps.get_app_config("profiles").get_models():
        objects.extend(model.objects.all())
    return serializers.serialize("json", objects)


def _restore_profiles(snapshot: str) -> None:
    """Restore the backup: the profiles tables (and the database ledger) go back to the snapshot's state."""
    from django.apps import apps

    from profiles.data_keys import cache_clear

    models = list(apps.get_app_config("profiles").get_models())
    for model in reversed(models):
        model._base_manager.all().delete()
    with connection.constraint_checks_disabled():
        for obj in serializers.deserialize("json", snapshot):
            obj.save()
    ErasureLedgerEntry.objects.all().delete()  # the restored database predates the erasure
    cache_clear()


@pytest.mark.django_db
def test_replay_erasures_after_a_backup_restore_erases_the_person_again(
    api: Any, active_model: Any, purposes: None, django_capture_on_commit_callbacks: Any, capsys: Any,
) -> None:
    from profiles.selectors import customer_exists, customer_find, customer_is_erased, customer_personal_data

    tag = new_tag()
    gone, stays = make_canary(tag, 1), make_canary(tag, 2)
    backup = _profiles_snapshot()
    _erase_via_request(api, gone, django_capture_on_commit_callbacks)
    assert not customer_exists(customer_id=gone.customer_id)

    _restore_profiles(backup)
    assert customer_exists(customer_id=gone.customer_id)  # the restore resurrected the person...
    assert customer_personal_data(customer_id=gone.customer_id)["email"] == gone.email
    assert not customer_is_erased(customer_id=gone.customer_id)

    call_command("replay_erasures", "--dry-run")
    assert f"would erase again: {gone.customer_id}" in capsys.readouterr().out
    assert customer_exists(customer_id=gone.customer_id)  # dry run changes nothing

    call_command("replay_erasures")
    assert "erased again: 1" in capsys.readouterr().out
    assert not customer_exists(customer_id=gone.customer_id)  # ...and the ledger erased them again
    assert customer_is_erased(customer_id=gone.customer_id)
    assert customer_find(email=gone.email) is None
    with pytest.raises((NotFound, DecryptionError)):
        customer_personal_data(customer_id=gone.customer_id)
    assert customer_personal_data(customer_id=stays.customer_id)["email"] == stays.email
    entry = ErasureLedgerEntry.objects.get(customer_id=gone.customer_id)
    assert entry.replayed_at is not None
    call_command("replay_erasures")
    assert "erased again: 0" in capsys.readouterr().out  # idempotent


@pytest.mark.django_db
def test_tampered_ledger_lines_are_skipped(settings: Any) -> None:
    import uuid

    from django.utils import timezone

    from subject_rights import ledger

    good, bad = uuid.uuid4(), uuid.uuid4()
    ledger.ledger_append(customer=good, request=None, erased_at=timezone.now())
    ledger.ledger_append(customer=bad, request=None, erased_at=timezone.now())
    path = Path(settings.ERASURE_LEDGER_DIR) / "ledger.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(str(bad), str(uuid.uuid4()))
    path.write_text("\n".join(lines) + "\n")
    assert [line.customer for line in ledger.ledger_read()] == [good]
