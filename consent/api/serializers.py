"""Explicit serializers of the consent API: every exposed field is chosen on purpose. No personal data is
carried here (customers appear only by pseudonym; evidence is PII-free)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from consent.models import Channel

# --- Input ---------------------------------------------------------------------------------------------


#: The evidence keys ``consent.services.sanitize_evidence`` accepts; any other key is refused.
EVIDENCE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{key: {"type": "string", "pattern": r"^[A-Za-z0-9_.:/#-]{1,128}$"}
           for key in ("form_id", "form_version", "confirmation_id", "session_ref", "campaign", "import_batch")},
        "checkbox_text": {"type": "string", "maxLength": 10000},
        "checkbox_text_hash": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
        "ip_address": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
        "user_agent": {"type": "string", "maxLength": 2000},
        "double_opt_in": {"type": "boolean"},
        "checkbox_unticked_by_default": {"type": "boolean"},
        "import_line": {"type": "integer", "minimum": 0},
    },
}


@extend_schema_field(EVIDENCE_SCHEMA)
class EvidenceField(serializers.DictField):
    """PII-free proof of a consent decision (see ``EVIDENCE_SCHEMA``); validated by the consent service."""


class ConsentChangeInput(serializers.Serializer):
    """Body of both ``/consents/grant`` and ``/consents/withdraw``: withdrawing is as easy as granting."""

    customer = serializers.UUIDField(help_text="The customer's pseudonym.")
    purpose = serializers.CharField(max_length=64, help_text="Purpose code, e.g. automated_scoring.")
    source = serializers.RegexField(r"^[a-z][a-z0-9_.:-]{0,63}$", max_length=64,  # type: ignore[assignment]
                                    help_text="Calling system, a code: web, app, crm, support, ...")
    channel = serializers.ChoiceField(choices=Channel.choices)
    evidence = EvidenceField(
        required=False, allow_empty=True,
        help_text="PII-free proof: form_id, form_version, confirmation_id, session_ref, campaign, "
                  "checkbox_text (stored as its sha256), checkbox_text_hash, ip (stored as keyed HMAC), "
                  "user_agent (stored as keyed HMAC), double_opt_in.",
    )
    notice_version = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,32}$", required=False, max_length=32,
                                            help_text="A published notice version of the purpose. Default: the "
                                                      "notice version in force.")
    occurred_at = serializers.DateTimeField(required=False,
                                            help_text="When the person decided (default: now; never in the "
                                                      "future: a future instant is refused with 400).")


class ConsentBulkInput(serializers.Serializer):
    records = serializers.ListField(
        allow_empty=False,
        help_text="Records: {customer, purpose, action (grant|withdraw), source, channel, occurred_at?, "
                  "notice_version?, evidence?}. Over the limit: 413.",
    )


class StateAtQuery(serializers.Serializer):
    at = serializers.DateTimeField(required=False, help_text="A past instant (default: now).")


# --- Output --------------------------------------------------------------------------------------------


class ConsentEventOutput(serializers.Serializer):
    event_id = serializers.IntegerField(source="id")
    customer = serializers.UUIDField(source="customer_id")
    purpose = serializers.CharField(source="purpose.code")
    action = serializers.CharField()
    notice_version = serializers.CharField(source="notice.version")
    notice_hash = serializers.CharField(source="notice.text_hash")
    source = serializers.CharField()  # type: ignore[assignment]
    channel = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()


class ConsentStateOutput(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["granted", "withdrawn", "never_asked", "reconsent_required"])
    event_id = serializers.IntegerField(allow_null=True)
    notice_version = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    channel = serializers.CharField(allow_null=True)


class ProcessingFlagStateOutput(serializers.Serializer):
    kind = serializers.CharField()
    purpose = serializers.CharField(allow_null=True, help_text="null = all purposes")


class CustomerConsentsOutput(serializers.Serializer):
    customer = serializers.UUIDField()
    at = serializers.DateTimeField()
    consents = ConsentStateOutput(many=True)
    processing_flags = ProcessingFlagStateOutput(many=True)


class ConsentHistoryEventOutput(serializers.Serializer):
    event_id = serializers.IntegerField()
    purpose = serializers.CharField()
    action = serializers.CharField()
    notice_version = serializers.CharField()
    notice_hash = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    channel = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    actor = serializers.CharField()
    evidence = serializers.DictField()


class ProcessingFlagHistoryOutput(serializers.Serializer):
    flag_id = serializers.IntegerField()
    kind = serializers.CharField()
    action = serializers.CharField()
    purpose = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()


class ConsentHistoryOutput(serializers.Serializer):
    customer = serializers.UUIDField()
    events = ConsentHistoryEventOutput(many=True)
    processing_flags = ProcessingFlagHistoryOutput(many=True)


class ReceiptPurposeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    lawful_basis = serializers.CharField()


class ReceiptNoticeOutput(serializers.Serializer):
    version = serializers.CharField()
    text_hash = serializers.CharField()
    hash_algorithm = serializers.CharField()
    published_at = serializers.CharField()


class ConsentReceiptOutput(serializers.Serializer):
    format = serializers.CharField()
    event_id = serializers.IntegerField()
    customer = serializers.CharField()
    action = serializers.CharField()
    purpose = ReceiptPurposeOutput()
    notice = ReceiptNoticeOutput()
    occurred_at = serializers.CharField()
    recorded_at = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    channel = serializers.CharField()
    evidence = serializers.DictField()
    signature = serializers.CharField(help_text="HMAC-SHA256 (service key) over the canonical JSON of the rest.")


class BulkResultOutput(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "unchanged", "rejected"])
    event_id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField(allow_null=True)
    field = serializers.CharField(allow_null=True)


class ConsentBulkOutput(serializers.Serializer):
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = BulkResultOutput(many=True)


class NoticeOutput(serializers.Serializer):
    version = serializers.CharField()
    text = serializers.CharField()
    text_hash = serializers.CharField()
    requires_reconsent = serializers.BooleanField()
    published_at = serializers.DateTimeField()


class PurposeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    lawful_basis = serializers.CharField()
    explicit_consent_required = serializers.BooleanField()
    retention_days = serializers.IntegerField()
    data_categories = serializers.ListField(child=serializers.CharField())
    recipients = serializers.CharField()
    current_notice = NoticeOutput(allow_null=True)
