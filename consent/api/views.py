"""Thin views of the consent API: validate with an input serializer, call one service or selector, answer
with an output serializer. Scopes: ``consent:write`` for changes, ``consent:read`` for reads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent import selectors, services
from consent.api import serializers as s


def _requester(request: Request) -> str:
    client: Any = request.auth  # the ApiClient
    return str(client.requester)  # "api:<name>"


class _ConsentChangeView(APIView):
    required_scopes = {"POST": "consent:write"}
    service: Any = None

    def post(self, request: Request) -> Response:
        body = s.ConsentChangeInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        event = type(self).service(
            customer_id=data["customer"], purpose=data["purpose"], source=data["source"], channel=data["channel"],
            evidence=data.get("evidence"), notice_version=data.get("notice_version"), actor=_requester(request),
            at=data.get("occurred_at"),
        )
        return Response(s.ConsentEventOutput(event).data, status=status.HTTP_201_CREATED)


@extend_schema(request=s.ConsentChangeInput, responses={201: s.ConsentEventOutput}, tags=["consent"],
               summary="Record a grant of consent")
class ConsentGrantView(_ConsentChangeView):
    service = staticmethod(services.consent_grant)


@extend_schema(request=s.ConsentChangeInput, responses={201: s.ConsentEventOutput}, tags=["consent"],
               summary="Record a withdrawal of consent (same body as grant)")
class ConsentWithdrawView(_ConsentChangeView):
    service = staticmethod(services.consent_withdraw)


class CustomerConsentsView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME,
                                    description="A past instant, ISO 8601 (default: now)")],
        responses={200: s.CustomerConsentsOutput}, tags=["consent"], summary="Consent state per purpose",
    )
    def get(self, request: Request, customer_id: Any) -> Response:
        query = s.StateAtQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = selectors.customer_consents(customer_id=customer_id, at=query.validated_data.get("at"))
        result["consents"] = [asdict(state) for state in result["consents"]]
        return Response(s.CustomerConsentsOutput(result).data)


class CustomerConsentHistoryView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(responses={200: s.ConsentHistoryOutput}, tags=["consent"], summary="Consent history")
    def get(self, request: Request, customer_id: Any) -> Response:
        return Response(s.ConsentHistoryOutput(selectors.customer_consent_history(customer_id=customer_id)).data)


class ConsentReceiptView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(responses={200: s.ConsentReceiptOutput}, tags=["consent"], summary="Consent receipt (proof)")
    def get(self, request: Request, event_id: int) -> Response:
        return Response(s.ConsentReceiptOutput(selectors.consent_receipt(event_id=event_id)).data)


class ConsentBulkView(APIView):
    required_scopes = {"POST": "consent:write"}

    @extend_schema(request=s.ConsentBulkInput, responses={200: s.ConsentBulkOutput}, tags=["consent"],
                   summary="Bulk-import consent records (per-record results)")
    def post(self, request: Request) -> Response:
        body = s.ConsentBulkInput(data=request.data)
        body.is_valid(raise_exception=True)
        results = services.consent_bulk_record(records=body.validated_data["records"], actor=_requester(request))
        payload = {
            "created": sum(1 for r in results if r.status == "created"),
            "unchanged": sum(1 for r in results if r.status == "unchanged"),
            "rejected": sum(1 for r in results if r.status == "rejected"),
            "results": [asdict(r) for r in results],
        }
        return Response(s.ConsentBulkOutput(payload).data)


class PurposeListView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(responses={200: s.PurposeOutput(many=True)}, tags=["consent"], summary="Purposes of processing")
    def get(self, request: Request) -> Response:
        return Response(s.PurposeOutput(selectors.purpose_catalogue(), many=True).data)
