"""Thin view of the KPI API: ``GET /api/v1/kpis?from=&to=&tier=`` (scope ``kpis:read``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engagement.api.serializers import ErrorOutput
from kpis import selectors
from kpis.api import serializers as s


class KpiView(APIView):
    required_scopes = {"GET": "kpis:read"}

    @extend_schema(
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, description="First month (YYYY-MM-DD, any day of it); "
                                     "after `to`: an empty window (no months)"),
                    OpenApiParameter("to", OpenApiTypes.DATE, description="Last month (YYYY-MM-DD, any day of it); a "
                                     "window longer than 36 months is answered in pages (see `next`)"),
                    OpenApiParameter("tier", str, enum=["VIP", "Premium", "Standard", "Basic"])],
        responses={200: s.KpiOutput,
                   400: OpenApiResponse(ErrorOutput, description="Invalid dates or tier"),
                   401: OpenApiResponse(ErrorOutput, description="Missing or invalid token"),
                   403: OpenApiResponse(ErrorOutput, description="The client lacks scope kpis:read")},
        tags=["kpis"], summary="KPIs per tier and month (small cells suppressed), uplift over the holdout, ROI",
    )
    def get(self, request: Request) -> Response:
        query = s.KpiQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        report = selectors.kpi_report_for(start=data.get("from"), end=data.get("to"), tier=data.get("tier"))
        return Response(s.KpiOutput(report).data)
