"""Explicit serializers: every exposed field is chosen on purpose; no personal data is ever echoed."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from profiles.models import PERSONAL_FIELDS
from subject_rights.models import RequestType
from subject_rights.services.workflow import MAX_FIELDS


@extend_schema_field({
    "type": "object", "minProperties": 1, "maxProperties": MAX_FIELDS, "additionalProperties": False,
    "properties": {name: {"type": "string", "nullable": True, "maxLength": 500} for name in PERSONAL_FIELDS},
})
class RectificationFields(serializers.DictField):
    """The corrected personal fields (``profiles.models.PERSONAL_FIELDS``), each a text (at most 500) or null."""

#: Visible ASCII, 1-200 characters (the service refuses control characters).
IDEMPOTENCY_KEY_PATTERN = r"^[!-~][ -~]{0,199}$"


class SubjectRequestInput(serializers.Serializer):
    openapi_exactly_one_of = [["customer"], ["email"], ["source", "external_id"]]
    openapi_by_type = ("type", {"fields": ["rectification"], "decision_id": ["contest"]},
                       {"rectification": ["fields"], "contest": ["decision_id"]})

    type = serializers.ChoiceField(choices=RequestType.choices)  # type: ignore[assignment]
    customer = serializers.UUIDField(required=False, help_text="The customer's pseudonym.")
    email = serializers.EmailField(required=False, max_length=254,
                                  help_text="Looked up through the blind index; never stored or echoed.")
    source = serializers.CharField(required=False, max_length=16)  # type: ignore[assignment]
    external_id = serializers.CharField(required=False, max_length=200)
    idempotency_key = serializers.RegexField(
        IDEMPOTENCY_KEY_PATTERN, required=False, max_length=200,
        help_text="Deprecated: send the Idempotency-Key header (visible ASCII). This field is the key only when the "
                  "header is absent; with the header, the header is the key and this field is not used.")
    purpose = serializers.CharField(required=False, max_length=64, help_text="Restriction/objection scope.")
    decision_id = serializers.IntegerField(required=False, min_value=1, help_text="For a contest.")
    fields = RectificationFields(  # type: ignore[assignment]
        child=serializers.CharField(allow_null=True, allow_blank=True, max_length=500), required=False,
        allow_empty=False,
        help_text="Rectification: the corrected personal fields (never echoed).",
    )
    contact_email = serializers.EmailField(required=False, max_length=254,
                                          help_text="Where to tell the customer about the outcome (stored encrypted).")
    language = serializers.CharField(required=False, max_length=8)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        identifiers = [k for k in ("customer", "email", "source") if attrs.get(k)]
        if attrs.get("external_id") and "source" not in identifiers:
            raise serializers.ValidationError({"source": serializers.ErrorDetail("required", code="required")})
        if len(identifiers) != 1:
            raise serializers.ValidationError({"customer": serializers.ErrorDetail("required", code="required")})
        return attrs


class SubjectRequestOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    received_at = serializers.DateTimeField()
    verified_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField()
    extension_months = serializers.IntegerField()
    extension_code = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(allow_blank=True)
    rejection_code = serializers.CharField(allow_blank=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    alert_level = serializers.CharField(allow_blank=True)
    decision_id = serializers.IntegerField(allow_null=True)
    result = serializers.SerializerMethodField()
    export_available = serializers.SerializerMethodField()

    SAFE_RESULT_KEYS = ("changed_fields", "decisions_before", "decisions_after", "review", "review_outcome",
                        "export", "purpose", "lifted_at")

    def get_result(self, obj: Any) -> dict[str, Any]:
        return {k: v for k, v in (obj.result or {}).items() if k in self.SAFE_RESULT_KEYS}

    def get_export_available(self, obj: Any) -> bool:
        return bool(self.context.get("export_available"))
