"""The fast path of a rescoring chunk: the same rows as the reference path, built by column.

``rescore.rescore_chunks`` computes once per chunk what both paths share (the gate of every purpose,
held; features; all model outputs and explanations; the sealed details) and then either builds one
``ComputedScore``, one score dict and one decision dict per customer and purpose and hands them to the
generic writers (the reference path, ``RESCORE_FAST_PATH = False``), or calls :func:`group_write`, which

- finishes the scores of each purpose from whole arrays (tiers, CLV scores, risk levels);
- encodes each decision's ``outputs`` as its canonical JSON text directly, from the few distinct
  service levels and recommendations of the chunk encoded once (a customer under a reviewer's override
  goes through ``effective_outputs`` and ``canonical_text``, like the reference path);
- writes the decisions with ``audit.services.decision_records_bulk_encoded`` (shared values validated
  once per chunk, the same content hashes) and the scores with one ``COPY`` of row tuples.

Same scores, decisions, explanations and audit hashes as the reference path: tests/scoring/test_rescore_fast.py
runs both on the same planned chunks and compares every row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from audit import services as audit_services
from consent.selectors import GateColumns
from scoring import engine
from scoring.models import RescoreRun, ScoreOverride
from scoring.population import Reference
from scoring.services.scores import (
    EncodedJson,
    copy_text,
    effective_outputs,
    score_columns,
    score_copy_template,
    score_event_types,
    score_lines_copy,
    score_rows_copy,
    score_rows_upsert,
)

_RISK_JSON = {"low": '"low"', "medium": '"medium"', "high": '"high"', "unavailable": '"unavailable"'}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class _Parts:
    """Service levels, recommendations and strings of one chunk, each encoded once."""

    def __init__(self) -> None:
        self.levels: dict[str, tuple[dict[str, Any], str, str]] = {}
        self.actions: dict[tuple[Any, ...], tuple[dict[str, str], str, str]] = {}
        self.strings: dict[str, str] = {}
        self.copied: dict[str, str] = {}

    def level(self, tier: str) -> tuple[dict[str, Any], str, str]:
        found = self.levels.get(tier)
        if found is None:
            level = engine.service_level_for(tier)
            found = self.levels[tier] = (level, _canonical(level), json.dumps(level))
        return found

    def action(self, key: tuple[Any, ...], tier: str, churn: float, upsell: float, advocacy: float
               ) -> tuple[dict[str, str], str, str]:
        found = self.actions.get(key)
        if found is None:
            action = engine.recommendation_for(tier, churn, upsell, advocacy)
            found = self.actions[key] = (action, _canonical(action), json.dumps(action))
        return found

    def string(self, value: str) -> str:
        found = self.strings.get(value)
        if found is None:
            found = self.strings[value] = _canonical(value)
        return found

    def copy(self, value: str) -> str:
        """``copy_text`` of a value many rows share (a tier, a service level's JSON, ...)."""
        found = self.copied.get(value)
        if found is None:
            found = self.copied[value] = copy_text(value)
        return found


def group_write(
    *, group: list[RescoreRun], allowed: list[uuid.UUID], batch: engine.ScoredBatch, sealed: dict[uuid.UUID, bytes],
    gates: dict[uuid.UUID, GateColumns], previous: dict[tuple[uuid.UUID, str], tuple[str, str]],
    overrides: dict[tuple[uuid.UUID, str], ScoreOverride], versions: dict[str, str], model_fields: dict[str, Any],
    now: datetime, currency: str, counts: dict[uuid.UUID, Any], reference_of: Callable[[RescoreRun], Reference],
) -> list[tuple[uuid.UUID, str, str, tuple[str, str] | None, dict[str, Any], dict[str, Any]]]:
    """Write the decisions and scores of the runs of ``group`` for one chunk (see the module docstring).
    Returns the event candidates (customer, purpose, decision key, previous, score values, explanation)."""
    parts = _Parts()
    currency_json = parts.string(currency)
    thresholds = engine.risk_thresholds()
    events: list[tuple[uuid.UUID, str, str, tuple[str, str] | None, dict[str, Any], dict[str, Any]]] = []
    score_rows: list[list[Any]] = []
    score_lines: list[str] = []  # PostgreSQL: the rows as COPY text (scores.score_copy_template)
    features_json, explanation_json = batch.features_json, batch.explanation_json
    id_texts = list(map(str, allowed))  # each customer's id as text once per chunk (keys and score rows)
    explanation_copy: list[str | None] = [None] * len(allowed)
    features_copy: list[str | None] = [None] * len(allowed)
    model_version_id, churn_model_version_id = model_fields["model_version_id"], model_fields["churn_model_version_id"]
    for run in group:
        run_gates = gates[run.pk]
        rows = np.flatnonzero(run_gates.allowed).tolist()
        event_ids, notice_versions = run_gates.consent_event_id, run_gates.notice_version
        kept = [i for i in rows if allowed[i] in sealed]
        if len(kept) < len(rows):  # erased meanwhile: no decision, no score
            skipped = counts[run.pk].skipped
            skipped["skipped_erased"] = skipped.get("skipped_erased", 0) + len(rows) - len(kept)
        counts[run.pk].scored = len(kept)
        if not kept:
            continue
        reference = reference_of(run)
        purpose, run_id, as_of = run.purpose, run.id, run.as_of
        thresholds_ref = reference.source[:80]
        sel = np.asarray(kept, dtype=np.int64)
        rank = batch.rank[sel]
        tiers = reference.tiers_for_keys(rank, batch.tiebreak[sel])
        clv_scores = reference.clv_scores(rank).tolist()
        churn = batch.churn[sel]
        risks = (["unavailable"] * len(sel) if "churn" in batch.unavailable
                 else np.asarray(engine.risk_level(churn, thresholds)).tolist())
        clv_l, churn_l, upsell_l, advocacy_l = (a.tolist() for a in (batch.clv[sel], churn, batch.upsell[sel],
                                                                      batch.advocacy[sel]))
        records: list[audit_services.EncodedDecision] = []
        tier_changes = 0
        key_head, key_tail = f"{run_id}:", f":{purpose}"
        # the canonical outputs of a decision without an override (sorted keys; currency shared)
        outputs_template = (
            '{"advocacy":%r,"churn_probability":%r,"clv":%r,"clv_score":%d,"currency":'
            + currency_json.replace("%", "%%")
            + ',"recommendation":%s,"risk_level":%s,"segment":%s,"service_level":%s,"tier":%s,"upsell":%r}'
        )
        template = score_copy_template({
            "purpose": purpose, "model_version_id": model_version_id,
            "churn_model_version_id": churn_model_version_id, "currency": currency, "thresholds_ref": thresholds_ref,
            "as_of": as_of, "computed_at": now, "run_id": run_id, "decision_id": None, "stale": False,
        })
        for j, i in enumerate(kept):
            cid = allowed[i]
            tier, risk = tiers[j], risks[j]
            clv, ch, u, a = clv_l[j], churn_l[j], upsell_l[j], advocacy_l[j]
            level, level_canonical, level_json = parts.level(tier)
            action, action_canonical, action_json = parts.action((tier, risk, u >= 0.5, a >= 0.5, u >= a),
                                                                 tier, ch, u, a)
            segment = batch.segment[i]
            before = previous.get((cid, purpose))
            changed = before is not None and before[0] != tier
            tier_changes += changed
            key = key_head + id_texts[i] + key_tail
            override = overrides.get((cid, purpose)) if overrides else None
            if override is None:
                outputs = outputs_template % (
                    round(a, 4), round(ch, 4), round(clv, 2), clv_scores[j], action_canonical,
                    _RISK_JSON.get(risk) or parts.string(risk), parts.string(segment), level_canonical,
                    parts.string(tier), round(u, 4))
                effective_tier = tier
            else:
                values = {"clv": clv, "currency": currency, "clv_score": int(clv_scores[j]), "churn_probability": ch,
                          "risk_level": risk, "upsell": u, "advocacy": a, "segment": segment, "tier": tier,
                          "service_level": dict(level), "recommendation": dict(action)}
                effective = effective_outputs(values, override)
                outputs = _canonical(effective)
                effective_tier = effective["tier"]
            records.append((cid, "tier_change" if changed else "batch_rescore", event_ids[i],
                            notice_versions[i], batch.features_hash[i], outputs, effective_tier, sealed[cid], key))
            if template is not None:
                explanation_text, features_text = explanation_copy[i], features_copy[i]
                if explanation_text is None or features_text is None:
                    explanation_text = explanation_copy[i] = copy_text(explanation_json[i])
                    features_text = features_copy[i] = copy_text(features_json[i])
                score_lines.append(template % (
                    id_texts[i], clv, int(clv_scores[j]), ch, parts.copy(risk), u, a, parts.copy(segment),
                    parts.copy(tier), parts.copy(level_json), parts.copy(action_json), explanation_text,
                    features_text, batch.features_hash[i]))
            else:
                score_rows.append([
                    cid, purpose, model_version_id, churn_model_version_id, clv, currency, int(clv_scores[j]), ch,
                    risk, u, a, segment, tier, EncodedJson(level_json), EncodedJson(action_json),
                    EncodedJson(explanation_json[i]), EncodedJson(features_json[i]), batch.features_hash[i],
                    thresholds_ref, as_of, now, run_id, None, False,
                ])
            if before is not None and score_event_types(before, tier, risk):
                events.append((cid, purpose, key, before,
                               {"tier": tier, "risk_level": risk, "clv": clv, "churn_probability": ch, "upsell": u,
                                "advocacy": a, "service_level": dict(level)}, batch.explanation[i]))
        if records and __debug__:
            # a self-check per chunk: the first record's outputs are canonical JSON text
            first = records[0][5]
            assert _canonical(json.loads(first)) == first, "outputs are not canonical"
        audit_services.decision_records_bulk_encoded(purpose=purpose, requester=run.requester,
                                                     model_versions=versions, records=records)
        counts[run.pk].tier_changes += tier_changes
    score_lines_copy(score_lines)
    if score_rows and not score_rows_copy(score_rows):
        names = [attname for attname, _, _ in score_columns()]
        score_rows_upsert([dict(zip(names, row, strict=True)) for row in score_rows])
    return events
