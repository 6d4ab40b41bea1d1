"""Explicit input/output serializers of the profiles API: every field is chosen on purpose.

Error responses carry field names and error codes only, never values.
"""

from __future__ import annotations

from rest_framework import serializers

from profiles.models import SOURCES, Interaction, Note, Order, Ticket

MAX_TEXT = 20_000


class _CustomerRef(serializers.Serializer):
    """Who the fact is about: the pseudonym, the customer's id in a source system, or the e-mail."""

    customer_id = serializers.UUIDField(required=False, allow_null=True)
    customer_external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=200)
    customer_source = serializers.ChoiceField(choices=SOURCES, required=False, allow_null=True)
    customer_email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=254)

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("customer_id") or attrs.get("customer_external_id") or attrs.get("customer_email")):
            raise serializers.ValidationError({"customer_external_id": serializers.ErrorDetail(
                "required", code="required")})
        return attrs


def _personal(max_length: int = 500) -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=max_length)


class CustomerRecordSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=SOURCES)  # type: ignore[assignment]  # a declared field named like Field.source
    external_id = serializers.CharField(max_length=200)
    name = _personal(200)
    email = _personal(254)
    phone = _personal(40)
    address = _personal()
    company = _personal(200)
    job_title = _personal(200)
    preferred_language = _personal(35)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    country = serializers.CharField(required=False, allow_null=True, allow_blank=True, min_length=2, max_length=2)
    personal_attributes = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True, max_length=500), required=False,
        help_text="Extra CRM attributes that are personal data (stored encrypted).",
    )
    attributes = serializers.DictField(required=False, help_text="Plain CRM attributes (stored encrypted under the customer's key, not searchable; no direct identifiers).")
    feature_attributes = serializers.ListField(child=serializers.CharField(max_length=63), required=False,
                                               allow_null=True)
    audit_attributes = serializers.DictField(
        child=serializers.CharField(allow_null=True, allow_blank=True, max_length=200), required=False,
        help_text="Audit-only protected characteristics (e.g. gender): stored encrypted, used only for the "
                  "fairness report of training, never as a feature.",
    )

    def to_service(self) -> dict:
        return self.service_record(self.validated_data)

    @staticmethod
    def service_record(validated: dict) -> dict:
        """The service's record from validated data (also used by ``record_validation.records_validate``)."""
        data = dict(validated)
        personal = {f: data.pop(f, None) for f in ("name", "email", "phone", "address", "company", "job_title",
                                                   "preferred_language")}
        dob = data.pop("date_of_birth", None)
        personal["date_of_birth"] = dob.isoformat() if dob else None
        personal.update(data.pop("personal_attributes", None) or {})
        return {
            "source": data["source"], "external_id": data["external_id"], "personal": personal,
            "attributes": data.get("attributes") or {}, "feature_attributes": data.get("feature_attributes"),
            "country": data.get("country") or None,
            **({"audit_attributes": data["audit_attributes"]} if data.get("audit_attributes") else {}),
        }


class _FactRecord(_CustomerRef):
    source = serializers.ChoiceField(choices=SOURCES)  # type: ignore[assignment]  # a declared field named like Field.source
    external_id = serializers.CharField(max_length=200)

    def to_service(self) -> dict:
        return self.service_record(self.validated_data)

    @staticmethod
    def service_record(validated: dict) -> dict:
        """The service's record from validated data (also used by ``record_validation.records_validate``)."""
        return {k: v for k, v in validated.items() if v is not None}


class OrderRecordSerializer(_FactRecord):
    kind = serializers.ChoiceField(choices=Order.Kind.values, required=False)
    ordered_at = serializers.DateTimeField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    margin = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
    returned = serializers.BooleanField(required=False)
    days_late = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=3650)
    category = serializers.CharField(required=False, allow_blank=True, max_length=64)


class InteractionRecordSerializer(_FactRecord):
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    kind = serializers.ChoiceField(choices=Interaction.Kind.values)
    at = serializers.DateTimeField()
    count = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)


class TicketRecordSerializer(_FactRecord):
    opened_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(required=False, allow_null=True)
    first_response_at = serializers.DateTimeField(required=False, allow_null=True)
    channel = serializers.ChoiceField(choices=Ticket.Channel.values, required=False)
    escalated = serializers.BooleanField(required=False)
    satisfaction = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=5)
    category = serializers.CharField(required=False, allow_blank=True, max_length=64)
    text = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT, trim_whitespace=False)


class NoteRecordSerializer(_FactRecord):
    kind = serializers.ChoiceField(choices=Note.Kind.values, required=False)
    at = serializers.DateTimeField()
    text = serializers.CharField(max_length=MAX_TEXT, trim_whitespace=False)


class ReviewRecordSerializer(_FactRecord):
    at = serializers.DateTimeField()
    rating = serializers.IntegerField(min_value=1, max_value=5)
    text = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT, trim_whitespace=False)


class NpsRecordSerializer(_FactRecord):
    at = serializers.DateTimeField()
    score = serializers.IntegerField(min_value=0, max_value=10)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT, trim_whitespace=False)


class ReferralRecordSerializer(_FactRecord):
    at = serializers.DateTimeField()
    converted = serializers.BooleanField(required=False)


RECORD_SERIALIZERS: dict[str, type[CustomerRecordSerializer] | type[_FactRecord]] = {
    "customers": CustomerRecordSerializer,
    "orders": OrderRecordSerializer,
    "interactions": InteractionRecordSerializer,
    "tickets": TicketRecordSerializer,
    "notes": NoteRecordSerializer,
    "reviews": ReviewRecordSerializer,
    "nps": NpsRecordSerializer,
    "referrals": ReferralRecordSerializer,
}


class RecordErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()


class RecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    outcome = serializers.CharField()
    customer = serializers.UUIDField(allow_null=True, source="customer_id")


class RejectedRecordSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    errors = RecordErrorSerializer(many=True)  # type: ignore[assignment]  # a declared field named like Serializer.errors


class IngestSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    merged = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()


class IngestResponseSerializer(serializers.Serializer):
    summary = IngestSummarySerializer()
    results = RecordResultSerializer(many=True)
    rejected = RejectedRecordSerializer(many=True)


class LookupInputSerializer(serializers.Serializer):
    openapi_exactly_one_of = [["email"], ["phone"], ["external_id", "source"]]

    email = serializers.CharField(required=False, max_length=254)
    phone = serializers.CharField(required=False, max_length=40)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False,
                                     help_text="ISO 3166 country of a national-format phone number.")
    source = serializers.ChoiceField(choices=SOURCES, required=False)  # type: ignore[assignment]  # a declared field named like Field.source
    external_id = serializers.CharField(required=False, max_length=200)

    def validate(self, attrs: dict) -> dict:
        given = [k for k in ("email", "phone", "external_id") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError({"non_field_errors": serializers.ErrorDetail(
                "exactly one identifier", code="one_identifier")})
        if attrs.get("external_id") and not attrs.get("source"):
            raise serializers.ValidationError({"source": serializers.ErrorDetail("required", code="required")})
        return attrs


class LookupOutputSerializer(serializers.Serializer):
    customer = serializers.UUIDField()
