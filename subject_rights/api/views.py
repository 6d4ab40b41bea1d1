"""Subject-request API (scopes ``dsr:write`` / ``dsr:read``): thin views over the services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from subject_rights import selectors, services
from subject_rights.models import Channel

from .serializers import IDEMPOTENCY_KEY_PATTERN, SubjectRequestInput, SubjectRequestOutput


def _requester(request: Request) -> str:
    """``api:<client name>`` of the authenticated API client."""
    return str(getattr(request.auth, "requester", ""))


def _own_request(request: Request, request_id: Any) -> Any:
    """A client sees only the requests it filed (404 otherwise: ids are not confirmed)."""
    req = selectors.request_get(request_id=request_id)
    if req.requester != _requester(request):
        raise NotFound()
    return req


def _output(req: Any) -> dict[str, Any]:
    live = selectors.export_live_for_request(request_id=req.id) is not None
    return SubjectRequestOutput(req, context={"export_available": live}).data


class SubjectRequestCreateApi(APIView):
    required_scopes = {"POST": "dsr:write"}

    @extend_schema(
        request=SubjectRequestInput, responses={201: SubjectRequestOutput, 200: SubjectRequestOutput},
        parameters=[OpenApiParameter("Idempotency-Key", {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
                                     OpenApiParameter.HEADER, required=False,
                                     description="Makes a retry safe: the same key and body answer the same "
                                                 "request (200, Idempotent-Replayed); the same key with another "
                                                 "body is 409. It takes precedence over the deprecated body "
                                                 "field idempotency_key.")],
        summary="File a data-subject request on a customer's behalf",
    )
    def post(self, request: Request) -> Response:
        data = SubjectRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        # The header is the key; the deprecated body field only without it (a rule the schema states in both
        # descriptions: OpenAPI cannot relate a header to a body field, so the two may not be refused for differing).
        header_key = request.headers.get("Idempotency-Key")
        body_key = attrs.get("idempotency_key")
        submission = services.request_submit(
            type=attrs["type"], channel=Channel.API, requester=_requester(request),
            customer_id=attrs.get("customer"), email=attrs.get("email"), source=attrs.get("source"),
            external_id=attrs.get("external_id"), idempotency_key=header_key or body_key,
            purpose=attrs.get("purpose"), decision_id=attrs.get("decision_id"), fields=attrs.get("fields"),
            contact_email=attrs.get("contact_email"), language=attrs.get("language", ""),
        )
        response = Response(_output(submission.request), status=201 if submission.created else 200)
        if not submission.created:
            response["Idempotent-Replayed"] = "true"
        return response


class SubjectRequestDetailApi(APIView):
    required_scopes = {"GET": "dsr:read"}

    @extend_schema(responses={200: SubjectRequestOutput}, summary="A data-subject request's status")
    def get(self, request: Request, request_id: str) -> Response:
        return Response(_output(_own_request(request, request_id)))


class SubjectRequestExportApi(APIView):
    required_scopes = {"GET": "dsr:read"}

    @extend_schema(responses={200: dict}, summary="Download the export of a completed access/portability request")
    def get(self, request: Request, request_id: str) -> Any:
        from django.http import HttpResponse

        req = _own_request(request, request_id)
        export = selectors.export_live_for_request(request_id=req.id)
        if export is None:
            raise NotFound()
        content, _ = services.export_download(export_id=export.id, actor=_requester(request))
        response = HttpResponse(content, content_type="application/json; charset=utf-8")
        response["Cache-Control"] = "no-store"
        response["Content-Disposition"] = f'attachment; filename="export-{req.id}.json"'
        return response
