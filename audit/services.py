"""Audit writes: decision, review, access and governance records; verification runs. Sealing the chain and
checkpoints live in ``audit.sealing`` (re-exported here).

Every record is written by the caller's service in the caller's transaction (so if the audit write
fails, the change fails) and carries its own content hash. Linking into the hash chain happens
shortly after commit, in ``chain_seal`` (see docs/AUDIT.md for why the chain is not extended inside
the business transaction).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Field
from django.utils import timezone

from audit import canonical
from audit.models import (
    MAX_MODEL_VERSIONS,
    AccessRecord,
    CanonicalJSONField,
    ChainedRecord,
    DecisionRecord,
    GovernanceEvent,
    HumanReview,
    PendingSeal,
    VerificationRun,
    model_version_columns,
)
from audit.sealing import (
    chain_head_sign as chain_head_sign,  # re-exported: callers seal through audit.services
)
from audit.sealing import chain_seal as chain_seal
from audit.sealing import chain_seal_and_sign as chain_seal_and_sign
from audit.sealing import checkpoint_write as checkpoint_write
from config.bulk_insert import instances_insert
from config.chunking import chunked
from config.compiled_queries import hot_cursor
from config.errors import NotFound, ValidationFailed
from config.instances import instance_new
from config.uuids import as_uuid

logger = logging.getLogger("audit")

DECISION_TYPES = frozenset(DecisionRecord.DecisionType.values)
REVIEW_OUTCOMES = frozenset(HumanReview.Outcome.values)
# The label under which callers seal decision details with profiles.services.customer_seal.
DECISION_DETAILS_LABEL = "decision_details"
SEAL_REQUEST_FLAG = "audit:seal-requested"
SEAL_REQUEST_TTL_S = 10
BULK_BATCH = 500

_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_ACTOR = re.compile(r"^[a-z_]+(:[^\s]{1,140})?$")
EMAIL_LIKE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


# --------------------------------------------------------------------------------------- helpers

def _text(value: Any, field: str, *, max_length: int, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"{field} is required.", code="invalid")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ValidationFailed(f"{field} is invalid.", code="invalid")
    return value


def _required(value: Any, field: str, *, max_length: int) -> str:
    text = _text(value, field, max_length=max_length)
    assert text is not None
    return text


def _actor(value: Any, field: str = "actor") -> str:
    text = _text(value, field, max_length=150)
    assert text is not None
    if not _ACTOR.match(text):
        raise ValidationFailed(f"{field} must look like 'api:<name>', 'user:<name>', 'job:<name>' or 'cli'.")
    return text


def _uuid_field(value: Any, field: str, *, required: bool = True) -> UUID | None:
    if value is None:
        if required:
            raise ValidationFailed(f"{field} is required.")
        return None
    try:
        return as_uuid(value)
    except ValueError as exc:
        raise ValidationFailed(f"{field} is invalid.") from exc


def _json_text(value: Any, field: str, *, pii_free: bool = False) -> str:
    """Validate a JSON object and return its canonical text."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object.")
    try:
        text = canonical.canonical_text(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"{field} must be JSON (no NaN).") from exc
    if pii_free and "@" in text and EMAIL_LIKE.search(text):
        raise ValidationFailed(f"{field} must not contain personal data (ids, codes and counts only).")
    return text


def _json(value: Any, field: str, *, pii_free: bool = False) -> Any:
    """Validate a JSON object and return it as stored (round-tripped through its canonical text)."""
    return json.loads(_json_text(value, field, pii_free=pii_free))


def _model_version_key(model_versions: dict[str, Any]) -> str:
    values = {str(v) for v in model_versions.values()}
    if len(values) == 1:
        return next(iter(values))[:200]
    return ";".join(f"{k}={model_versions[k]}" for k in sorted(model_versions))[:200]


def _model_version_columns(model_versions: dict[str, str]) -> tuple[str, str | None]:
    """The indexed search columns (see ``audit.models.model_version_columns``), validated."""
    if len(set(model_versions.values())) > MAX_MODEL_VERSIONS or any(len(v) > 64 for v in model_versions.values()):
        raise ValidationFailed(
            f"model_versions may name at most {MAX_MODEL_VERSIONS} distinct versions of up to 64 characters.")
    return model_version_columns(model_versions)


def _request_seal() -> None:
    """Ask for the chain to be sealed once this transaction commits (deduplicated across writes)."""
    transaction.on_commit(_enqueue_seal)


# Per-process throttle of seal requests: at most one cache/broker round trip per
# ``AUDIT_SEAL_REQUEST_INTERVAL_S`` per process (a busy API worker would otherwise pay one per request).
# A record committed in between waits for the next request of any process or for beat's run every 10 s
# (docs/AUDIT.md, "Sealing latency"). The outbox row itself is always written in the business transaction.
_seal_throttle = threading.Lock()
_seal_next_request_at = 0.0


def _seal_request_due() -> bool:
    global _seal_next_request_at
    interval = float(getattr(settings, "AUDIT_SEAL_REQUEST_INTERVAL_S", 1.0))
    if interval <= 0:
        return True
    now = time.monotonic()
    with _seal_throttle:
        if now < _seal_next_request_at:
            return False
        _seal_next_request_at = now + interval
        return True


def _enqueue_seal() -> None:
    if not _seal_request_due():
        return
    try:
        if cache.add(SEAL_REQUEST_FLAG, 1, timeout=SEAL_REQUEST_TTL_S):
            from audit.tasks import seal_chain

            seal_chain.delay()
    except Exception:  # noqa: BLE001 - sealing is also run by beat every few seconds
        logger.warning("could not queue chain sealing", exc_info=True, extra={"event": "audit.seal_queue_failed"})


def _append(record: ChainedRecord) -> ChainedRecord:
    """Insert one chained record with its content hash, and queue it for sealing."""
    if not record.content_hash:
        record.content_hash = canonical.content_hash(record)
    record.save(force_insert=True)
    PendingSeal.objects.create(
        record_type=record.RECORD_TYPE, row_id=record.pk, entry_hash=record.content_hash, created_at=record.created_at
    )
    _request_seal()
    return record


# ------------------------------------------------------------------------------------- decisions

def _decision_values(
    *, customer: Any, purpose: Any, decision_type: Any, requester: Any, consent_event_id: Any,
    notice_version: Any, model_versions: Any, features_hash: Any, outputs: Any, sealed_details: Any,
    decision_key: Any = None, created_at: datetime | None = None,
) -> dict[str, Any]:
    """Validated attribute values of a decision record, JSON fields as canonical text, with its hash."""
    if decision_type not in DECISION_TYPES:
        raise ValidationFailed("decision_type is invalid.")
    if not isinstance(model_versions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in model_versions.items()
    ):
        raise ValidationFailed("model_versions must map model names to version strings.")
    version_1, version_2 = _model_version_columns(model_versions)
    if not isinstance(outputs, dict):
        raise ValidationFailed("outputs must be an object.")
    if consent_event_id is not None and (not isinstance(consent_event_id, int) or isinstance(consent_event_id, bool)):
        raise ValidationFailed("consent_event_id is invalid.")
    if sealed_details is not None and not isinstance(sealed_details, bytes | bytearray | memoryview):
        raise ValidationFailed("sealed_details must be bytes.")
    tier = outputs.get("tier")
    values: dict[str, Any] = {
        "created_at": created_at or timezone.now(),
        "customer": _uuid_field(customer, "customer"),
        "purpose": _text(purpose, "purpose", max_length=64),
        "consent_event_id": consent_event_id,
        "notice_version": _text(notice_version, "notice_version", max_length=64, required=False),
        "requester": _actor(requester, "requester"),
        "decision_type": str(decision_type),
        "model_versions": _json_text(model_versions, "model_versions"),
        "model_version": _model_version_key(model_versions),
        "model_version_1": version_1,
        "model_version_2": version_2,
        "features_hash": _text(features_hash, "features_hash", max_length=64),
        "outputs": _json_text(outputs, "outputs", pii_free=True),
        "tier": str(tier)[:32] if tier is not None else "",
        "sealed_details": bytes(sealed_details) if sealed_details is not None else None,
        "decision_key": _text(decision_key, "decision_key", max_length=200, required=False),
    }
    values["content_hash"] = canonical.content_hash_of_values(DecisionRecord, values)
    return values


def _decision(**kwargs: Any) -> DecisionRecord:
    values = _decision_values(**kwargs)
    values["model_versions"] = json.loads(values["model_versions"])
    values["outputs"] = json.loads(values["outputs"])
    return DecisionRecord(**values)


_decision_insert_sql: str | None = None
_DECISION_INSERT_FIELDS: list[Any] = []


def _decision_insert(values: dict[str, Any]) -> int:
    """PostgreSQL: the decision row and its ``PendingSeal`` outbox row in ONE statement (a data-modifying
    CTE, so both or neither); returns the decision's id."""
    global _decision_insert_sql
    if _decision_insert_sql is None:
        qn = connection.ops.quote_name
        fields = [f for f in DecisionRecord._meta.concrete_fields if not f.primary_key]
        seal = PendingSeal._meta
        seal_columns = ", ".join(qn(str(cast(Field, seal.get_field(n)).column))
                                 for n in ("record_type", "row_id", "entry_hash", "created_at"))
        _DECISION_INSERT_FIELDS[:] = fields
        # Identifiers come from model metadata; every value is a parameter.
        _decision_insert_sql = (
            f"WITH inserted AS (INSERT INTO {qn(DecisionRecord._meta.db_table)} "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
            f"({', '.join(qn(str(f.column)) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))}) "
            f"RETURNING {qn('id')}) "
            f"INSERT INTO {qn(seal.db_table)} ({seal_columns}) SELECT %s, {qn('id')}, %s, %s FROM inserted "
            f"RETURNING {qn(str(seal.get_field('row_id').column))}"
        )
    # psycopg adapts UUID, datetime, bytes and str natively; JSON fields already hold their canonical text.
    params = [values[f.attname] for f in _DECISION_INSERT_FIELDS]
    params += [DecisionRecord.RECORD_TYPE, values["content_hash"], values["created_at"]]
    with hot_cursor(connection) as cursor:
        cursor.execute(_decision_insert_sql, params)
        return int(cursor.fetchone()[0])


def _append_decision(values: dict[str, Any]) -> DecisionRecord:
    """Insert one validated decision (values from ``_decision_values``) with its outbox row; queue sealing.

    PostgreSQL: one statement, atomic by itself, so it needs no savepoint of its own (a failed statement
    aborts the caller's transaction: nothing of it can commit). Elsewhere: two inserts in a savepoint, so a
    caller that catches the error never keeps a decision without its outbox row."""
    record = DecisionRecord(**{**values, "model_versions": json.loads(values["model_versions"]),
                               "outputs": json.loads(values["outputs"])})
    if connection.vendor != "postgresql":
        with transaction.atomic():
            return _append(record)  # type: ignore[return-value]
    record.pk = _append_decision_postgresql(values)
    record._state.adding = False
    record._state.db = connection.alias
    return record


def _append_decision_postgresql(values: dict[str, Any]) -> int:
    """PostgreSQL: insert one validated decision with its outbox row (one statement), queue sealing; its id."""
    if connection.in_atomic_block:
        with transaction.atomic(savepoint=False):  # a failure marks the caller's transaction for rollback
            pk = _decision_insert(values)
    else:  # autocommit: the statement is its own transaction (no BEGIN/COMMIT round trips)
        pk = _decision_insert(values)
    _request_seal()
    return pk


def decision_record_id(
    *, customer: UUID, purpose: str, decision_type: str, requester: str, consent_event_id: int | None,
    notice_version: str | None, model_versions: dict[str, str], features_hash: str, outputs: dict,
    sealed_details: bytes | None,
) -> int:
    """``decision_record(...).pk``, for a caller that needs only the new record's id (the real-time score and
    routing): the same validation, row, content hash and outbox row, in the caller's transaction; on
    PostgreSQL without building the ``DecisionRecord`` instance (nor parsing back its JSON fields)."""
    kwargs: dict[str, Any] = {"customer": customer, "purpose": purpose, "decision_type": decision_type, "requester": requester,
              "consent_event_id": consent_event_id, "notice_version": notice_version,
              "model_versions": model_versions, "features_hash": features_hash, "outputs": outputs,
              "sealed_details": sealed_details}
    if connection.vendor != "postgresql":
        return int(decision_record(**kwargs).pk)
    return _append_decision_postgresql(_decision_values(**kwargs))


def decision_record(
    *, customer: UUID, purpose: str, decision_type: str, requester: str, consent_event_id: int | None,
    notice_version: str | None, model_versions: dict[str, str], features_hash: str, outputs: dict,
    sealed_details: bytes | None, decision_key: str | None = None,
) -> DecisionRecord:
    """Record one automated decision. With a ``decision_key``, a second call returns the first record.

    Validation runs before any write. On PostgreSQL the decision and its outbox row are one statement in
    the caller's transaction (no savepoint round trips on the real-time path; see ``_append_decision``)."""
    values = _decision_values(
        customer=customer, purpose=purpose, decision_type=decision_type, requester=requester,
        consent_event_id=consent_event_id, notice_version=notice_version, model_versions=model_versions,
        features_hash=features_hash, outputs=outputs, sealed_details=sealed_details, decision_key=decision_key,
    )
    if values["decision_key"] is None:
        return _append_decision(values)
    with transaction.atomic():
        existing = DecisionRecord.objects.filter(decision_key=values["decision_key"]).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return _append_decision(values)
        except IntegrityError:
            existing = DecisionRecord.objects.filter(decision_key=values["decision_key"]).first()
            if existing is None:
                raise
            return existing


_BULK_KEYS = frozenset({
    "customer", "purpose", "decision_type", "requester", "consent_event_id", "notice_version", "model_versions",
    "features_hash", "outputs", "sealed_details", "decision_key",
})


@transaction.atomic
def decision_records_bulk(*, records: list[dict]) -> int:
    """Record many decisions at once (batch rescoring). Idempotent by ``decision_key``: records whose key
    already exists are skipped. Returns the number of records written."""
    now = timezone.now()
    built: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in records:
        if not isinstance(item, dict) or set(item) - _BULK_KEYS:
            raise ValidationFailed("records contain unknown fields.")
        values = _decision_values(**{"decision_key": None, **item}, created_at=now)
        key = values["decision_key"]
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        built.append(values)
    written = 0
    if built and connection.vendor == "postgresql":
        written = _copy_decisions_with_seals(built)
        built = []
    for batch in chunked(built, BULK_BATCH):
        rows = _insert_ignoring_conflicts(batch)
        PendingSeal.objects.bulk_create(
            [PendingSeal(record_type=DecisionRecord.RECORD_TYPE, row_id=row_id, entry_hash=entry_hash, created_at=now)
             for row_id, entry_hash in rows]
        )
        written += len(rows)
    if written:
        _request_seal()
    return written


_INSERT_FIELDS = [f for f in DecisionRecord._meta.concrete_fields if not f.primary_key]


#: One record of ``decision_records_bulk_encoded``: (customer, decision_type, consent_event_id, notice_version,
#: features_hash, outputs as canonical JSON text, tier, sealed_details, decision_key).
EncodedDecision = tuple[UUID, str, int | None, str | None, str, str, str, bytes, str]


@transaction.atomic
def decision_records_bulk_encoded(*, purpose: str, requester: str, model_versions: dict[str, str],
                                  records: Sequence[EncodedDecision]) -> int:
    """``decision_records_bulk`` for the decisions of one batch-rescoring chunk and purpose, with each
    record's ``outputs`` given as its canonical JSON text (``canonical.canonical_text``): the values the
    records share (purpose, requester, model versions, each distinct notice version) are validated once,
    the per-record ones by type and length. The rows, their content hashes and outbox rows are the ones
    ``decision_records_bulk`` writes for the same input, byte for byte (tests/scoring/test_rescore_fast.py);
    idempotent by ``decision_key`` in the same way. Returns the number of records written."""
    if not records:
        return 0
    now = timezone.now()
    shared = _decision_values(
        customer=records[0][0], purpose=purpose, decision_type="batch_rescore", requester=requester,
        consent_event_id=None, notice_version=None, model_versions=model_versions, features_hash="0" * 64,
        outputs={}, sealed_details=None, decision_key=None, created_at=now,
    )
    # The values every record of the chunk shares are encoded once into the content hash function and
    # into a row template; per record only its own values are placed (same bytes as decision_records_bulk).
    encode = canonical.row_encoder_partial(
        DecisionRecord, {name: shared[name] for name, _ in canonical.row_columns(DecisionRecord)
                         if name not in _ENCODED_VARIABLES}, _ENCODED_VARIABLES)
    attnames = [f.attname for f in _INSERT_FIELDS]
    template = [shared.get(name) for name in attnames]
    at = {name: attnames.index(name) for name in (*_ENCODED_VARIABLES, "content_hash")}
    i_customer, i_event, i_notice, i_type, i_features, i_outputs, i_tier, i_sealed, i_key, i_hash = (
        at[name] for name in (*_ENCODED_VARIABLES, "content_hash"))
    notices: dict[Any, str | None] = {}
    built: list[list[Any]] = []
    seen: set[str] = set()
    for customer, decision_type, consent_event_id, notice_version, features_hash, outputs, tier, sealed, key \
            in records:
        if key in seen:
            continue
        seen.add(key)
        notice = notices.get(notice_version, "")
        if notice == "":
            notice = notices[notice_version] = _text(notice_version, "notice_version", max_length=64,
                                                     required=False)
        if (decision_type not in DECISION_TYPES or customer.__class__ is not UUID
                or not isinstance(features_hash, str) or len(features_hash) > 64 or not features_hash
                or not isinstance(outputs, str) or not outputs.startswith("{")
                or not isinstance(key, str) or len(key) > 200 or not isinstance(sealed, bytes)
                or (consent_event_id is not None and consent_event_id.__class__ is not int)):
            raise ValidationFailed("records are invalid.")
        if "@" in outputs and EMAIL_LIKE.search(outputs):
            raise ValidationFailed("outputs must not contain personal data (ids, codes and counts only).")
        tier = str(tier)[:32]
        row = template.copy()
        row[i_customer], row[i_event], row[i_notice], row[i_type], row[i_features] = (
            customer, consent_event_id, notice, decision_type, features_hash)
        row[i_outputs], row[i_tier], row[i_sealed], row[i_key] = outputs, tier, sealed, key
        row[i_hash] = encode(customer, consent_event_id, notice, decision_type, features_hash, outputs, tier,
                             sealed, key)
        built.append(row)
    if connection.vendor == "postgresql":
        written = _copy_decisions_with_seals(built, lists=True)
    else:
        written = 0
        for batch in chunked([dict(zip(attnames, row, strict=True)) for row in built], BULK_BATCH):
            rows = _insert_ignoring_conflicts(batch)
            PendingSeal.objects.bulk_create(
                [PendingSeal(record_type=DecisionRecord.RECORD_TYPE, row_id=row_id, entry_hash=entry_hash,
                             created_at=now) for row_id, entry_hash in rows])
            written += len(rows)
    if written:
        _request_seal()
    return written


#: The per-record values of ``decision_records_bulk_encoded`` (the rest is shared by the chunk).
_ENCODED_VARIABLES = ("customer", "consent_event_id", "notice_version", "decision_type", "features_hash",
                      "outputs", "tier", "sealed_details", "decision_key")


def _copy_decisions_with_seals(rows: list[Any], *, lists: bool = False) -> int:
    """PostgreSQL: ``COPY`` the validated rows into a temporary staging table, then one statement inserts
    them ``ON CONFLICT DO NOTHING`` (idempotency by ``decision_key``) and writes a ``PendingSeal`` outbox
    row for each record actually inserted (a data-modifying CTE: both or neither). Returns how many.
    ``rows``: dicts by attribute name, or with ``lists`` value lists in ``_INSERT_FIELDS`` order."""
    qn = connection.ops.quote_name
    table = DecisionRecord._meta.db_table
    columns = ", ".join(qn(str(f.column)) for f in _INSERT_FIELDS)
    stage = qn(f"_stage_{table}_{len(_INSERT_FIELDS)}")
    seal = PendingSeal._meta
    seal_columns = ", ".join(qn(str(cast(Field, seal.get_field(n)).column))
                             for n in ("record_type", "row_id", "entry_hash", "created_at"))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
                       f"SELECT {columns} FROM {qn(table)} WITH NO DATA")
        cursor.execute(f"TRUNCATE {stage}")
        # the staging copy of the sealed details (ciphertext: incompressible) is not compressed
        cursor.execute(f"ALTER TABLE {stage} ALTER COLUMN {qn('sealed_details')} SET STORAGE EXTERNAL")
        attnames = [f.attname for f in _INSERT_FIELDS]
        # psycopg adapts UUID, datetime, bytes and str natively; JSON fields already hold canonical text.
        # Binary COPY: the sealed details (~5 KB each) go as raw bytes, not as hex text to escape and parse.
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_copy_types())
            if lists:
                for values in rows:
                    copy.write_row(values)
            else:
                for values in rows:
                    copy.write_row([values[name] for name in attnames])
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {qn(table)} ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
            f"ON CONFLICT DO NOTHING RETURNING {qn('id')}, {qn('content_hash')}, {qn('created_at')}) "
            f"INSERT INTO {qn(seal.db_table)} ({seal_columns}) "
            f"SELECT %s, {qn('id')}, {qn('content_hash')}, {qn('created_at')} FROM inserted",
            [DecisionRecord.RECORD_TYPE],
        )
        written = int(cursor.rowcount)
        cursor.execute(f"TRUNCATE {stage}")
    return written


def _copy_types() -> list[str]:
    """The binary COPY type of each of ``_INSERT_FIELDS`` (PostgreSQL names; character columns as text:
    the binary form of varchar and text is the same)."""
    out = []
    for f in _INSERT_FIELDS:
        if isinstance(f, models.DateTimeField):
            out.append("timestamptz")
        elif isinstance(f, models.UUIDField):
            out.append("uuid")
        elif isinstance(f, models.BigIntegerField):
            out.append("int8")
        elif isinstance(f, models.SmallIntegerField | models.PositiveSmallIntegerField):
            out.append("int2")
        elif isinstance(f, models.IntegerField):
            out.append("int4")
        elif isinstance(f, models.BinaryField):
            out.append("bytea")
        elif isinstance(f, models.CharField | models.TextField):
            out.append("text")
        else:
            raise TypeError(f"no binary COPY type for {f!r}")
    return out


def _insert_ignoring_conflicts(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id, content_hash`` (PostgreSQL, SQLite >= 3.35):
    unlike ``bulk_create(ignore_conflicts=True)`` it tells which rows were actually inserted."""
    if not rows:
        return []
    qn = connection.ops.quote_name
    table = qn(DecisionRecord._meta.db_table)
    columns = ", ".join(qn(str(f.column)) for f in _INSERT_FIELDS)
    returning = f" ON CONFLICT DO NOTHING RETURNING {qn('id')}, {qn('content_hash')}"
    row_sql = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
    sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([row_sql] * len(rows)) + returning  # noqa: S608  # nosec B608: identifiers quoted by the backend, values are bound parameters
    if connection.vendor == "postgresql":  # psycopg adapts UUID, datetime, bytes and str natively
        params: list[Any] = [values[f.attname] for values in rows for f in _INSERT_FIELDS]
    else:
        prep = [(f.attname, f.get_db_prep_save, isinstance(f, CanonicalJSONField)) for f in _INSERT_FIELDS]
        params = [
            # JSON fields already hold canonical text; everything else goes through the field.
            values[attname] if is_json else prepare(values[attname], connection)
            for values in rows
            for attname, prepare, is_json in prep
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(row[0]), str(row[1])) for row in cursor.fetchall()]


@transaction.atomic
def decision_review_record(
    *, decision_id: int, reviewer: str, outcome: str, override: dict, rationale: str
) -> HumanReview:
    """Record a human review of a decision: ``confirmed``, or ``overridden`` with the new outcome in
    ``override`` (e.g. ``{"tier": "VIP", "service_level": {...}}``). The rationale is the reviewer's
    reasoning and must not contain personal data."""
    decision = DecisionRecord.objects.filter(pk=decision_id).only("id", "customer").first()
    if decision is None:
        raise NotFound("Decision not found.")
    if outcome not in REVIEW_OUTCOMES:
        raise ValidationFailed("outcome must be 'confirmed' or 'overridden'.")
    override_json = _json(override, "override", pii_free=True)
    if outcome == HumanReview.Outcome.OVERRIDDEN and not override_json:
        raise ValidationFailed("An override needs the new outcome.")
    if not isinstance(rationale, str) or len(rationale) > 4000:
        raise ValidationFailed("rationale is invalid.")
    review = HumanReview(
        decision_id=decision.pk, customer=decision.customer, reviewer=_actor(reviewer, "reviewer"),
        outcome=outcome, override=override_json, rationale=rationale,
    )
    return _append(review)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- access, governance

@transaction.atomic
def access_record(
    *, actor: str, purpose: str, subject: UUID | None, what: str, details: dict | None = None
) -> AccessRecord:
    """Record a read of personal data: who (``actor``), why (``purpose``), whose (``subject``), what."""
    record = AccessRecord(
        actor=_actor(actor), purpose=_required(purpose, "purpose", max_length=64),
        subject=_uuid_field(subject, "subject", required=False), what=_required(what, "what", max_length=200),
        details=_json(details, "details", pii_free=True),
    )
    return _append(record)  # type: ignore[return-value]


@transaction.atomic
def governance_record(
    *, kind: str, actor: str, subject: UUID | None = None, details: dict | None = None
) -> GovernanceEvent:
    """Record a governance event (``consent.granted``, ``customer.erased``, ``console.login``, ...).
    ``details`` must be PII-free: ids, codes and counts."""
    return _append(_governance_event(kind=kind, actor=actor, subject=subject, details=details))  # type: ignore[return-value]


def _governance_event(*, kind: Any, actor: Any, subject: Any, details: Any, **fields: Any) -> GovernanceEvent:
    """A validated, unsaved governance record: the one place its fields are checked (single and bulk)."""
    if not isinstance(kind, str) or len(kind) > 64 or not _KIND.match(kind):
        raise ValidationFailed("kind is invalid.")
    return instance_new(
        GovernanceEvent, kind=kind, actor=_actor(actor), subject=_uuid_field(subject, "subject", required=False),
        details=_json(details, "details", pii_free=True), **fields,
    )


def governance_records_bulk(*, records: list[dict[str, Any]]) -> list[GovernanceEvent]:
    """``governance_record`` for many events at once (bulk imports), in the caller's transaction: each item
    (``kind``, ``actor``, ``subject``, ``details``) validated the same way, then one insert of the records and
    one of their sealing outbox rows; the same content hashes as one ``governance_record`` call each."""
    built: list[GovernanceEvent] = []
    now = timezone.now()
    for item in records:
        record = _governance_event(kind=item["kind"], actor=item["actor"], subject=item.get("subject"),
                                   details=item.get("details"), created_at=now)
        record.content_hash = canonical.content_hash(record)
        built.append(record)
    if not built:
        return []
    instances_insert(GovernanceEvent, built)  # COPY on PostgreSQL; ids set
    if any(r.pk is None for r in built):  # a backend that does not return ids from a bulk insert
        for r in built:
            r.save(force_insert=True)
    instances_insert(PendingSeal, [
        instance_new(PendingSeal, record_type=GovernanceEvent.RECORD_TYPE, row_id=r.pk, entry_hash=r.content_hash,
                     created_at=r.created_at) for r in built
    ])
    _request_seal()
    return built


@transaction.atomic
def verification_run_record(
    *, started_at: datetime, ok: bool, first_bad_seq: int | None, first_bad_record: str | None, checked: int,
    checkpoints_checked: int, from_seq: int | None, reason: str, actor: str,
) -> VerificationRun:
    run = VerificationRun(
        started_at=started_at, finished_at=timezone.now(), ok=ok, first_bad_seq=first_bad_seq,
        first_bad_record=(first_bad_record or "")[:64], checked=checked, checkpoints_checked=checkpoints_checked,
        from_seq=from_seq, reason=reason[:300], actor=_actor(actor),
    )
    run.save()
    return run


def chain_verify_run(*, from_seq: int | None = None, seal: bool = True, actor: str = "cli") -> Any:
    """Seal (unless ``seal=False``), verify the chain and checkpoints, and record the run.
    Returns ``audit.verify.VerifyResult``."""
    from audit.verify import verify_chain

    started = timezone.now()
    if seal:
        chain_seal()
    result = verify_chain(from_seq=from_seq)
    verification_run_record(
        started_at=started, ok=result.ok, first_bad_seq=result.first_bad_seq,
        first_bad_record=result.first_bad_record, checked=result.checked,
        checkpoints_checked=result.checkpoints_checked, from_seq=from_seq, reason=result.reason, actor=actor,
    )
    log = logger.info if result.ok else logger.error
    log("audit chain verified", extra={"event": "audit.verified", "code": "ok" if result.ok else "broken",
                                       "seq": result.first_bad_seq, "count": result.checked})
    return result
