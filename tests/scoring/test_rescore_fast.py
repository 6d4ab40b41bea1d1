"""Differential tests: the fast path of a rescoring chunk against the reference path.

The same planned runs (both batch purposes) are executed twice on one database state: with the reference
path (``RESCORE_FAST_PATH = False``: one ``ComputedScore``, score dict and decision dict per customer and
purpose, through the generic writers), then, after rolling that back to a savepoint, with the fast path.
Every score row, decision record (all canonical fields, the content hash, the decrypted sealed details),
score event and chunk count must be identical. The population is random (seeded): customers with
consent for one purpose, both or none, a withdrawal and a restriction after planning (the gate is
re-checked at execution), an erasure after planning, a stored score before the run (tier changes and
score events), and reviewer overrides. Time is frozen and the sealing nonce derived from the plaintext
during the comparison, so that the ciphertexts, hence the content hashes, are comparable.

Then the audit chain written by a fast run verifies (``audit.services.chain_verify_run``).
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.scoring.helpers import SCORING, grant, withdraw

pytestmark = pytest.mark.django_db
SERVICE = "service_prioritization"
FROZEN = datetime(2026, 11, 30, 3, 0, 0, 123456, tzinfo=UTC)
TOP = "VIP"


@pytest.fixture
def comparable(monkeypatch):
    """Frozen time and a nonce derived from key, plaintext and AAD: two runs seal identically."""
    from django.utils import timezone

    from config import envelope

    monkeypatch.setattr(timezone, "now", lambda: FROZEN)
    real_encrypt = envelope.encrypt

    def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = hashlib.sha256(key + plaintext + aad).digest()[: envelope.NONCE_BYTES]
        return envelope.VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)

    monkeypatch.setattr(envelope, "encrypt", encrypt)
    yield
    monkeypatch.setattr(envelope, "encrypt", real_encrypt)


def _population(seed_population, rng: random.Random) -> dict[str, list]:
    from scoring import services
    from scoring.models import CustomerScore

    both = seed_population(40, seed=rng.randrange(1000), purposes=(SCORING, SERVICE))
    one = seed_population(14, seed=rng.randrange(1000), purposes=(SCORING,))
    none = seed_population(4, seed=rng.randrange(1000), purposes=())
    # stored scores before the run (some tiers will change: decisions of type tier_change, score events)
    for cid in rng.sample(both, 15):
        services.score_refresh(customer_id=cid, purpose=SCORING)
    CustomerScore.objects.filter(customer_id__in=rng.sample(both, 8)).update(tier="Bronze", risk_level="low")
    # reviewer overrides (the effective tier and service level go into the decision outputs)
    from audit.models import DecisionRecord

    for cid in rng.sample(both, 4):
        services.score_refresh(customer_id=cid, purpose=SERVICE)
        decision_id = DecisionRecord.objects.filter(customer=cid, purpose=SERVICE).latest("id").id
        services.score_override_apply(customer_id=cid, purpose=SERVICE, decision_id=decision_id, tier=TOP,
                                      service_level={"response_time_hours": 6}, rationale="reviewed",
                                      reviewer="user:dpo")
    return {"both": both, "one": one, "none": none, "restrict": [rng.choice(both)],
            "withdraw": [rng.choice(one)], "grant": [rng.choice(none)]}


def _snapshot(run_ids: list) -> dict[str, Any]:
    from audit.models import DecisionRecord, PendingSeal
    from audit.services import DECISION_DETAILS_LABEL
    from events.models import OutboxEvent
    from profiles.selectors import customer_unseal
    from scoring.models import CustomerScore, RescoreChunk, RescoreRun

    keys = [str(r) for r in run_ids]
    decisions = {}
    for d in DecisionRecord.objects.filter(run_filter(keys)).order_by("id"):
        fields = {name: getattr(d, name) for name in DecisionRecord.CANONICAL_FIELDS}
        fields["created_at"] = d.created_at
        fields["content_hash"] = d.content_hash
        fields["details"] = customer_unseal(customer_id=d.customer, label=DECISION_DETAILS_LABEL,
                                            blob=bytes(d.sealed_details))
        decisions[d.decision_key] = fields
    order = list(DecisionRecord.objects.filter(run_filter(keys)).order_by("id").values_list(
        "decision_key", flat=True))
    key_by_id = dict(DecisionRecord.objects.filter(run_filter(keys)).values_list("id", "decision_key"))
    seals = [(key_by_id[row_id], entry_hash, created_at) for row_id, entry_hash, created_at in PendingSeal.objects.filter(
        record_type=DecisionRecord.RECORD_TYPE, row_id__in=list(key_by_id)).order_by("id").values_list(
            "row_id", "entry_hash", "created_at")]
    exclude = {"id", "decision_id"}
    scores = {(s.customer_id, s.purpose): {f.attname: getattr(s, f.attname) for f in CustomerScore._meta.concrete_fields
                                           if f.attname not in exclude}
              for s in CustomerScore.objects.all()}
    key_of = dict(DecisionRecord.objects.filter(run_filter(keys)).values_list("id", "decision_key"))
    score_decisions = {(s.customer_id, s.purpose): key_of.get(s.decision_id) for s in CustomerScore.objects.all()}
    events = sorted(
        (e.type, str(e.customer_id), e.purpose, key_of.get(e.payload.get("decision_id")),
         repr(sorted((k, v) for k, v in e.payload.items() if k != "decision_id")))
        for e in OutboxEvent.objects.filter(type__startswith="score.")
    )
    runs = {str(r.id): (r.status, r.total, r.done, r.scored, r.tier_changes, r.skipped_no_consent,
                        r.skipped_restricted, r.skipped_objected, r.skipped_erased, r.chunks_done)
            for r in RescoreRun.objects.filter(id__in=run_ids)}
    chunks = sorted((str(c.run_id), c.chunk_no, c.done, repr(c.counts)) for c in RescoreChunk.objects.filter(
        run_id__in=run_ids))
    return {"decisions": decisions, "order": order, "seals": seals, "scores": scores,
            "score_decisions": score_decisions, "events": events, "runs": runs, "chunks": chunks}


def run_filter(keys: list[str]) -> Any:
    from django.db.models import Q

    q = Q(pk__in=[])
    for key in keys:
        q |= Q(decision_key__startswith=f"{key}:")
    return q


def _execute(run_ids: list, chunks: list[list[str]], *, fast: bool, settings) -> None:
    from scoring import services

    settings.RESCORE_FAST_PATH = fast
    for ids in chunks:
        services.rescore_chunks(run_ids=run_ids, customer_ids=ids)


@pytest.mark.parametrize("seed", [7, 23])
def test_the_fast_path_writes_exactly_what_the_reference_path_writes(
        active_model, seed_population, comparable, settings, seed):
    from django.db import transaction

    from consent.services import processing_restrict
    from profiles.services import customer_erase
    from scoring import selectors, services

    rng = random.Random(seed)
    pop = _population(seed_population, rng)
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test",
                                       chunk_size=rng.choice([9, 16, 60]))
    run_ids = [run.id for run in runs]
    # after planning, before execution: the gate is re-checked when the chunks run
    withdraw(pop["withdraw"][0], SCORING)
    processing_restrict(customer_id=pop["restrict"][0], purpose=SERVICE, reason="test", actor="user:dpo")
    grant(pop["grant"][0], SCORING)
    erased = rng.choice([c for c in pop["both"] if c not in pop["restrict"]])
    customer_erase(customer_id=erased, actor="user:dpo", reason="test")
    chunks = list(selectors.rescore_pending_chunk_ids(run_ids=run_ids))
    assert len(chunks) >= 1

    savepoint = transaction.savepoint()
    _execute(run_ids, chunks, fast=False, settings=settings)
    reference = _snapshot(run_ids)
    transaction.savepoint_rollback(savepoint)
    _execute(run_ids, chunks, fast=True, settings=settings)
    fast = _snapshot(run_ids)

    assert len(reference["decisions"]) > 50
    assert any(d["decision_type"] == "tier_change" for d in reference["decisions"].values())
    assert any("override" in d["outputs"] for d in reference["decisions"].values())
    assert reference["events"], "the population has score events"
    for part in ("runs", "chunks", "order", "seals", "events", "score_decisions"):
        assert fast[part] == reference[part], part
    assert fast["scores"].keys() == reference["scores"].keys()
    for key, row in reference["scores"].items():
        assert fast["scores"][key] == row, key
    assert fast["decisions"].keys() == reference["decisions"].keys()
    for key, record in reference["decisions"].items():
        assert fast["decisions"][key] == record, key


def test_a_fast_run_leaves_an_audit_chain_that_verifies(active_model, seed_population, settings):
    from audit import services as audit_services
    from audit.models import DecisionRecord
    from scoring import selectors, services

    settings.RESCORE_FAST_PATH = True
    seed_population(30, purposes=(SCORING, SERVICE))
    runs = services.rescore_runs_start(purposes=[SCORING, SERVICE], requester="job:test", chunk_size=8)
    run_ids = [run.id for run in runs]
    for ids in selectors.rescore_pending_chunk_ids(run_ids=run_ids):
        services.rescore_chunks(run_ids=run_ids, customer_ids=ids)
    assert DecisionRecord.objects.filter(decision_key__isnull=False).count() == 60
    audit_services.chain_seal()
    result = audit_services.chain_verify_run(seal=False, actor="cli")
    assert result.ok and result.checked >= 60, result.as_dict()


@pytest.mark.parametrize("seed", range(6))
def test_explanations_encoded_from_arrays_are_the_reference_text(seed):
    """Random contributions, including non-finite values, object-valued features (text, integers, booleans,
    missing), negative CLV outputs (floored at zero), fewer features than ``top_k`` and none at all."""
    import numpy as np

    from scoring import engine
    from scoring.ml.explain import Contributions

    rng = np.random.default_rng(seed)
    for width in (0, 1, 4, 12):
        n = int(rng.integers(1, 40))
        values = rng.normal(size=(n, width)) * 10.0 ** rng.integers(-6, 6, size=(n, width))
        if width and seed % 2:
            values[rng.random((n, width)) < 0.05] = np.nan
        if seed % 3 == 0:
            X: np.ndarray = np.empty((n, width), dtype=object)
            choices = ["Gold", "zł ü", None, 3, True, 1.5, float("nan"), np.float64(2.25), np.int64(7)]
            for i in range(n):
                for j in range(width):
                    X[i, j] = choices[int(rng.integers(len(choices)))]
        else:
            X = rng.normal(size=(n, width)) * 100
            if width:
                X[rng.random((n, width)) < 0.1] = np.inf
        output = rng.normal(size=n) * 50
        contrib = Contributions(feature_names=tuple(f"f_{j}é" if j % 5 == 0 else f"f_{j}" for j in range(width)),
                                X=X, baseline=rng.normal(size=n), values=values, output=output,
                                unit=rng.choice(["EUR", "%"]))
        for key in ("clv", "churn"):
            rows = engine._explanation_rows(contrib, engine.TOP_CONTRIBUTIONS)
            if key == "clv":
                engine._floor_at_zero(rows, np.asarray(output, dtype=np.float64))
            expected = [engine._compact(row) for row in rows]
            got = engine._explanation_json(contrib, engine.TOP_CONTRIBUTIONS, floor_at_zero=key == "clv").tolist()
            assert got == expected


def test_a_batch_encoded_from_arrays_is_the_reference_batch(active_model, seed_population):
    from scoring import engine, registry
    from scoring.features.aggregates import fact_aggregates

    ids = seed_population(25, seed=5)
    columns = fact_aggregates(customer_ids=ids, as_of=FROZEN)
    models = registry.active_models()
    reference = engine.score_batch(ids, columns=columns, models=models)
    encoded = engine.score_batch(ids, columns=columns, models=models, encoded=True)
    assert encoded.features_json == reference.features_json
    assert encoded.explanation_json == reference.explanation_json
    assert encoded.features_hash == reference.features_hash
    assert list(encoded.explanation) == reference.explanation and list(encoded.features) == reference.features
    for name in ("clv", "churn", "upsell", "advocacy", "rank", "tiebreak"):
        assert (getattr(encoded, name) == getattr(reference, name)).all(), name
    assert encoded.segment == reference.segment and encoded.unavailable == reference.unavailable
