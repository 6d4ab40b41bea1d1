"""Thin views of the scoring API: validate, call one service, answer with an explicit serializer.

Scopes: ``score:read`` (scores), ``route:read`` (routing), ``outcome:write`` (outcomes). The client must
also be allowed the requested purpose (403 ``purpose_not_allowed``). Lookups by e-mail or source id are
hashed server-side by profiles; the request log records the path only, never the query string.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import MethodNotAllowed, NotFound, PurposeNotAllowed
from config.permissions import client_may_use_purpose
from config.representation import Representation
from scoring import engine, services
from scoring.api import serializers as s


def _client(request: Request) -> Any:
    return request.auth  # the ApiClient (token authentication)


def _requester(request: Request) -> str:
    return str(_client(request).requester)


def _require_purpose(request: Request, purpose: str) -> None:
    if not client_may_use_purpose(request.auth, purpose):
        raise PurposeNotAllowed()


_NO_MOOD = {"label": "unknown", "score": None, "tickets": 0, "window_days": 90}


def _score_payload(result: services.ScoreResult, horizon_days: int) -> dict[str, Any]:
    override = None
    if result.override is not None:
        override = {**result.override, "automated_tier": result.automated_tier}
    return {
        "customer": result.customer_id,
        "purpose": result.purpose,
        "clv": None if result.clv is None else {"amount": f"{result.clv:.2f}", "currency": result.currency,
                                                "horizon_days": horizon_days},
        "clv_score": result.clv_score,
        "churn_probability": result.churn_probability,
        "risk_level": result.risk_level,
        "upsell": result.upsell,
        "advocacy": result.advocacy,
        "segment": result.segment,
        "tier": result.tier,
        "service_level": result.service_level,
        "recommendation": result.recommendation,
        "explanation": {**engine.explanation_in_words(result.explanation), "tiers": result.tier_basis},
        "model_versions": result.model_versions,
        "decision_id": result.decision_id,
        "computed_at": result.computed_at,
        "override": override,
        "current_mood": result.current_mood or _NO_MOOD,
        "unavailable": result.unavailable,
        "tier_basis": result.tier_basis,
    }


# The answer's representation without DRF's per-field machinery (see config.representation); ScoreOutput
# stays the schema and the fallback, and a test keeps the two equal.
_score_output = Representation(s.ScoreOutput)


def _serve(request: Request, customer_id: Any, purpose: str) -> Response:

    result = services.score_serve(customer_id=customer_id, purpose=purpose, requester=_requester(request))
    return Response(_score_output(_score_payload(result, result.horizon_days)))


class CustomerScoreView(APIView):
    required_scopes = {"GET": "score:read"}

    @extend_schema(parameters=[OpenApiParameter("purpose", str, required=True)], responses={200: s.ScoreOutput},
                   tags=["scoring"], summary="Score of a customer (an automated decision, recorded)")
    def get(self, request: Request, customer_id: Any) -> Response:
        purpose = s.purpose_from_query(request.query_params)
        _require_purpose(request, purpose)
        return _serve(request, customer_id, purpose)


class ScoreLookupView(APIView):
    """Score of a customer found by e-mail, phone or source id (blind index; never stored or logged).
    POST only: identifiers never travel in URLs. The old GET form answers 405 with a pointer to POST."""

    required_scopes = {"GET": "score:read", "POST": "score:read"}

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        raise MethodNotAllowed("Identifier lookups are POST only, so that no personal data travels in URLs: "
                               "POST /api/v1/score with a JSON body such as {\"purpose\": ..., \"email\": ...}.")

    @extend_schema(request=s.ScoreLookupQuery, responses={200: s.ScoreOutput}, tags=["scoring"],
                   summary="Score of a customer found by identifier (an automated decision, recorded)")
    def post(self, request: Request) -> Response:
        from profiles import selectors as profiles_selectors

        query = s.ScoreLookupQuery(data=request.data if isinstance(request.data, dict) else {})
        query.is_valid(raise_exception=True)
        data = dict(query.validated_data)
        purpose = data.pop("purpose")
        _require_purpose(request, purpose)
        customer_id = profiles_selectors.customer_find(**data)
        if customer_id is None:
            raise NotFound("Customer not found.")
        return _serve(request, customer_id, purpose)


class RouteView(APIView):
    required_scopes = {"POST": "route:read"}

    @extend_schema(request=s.RouteInput, responses={200: s.RouteOutput}, tags=["scoring"],
                   summary="Queue, SLA and escalation for a ticket (a routing decision, recorded)")
    def post(self, request: Request) -> Response:
        body = s.RouteInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        _require_purpose(request, data["purpose"])
        result = services.route_ticket(customer_id=data["customer"], category=data["ticket_category"],
                                       purpose=data["purpose"], requester=_requester(request))
        payload = {
            "customer": result.customer_id, "purpose": result.purpose, "ticket_category": result.ticket_category,
            "queue": result.queue, "sla_hours": result.sla_hours, "escalation_level": result.escalation_level,
            "handler": result.handler, "personalised": result.personalised, "tier": result.tier,
            "risk_level": result.risk_level, "decision_id": result.decision_id,
            "model_versions": result.model_versions,
        }
        return Response(s.RouteOutput(payload).data)


class OutcomeView(APIView):
    required_scopes = {"POST": "outcome:write"}

    @extend_schema(request=s.OutcomeInput, responses={201: s.OutcomeOutput}, tags=["scoring"],
                   summary="Report an outcome (churned, renewed, upsell accepted/declined) for training")
    def post(self, request: Request) -> Response:
        body = s.OutcomeInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        requester = _requester(request)
        outcome = services.outcome_record(customer_id=data["customer"], kind=data["kind"], at=data.get("at"),
                                          source=data.get("source") or _client(request).name, actor=requester)
        return Response(s.OutcomeOutput(outcome).data, status=status.HTTP_201_CREATED)


class ActiveModelsView(APIView):
    """The models serving each score kind now, with their quality, fairness report and latest drift."""

    required_scopes = {"GET": "score:read"}

    @extend_schema(
        responses={
            200: s.ActiveModelsOutput,
            401: OpenApiResponse(s.ErrorOutput, description="Missing or invalid token (not_authenticated)."),
            403: OpenApiResponse(s.ErrorOutput, description="The client lacks the score:read scope (forbidden)."),
        },
        tags=["scoring"], summary="Active models per score kind: version, window, metrics vs baseline, fairness, drift",
    )
    def get(self, request: Request) -> Response:
        from scoring import selectors

        return Response(s.ActiveModelsOutput(selectors.models_active_report()).data)
