"""Thin views of the actions API: ``GET /actions`` (scope ``actions:read``), ``POST /actions/{id}/claim``,
``.../complete`` and ``.../dismiss`` (scope ``actions:write``). A client sees and works only the actions of
the purposes it may use (others are absent from the list and 404)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound
from engagement import selectors, services
from engagement.api import serializers as s

_ERR = s.ErrorOutput
READ_ERRORS = {400: OpenApiResponse(_ERR, description="Invalid filter"),
               401: OpenApiResponse(_ERR, description="Missing or invalid token"),
               403: OpenApiResponse(_ERR, description="The client lacks scope actions:read")}
WRITE_ERRORS = {400: OpenApiResponse(_ERR, description="Invalid body"),
                401: OpenApiResponse(_ERR, description="Missing or invalid token"),
                403: OpenApiResponse(_ERR, description="The client lacks scope actions:write"),
                404: OpenApiResponse(_ERR, description="No such action"),
                409: OpenApiResponse(_ERR, description="The action is not in a state that allows this "
                                                        "(code action_not_open / action_closed)")}


class ActionPagination(CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = ("-priority", "id")


class ActionListView(APIView):
    required_scopes = {"GET": "actions:read"}

    @extend_schema(parameters=[s.ActionListQuery,
                               OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
                   responses={200: s.ActionPage, **READ_ERRORS}, tags=["actions"],
                   summary="The next-best-action queue, highest priority first (paginated)")
    def get(self, request: Request) -> Response:
        query = s.ActionListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.action_queryset(**query.validated_data, purposes=_purposes(request))
        paginator = ActionPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.ActionOutput(page, many=True).data)


def _actor(request: Request) -> str:
    return str(getattr(request.auth, "requester", "api"))


def _purposes(request: Request) -> list[str]:
    """The purposes this API client may use: it sees and works only actions of those."""
    return list(getattr(request.auth, "purposes", None) or [])


def _require_action_purpose(request: Request, action_id: int) -> None:
    """An action of a purpose the client may not use is not found for it (404, nothing revealed)."""
    purpose = selectors.action_purpose(action_id=action_id)
    if purpose is None or purpose not in _purposes(request):
        raise NotFound("Action not found.")


class ActionClaimView(APIView):
    required_scopes = {"POST": "actions:write"}

    @extend_schema(request=None, responses={200: s.ActionOutput, **WRITE_ERRORS}, tags=["actions"],
                   summary="Claim an open action")
    def post(self, request: Request, action_id: int) -> Response:
        _require_action_purpose(request, action_id)
        return Response(s.ActionOutput(services.action_claim(action_id=action_id, actor=_actor(request))).data)


class ActionCompleteView(APIView):
    required_scopes = {"POST": "actions:write"}

    @extend_schema(request=s.CompleteInput, responses={200: s.ActionOutput, **WRITE_ERRORS}, tags=["actions"],
                   summary="Complete an action with its outcome (recorded as a training label where it is one)")
    def post(self, request: Request, action_id: int) -> Response:
        _require_action_purpose(request, action_id)
        body = s.CompleteInput(data=request.data)
        body.is_valid(raise_exception=True)
        action = services.action_complete(action_id=action_id, outcome=body.validated_data["outcome"],
                                          actor=_actor(request))
        return Response(s.ActionOutput(action).data)


class ActionDismissView(APIView):
    required_scopes = {"POST": "actions:write"}

    @extend_schema(request=None, responses={200: s.ActionOutput, **WRITE_ERRORS}, tags=["actions"],
                   summary="Dismiss an action")
    def post(self, request: Request, action_id: int) -> Response:
        _require_action_purpose(request, action_id)
        return Response(s.ActionOutput(services.action_dismiss(action_id=action_id, actor=_actor(request))).data)
