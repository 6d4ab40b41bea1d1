"""Issue 21 §3: the real-time score's cheaper steps give exactly what the reference steps give.

* ``scoring.selectors._instance`` builds the stored score's model instances (score, model versions, override)
  without ``Model.__init__``: every attribute and the instance state equal ``Model(**values)``'s;
* ``audit.services.decision_record_id`` writes the real-time decision without building its ``DecisionRecord``:
  the same row (every column, content hash included) and the same outbox row as ``decision_record``;
* the served answer (body) and the recorded decision of a request through the cheap steps equal those of the
  reference steps for a random sample of customers, with the clock and the sealing nonce fixed.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest

from tests.scoring.helpers import SCORING, customer_with_history

FIXED_NOW = datetime(2026, 12, 7, 22, 30, 0, 123456, tzinfo=UTC)


def _attributes(obj: Any) -> dict[str, Any]:
    """The instance's attributes; a field defaulted to the time of construction reads as its type only."""
    from django.utils import timezone

    clocked = {f.attname for f in obj._meta.concrete_fields if f.default is timezone.now}
    return {k: (type(v) if k in clocked and not isinstance(v, str) and v != FIXED_NOW else v)
            for k, v in obj.__dict__.items() if k != "_state"}


def _state(obj: Any) -> tuple[Any, Any, dict[str, Any]]:
    return obj._state.adding, obj._state.db, dict(obj._state.fields_cache)


@pytest.mark.django_db
def test_instances_without_init_equal_the_models_own(active_model):
    from scoring.models import CustomerScore, ModelVersion, ScoreOverride
    from scoring.selectors import (
        _OVERRIDE_FIELDS,
        _SCORE_COLUMNS,
        _VERSION_FIELDS,
        _instance,
        score_stored_get,
    )
    from scoring.services import score_serve

    cid = customer_with_history()
    score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")  # stores the score
    stored = score_stored_get(customer_id=cid, purpose=SCORING)
    assert stored is not None
    values = {name: getattr(stored.row, name) for name in _SCORE_COLUMNS}
    fast, reference = _instance(CustomerScore, values), CustomerScore(**values)
    assert type(fast) is CustomerScore
    assert _attributes(fast) == _attributes(reference)
    assert _state(fast) == _state(reference)

    version = {name: getattr(stored.row.model_version, name) for name in _VERSION_FIELDS}
    fast_version, reference_version = _instance(ModelVersion, version), ModelVersion(**version)
    assert _attributes(fast_version) == _attributes(reference_version)  # unread fields: their defaults
    assert _state(fast_version) == _state(reference_version)
    assert fast_version.pk == reference_version.pk == stored.row.model_version_id

    override = {"customer_id": cid, "purpose": SCORING, "active": True,
                **{name: {"id": 7, "decision_id": 11, "tier": "VIP", "service_level": {},
                          "created_at": FIXED_NOW}[name] for name in _OVERRIDE_FIELDS}}
    fast_override, reference_override = _instance(ScoreOverride, override), ScoreOverride(**override)
    assert _attributes(fast_override) == _attributes(reference_override)
    assert _state(fast_override) == _state(reference_override)
    # Mutable defaults are fresh objects per instance, as with __init__.
    other = _instance(ScoreOverride, override)
    assert other.__dict__ is not fast_override.__dict__
    for name, value in _attributes(other).items():
        if name not in override and isinstance(value, dict | list):
            assert value is not getattr(fast_override, name)


def _decision_kwargs(cid: uuid.UUID, rng: random.Random) -> dict[str, Any]:
    return {
        "customer": cid, "purpose": SCORING, "decision_type": rng.choice(["served_score", "routing"]),
        "requester": f"api:client-{rng.randrange(1000)}", "consent_event_id": None,
        "notice_version": rng.choice([None, "v1", "2026-12"]),
        "model_versions": {"clv": "v1", "churn": rng.choice(["v1", "v2"]), "upsell": "v1"},
        "features_hash": f"{rng.getrandbits(256):064x}",
        "outputs": {"tier": rng.choice(["VIP", "Standard", "Basic"]), "clv": round(rng.uniform(0, 5000), 2),
                    "churn_probability": round(rng.random(), 4), "segment": "loyal"},
        "sealed_details": rng.randbytes(rng.randrange(16, 200)),
    }


def _row(pk: int) -> dict[str, Any]:
    from audit.models import DecisionRecord

    values = DecisionRecord.objects.filter(pk=pk).values().get()
    values.pop("id")
    return values


@pytest.mark.django_db
def test_decision_record_id_writes_the_same_row_and_outbox_row_as_decision_record():
    from audit import canonical, services
    from audit.models import DecisionRecord, PendingSeal

    rng = random.Random(21)
    for _ in range(12):
        kwargs = _decision_kwargs(uuid.uuid4(), rng)
        with mock.patch("django.utils.timezone.now", return_value=FIXED_NOW):
            reference = services.decision_record(**kwargs).pk
            fast = services.decision_record_id(**kwargs)
        assert isinstance(fast, int) and fast != reference
        assert _row(fast) == _row(reference)
        record = DecisionRecord.objects.get(pk=fast)
        assert canonical.content_hash(record) == record.content_hash
        seals = {row_id: (entry_hash, created_at) for row_id, entry_hash, created_at in PendingSeal.objects.filter(
            record_type="decision", row_id__in=[fast, reference]).values_list("row_id", "entry_hash", "created_at")}
        assert seals[fast] == seals[reference] == (record.content_hash, FIXED_NOW)


@pytest.mark.django_db
def test_decision_record_id_validates_like_decision_record():
    from audit import services
    from config.errors import ValidationFailed

    kwargs = _decision_kwargs(uuid.uuid4(), random.Random(3))
    for bad in ({"decision_type": "nope"}, {"outputs": {"email": "someone@example.com"}},
                {"model_versions": {"clv": 1}}, {"sealed_details": "text"}, {"consent_event_id": True}):
        with pytest.raises(ValidationFailed) as reference:
            services.decision_record(**{**kwargs, **bad})
        with pytest.raises(ValidationFailed) as fast:
            services.decision_record_id(**{**kwargs, **bad})
        assert str(fast.value) == str(reference.value)


def _serve_reference(**kwargs: Any) -> Any:
    """``score_serve`` through the reference steps: ``Model.__init__`` and ``decision_record``."""
    from audit import services as audit_services
    from scoring import selectors

    def record_id(**record: Any) -> int:
        return int(audit_services.decision_record(**record).pk)

    def instance(model: type, values: dict[str, Any]) -> Any:
        return model(**values)

    # The function itself: the test patches the package's name.
    from scoring.services.serve import score_serve

    with mock.patch.object(audit_services, "decision_record_id", record_id), \
            mock.patch.object(selectors, "_instance", instance):
        return score_serve(**kwargs)


@pytest.mark.django_db
def test_served_answer_and_decision_equal_the_reference_path_on_a_random_sample(api, active_model):
    from audit.models import DecisionRecord
    from scoring.services import score_serve

    rng = random.Random(2112)
    customers = [customer_with_history(seed=rng.randrange(10**6)) for _ in range(6)]
    for cid in customers:
        score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")  # stored, warm
    for cid in rng.sample(customers, 4):
        answers, rows = [], []
        for serve in (_serve_reference, None):
            with mock.patch("django.utils.timezone.now", return_value=FIXED_NOW), \
                    mock.patch("config.envelope.os", mock.Mock(urandom=bytes)):  # a fixed sealing nonce
                if serve is None:
                    response = api.get(f"/api/v1/customers/{cid}/score", {"purpose": SCORING})
                    assert response.status_code == 200
                    body = response.json()
                else:
                    with mock.patch("scoring.services.score_serve", serve):
                        response = api.get(f"/api/v1/customers/{cid}/score", {"purpose": SCORING})
                    assert response.status_code == 200
                    body = response.json()
            decision_id = body.pop("decision_id")
            answers.append(body)
            rows.append(_row(decision_id))
        assert answers[0] == answers[1]
        assert rows[0] == rows[1]  # every column: outputs, inputs hash, sealed details, consent, content hash
        assert rows[0]["content_hash"] == DecisionRecord.objects.filter(customer=cid).order_by("-id")[0].content_hash


def test_representation_calls_the_builtin_only_where_the_field_does_exactly_that():
    """``config.representation`` hands ``str``/``int``/``float`` values to the builtin itself where the field's
    ``to_representation`` is DRF's own ``return str(value)`` (``int``, ``float``); a subclass that overrides it
    keeps its own. The representation equals the serializer's on values of every kind those fields accept."""
    from decimal import Decimal

    from rest_framework import serializers

    from config.representation import Representation

    class Shouting(serializers.CharField):
        def to_representation(self, value: Any) -> str:
            return str(value).upper()

    class Item(serializers.Serializer):
        text = serializers.CharField()
        email = serializers.EmailField()  # a CharField that does not override to_representation
        loud = Shouting()
        count = serializers.IntegerField()
        share = serializers.FloatField()

    class Payload(serializers.Serializer):
        head = Item()
        items = Item(many=True)

    represent = Representation(Payload)
    assert represent.plan is not None
    steps = {name: step for name, _, _, step in represent.plan[0][3]}
    assert (steps["text"], steps["email"], steps["count"], steps["share"]) == (str, str, int, float)
    assert steps["loud"] not in (str, int, float)

    values = [
        {"text": "a", "email": "x@example.org", "loud": "quiet", "count": 3, "share": 0.25},
        {"text": 7, "email": uuid.UUID(int=5), "loud": 1.5, "count": "12", "share": Decimal("0.1")},
        {"text": True, "email": "", "loud": "", "count": 2.9, "share": 3},
        {"text": None, "email": "y", "loud": None, "count": None, "share": None},
    ]
    for head in values:
        payload = {"head": head, "items": values}
        assert represent(payload) == Payload(payload).data
        assert [type(v) for v in represent(payload)["head"].values()] == [
            type(v) for v in Payload(payload).data["head"].values()]
