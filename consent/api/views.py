"""Thin views of the consent API: validate with an input serializer, call one service or selector, answer
with an output serializer. Scopes: ``consent:write`` for changes, ``consent:read`` for reads."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from config.permissions import require_purpose, visible_to_client
from consent import selectors, services
from consent.api import serializers as s


def _requester(request: Request) -> str:
    client: Any = request.auth  # the ApiClient
    return str(client.requester)  # "api:<name>"


def _known_purposes() -> set[str]:
    return {purpose.code for purpose in selectors.purpose_list()}


class _ConsentChangeView(APIView):
    required_scopes = {"POST": "consent:write"}
    service: Any = None
    binds_purpose = False

    def post(self, request: Request) -> Response:
        body = s.ConsentChangeInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if type(self).binds_purpose and data["purpose"] in _known_purposes():
            require_purpose(request.auth, data["purpose"])  # grants only; withdrawals always (config.permissions)
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
    binds_purpose = True


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
        result["consents"] = [asdict(state) for state in result["consents"]
                              if visible_to_client(request.auth, state.purpose)]
        result["processing_flags"] = [f for f in result["processing_flags"]
                                      if visible_to_client(request.auth, f.get("purpose"))]
        return Response(s.CustomerConsentsOutput(result).data)


class CustomerConsentHistoryView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(responses={200: s.ConsentHistoryOutput}, tags=["consent"], summary="Consent history")
    def get(self, request: Request, customer_id: Any) -> Response:
        history = selectors.customer_consent_history(customer_id=customer_id)
        history["events"] = [e for e in history["events"] if visible_to_client(request.auth, e.get("purpose"))]
        history["processing_flags"] = [f for f in history["processing_flags"]
                                       if visible_to_client(request.auth, f.get("purpose"))]
        return Response(s.ConsentHistoryOutput(history).data)


class ConsentReceiptView(APIView):
    required_scopes = {"GET": "consent:read"}

    @extend_schema(responses={200: s.ConsentReceiptOutput}, tags=["consent"], summary="Consent receipt (proof)")
    def get(self, request: Request, event_id: int) -> Response:
        receipt = selectors.consent_receipt(event_id=event_id)
        if not visible_to_client(request.auth, receipt["purpose"]["code"]):
            raise NotFound()  # another purpose's evidence: not this client's to see (nor to know it exists)
        return Response(s.ConsentReceiptOutput(receipt).data)


class ConsentBulkView(APIView):
    required_scopes = {"POST": "consent:write"}

    @extend_schema(request=s.ConsentBulkInput, responses={200: s.ConsentBulkOutput}, tags=["consent"],
                   summary="Bulk-import consent records (per-record results)")
    def post(self, request: Request) -> Response:
        body = s.ConsentBulkInput(data=request.data)
        body.is_valid(raise_exception=True)
        records = body.validated_data["records"]
        if not isinstance(records, list) or len(records) > services.bulk_max_records():
            services.consent_bulk_record(records=records, actor=_requester(request))  # refuses the whole body
        known = _known_purposes()  # an unknown purpose is the service's invalid error, as before
        refused = {index for index, record in enumerate(records)  # grants for purposes the client may not use
                   if isinstance(record, dict) and record.get("action") == "grant"
                   and record.get("purpose") in known and not visible_to_client(request.auth, record["purpose"])}
        allowed = [record for index, record in enumerate(records) if index not in refused]
        recorded = iter(services.consent_bulk_record(records=allowed, actor=_requester(request)))
        results = [services.BulkRecordResult(index=index, status="rejected", code="purpose_not_allowed", field="purpose")
                   if index in refused else replace(next(recorded), index=index) for index in range(len(records))]
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
