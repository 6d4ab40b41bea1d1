"""The bare baseline endpoint of section 1: same stack, same authentication, one row read.

Mounted only by :mod:`bench.urls`; the product does not carry it.
"""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import NotFound


class BareRowSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    country = serializers.CharField()


class BareCustomerView(APIView):
    """GET one customer row by pseudonym: authentication, scope check and throttle like the score endpoint."""

    required_scopes = {"GET": "score:read"}

    def get(self, request: Request, customer_id: str) -> Response:
        from profiles.models import Customer

        row = Customer.objects.filter(pk=customer_id).values("id", "created_at", "country").first()
        if row is None:
            raise NotFound("customer not found")
        return Response(BareRowSerializer(row).data)
