"""Tamper evidence: 200 random single mutations made with raw SQL behind the ORM's back (and, on
PostgreSQL, with the append-only trigger switched off) are all detected, naming the first bad sequence
number or record; a full recompute of the chain is caught by the signed checkpoints; forged checkpoints
are caught by their signatures."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from audit import canonical, services
from audit.checkpoints import DirectoryStore, SignedCheckpoint, public_key_b64, sign
from audit.models import RECORD_TYPES, ChainHead, ChainLink, DecisionRecord
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db
CHAIN_LENGTH = 48
CHECKPOINT_EVERY = 16
MUTATIONS = 200


class _Undo(Exception):
    pass


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def execute(sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall() if cursor.description else None


def disable_append_only() -> None:
    """Behind the application's back, as a database owner could: on PostgreSQL switch triggers off for
    this (rolled back) transaction; SQLite has no trigger."""
    if connection.vendor == "postgresql":
        execute("SET LOCAL session_replication_role = replica")


def db_uuid(value: uuid.UUID) -> Any:
    return value if connection.vendor == "postgresql" else value.hex


@pytest.fixture
def sealed_chain(mixed_chain) -> list[Any]:
    records: list[Any] = []
    for _ in range(CHAIN_LENGTH // CHECKPOINT_EVERY):
        records.extend(mixed_chain(CHECKPOINT_EVERY))
        assert services.checkpoint_write(force=True) is not None
    result = verify_chain()
    assert result.ok, result
    assert result.checked == CHAIN_LENGTH and result.checkpoints_checked == CHAIN_LENGTH // CHECKPOINT_EVERY
    return records


def links() -> list[tuple[int, str, int]]:
    return list(ChainLink.objects.order_by("seq").values_list("seq", "record_type", "row_id"))


def _changed_value(field: Any, current: Any, rng: random.Random) -> Any:
    kind = field.get_internal_type()
    if kind == "UUIDField":
        return db_uuid(uuid.uuid4())
    if kind == "DateTimeField":
        return (current or datetime.now(UTC)) + timedelta(seconds=rng.randint(1, 10_000))
    if kind in ("BigIntegerField", "IntegerField", "ForeignKey"):
        return (current or 0) + rng.randint(1, 5)
    if kind == "BinaryField":
        return bytes(rng.getrandbits(8) for _ in range(24))
    if field.__class__.__name__ == "CanonicalJSONField":
        return json.dumps({"tampered": rng.randint(1, 10**6)}, separators=(",", ":"))
    return f"tampered-{rng.randint(1, 10**6)}"[: field.max_length or 50]


def mutate_field(rng: random.Random) -> tuple[int | None, str | None]:
    seq, record_type, row_id = rng.choice(links())
    model = RECORD_TYPES[record_type]
    name, field = rng.choice(canonical.row_columns(model))
    table, column = qn(model._meta.db_table), qn(field.column)
    current = model.objects.filter(pk=row_id).values_list(field.attname, flat=True).first()
    if field.get_internal_type() == "ForeignKey":  # point the review at another existing decision
        others = list(DecisionRecord.objects.exclude(pk=current).values_list("pk", flat=True))
        new_value: Any = rng.choice(others)
    else:
        new_value = _changed_value(field, current, rng)
    execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [new_value, row_id])
    if rng.random() < 0.5:  # a smarter attacker also recomputes the row's own content hash
        fresh = model.objects.get(pk=row_id)
        execute(f"UPDATE {table} SET content_hash = %s WHERE id = %s", [canonical.content_hash(fresh), row_id])
    return seq, f"{record_type}:{row_id}"


def mutate_row_delete(rng: random.Random) -> tuple[int | None, str | None]:
    seq, record_type, row_id = rng.choice(links())
    execute(f"DELETE FROM {qn(RECORD_TYPES[record_type]._meta.db_table)} WHERE id = %s", [row_id])
    return seq, f"{record_type}:{row_id}"


def mutate_link_delete(rng: random.Random) -> tuple[int | None, str | None]:
    seq, _, _ = rng.choice(links()[:-1])
    execute(f"DELETE FROM {qn(ChainLink._meta.db_table)} WHERE seq = %s", [seq])
    return seq, None


def mutate_link_edit(rng: random.Random) -> tuple[int | None, str | None]:
    seq, record_type, row_id = rng.choice(links())
    column = rng.choice(["entry_hash", "prev_link_hash", "link_hash", "row_id"])
    value: Any = {"entry_hash": "e" * 64, "prev_link_hash": "f" * 64, "link_hash": "a" * 64,
                  "row_id": row_id + 10_000}[column]
    execute(f"UPDATE {qn(ChainLink._meta.db_table)} SET {qn(column)} = %s WHERE seq = %s", [value, seq])
    return seq, None


def mutate_reorder(rng: random.Random) -> tuple[int | None, str | None]:
    chain = links()
    first, second = sorted(rng.sample(range(len(chain)), 2))
    a, b = chain[first][0], chain[second][0]
    table = qn(ChainLink._meta.db_table)
    execute(f"UPDATE {table} SET seq = %s WHERE seq = %s", [-1, a])
    execute(f"UPDATE {table} SET seq = %s WHERE seq = %s", [a, b])
    execute(f"UPDATE {table} SET seq = %s WHERE seq = %s", [b, -1])
    return a, None


def mutate_forged_record(rng: random.Random) -> tuple[int | None, str | None]:
    """Insert a well-formed decision (valid content hash) that the sealer never saw."""
    template = rng.choice(list(DecisionRecord.objects.order_by("id")))
    forged = DecisionRecord(
        created_at=template.created_at - timedelta(seconds=1), customer=uuid.uuid4(), purpose=template.purpose,
        consent_event_id=template.consent_event_id, notice_version=template.notice_version,
        requester=template.requester, decision_type=template.decision_type, model_versions=template.model_versions,
        model_version=template.model_version, features_hash=template.features_hash, outputs={"tier": "VIP"},
        tier="VIP", sealed_details=None, decision_key=None,
    )
    forged.content_hash = canonical.content_hash(forged)
    new_id = DecisionRecord.objects.order_by("-id").values_list("id", flat=True).first() + rng.randint(1, 50)
    forged.id = new_id
    fields = list(DecisionRecord._meta.concrete_fields)
    columns = ", ".join(qn(f.column) for f in fields)
    values = [f.get_db_prep_save(getattr(forged, f.attname), connection) for f in fields]
    execute(f"INSERT INTO {qn(DecisionRecord._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",
            values)
    return None, f"decision:{new_id}"


def mutate_forged_link(rng: random.Random) -> tuple[int | None, str | None]:
    """Append a correctly hashed link that links an existing record a second time."""
    seq, link_hash = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    _, record_type, row_id = rng.choice(links())
    entry = RECORD_TYPES[record_type].objects.get(pk=row_id).content_hash
    if connection.vendor == "postgresql":
        execute('ALTER TABLE "audit_chainlink" DROP CONSTRAINT "audit_link_once"')
    else:  # SQLite cannot drop an inline constraint: rebuild the table without it
        execute('CREATE TABLE "audit_chainlink_x" ("seq" bigint NOT NULL PRIMARY KEY, "record_type" varchar(16) '
                'NOT NULL, "row_id" bigint NOT NULL, "entry_hash" varchar(64) NOT NULL, "prev_link_hash" varchar(64) '
                'NOT NULL, "link_hash" varchar(64) NOT NULL, "sealed_at" datetime NOT NULL)')
        execute('INSERT INTO "audit_chainlink_x" SELECT * FROM "audit_chainlink"')
        execute('DROP TABLE "audit_chainlink"')
        execute('ALTER TABLE "audit_chainlink_x" RENAME TO "audit_chainlink"')
    new_hash = canonical.link_hash(seq + 1, record_type, row_id, entry, link_hash)
    execute(
        f"INSERT INTO {qn(ChainLink._meta.db_table)} (seq, record_type, row_id, entry_hash, prev_link_hash, link_hash, "
        "sealed_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        [seq + 1, record_type, row_id, entry, link_hash, new_hash, datetime.now(UTC)],
    )
    return seq + 1, f"{record_type}:{row_id}"


def mutate_truncate_tail(rng: random.Random) -> tuple[int | None, str | None]:
    chain = links()
    k = rng.randint(1, 6)
    for seq, record_type, row_id in chain[-k:]:
        execute(f"DELETE FROM {qn(ChainLink._meta.db_table)} WHERE seq = %s", [seq])
        execute(f"DELETE FROM {qn(RECORD_TYPES[record_type]._meta.db_table)} WHERE id = %s", [row_id])
    return chain[-k][0], None


MUTATORS = [mutate_field, mutate_row_delete, mutate_link_delete, mutate_link_edit, mutate_reorder,
            mutate_forged_record, mutate_forged_link, mutate_truncate_tail]


def test_two_hundred_random_single_mutations_are_all_detected_naming_the_first_bad_record(sealed_chain):
    rng = random.Random(20250131)
    detected: dict[str, int] = {}
    for i in range(MUTATIONS):
        mutator = MUTATORS[i % len(MUTATORS)] if i < len(MUTATORS) else rng.choice(MUTATORS)
        try:
            with transaction.atomic():
                disable_append_only()
                expected_seq, expected_record = mutator(rng)
                result = verify_chain()
                if connection.vendor == "postgresql":  # the SQL engine and the Python engine agree
                    python = verify_chain(engine="python")
                    assert (python.ok, python.first_bad_seq, python.first_bad_record) == (
                        result.ok, result.first_bad_seq, result.first_bad_record), (mutator.__name__, i)
                assert not result.ok, (mutator.__name__, i)
                assert result.first_bad_seq == expected_seq, (mutator.__name__, i, result)
                if expected_record is not None:
                    assert result.first_bad_record == expected_record, (mutator.__name__, i, result)
                raise _Undo
        except _Undo:
            detected[mutator.__name__] = detected.get(mutator.__name__, 0) + 1
    assert sum(detected.values()) == MUTATIONS
    assert set(detected) == {m.__name__ for m in MUTATORS}
    assert verify_chain().ok  # every mutation was rolled back


def test_deleted_record_is_named_by_its_sequence_number_and_id(sealed_chain):
    seq, record_type, row_id = links()[10]
    with transaction.atomic():
        disable_append_only()
        execute(f"DELETE FROM {qn(RECORD_TYPES[record_type]._meta.db_table)} WHERE id = %s", [row_id])
        result = verify_chain()
        transaction.set_rollback(True)
    assert (result.ok, result.first_bad_seq, result.first_bad_record) == (False, seq, f"{record_type}:{row_id}")
    assert "missing" in result.reason


def _recompute_chain_from(seq_from: int, *, head_row: bool = True) -> None:
    """What a writer with database access would do: recompute every link after an edit (and, with
    ``head_row``, the chain-head row too)."""
    prev = ChainLink.objects.filter(seq=seq_from - 1).values_list("link_hash", flat=True).first() or canonical.GENESIS_HASH
    for seq, record_type, row_id in ChainLink.objects.filter(seq__gte=seq_from).order_by("seq").values_list(
            "seq", "record_type", "row_id"):
        entry = canonical.content_hash(RECORD_TYPES[record_type].objects.get(pk=row_id))
        digest = canonical.link_hash(seq, record_type, row_id, entry, prev)
        execute(f"UPDATE {qn(ChainLink._meta.db_table)} SET entry_hash = %s, prev_link_hash = %s, link_hash = %s "
                "WHERE seq = %s", [entry, prev, digest, seq])
        prev = digest
    if head_row:
        execute(f"UPDATE {qn(ChainHead._meta.db_table)} SET link_hash = %s WHERE id = 1", [prev])


def test_full_recompute_of_the_chain_is_caught_by_the_signed_checkpoints(sealed_chain, settings, tmp_path):
    target_seq, record_type, row_id = next(link for link in links() if link[1] == "decision" and 20 <= link[0] < 32)
    with transaction.atomic():
        disable_append_only()
        table = qn(DecisionRecord._meta.db_table)
        execute(f"UPDATE {table} SET tier = %s, outputs = %s WHERE id = %s", ["Basic", '{"tier":"Basic"}', row_id])
        execute(f"UPDATE {table} SET content_hash = %s WHERE id = %s",
                [canonical.content_hash(DecisionRecord.objects.get(pk=row_id)), row_id])
        _recompute_chain_from(target_seq)

        with_checkpoints = verify_chain()
        settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "empty-store")
        without_checkpoints = verify_chain()
        transaction.set_rollback(True)

    assert without_checkpoints.ok  # the rewrite is internally consistent ...
    assert not with_checkpoints.ok  # ... but contradicts the signed head at seq 32
    assert with_checkpoints.first_bad_seq == CHECKPOINT_EVERY + 1 <= target_seq
    assert "signed checkpoint at seq 32" in with_checkpoints.reason


def test_truncation_after_the_last_checkpoint_is_caught(sealed_chain):
    with transaction.atomic():
        disable_append_only()
        mutate_truncate_tail(random.Random(3))
        result = verify_chain()
        transaction.set_rollback(True)
    assert not result.ok and "before seq 48 named by the signed checkpoint" in result.reason


def test_forged_checkpoint_file_is_detected_by_its_signature(sealed_chain, checkpoint_dir):
    path = checkpoint_dir / DirectoryStore.file_name(32)
    original = path.read_text()
    data = json.loads(original)
    data["payload"]["link_hash"] = "b" * 64
    path.write_text(json.dumps(data))
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 32)
    assert "signature invalid" in result.reason
    path.write_text(original)
    assert verify_chain().ok


def test_checkpoint_signed_with_another_key_is_rejected(sealed_chain, checkpoint_dir, settings):
    head = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    settings.AUDIT_SIGNING_KEY = b"x" * 32  # the attacker's own key
    forged = sign(seq=head[0] + 5, link_hash="c" * 64, signed_at="2030-01-01T00:00:00.000000+00:00")
    DirectoryStore().write(forged)
    settings.AUDIT_SIGNING_KEY = b"t" * 32
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, head[0] + 5)
    assert "signature invalid" in result.reason


def test_verification_needs_only_the_public_key(sealed_chain, settings):
    public = public_key_b64()
    settings.AUDIT_SIGNING_KEY = b""
    settings.AUDIT_VERIFY_PUBLIC_KEY = public
    assert verify_chain().ok
    settings.AUDIT_VERIFY_PUBLIC_KEY = ""
    result = verify_chain()
    assert not result.ok and "signature invalid" in result.reason


def test_checkpoint_store_never_overwrites_a_checkpoint(sealed_chain, checkpoint_dir):
    from audit.checkpoints import CheckpointStoreError

    existing = SignedCheckpoint.from_json((checkpoint_dir / DirectoryStore.file_name(16)).read_text())
    with pytest.raises(CheckpointStoreError):
        DirectoryStore().write(sign(seq=16, link_hash="d" * 64, signed_at=existing.signed_at))
    assert DirectoryStore().write(existing) == DirectoryStore.file_name(16)  # identical rewrite is a no-op
    assert [c.seq for c in DirectoryStore().read_all()] == [16, 32, 48]
    assert not list(checkpoint_dir.glob(".tmp-*"))
