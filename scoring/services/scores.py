"""Stored scores: the rows (one upsert path for real time and batch), the outputs a decision records
(one body for both paths, with a reviewer's override applied), score events, and their deletion."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field

from config.chunking import chunked
from scoring import engine
from scoring.models import CustomerScore, Outcome, ScoreOverride
from scoring.population import Reference
from scoring.registry import LoadedModels
from scoring.services.checks import parse_uuid

SCORE_FIELDS = (
    "model_version", "churn_model_version", "clv", "currency", "clv_score", "churn_probability", "risk_level",
    "upsell", "advocacy", "segment", "tier", "service_level", "recommendation", "explanation", "features",
    "features_hash", "thresholds_ref", "as_of", "computed_at", "run_id", "decision_id", "stale",
)
#: The score values a decision's outputs and the score events are made of.
OUTPUT_FIELDS = ("clv", "currency", "clv_score", "churn_probability", "risk_level", "upsell", "advocacy", "segment",
                 "tier", "service_level", "recommendation")


class EncodedJson(str):
    """A JSON value already encoded (written as is by the score upsert)."""


def computed_fields(c: engine.ComputedScore, *, thresholds_ref: str, as_of: datetime, run_id: uuid.UUID | None,
                     now: datetime, currency: str | None = None) -> dict[str, Any]:
    return {
        "clv": c.clv, "currency": currency or engine.currency(), "clv_score": c.clv_score,
        "churn_probability": c.churn_probability, "risk_level": c.risk_level, "upsell": c.upsell,
        "advocacy": c.advocacy, "segment": c.segment, "tier": c.tier, "service_level": c.service_level,
        "recommendation": c.recommendation, "explanation": c.explanation, "features": c.features,
        "features_hash": c.features_hash, "thresholds_ref": thresholds_ref, "as_of": as_of,
        "computed_at": now, "run_id": run_id, "decision_id": None, "stale": False,
    }


def row_fields(c: engine.ComputedScore, *, models: LoadedModels, reference: Reference, as_of: datetime,
                run_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    return {
        "model_version_id": models.full.id,
        "churn_model_version_id": models.churn_ref.id if models.churn_ref is not None else None,
        **computed_fields(c, thresholds_ref=reference.source[:80], as_of=as_of, run_id=run_id, now=now),
    }


_SCORE_JSON = frozenset({"service_level", "recommendation", "explanation", "features"})
#: The JSON columns stored as ``jsonb`` (cast on insert); explanation and features are JSON text
#: (``models.JSONTextField``), written as given.
_SCORE_JSONB = frozenset({"service_level", "recommendation"})


def score_columns() -> list[tuple[str, str, bool]]:
    """(attribute name, column, is JSON) of the columns an upsert writes."""
    out = []
    for name in ("customer_id", "purpose", *SCORE_FIELDS):
        fld = cast(Field, CustomerScore._meta.get_field(name))
        out.append((fld.attname, str(fld.column), name in _SCORE_JSON))
    return out


def _json_text(value: Any) -> str:
    return str(value) if isinstance(value, EncodedJson) else json.dumps(value)


def score_rows_upsert(rows: list[dict[str, Any]]) -> None:
    """Insert or replace the score of each ``(customer_id, purpose)``: one multi-row ``INSERT ... ON
    CONFLICT DO UPDATE`` per 500 rows (PostgreSQL and SQLite), JSON encoded once."""
    if not rows:
        return
    cols = score_columns()
    qn = connection.ops.quote_name
    table = qn(CustomerScore._meta.db_table)
    postgres = connection.vendor == "postgresql"
    if postgres and len(rows) >= 50:  # batch: COPY; a single score (real time): one INSERT
        _copy_upsert_score_rows(rows, cols)
        return
    placeholders = ", ".join("%s::jsonb" if (postgres and attname in _SCORE_JSONB) else "%s"
                             for attname, _, _ in cols)
    updates = ", ".join(f"{qn(col)} = EXCLUDED.{qn(col)}" for attname, col, _ in cols
                        if attname not in ("customer_id", "purpose"))
    head = f"INSERT INTO {table} ({', '.join(qn(col) for _, col, _ in cols)}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT ({qn('customer_id')}, {qn('purpose')}) DO UPDATE SET {updates}"
    if postgres:
        def prepare(attname: str, value: Any, is_json: bool) -> Any:
            return _json_text(value) if is_json else value
    else:
        fields = {f.attname: f for f in CustomerScore._meta.concrete_fields}

        def prepare(attname: str, value: Any, is_json: bool) -> Any:
            if is_json:
                return _json_text(value)
            return fields[attname].get_db_prep_save(value, connection)
    with connection.cursor() as cursor:
        for part in chunked(rows, 500):
            params = [prepare(attname, row[attname], is_json) for row in part for attname, _, is_json in cols]
            cursor.execute(head + ", ".join([f"({placeholders})"] * len(part)) + tail, params)


def score_rows_copy(rows: list[list[Any]]) -> bool:
    """``score_rows_upsert`` of rows given as value lists in ``score_columns()`` order (JSON values as
    ``EncodedJson`` or objects), on PostgreSQL from 50 rows (the batch fast path). False (nothing written)
    where ``score_rows_upsert`` would not ``COPY``: the caller passes the rows to it as dicts instead."""
    if connection.vendor != "postgresql" or len(rows) < 50:
        return False
    _copy_upsert_score_rows(rows, score_columns(), lists=True)
    return True


def _copy_upsert_score_rows(rows: list[Any], cols: list[tuple[str, str, bool]], *, lists: bool = False) -> None:
    """PostgreSQL: ``COPY`` into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO
    UPDATE`` (no SQL text proportional to the number of rows). ``rows``: dicts by attribute name, or with
    ``lists`` value lists in ``cols`` order."""
    json_at = [k for k, (_, _, is_json) in enumerate(cols) if is_json]

    def write(copy: Any) -> None:
        if lists:
            for values in rows:
                for k in json_at:
                    values[k] = _json_text(values[k])
                copy.write_row(values)
        else:
            for row in rows:
                copy.write_row([_json_text(row[attname]) if is_json else row[attname]
                                for attname, _, is_json in cols])

    _staged_upsert(cols, write)


def _staged_upsert(cols: list[tuple[str, str, bool]], write: Any) -> None:
    """The staging table of ``_copy_upsert_score_rows``: ``write(copy)`` fills it, then the upsert."""
    qn = connection.ops.quote_name
    table = CustomerScore._meta.db_table
    columns = ", ".join(qn(col) for _, col, _ in cols)
    stage = qn(f"_stage_{table}_{len(cols)}")
    updates = ", ".join(f"{qn(col)} = EXCLUDED.{qn(col)}" for attname, col, _ in cols
                        if attname not in ("customer_id", "purpose"))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "  # noqa: S608
                       f"SELECT {columns} FROM {qn(table)} WITH NO DATA")
        cursor.execute(f"TRUNCATE {stage}")
        # the staging copy of the large JSON text is kept uncompressed (it is read once, then compressed
        # into the table)
        cursor.execute(f"ALTER TABLE {stage} ALTER COLUMN {qn('explanation')} SET STORAGE EXTERNAL, "
                       f"ALTER COLUMN {qn('features')} SET STORAGE EXTERNAL")
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            write(copy)
        cursor.execute(f"INSERT INTO {qn(table)} ({columns}) SELECT {columns} FROM {stage} "  # noqa: S608
                       f"ON CONFLICT ({qn('customer_id')}, {qn('purpose')}) DO UPDATE SET {updates}")
        cursor.execute(f"TRUNCATE {stage}")


# --------------------------------------------------------------------------- score rows as COPY text
#
# The batch fast path on PostgreSQL formats the ``COPY`` text of its score rows itself rather than handing
# psycopg a row of 24 values to dump one by one: the values the rows of a run share (purpose, model
# versions, currency, thresholds, times, run) are dumped once by psycopg's own text dumpers into a line
# template, and each row places its own values (``SCORE_COPY_VARYING``) with ``%``: floats by ``%r``
# (``float.__repr__``: the shortest text that reads back as the same double, as psycopg writes them), the
# integer by ``%d``, text as ``copy_text`` of it. The stored rows are the ones ``score_rows_copy`` writes
# (tests/scoring/test_rescore_fast.py compares them with the reference path's).

#: The columns each row gives to a ``score_copy_template`` line, in this order, with their placeholders.
SCORE_COPY_VARYING = (
    ("customer_id", "%s"), ("clv", "%r"), ("clv_score", "%d"), ("churn_probability", "%r"), ("risk_level", "%s"),
    ("upsell", "%r"), ("advocacy", "%r"), ("segment", "%s"), ("tier", "%s"), ("service_level", "%s"),
    ("recommendation", "%s"), ("explanation", "%s"), ("features", "%s"), ("features_hash", "%s"),
)
_COPY_ESCAPES = (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def copy_text(value: str) -> str:
    """``value`` escaped for a text ``COPY`` line (backslash, newline, carriage return, tab)."""
    for char, escaped in _COPY_ESCAPES:
        if char in value:
            value = value.replace(char, escaped)
    return value


def score_copy_template(shared: dict[str, Any]) -> str | None:
    """The ``%``-template of one score row's ``COPY`` text line (with its newline) for the rows that share
    ``shared`` (every column of ``score_columns()`` not in ``SCORE_COPY_VARYING``, by attribute name; JSON
    values as ``EncodedJson``); each row fills it with a tuple of its ``SCORE_COPY_VARYING`` values (floats,
    an int, ``copy_text`` of the rest). ``None`` where the rows are not copied (not PostgreSQL)."""
    if connection.vendor != "postgresql":
        return None
    from psycopg.adapt import PyFormat, Transformer

    varying = dict(SCORE_COPY_VARYING)
    connection.ensure_connection()
    transformer = Transformer(connection.connection)
    pieces = []
    for attname, _, is_json in score_columns():
        if attname in varying:
            pieces.append(varying[attname])
            continue
        value = shared[attname]
        if is_json:
            value = _json_text(value)
        if value is None:
            pieces.append("\\N")
            continue
        dumped = bytes(transformer.get_dumper(value, PyFormat.TEXT).dump(value)).decode(connection.connection.info.encoding)
        pieces.append(copy_text(dumped).replace("%", "%%"))
    return "\t".join(pieces) + "\n"


def score_lines_copy(lines: list[str]) -> None:
    """``score_rows_copy`` of rows given as ``score_copy_template`` lines (PostgreSQL)."""
    if not lines:
        return

    def write(copy: Any) -> None:
        for start in range(0, len(lines), 500):
            copy.write("".join(lines[start:start + 500]))

    _staged_upsert(score_columns(), write)


def scores_upsert(rows: list[CustomerScore]) -> None:
    score_rows_upsert([
        {attname: getattr(row, attname) for attname, _, _ in score_columns()} for row in rows
    ])



# --------------------------------------------------------------------------- decision outputs


def score_values(row: CustomerScore) -> dict[str, Any]:
    """The output values of a score row, by field name (as the batch path holds them)."""
    return {name: getattr(row, name) for name in OUTPUT_FIELDS}


def effective_outputs(row: Mapping[str, Any], override: ScoreOverride | None) -> dict[str, Any]:
    """The outputs a decision records for a score (its values by field name, ``score_values``), with the
    active reviewer override applied. One body for the real-time and the batch decisions."""
    outputs = {
        "clv": round(float(row["clv"]), 2), "currency": row["currency"], "clv_score": int(row["clv_score"]),
        "churn_probability": round(float(row["churn_probability"]), 4), "risk_level": row["risk_level"],
        "upsell": round(float(row["upsell"]), 4), "advocacy": round(float(row["advocacy"]), 4),
        "segment": row["segment"], "tier": row["tier"], "service_level": row["service_level"],
        "recommendation": row["recommendation"],
    }
    if override is not None:
        outputs["automated_tier"] = row["tier"]
        outputs["tier"] = override.tier
        outputs["service_level"] = override.service_level or engine.service_level_for(override.tier)
        outputs["recommendation"] = engine.recommendation_for(
            override.tier, float(row["churn_probability"]), float(row["upsell"]), float(row["advocacy"]))
        outputs["override"] = {"review_of_decision": override.decision_id, "tier": override.tier,
                               "since": override.created_at.isoformat()}
    return outputs


# --------------------------------------------------------------------------- score events (outbox)
#
# ``score.tier_changed`` / ``score.risk_raised`` are recorded in the decision's transaction, only when the
# tier changes or the risk level rises against the previous STORED score of the customer and purpose (a
# first score has nothing to change from). Payloads hold scores, tiers and reasons in words: no personal data.

_RISK_ORDER = {"low": 0, "medium": 1, "high": 2}
REASONS_PER_EVENT = 3


def score_event_types(previous: tuple[str, str] | None, tier: str, risk_level: str) -> list[str]:
    if previous is None:
        return []
    types = []
    if previous[0] != tier:
        types.append("score.tier_changed")
    if _RISK_ORDER.get(risk_level, -1) > _RISK_ORDER.get(previous[1], -1):
        types.append("score.risk_raised")
    return types


def _event_reasons(explanation: dict[str, Any], model: str) -> list[str]:
    """The largest contributions of ``model`` (``clv`` for a tier, ``churn`` for a risk), in words."""
    exp = explanation.get(model) if isinstance(explanation, dict) else None
    if not exp:
        return []
    items = [item for item in exp.get("contributions", []) if item[2] != 0.0][:REASONS_PER_EVENT]
    return [engine.contribution_text(name, value, float(c), exp["unit"]) for name, value, c in items]


def score_events(*, customer_id: uuid.UUID, purpose: str, decision_id: int, previous: tuple[str, str] | None,
                  row: dict[str, Any], explanation: dict[str, Any]) -> list[dict[str, Any]]:
    """The score events (``events.services`` records) of one scored customer; ``row`` holds its score values."""
    types = score_event_types(previous, row["tier"], row["risk_level"])
    if not types or previous is None:
        return []
    base = {
        "decision_id": int(decision_id), "tier": row["tier"], "previous_tier": previous[0],
        "risk_level": row["risk_level"], "previous_risk_level": previous[1],
        "clv": round(float(row["clv"]), 2), "churn_probability": round(float(row["churn_probability"]), 4),
        "upsell": round(float(row["upsell"]), 4), "advocacy": round(float(row["advocacy"]), 4),
        "service_level": dict(row["service_level"] or {}),
    }
    return [{"type": kind, "customer_id": customer_id, "purpose": purpose,
             "payload": {**base, "reasons": _event_reasons(explanation, "clv" if kind == "score.tier_changed"
                                                           else "churn")}}
            for kind in types]


def score_events_record(events: list[dict[str, Any]]) -> None:
    if events:
        from events import services as events_services

        events_services.events_record_many(events=events)


# --------------------------------------------------------------------------- deletion


@transaction.atomic
def scores_erase_customer(*, customer_id: uuid.UUID) -> int:
    """Delete everything scoring holds about a customer (scores, overrides, outcomes). Returns the count.

    Decision records stay in the audit trail (pseudonym and PII-free facts; their sealed details become
    unreadable when profiles crypto-shreds the data key).
    """
    cid = parse_uuid(customer_id)
    count = CustomerScore.objects.filter(customer_id=cid).delete()[0]
    count += ScoreOverride.objects.filter(customer_id=cid).delete()[0]
    count += Outcome.objects.filter(customer_id=cid).delete()[0]
    return count


@transaction.atomic
def scores_invalidate(*, customer_id: uuid.UUID, purpose: str | None = None) -> int:
    """Delete stored scores (e.g. consent withdrawn for ``purpose``; ``None``: every purpose)."""
    qs = CustomerScore.objects.filter(customer_id=parse_uuid(customer_id))
    if purpose is not None:
        qs = qs.filter(purpose=purpose)
    return qs.delete()[0]


@transaction.atomic
def scores_mark_stale(*, customer_ids: Sequence[uuid.UUID]) -> int:
    return CustomerScore.objects.filter(customer_id__in=list(customer_ids), stale=False).update(stale=True)


# --------------------------------------------------------------------------- registry
