"""Thin views: bulk ingestion (scope ``ingest:write``) and pseudonym lookup (scope ``score:read``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ValidationFailed
from config.permissions import require_any_purpose
from profiles import selectors, services

from .record_validation import records_validate
from .serializers import (
    RECORD_SERIALIZERS,
    IngestResponseSerializer,
    LookupInputSerializer,
    LookupOutputSerializer,
)

MAX_RECORDS = 1000
LOOKUP_BY_POST = ("Identifier lookups are POST only, so that no personal data travels in URLs: POST "
                  "/api/v1/customers/lookup with a JSON body such as {\"email\": ...}.")


class IngestView(APIView):
    """POST ``{"records": [...]}`` (at most 1000) of one kind. Each record is validated and written on its
    own; the answer is 200 with a summary, per-record outcomes and the rejected records (field + code)."""

    required_scopes = {"POST": "ingest:write"}

    @extend_schema(responses=IngestResponseSerializer, request=None)
    def post(self, request: Request, kind: str) -> Response:
        serializer_class = RECORD_SERIALIZERS.get(kind)
        if serializer_class is None:
            raise NotFound()
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ValidationFailed(extra={"errors": {"records": [{"code": "not_a_list", "message": "Expected a list."}]}})
        records = body["records"]
        if len(records) > MAX_RECORDS:
            raise PayloadTooLarge(f"At most {MAX_RECORDS} records per request.", code="too_many_records")
        # The kind's record serializer, bound once for the request (same fields, codes and schema as one
        # serializer per record, without a deep copy of every field per record).
        valid, rejected = records_validate(serializer_class, records)
        client: Any = request.auth  # the ApiClient (token authentication)
        results = services.ingest_batch(kind=kind, records=valid, actor=client.requester,
                                        prior_rejections=len(rejected))
        outcomes: dict[int, dict] = {}
        for r in results:
            outcomes[r.index] = {"index": r.index, "outcome": r.outcome, "customer_id": r.customer_id}
            if r.errors:
                rejected[r.index] = list(r.errors)
        for index in rejected:
            outcomes.setdefault(index, {"index": index, "outcome": "rejected", "customer_id": None})
        summary = dict.fromkeys(("created", "updated", "merged", "unchanged", "rejected"), 0)
        for o in outcomes.values():
            summary[o["outcome"]] += 1
        payload = {
            "summary": {"total": len(records), **summary},
            "results": [outcomes[i] for i in sorted(outcomes)],
            "rejected": [{"index": i, "errors": [{"field": f, "code": c} for f, c in rejected[i]]}
                         for i in sorted(rejected)],
        }
        return Response(IngestResponseSerializer(payload).data)


class CustomerLookupView(APIView):
    """Find the pseudonym of a customer by e-mail, phone or source-system id (hashed server-side with the
    blind-index key; never stored or logged). POST only: identifiers never travel in URLs, which proxies and
    access logs keep. The old GET form answers 405 with a pointer to the POST form, whatever its query."""

    required_scopes = {"GET": "score:read", "POST": "score:read"}

    def _lookup(self, data: Any) -> Response:
        require_any_purpose(self.request.auth)  # finding a pseudonym is processing for some purpose
        serializer = LookupInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        customer = selectors.customer_find(**serializer.validated_data)
        if customer is None:
            raise NotFound()
        return Response(LookupOutputSerializer({"customer": customer}).data)

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        raise MethodNotAllowed(LOOKUP_BY_POST)

    @extend_schema(request=LookupInputSerializer, responses=LookupOutputSerializer)
    def post(self, request: Request) -> Response:
        return self._lookup(request.data if isinstance(request.data, dict) else {})
