"""OpenAPI contract: bearer-token authentication, and one error envelope documented on every operation.

Every ``/api/v1`` operation lists the error statuses it can answer, each with the ``ErrorEnvelope`` schema
(``config.errors`` renders every error in that shape), so generated clients and fuzzers know every status the
API may send. 429 documents ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "audit.api_clients.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "http", "scheme": "bearer", "description": "API client token (psk_...)"}


class FieldError(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `required`, `invalid`, `blank`.")
    message = serializers.CharField(help_text="Human-readable message; never echoes the submitted value.")


class ErrorEnvelope(serializers.Serializer):
    """Every error answer of the API."""

    code = serializers.CharField(help_text=(
        "Stable error code. Among them: `invalid` (400, see `errors`), `malformed`, `bad_request`, "
        "`not_authenticated` (401), `forbidden`, `no_consent`, `restricted`, `objected`, `purpose_not_allowed` "
        "(403), `not_found` (404), `method_not_allowed` (405), `not_acceptable` (406), `conflict` (409), "
        "`payload_too_large` (413), `unsupported_media_type` (415), `unprocessable` (422), `throttled` (429), "
        "`unavailable` (503)."))
    detail = serializers.CharField(help_text="What went wrong, in words. Never echoes personal data.")
    correlation_id = serializers.CharField(help_text="Quote it to the operator; it ties the answer to the logs.")
    errors = serializers.DictField(
        child=FieldError(many=True), required=False,
        help_text="Per-field errors (400 only): field name -> list of {code, message}.")
    retry_after = serializers.IntegerField(required=False, min_value=0,
                                           help_text="429 only: seconds until the window resets.")


_DESCRIPTIONS = {
    "400": "The request is invalid: a malformed body or parameter (`errors` names each field and code).",
    "401": "No valid API token: missing, unknown, expired or revoked.",
    "403": "The token lacks the operation's scope, or the purpose is not allowed for it, or the customer's "
           "consent, restriction or objection forbids the processing (`code` says which).",
    "404": "The resource (or customer) does not exist, or is not visible to this client.",
    "406": "The `Accept` header asks for something other than `application/json`.",
    "409": "The request conflicts with the current state (for example an idempotency key reused with "
           "another body).",
    "413": "The body or the number of records is larger than allowed.",
    "415": "The body is not `application/json`.",
    "429": "Too many requests for this client; retry after `Retry-After` seconds.",
    "503": "A backing service (database) is unavailable; retry later.",
}

#: Not blank after trimming, and no NUL character (DRF refuses both).
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _constrain_by_discriminator(schema: dict[str, Any], serializer: Any) -> None:
    """``openapi_by_type = ("type", {"fields": ["rectification"]}, {"contest": ["decision_id"]})`` on a serializer:
    a property allowed only with some values of the discriminator, and properties those values require."""
    spec = getattr(serializer, "openapi_by_type", None)
    if not spec:
        return
    discriminator, allowed_only_with, required_with = spec
    rules: list[dict[str, Any]] = []
    for prop, values in allowed_only_with.items():
        rules.append({"anyOf": [{"properties": {discriminator: {"enum": list(values)}}},
                                {"not": {"required": [prop]}}]})
    for value, props in required_with.items():
        rules.append({"anyOf": [{"not": {"properties": {discriminator: {"enum": [value]}}}},
                                {"required": list(props)}]})
    schema.setdefault("allOf", []).extend(rules)


class ContractAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error statuses of every API operation."""

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404", "406", "429", "503"]
        if self.method in _WRITE_METHODS:
            codes += ["409", "413", "415"]
        return sorted(codes)

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:  # type: ignore[override]
        responses = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        if direction != "response" or not self.path.startswith("/api/"):
            return responses
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorEnvelope, description=_DESCRIPTIONS[code]), code,
                    direction=direction)
        return responses

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:  # type: ignore[override]
        """Request strings that may not be blank say so (DRF trims whitespace, so a blank is refused): a
        generated client or fuzzer then never sends what the API refuses."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request":
            return schema
        if isinstance(field, serializers.ListField) and not getattr(field, "allow_empty", True):
            schema["minItems"] = max(1, int(schema.get("minItems", 0)))
        has_regex = any(isinstance(v, RegexValidator) for v in getattr(field, "validators", []))
        if (isinstance(field, serializers.CharField) and not getattr(field, "allow_blank", True)
                and schema.get("type") == "string" and "enum" not in schema and "format" not in schema
                and not has_regex):
            schema["minLength"] = max(1, int(schema.get("minLength", 0)))
            schema.setdefault("pattern", NOT_BLANK_PATTERN)
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:  # type: ignore[override]
        """``openapi_exactly_one_of = [["email"], ["phone"], ["source", "external_id"]]`` on a serializer: the
        request must carry exactly one of those groups (as its ``validate`` enforces)."""
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            _constrain_by_discriminator(schema, serializer)
        groups = getattr(serializer, "openapi_exactly_one_of", None)
        if direction == "request" and groups:
            members = sorted({name for group in groups for name in group})
            schema["anyOf"] = [
                {"required": list(group),
                 **({"not": {"anyOf": [{"required": [other]} for other in members if other not in group]}}
                    if len(group) < len(members) else {})}
                for group in groups
            ]
        return schema

    def _get_response_headers_for_code(self, status_code: str, direction: str = "response") -> dict[str, Any]:  # type: ignore[override]
        headers = super()._get_response_headers_for_code(status_code, direction)  # type: ignore[arg-type]
        if status_code == "429":
            headers["Retry-After"] = {"schema": {"type": "integer", "minimum": 0},
                                      "description": "Seconds until the client's window resets."}
        return headers


def _enum_sources() -> dict[str, Callable[[], list[str]]]:
    """``API_SCHEMA_ENUMS``: property/parameter name -> dotted path of a callable returning the allowed values
    of this deployment (for example the purpose codes in its database)."""
    return {name: import_string(path) for name, path in getattr(settings, "API_SCHEMA_ENUMS", {}).items()}


def contract_enums(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Postprocessing hook: string request properties and parameters named in ``API_SCHEMA_ENUMS`` get the
    deployment's allowed values as an enum (purposes are data, so they are read when the schema is built)."""
    values: dict[str, list[str]] = {}
    for name, source in _enum_sources().items():
        try:
            found = sorted({str(v) for v in source()})
        except Exception:  # no database while building the schema offline: leave the plain string
            found = []
        if found:
            values[name] = found

    def constrain(schema: dict[str, Any], name: str) -> None:
        if name in values and schema.get("type") == "string" and "enum" not in schema:
            schema.pop("pattern", None)
            schema.pop("minLength", None)
            schema["enum"] = values[name]

    for component_name, component in result.get("components", {}).get("schemas", {}).items():
        if not component_name.endswith("Request"):
            continue
        for prop_name, prop in component.get("properties", {}).items():
            constrain(prop, prop_name)
    schemas = result.get("components", {}).get("schemas", {})
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            _require_constrained_bodies(operation, schemas)
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                constrain(parameter.get("schema", {}), parameter.get("name", ""))
    return result


def _require_constrained_bodies(operation: Any, schemas: dict[str, Any]) -> None:
    """A body whose schema demands some property (``anyOf`` of required groups) is itself required."""
    if not isinstance(operation, dict) or "requestBody" not in operation:
        return
    for media in operation["requestBody"].get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        component = schemas.get(ref.rsplit("/", 1)[-1], {})
        if component.get("anyOf") or component.get("required"):
            operation["requestBody"]["required"] = True
