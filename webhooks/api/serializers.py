"""Explicit serializers of the webhooks API and of the event payloads sent to subscribers (documented in the
OpenAPI schema and docs/WEBHOOKS.md). No personal data: pseudonyms, purpose codes, scores, tiers, reasons."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.schema import ErrorEnvelope
from events.services import PUBLIC_EVENT_TYPES

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
#: The receiver URLs a client can rely on being accepted: http(s), a host name of one to three labels and a
#: letters-only top-level domain (at most 216 characters, under the 253 a host name may have), an optional port,
#: a path and query without a fragment, no user name or password. (An IPv4 literal host is also accepted when it
#: is a public address or listed in WEBHOOK_ALLOWED_PRIVATE_HOSTS: which addresses are private is not something
#: a pattern can say, so the pattern leaves literals out.)
WEBHOOK_URL_PATTERN = rf"^https?://(?:{_LABEL}\.){{1,3}}[A-Za-z]{{2,24}}(?::{_PORT})?(?:[/?][^\s#]*)?$"


@extend_schema_field({"type": "string", "format": "uri", "maxLength": 2000, "pattern": WEBHOOK_URL_PATTERN})
class WebhookUrlField(serializers.URLField):
    """Django's URL validation and, in the service, the address rules (webhooks.url_safety)."""


class SubscriptionInput(serializers.Serializer):
    url = WebhookUrlField(max_length=2000, help_text="https URL of the receiver (production: https only, "
                               "public addresses only unless the host is in WEBHOOK_ALLOWED_PRIVATE_HOSTS); "
                               "an unsafe URL is refused with 400. A host that does not resolve yet is "
                               "accepted: it is resolved and checked before every delivery, and a delivery to a "
                               "host that still does not resolve fails and is retried.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(PUBLIC_EVENT_TYPES)),
                                   allow_empty=False, max_length=len(PUBLIC_EVENT_TYPES))
    purpose = serializers.CharField(max_length=64, help_text="The purpose the receiver processes data for: it "
                                    "gets a customer's events only while that consent is active.")


class SubscriptionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    purpose = serializers.CharField()
    created_at = serializers.DateTimeField()


class SubscriptionCreatedOutput(SubscriptionOutput):
    secret = serializers.CharField(help_text="whsec_<base64>: the Standard Webhooks signing secret, shown once.")


#: The one error envelope of the API (config.schema documents it on every operation).
ErrorOutput = ErrorEnvelope


class EventData(serializers.Serializer):
    customer = serializers.UUIDField(allow_null=True, help_text="The customer's pseudonym.")
    purpose = serializers.CharField(allow_null=True)
    # score.tier_changed / score.risk_raised
    decision_id = serializers.IntegerField(required=False)
    tier = serializers.CharField(required=False)
    previous_tier = serializers.CharField(required=False, allow_null=True)
    risk_level = serializers.CharField(required=False)
    previous_risk_level = serializers.CharField(required=False, allow_null=True)
    clv = serializers.FloatField(required=False)
    churn_probability = serializers.FloatField(required=False)
    upsell = serializers.FloatField(required=False)
    advocacy = serializers.FloatField(required=False)
    service_level = serializers.DictField(required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)
    # consent.withdrawn
    kind = serializers.ChoiceField(choices=["withdrawn", "restricted", "objected"], required=False)
    # customer.rectified
    fields = serializers.ListField(child=serializers.CharField(), required=False,  # type: ignore[assignment]
                                   help_text="Names of the corrected fields (never their values).")
    # customer.erased
    aliases = serializers.ListField(child=serializers.UUIDField(), required=False)


class EventEnvelope(serializers.Serializer):
    """The body POSTed to a receiver, signed with the Standard Webhooks headers (webhook-id = id)."""

    id = serializers.UUIDField(help_text="Stable event id (also the webhook-id header): deduplicate on it.")
    type = serializers.CharField(help_text="One of: " + ", ".join(PUBLIC_EVENT_TYPES) + ".")
    timestamp = serializers.DateTimeField()
    data = EventData()  # type: ignore[assignment]  # a declared field named like Serializer.data
