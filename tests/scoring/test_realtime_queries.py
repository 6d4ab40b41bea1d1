"""The real-time score: its exact query shape, and nothing cached that could outlive a change.

A warm request (stored fresh score, purposes and data key seen before) costs: token authentication (one
query, or none from the token cache), the consent gate (purpose, customer liveness, current consent, notice
supersession, restriction and objection), the stored score with its active override, the customer's wrapped
data key and current mood (issue 18: the stored sentiment scores of their latest tickets), and the decision
with its sealing-outbox row (one statement on PostgreSQL; two inserts on SQLite). Gate and decision share one
transaction, and on PostgreSQL the consent-state row is locked FOR SHARE until it commits, so that no decision
commits after a withdrawal (issue 20, fault 2). On PostgreSQL the lock, the gate and the stored score are ONE
statement (issue 21 §3: ``consent.selectors.processing_gate_held_then``), so a warm request is two statements
between BEGIN and COMMIT. Everything that can change is read by those queries at the moment of scoring: a change
committed by another connection just before a request is honoured by that request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.scoring.helpers import ACTOR, SCORING, customer_with_history, decisions_for, withdraw

# A warm request is one transaction (a savepoint here, inside the test's transaction): on PostgreSQL ONE
# statement for the consent-state lock, the gate and the stored score (issue 21 §3), then the decision; on
# SQLite the gate and the stored score one by one, and the decision's two inserts in a savepoint of their own.
SERVE_QUERIES = 4 if connection.vendor == "postgresql" else 8
GATE_AT = 1  # index among the serve queries
STORED_AT = 1 if connection.vendor == "postgresql" else 2


def _url(cid: Any) -> str:
    return f"/api/v1/customers/{cid}/score"


def _statements(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0].upper() for q in ctx.captured_queries]


@pytest.mark.django_db
def test_warm_score_serve_makes_exactly_its_queries(active_model, django_assert_num_queries):
    from audit.models import DecisionRecord, PendingSeal
    from scoring import services

    cid = customer_with_history()
    services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")  # stores the score
    with django_assert_num_queries(SERVE_QUERIES) as ctx:
        result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    statements = _statements(ctx)
    if connection.vendor == "postgresql":
        assert statements == ["SAVEPOINT", "WITH", "WITH", "RELEASE"]
        held = ctx.captured_queries[1]["sql"]
        assert "FOR SHARE" in held and "consent_consentstatecurrent" in held and "consent_purpose" in held
    else:
        assert statements == ["SAVEPOINT", "SELECT", "SELECT", "SAVEPOINT", "INSERT", "INSERT", "RELEASE", "RELEASE"]
    stored_read = ctx.captured_queries[STORED_AT]["sql"]
    assert "scoring_customerscore" in stored_read and "profiles_ticket" in stored_read  # score + mood, one read
    decision = DecisionRecord.objects.get(pk=result.decision_id)
    assert decision.decision_type == "served_score"
    assert PendingSeal.objects.filter(record_type="decision", row_id=decision.pk,
                                      entry_hash=decision.content_hash).count() == 1
    from audit import canonical

    assert canonical.content_hash(decision) == decision.content_hash


@pytest.mark.django_db
def test_warm_score_request_adds_only_token_authentication(api, active_model):
    cid = customer_with_history()
    assert api.get(_url(cid), {"purpose": SCORING}).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(_url(cid), {"purpose": SCORING})
    assert response.status_code == 200
    assert len(ctx.captured_queries) == SERVE_QUERIES + 1
    assert "audit_apiclient" in ctx.captured_queries[0]["sql"]  # then no purpose query: validated from memory
    gate = ctx.captured_queries[1 + GATE_AT]["sql"]
    assert "consent_purpose" in gate and "profiles_customer" in gate
    assert len(decisions_for(cid)) == 2


@pytest.mark.django_db
def test_served_score_with_an_override_reads_it_in_the_same_query(active_model, django_assert_num_queries):
    from scoring import services

    cid = customer_with_history()
    first = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    automated = first.tier
    target = "Basic" if automated != "Basic" else "VIP"
    services.score_override_apply(customer_id=cid, purpose=SCORING, decision_id=first.decision_id, tier=target,
                                  service_level=None, rationale="Reviewed on appeal.", reviewer="user:reviewer")
    with django_assert_num_queries(SERVE_QUERIES):
        result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert result.tier == target
    assert result.automated_tier == automated
    assert result.override is not None and result.override["review_of_decision"] == first.decision_id
    assert decisions_for(cid)[-1].outputs["override"]["tier"] == target


@pytest.mark.django_db
def test_unknown_purpose_is_refused_without_touching_the_customer(api, active_model):
    cid = customer_with_history()
    response = api.get(_url(cid), {"purpose": "no_such_purpose"})
    assert response.status_code == 400
    assert decisions_for(cid) == []


# ------------------------------------------------------------------- changes by another connection


def _in_another_connection(change: Callable[[], Any]) -> None:
    """Run ``change`` in another thread, i.e. another database connection and transaction, committed."""
    errors: list[BaseException] = []

    def run() -> None:
        from django.db import connections

        try:
            change()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive()
    if errors:
        raise errors[0]


def _restrict(cid: Any) -> None:
    from consent.services import processing_restrict

    processing_restrict(customer_id=cid, actor=ACTOR, reason="accuracy_contested")


def _object(cid: Any) -> None:
    from consent.services import processing_object

    processing_object(customer_id=cid, actor=ACTOR, purpose=SCORING)


def _reconsent_notice(cid: Any) -> None:
    from consent.services import notice_publish

    notice_publish(purpose=SCORING, text="Scoring notice, new terms.", requires_reconsent=True, actor=ACTOR)


def _erase(cid: Any) -> None:
    from profiles.services import customer_erase

    customer_erase(customer_id=cid, actor=ACTOR)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (withdraw, 403, "no_consent"),
        (_restrict, 403, "restricted"),
        (_object, 403, "objected"),
        (_reconsent_notice, 403, "no_consent"),
        (_erase, 404, "not_found"),
    ],
    ids=["withdrawal", "restriction", "objection", "reconsent_notice", "erasure"],
)
def test_a_change_committed_elsewhere_just_before_is_honoured_by_the_next_request(api, active_model, change, status,
                                                                                  code):
    from audit.models import DecisionRecord

    cid = customer_with_history()
    for _ in range(2):  # every per-process cache (purposes, models, data key) is warm
        assert api.get(_url(cid), {"purpose": SCORING}).status_code == 200
    before = DecisionRecord.objects.count()
    _in_another_connection(lambda: change(cid))
    response = api.get(_url(cid), {"purpose": SCORING})
    assert response.status_code == status
    assert response.json()["code"] == code
    assert DecisionRecord.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_elsewhere_just_before_is_refused_by_the_next_request(make_api_client, active_model):
    from audit.api_clients import api_client_revoke
    from audit.models import DecisionRecord

    api = make_api_client()
    cid = customer_with_history()
    assert api.get(_url(cid), {"purpose": SCORING}).status_code == 200
    before = DecisionRecord.objects.count()
    _in_another_connection(lambda: api_client_revoke(name=api.api_client.name, actor="cli"))
    assert api.get(_url(cid), {"purpose": SCORING}).status_code == 401
    assert DecisionRecord.objects.count() == before


# ------------------------------------------------------------------- sealing requests


@pytest.mark.django_db
def test_seal_requests_are_throttled_per_process_but_every_decision_waits_in_the_outbox(
    settings, active_model, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from audit import services as audit_services
    from audit import tasks
    from audit.models import ChainLink, PendingSeal
    from scoring import services

    settings.AUDIT_SEAL_REQUEST_INTERVAL_S = 60.0
    monkeypatch.setattr(audit_services, "_seal_next_request_at", 0.0)
    cache.delete(audit_services.SEAL_REQUEST_FLAG)
    cid = customer_with_history()
    with mock.patch.object(tasks.seal_chain, "delay") as delay:
        ids = []
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                ids.append(services.score_serve(customer_id=cid, purpose=SCORING,
                                                requester="api:support-desk").decision_id)
        assert delay.call_count == 1  # one request for three commits inside the interval
        cache.delete(audit_services.SEAL_REQUEST_FLAG)
        monkeypatch.setattr(audit_services, "_seal_next_request_at", time.monotonic() - 1)  # interval over
        with django_capture_on_commit_callbacks(execute=True):
            ids.append(services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk").decision_id)
        assert delay.call_count == 2
    waiting = set(PendingSeal.objects.filter(record_type="decision").values_list("row_id", flat=True))
    assert set(ids) <= waiting
    tasks.seal_chain()  # what beat runs every 10 s
    assert set(ChainLink.objects.filter(record_type="decision").values_list("row_id", flat=True)) >= set(ids)
    assert not PendingSeal.objects.exists()


# ------------------------------------------------------------------- compiled reads and the serializer


@pytest.mark.django_db
def test_hot_reads_are_compiled_once_and_return_what_their_queryset_returns(active_model):
    from django.utils import timezone

    from consent.selectors import gate as consent_gate
    from profiles import selectors as profiles_selectors
    from scoring import selectors as scoring_selectors
    from scoring import services

    cid = customer_with_history()
    never_asked = customer_with_history(purposes=())
    services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    now = timezone.now()
    since = now - timedelta(days=90)
    cases = [
        (consent_gate._GATE_NOW, {"customer_id": cid, "purpose": SCORING, "now": now}),
        (consent_gate._GATE_NOW, {"customer_id": never_asked, "purpose": SCORING, "now": now}),
        (consent_gate._GATE_NOW, {"customer_id": cid, "purpose": "marketing", "now": now}),
        (scoring_selectors.STORED_SCORE_QUERY, {"customer_id": cid, "purpose": SCORING, "mood_since": since,
                                                "now": now}),
        (scoring_selectors.STORED_SCORE_QUERY, {"customer_id": never_asked, "purpose": SCORING, "mood_since": since,
                                                "now": now}),
        (profiles_selectors._MOOD, {"customer_id": cid, "since": since, "now": now}),
    ]
    for compiled, arguments in cases:
        assert compiled._compile("default") is not None  # not the run-the-queryset fallback
        assert compiled.first(**arguments) == next(iter(compiled.build(**arguments)[:1]), None)
    gate = consent_gate._GATE_NOW.first(customer_id=cid, purpose=SCORING, now=now)
    assert gate is not None and gate["live"] and gate["c_granted"] and gate["c_event"] is not None
    assert consent_gate._GATE_NOW.first(customer_id=never_asked, purpose=SCORING, now=now)["c_event"] is None
    assert scoring_selectors.STORED_SCORE_QUERY.first(customer_id=never_asked, purpose=SCORING, mood_since=since,
                                                      now=now) is None


@pytest.mark.django_db
def test_the_fast_output_representation_answers_like_a_fresh_serializer(active_model):

    from scoring import services
    from scoring.api import serializers, views

    assert views._score_output.plan is not None  # the fast path, not the serializer fallback
    first, second = customer_with_history(), customer_with_history(orders=9, seed=5)
    for cid in (first, second, first):
        result = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
        payload = views._score_payload(result, result.horizon_days)
        overridden = {**payload, "override": {"tier": "VIP", "automated_tier": payload["tier"],
                                              "review_of_decision": 12, "since": "2026-12-01T10:00:00+00:00"}}
        for variant in (payload, overridden):
            expected = serializers.ScoreOutput(variant).data
            assert views._score_output(variant) == expected
            assert json.dumps(views._score_output(variant)) == json.dumps(expected)  # same order, same types


# ------------------------------------------------------------------- prepared statements (PostgreSQL)

def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL only")
@pytest.mark.django_db
def test_the_hot_statements_are_prepared_after_a_few_runs_and_answer_the_same(active_model):
    from audit.models import DecisionRecord
    from scoring import services

    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 5
    cid = customer_with_history()
    results = [services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
               for _ in range(7)]
    prepared = _prepared_statements()  # on this connection: the two hot statements, and nothing else
    assert len(prepared) == 2
    # the consent-state lock, the gate and the stored score with the current mood: one statement
    assert sum("FOR SHARE" in s and "consent_consentstatecurrent" in s and '"scoring_customerscore"' in s
               and "profiles_ticket" in s for s in prepared) == 1
    assert sum("audit_pendingseal" in s for s in prepared) == 1  # the decision with its outbox row
    warm = results[1:]  # the first computed and stored the score; runs 2-5 read it unprepared, 6-7 prepared
    assert len({(r.tier, r.clv, r.churn_probability, str(r.explanation), str(r.model_versions)) for r in warm}) == 1
    assert DecisionRecord.objects.filter(customer=cid, decision_type="served_score").count() == 7


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL only")
@pytest.mark.django_db
def test_without_prepared_statements_the_hot_path_prepares_nothing(active_model, monkeypatch):
    import psycopg

    from config.compiled_queries import hot_cursor
    from scoring import services

    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "prepare_threshold")  # DB_PREPARED_STATEMENTS=false
    with hot_cursor(connection) as cursor:
        assert isinstance(cursor.cursor, psycopg.ClientCursor)  # client-side binding: never prepared
    cid = customer_with_history()
    for _ in range(8):
        services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
    assert _prepared_statements() == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's placeholder conversion: PostgreSQL only")
@pytest.mark.django_db
def test_the_hot_statements_are_converted_once_and_answer_the_same(active_model, monkeypatch):
    """psycopg converts the long hot statements (over its 4,096-character cache limit) once per text here,
    not on every request; the answers stay those of the ordinary cursor."""
    from psycopg import _queries

    from config import compiled_queries
    from scoring import services

    cid = customer_with_history()
    first = services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")  # computes
    calls = []
    original = _queries._query2pg_nocache

    def counted(query: bytes, encoding: str) -> Any:
        calls.append(len(query))
        return original(query, encoding)

    monkeypatch.setattr(_queries, "_query2pg_nocache", counted)
    monkeypatch.setattr(compiled_queries, "_HOT_CURSOR", None)  # rebuilt with the counted converter
    monkeypatch.setattr(compiled_queries, "_CONVERTED", {})
    results = [services.score_serve(customer_id=cid, purpose=SCORING, requester="api:support-desk")
               for _ in range(4)]
    hot = [q for q, _ in compiled_queries._CONVERTED]
    assert any("FOR SHARE" in q and "scoring_customerscore" in q and len(q) > 4096 for q in hot)
    assert any("audit_pendingseal" in q for q in hot)
    # Each hot text converted once (the first request here), however many requests follow.
    assert len(calls) == len(hot)
    for r in results:
        assert (r.tier, r.clv, r.churn_probability, r.explanation) == (
            first.tier, first.clv, first.churn_probability, first.explanation)
    assert len(decisions_for(cid)) == 5


@pytest.mark.django_db
def test_the_purpose_query_fast_path_answers_like_the_serializer(active_model):
    from django.http import QueryDict
    from rest_framework.exceptions import ValidationError as DrfValidationError

    from scoring.api import serializers

    def by_serializer(data: QueryDict) -> Any:
        query = serializers.PurposeQuery(data=data)
        return query.validated_data["purpose"] if query.is_valid() else ("error", query.errors)

    def fast(data: QueryDict) -> Any:
        try:
            return serializers.purpose_from_query(data)
        except DrfValidationError as exc:
            return ("error", exc.detail)

    for raw in ("purpose=automated_scoring", "purpose=marketing", "purpose=%20marketing%20", "purpose=",
                "purpose=no_such_purpose", "purpose=" + "x" * 65, "", "other=1", "purpose=a%00b",
                "purpose=marketing&purpose=automated_scoring", "purpose=MARKETING"):
        data = QueryDict(raw)
        assert fast(data) == by_serializer(data), raw
