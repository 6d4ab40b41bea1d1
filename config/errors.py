"""One error vocabulary for the whole service.

Every API error is JSON: ``{"code": ..., "detail": ..., "correlation_id": ...}`` (plus ``errors`` for
field validation, which carries field names and error codes only). Messages never echo input, so
no personal data can reach an error body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, IntegrityError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from config.logging import get_correlation_id

logger = logging.getLogger("errors")


class ApplicationError(Exception):
    status_code = 400
    code = "bad_request"
    default_detail = "The request could not be processed."

    def __init__(self, detail: str | None = None, *, code: str | None = None, extra: dict[str, Any] | None = None):
        self.detail = detail or self.default_detail
        if code:
            self.code = code
        self.extra = extra or {}
        super().__init__(self.detail)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "invalid"
    default_detail = "The request is invalid."


class NotAuthenticated(ApplicationError):
    status_code = 401
    code = "not_authenticated"
    default_detail = "Authentication credentials were missing or invalid."


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"
    default_detail = "You may not perform this action."


class NoConsent(Forbidden):
    code = "no_consent"
    default_detail = "The customer has no active consent for this purpose."


class Restricted(Forbidden):
    code = "restricted"
    default_detail = "Processing of this customer's data is restricted."


class Objected(Forbidden):
    code = "objected"
    default_detail = "The customer objected to automated decisions for this purpose."


class PurposeNotAllowed(Forbidden):
    code = "purpose_not_allowed"
    default_detail = "This API client may not request this purpose."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class MethodNotAllowed(ApplicationError):
    status_code = 405
    code = "method_not_allowed"
    default_detail = "Method not allowed."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "The request body is too large."


class Unprocessable(ApplicationError):
    status_code = 422
    code = "unprocessable"
    default_detail = "The request is well-formed but cannot be processed."


class ServiceUnavailable(ApplicationError):
    status_code = 503
    code = "unavailable"
    default_detail = "A backing service is unavailable. Try again later."


_FIELD_MESSAGES = {
    "required": "This field is required.",
    "null": "This field may not be null.",
    "blank": "This field may not be blank.",
    "invalid": "Invalid value.",
    "invalid_choice": "Not one of the allowed values.",
    "max_length": "Too long.",
    "min_length": "Too short.",
    "max_value": "Too large.",
    "min_value": "Too small.",
    "not_a_list": "Expected a list.",
    "empty": "May not be empty.",
    "parse_error": "Malformed request body.",
    "date": "Invalid date.",
    "datetime": "Invalid date/time.",
    "special_category": "Looks like special-category data (GDPR Art. 9), which may not be a scoring feature.",
    "protected_characteristic": "A protected characteristic (gender or sex, age) may not be a scoring feature; "
                                "declare it audit-only instead (used only for the fairness report).",
    "audit_only": "Declared audit-only in the same record: send it only as an audit attribute (stored encrypted).",
    "personal_data": "Looks like a direct identifier (an e-mail address, phone number, IBAN or payment card "
                     "number); this field is stored unencrypted, so send it as a personal field instead.",
    "personal_field": "The name of a direct identifier; send it as a personal field (stored encrypted) instead.",
    "unique": "Already exists.",
    "in_future": "Lies in the future.",
    "too_early": "Earlier than the earliest plausible date (FACT_EARLIEST_DATE).",
}


def field_message(code: str) -> str:
    """The fixed, value-free message for a field error ``code``."""
    return _FIELD_MESSAGES.get(code, "Invalid value.")


def _field_errors(detail: Any) -> Any:
    """Keep the structure and codes of a DRF ValidationError, replace messages with fixed text."""
    if isinstance(detail, dict):
        return {str(key): _field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_field_errors(item) for item in detail]
    code = getattr(detail, "code", None) or "invalid"
    return {"code": code, "message": _FIELD_MESSAGES.get(code, "Invalid value.")}


def error_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, "correlation_id": get_correlation_id(), **extra}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(int(exc.extra.get("retry_after") or 60))} if exc.status_code == 429 else None
        return Response(error_body(exc.status_code, exc.code, exc.detail, **exc.extra), status=exc.status_code,
                        headers=headers)
    if isinstance(exc, drf.ValidationError):
        return Response(
            error_body(400, "invalid", "The request is invalid.", errors=_field_errors(exc.detail)), status=400
        )
    if isinstance(exc, drf.ParseError):
        return Response(error_body(400, "malformed", "Malformed request body."), status=400)
    if isinstance(exc, drf.UnsupportedMediaType):
        return Response(error_body(415, "unsupported_media_type", "Unsupported media type."), status=415)
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return Response(
            error_body(401, "not_authenticated", "Authentication credentials were missing or invalid."),
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    if isinstance(exc, drf.PermissionDenied | PermissionDenied):
        return Response(error_body(403, "forbidden", "You may not perform this action."), status=403)
    if isinstance(exc, drf.NotFound | Http404):
        return Response(error_body(404, "not_found", "Not found."), status=404)
    if isinstance(exc, drf.MethodNotAllowed):
        return Response(error_body(405, "method_not_allowed", "Method not allowed."), status=405)
    if isinstance(exc, drf.NotAcceptable):
        return Response(error_body(406, "not_acceptable", "Not acceptable."), status=406)
    if isinstance(exc, drf.Throttled):
        wait = int(getattr(exc, "wait", None) or 1)
        return Response(
            error_body(429, "throttled", "Too many requests.", retry_after=wait),
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(413, "payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error mapped to 409", exc_info=True)
        return Response(error_body(409, "conflict", "The request conflicts with the current state."), status=409)
    if isinstance(exc, OperationalError | DatabaseError):
        logger.error("database unavailable", exc_info=True)
        return Response(error_body(503, "unavailable", "A backing service is unavailable."), status=503)
    response = drf_default_handler(exc, context)
    if response is not None:
        response.data = error_body(response.status_code, "error", "The request could not be processed.")
    return response


class ApiErrorMiddleware:
    """Last line of defence for /api/: oversized bodies become 413 and anything unexpected a JSON 500
    without details (the traceback goes to the log, with no exception message)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exc, RequestDataTooBig):
            return JsonResponse(error_body(413, "payload_too_large", "The request body is too large."), status=413)
        if isinstance(exc, SuspiciousOperation):
            return JsonResponse(error_body(400, "bad_request", "The request could not be processed."), status=400)
        logger.error("unhandled error", exc_info=True)
        return JsonResponse(error_body(500, "server_error", "Internal error."), status=500)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body(404, "not_found", "Not found."), status=404)


def json_server_error(request: HttpRequest) -> HttpResponse:
    return JsonResponse(error_body(500, "server_error", "Internal error."), status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body(400, "bad_request", "The request could not be processed."), status=400)


def json_forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return JsonResponse(error_body(403, "forbidden", "You may not perform this action."), status=403)
