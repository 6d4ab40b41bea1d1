"""Bulk decision records for section 5: valid records written with COPY, hashed by the audit app's own code.

* content hashes: ``audit.canonical.content_hash_of_values`` (the function the audit service uses at insert);
* links (``chain=True``): ``audit.canonical.link_hash`` in id order, the chain head, and signed checkpoints
  every ``AUDIT_CHECKPOINT_EVERY_N`` links through ``audit.checkpoints.sign`` + the configured store, exactly
  what the sealer and ``checkpoint_write`` would have produced for records committed in that order.

Volumes: ``customers`` pseudonyms (about ten decisions each), a year of timestamps in increasing id order,
a realistic mix of decision types, requesters, purposes, tiers and model versions (a full model version per
~30 days; in the second half of the range a separately trained churn model too, one per ~60 days, so those
records carry two distinct versions, as scoring writes them when a churn table model is active), and a
``sealed_bytes``-long opaque blob standing in for the AES-GCM sealed details (the blob is only hashed).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

TYPES = ("batch_rescore", "served_score", "tier_change", "routing")
TYPE_P = (0.80, 0.10, 0.07, 0.03)
TIERS = ("VIP", "Premium", "Standard", "Basic")
TIER_P = (0.10, 0.20, 0.60, 0.10)
PURPOSES = ("automated_scoring", "service_prioritization")
API_REQUESTERS = ("api:support-desk", "api:crm", "api:marketing")
SERVICE_LEVEL = {
    "VIP": {"escalation": "senior advisor", "extras": "express service", "response_hours": 2},
    "Premium": {"escalation": "experienced agent", "extras": "priority appointments", "response_hours": 8},
    "Standard": {"escalation": "standard support", "extras": "self-service portal", "response_hours": 24},
    "Basic": {"escalation": "junior agent or bot", "extras": "FAQ and documentation", "response_hours": 48},
}
CHUNK = 50_000


@dataclass
class AuditLoad:
    records: int
    customers: int
    seconds: float
    first_id: int
    last_id: int
    head_seq: int
    checkpoints: int
    sample_customers: list[str]
    model_versions: list[str]
    time_range: tuple[str, str]


def customer_pool(n: int, seed: int) -> list[uuid.UUID]:
    rng = np.random.default_rng([seed, 99])
    raw = rng.bytes(16 * n)
    return [uuid.UUID(bytes=raw[16 * i:16 * i + 16], version=4) for i in range(n)]


def load_decisions(n_records: int, *, customers: int | None = None, seed: int = 5, chain: bool = False,
                   sealed_bytes: int = 256, days: int = 365, end: dt.datetime | None = None,
                   progress: bool = False, defer_indexes: bool = True) -> AuditLoad:
    """Append ``n_records`` decision records (and, with ``chain``, their links and checkpoints)."""
    import time

    from django.conf import settings
    from django.db import connection, transaction

    from audit import canonical
    from audit.checkpoints import checkpoint_store, sign
    from audit.models import ChainHead, ChainLink, Checkpoint, DecisionRecord, model_version_columns
    from audit.services import _model_version_key

    from .dbutil import copy_rows, pg_deferred_indexes

    t0 = time.perf_counter()
    pg = connection.vendor == "postgresql"
    n_customers = customers or max(1, n_records // 10)
    pool = customer_pool(n_customers, seed)
    end = end or dt.datetime.now(dt.UTC).replace(microsecond=0)
    start_t = end - dt.timedelta(days=days)
    step_us = max(1, int(days * 86400 * 1e6 / max(n_records, 1)))
    n_versions = max(1, days // 30)
    versions = [f"v{i + 1}" for i in range(n_versions)]
    n_churn = max(1, days // 120)
    churn_versions = [f"churn-{i + 1}" for i in range(n_churn)]
    first_id = (DecisionRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    last_link = ChainLink.objects.order_by("-seq").values_list("seq", "link_hash").first()
    seq, prev = last_link if last_link is not None else (0, canonical.GENESIS_HASH)
    every_n = max(1, int(settings.AUDIT_CHECKPOINT_EVERY_N))
    store = checkpoint_store() if chain else None
    rng = np.random.default_rng([seed, 7])
    dec_fields = list(DecisionRecord._meta.concrete_fields)
    columns = [f.column for f in dec_fields]
    attnames = [f.attname for f in dec_fields]
    link_columns = [f.column for f in ChainLink._meta.concrete_fields]
    blob = os.urandom(sealed_bytes) if sealed_bytes else None
    checkpoints = 0
    mv_cols: dict[tuple[str, str | None], tuple[str, str, str, str | None]] = {}
    for v in versions:
        for churn_v in [None, *churn_versions]:
            mv = {"churn": churn_v or v, "clv": v, "segments": v}
            mv_cols[(v, churn_v)] = (canonical.canonical_text(mv), _model_version_key(mv), *model_version_columns(mv))
    sl_text = {t: canonical.canonical_text(v) for t, v in SERVICE_LEVEL.items()}
    rid = first_id
    done = 0

    tables = [DecisionRecord._meta.db_table] + ([ChainLink._meta.db_table] if chain else [])
    with pg_deferred_indexes(tables if defer_indexes else []):
        while done < n_records:
            m = min(CHUNK, n_records - done)
            cust = rng.integers(0, n_customers, m)
            types = rng.choice(len(TYPES), m, p=TYPE_P)
            tiers = rng.choice(len(TIERS), m, p=TIER_P)
            purp = rng.integers(0, len(PURPOSES), m)
            req = rng.integers(0, len(API_REQUESTERS), m)
            clv = np.round(rng.lognormal(6.0, 1.0, m), 2)
            score = rng.integers(0, 101, m)
            churn = np.round(rng.random(m), 4)
            upsell = np.round(rng.random(m), 4)
            advocacy = np.round(rng.random(m), 4)
            rows: list[list[Any]] = []
            links: list[tuple[Any, ...]] = []
            for k in range(m):
                i = done + k
                created = start_t + dt.timedelta(microseconds=i * step_us)
                version = versions[min(n_versions - 1, i * n_versions // max(n_records, 1))]
                half = i - n_records // 2
                churn_version = None if half < 0 else \
                    churn_versions[min(n_churn - 1, half * n_churn // max(n_records - n_records // 2, 1))]
                mv_text, mv_key, mv_1, mv_2 = mv_cols[(version, churn_version)]
                dtype = TYPES[types[k]]
                tier = TIERS[tiers[k]]
                cid = pool[cust[k]]
                requester = "job:nightly_rescore" if dtype in ("batch_rescore", "tier_change") else \
                    API_REQUESTERS[req[k]]
                churn_p = float(churn[k])
                outputs = None if k else {
                    "advocacy": float(advocacy[k]), "churn_probability": churn_p, "clv": float(clv[k]),
                    "clv_score": int(score[k]), "recommendation": {"action": "standard_service"},
                    "risk_level": "high" if churn_p > 0.6 else ("medium" if churn_p > 0.35 else "low"),
                    "segment": "loyal", "service_level": SERVICE_LEVEL[tier], "tier": tier,
                    "upsell": float(upsell[k]),
                }
                risk = "high" if churn_p > 0.6 else ("medium" if churn_p > 0.35 else "low")
                outputs_text = (f'{{"advocacy":{float(advocacy[k])!r},"churn_probability":{churn_p!r},'
                                f'"clv":{float(clv[k])!r},"clv_score":{int(score[k])},'
                                f'"recommendation":{{"action":"standard_service"}},"risk_level":"{risk}",'
                                f'"segment":"loyal","service_level":{sl_text[tier]},"tier":"{tier}",'
                                f'"upsell":{float(upsell[k])!r}}}')
                if k == 0 and outputs_text != canonical.canonical_text(outputs):
                    raise AssertionError("fast outputs encoding differs from audit.canonical")
                values: dict[str, Any] = {
                    "id": rid,
                    "created_at": created,
                    "customer": cid,
                    "purpose": PURPOSES[purp[k]],
                    "consent_event_id": int(cust[k]) + 1,
                    "notice_version": "v1",
                    "requester": requester,
                    "decision_type": dtype,
                    "model_versions": mv_text,
                    "model_version": mv_key,
                    "model_version_1": mv_1,
                    "model_version_2": mv_2,
                    "features_hash": f"{(i * 2654435761) % (1 << 64):016x}" * 4,
                    "outputs": outputs_text,
                    "tier": tier,
                    "sealed_details": blob,
                    "decision_key": f"bench:{seed}:{i}" if dtype == "batch_rescore" else None,
                }
                values["content_hash"] = canonical.content_hash_of_values(DecisionRecord, values)
                row = [values[a] for a in attnames]
                if pg:
                    row[attnames.index("customer")] = str(cid)
                else:
                    row[attnames.index("customer")] = cid.hex
                    row[attnames.index("created_at")] = created.replace(tzinfo=None).isoformat(sep=" ")
                rows.append(row)
                if chain:
                    seq += 1
                    digest = canonical.link_hash(seq, "decision", rid, values["content_hash"], prev)
                    links.append((seq, "decision", rid, values["content_hash"], prev, digest,
                                  created if pg else created.replace(tzinfo=None).isoformat(sep=" ")))
                    prev = digest
                rid += 1
            with transaction.atomic():
                copy_rows(DecisionRecord._meta.db_table, columns, rows)
                if chain:
                    copy_rows(ChainLink._meta.db_table, link_columns, links)
                    for s, _t, _r, _e, _p, digest, _at in links:
                        if s % every_n == 0:
                            _checkpoint(store, sign, Checkpoint, s, digest)
                            checkpoints += 1
            done += m
            if progress:
                print(f"    decisions: {done:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
    if chain and seq:
        if seq % every_n:
            _checkpoint(store, sign, Checkpoint, seq, prev)
            checkpoints += 1
        ChainHead.objects.update_or_create(pk=1, defaults={"seq": seq, "link_hash": prev})
    _reset_sequence(DecisionRecord)
    sample = [str(pool[i]) for i in range(min(50, n_customers))]
    return AuditLoad(records=n_records, customers=n_customers, seconds=time.perf_counter() - t0, first_id=first_id,
                     last_id=rid - 1, head_seq=seq, checkpoints=checkpoints, sample_customers=sample,
                     model_versions=versions + churn_versions, time_range=(start_t.isoformat(), end.isoformat()))


def _checkpoint(store: Any, sign: Any, checkpoint_model: Any, seq: int, link_hash: str) -> None:
    from audit import canonical

    now = dt.datetime.now(dt.UTC)
    signed = sign(seq=seq, link_hash=link_hash, signed_at=canonical.iso_utc(now))
    location = store.write(signed)
    checkpoint_model(seq=signed.seq, link_hash=signed.link_hash, signed_at=now, key_id=signed.key_id,
                     signature=signed.signature, location=location[:300]).save()


def _reset_sequence(model: Any) -> None:
    from django.core.management.color import no_style
    from django.db import connection

    for statement in connection.ops.sequence_reset_sql(no_style(), [model]):
        with connection.cursor() as cursor:
            cursor.execute(statement)


def json_size(obj: Any) -> int:
    return len(json.dumps(obj))


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL replication (section 5 search at 10M): a Python-generated base block copied R times in SQL
# ---------------------------------------------------------------------------------------------------------

# The canonical form of audit.canonical for a decision row, in SQL (keys in sorted order). Every replica
# gets its content hash from this expression; it is checked against the stored (Python-computed) hashes
# of the base block before anything is replicated.
CANONICAL_SQL = (
    "encode(sha256(convert_to("
    "'{\"_type\":\"decision\",\"consent_event_id\":' || coalesce(consent_event_id::text, 'null')"
    " || ',\"created_at\":\"' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    " || '+00:00\",\"customer\":\"' || replace(customer::text, '-', '')"
    " || '\",\"decision_key\":' || coalesce('\"' || decision_key || '\"', 'null')"
    " || ',\"decision_type\":\"' || decision_type || '\",\"features_hash\":\"' || features_hash"
    " || '\",\"model_version\":\"' || model_version || '\",\"model_versions\":' || model_versions"
    " || ',\"notice_version\":' || coalesce('\"' || notice_version || '\"', 'null')"
    " || ',\"outputs\":' || outputs || ',\"purpose\":\"' || purpose || '\",\"requester\":\"' || requester"
    " || '\",\"sealed_details\":' || coalesce('\"' || encode(sha256(sealed_details), 'hex') || '\"', 'null')"
    " || ',\"tier\":\"' || tier || '\"}', 'UTF8')), 'hex')"
)


def replicate_decisions(*, base_records: int, factor: int, days: int = 365, progress: bool = False) -> dict[str, Any]:
    """Copy the ``base_records`` decision rows ``factor - 1`` more times (PostgreSQL only): replica k gets its
    own customers (a UUID derived from the base customer and k), keys, ids, and timestamps interleaved between
    the base rows, and a content hash computed by :data:`CANONICAL_SQL`."""
    import time

    from django.db import connection, transaction

    from audit.models import DecisionRecord

    from .dbutil import pg_deferred_indexes

    if connection.vendor != "postgresql":
        raise RuntimeError("replication is implemented for PostgreSQL only")
    table = DecisionRecord._meta.db_table
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE content_hash = {CANONICAL_SQL}) FROM {table}")  # noqa: S608
        total, agree = cur.fetchone()
    if total == 0 or agree != total:
        raise AssertionError(f"SQL canonical hash agrees with audit.canonical on {agree} of {total} rows")
    step_us = days * 86400 * 1e6 / max(base_records, 1)
    cols = [f.column for f in DecisionRecord._meta.concrete_fields if f.column != "content_hash"]
    with pg_deferred_indexes([table]):
        for k in range(1, factor):
            select = {c: c for c in cols}
            select.update({
                "id": f"id + {k * base_records}",
                "created_at": f"created_at + make_interval(secs => {k * step_us / factor / 1e6!r})",
                "customer": f"md5(customer::text || ':{k}')::uuid",
                "decision_key": f"CASE WHEN decision_key IS NULL THEN NULL ELSE decision_key || ':{k}' END",
            })
            inner = ", ".join(f"{select[c]} AS {c}" for c in cols)
            # INSERT only: the audit tables refuse UPDATE (trigger), so the hash is computed on the way in.
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(f"INSERT INTO {table} ({', '.join(cols)}, content_hash) "  # noqa: S608
                            f"SELECT {', '.join(cols)}, {CANONICAL_SQL} "
                            f"FROM (SELECT {inner} FROM {table} WHERE id <= {base_records}) AS r")
            if progress:
                print(f"    replicated {k + 1}/{factor} ({time.perf_counter() - t0:.0f} s)", flush=True)
    _reset_sequence(DecisionRecord)
    return {"seconds": time.perf_counter() - t0, "records": base_records * factor, "checked_base_rows": agree}
