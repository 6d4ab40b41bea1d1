"""Thin views of the webhook subscription API (scope ``webhooks:admin``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks import selectors, services
from webhooks.api import serializers as s

_ERRORS = {400: OpenApiResponse(s.ErrorOutput, description="Invalid body, unknown purpose or unsafe URL"),
           401: OpenApiResponse(s.ErrorOutput), 403: OpenApiResponse(s.ErrorOutput, description="Missing scope")}


def _requester(request: Request) -> str:
    client: Any = request.auth
    return str(client.requester)


def _out(sub: Any) -> dict[str, Any]:
    return {"id": sub.id, "url": sub.url, "events": sub.events, "purpose": sub.purpose, "created_at": sub.created_at}


class SubscriptionListView(APIView):
    required_scopes = {"GET": "webhooks:admin", "POST": "webhooks:admin"}
    pagination_class = None

    @extend_schema(request=s.SubscriptionInput, responses={201: s.SubscriptionCreatedOutput, **_ERRORS},
                   tags=["webhooks"], summary="Register a webhook (the secret is shown once)",
                   description="Event bodies sent to the URL: see the EventEnvelope schema and docs/WEBHOOKS.md.")
    def post(self, request: Request) -> Response:
        body = s.SubscriptionInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        created = services.subscription_create(url=data["url"], events=data["events"], purpose=data["purpose"],
                                               actor=_requester(request))
        out = {**_out(created.subscription), "secret": created.secret}
        return Response(s.SubscriptionCreatedOutput(out).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: s.SubscriptionOutput(many=True), **_ERRORS}, tags=["webhooks"],
                   summary="List webhooks")
    def get(self, request: Request) -> Response:
        return Response(s.SubscriptionOutput([_out(x) for x in selectors.subscription_list()], many=True).data)


class SubscriptionDetailView(APIView):
    required_scopes = {"GET": "webhooks:admin", "DELETE": "webhooks:admin"}

    @extend_schema(responses={200: s.SubscriptionOutput, 404: OpenApiResponse(s.ErrorOutput), **_ERRORS},
                   tags=["webhooks"], summary="One webhook")
    def get(self, request: Request, subscription_id: Any) -> Response:
        return Response(s.SubscriptionOutput(_out(selectors.subscription_get(subscription_id=subscription_id))).data)

    @extend_schema(responses={204: None, 404: OpenApiResponse(s.ErrorOutput), **_ERRORS}, tags=["webhooks"],
                   summary="Delete a webhook (pending deliveries are dropped)")
    def delete(self, request: Request, subscription_id: Any) -> Response:
        services.subscription_delete(subscription_id=subscription_id, actor=_requester(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(responses={200: s.EventEnvelope}, tags=["webhooks"],
               summary="Shape of the event bodies POSTed to receivers (documentation only)")
class EventSchemaView(APIView):
    """Documents the event envelope in the OpenAPI schema; answers one example envelope."""

    required_scopes = {"GET": "webhooks:admin"}

    def get(self, request: Request) -> Response:
        example = {"id": "6f1c9a52-1d8e-4a5b-9a57-2f0c1e7b9d10", "type": "consent.withdrawn",
                   "timestamp": "2026-01-01T00:00:00+00:00",
                   "data": {"customer": "0b6f3c3e-8f0a-4a51-bb1f-6a4d9e2f7c11", "purpose": "automated_scoring",
                            "kind": "withdrawn"}}
        return Response(s.EventEnvelope(example).data)
