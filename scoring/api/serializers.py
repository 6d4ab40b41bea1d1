"""Explicit serializers of the scoring API: every exposed field is chosen on purpose.

Responses carry pseudonyms and numbers only; the e-mail/source id of a lookup is never echoed.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from config.schema import ErrorEnvelope
from scoring.models import Outcome

PURPOSE_MAX = 64


def _known_purpose(value: str) -> str:
    """Known purpose codes are cached per process (no query); the service's gate re-reads the purpose row."""
    from consent import selectors as consent_selectors

    if not consent_selectors.purpose_exists(code=value):
        raise serializers.ValidationError("Unknown purpose.", code="invalid_choice")
    return value


class PurposeQuery(serializers.Serializer):
    purpose = serializers.CharField(max_length=PURPOSE_MAX)

    def validate_purpose(self, value: str) -> str:
        return _known_purpose(value)


def purpose_from_query(data: Any) -> str:
    """``PurposeQuery(data=data)``'s validated ``purpose``: a plain known code (what nearly every request
    sends) is taken as it is, without the serializer's per-field work; anything else goes through the
    serializer, for its exact value or error (tests/scoring/test_realtime_queries.py compares the two)."""
    value = data.get("purpose")
    if (isinstance(value, str) and 0 < len(value) <= PURPOSE_MAX and value == value.strip()
            and value.isprintable()):
        from consent import selectors as consent_selectors

        if consent_selectors.purpose_exists(code=value):
            return value
    query = PurposeQuery(data=data)
    query.is_valid(raise_exception=True)
    return str(query.validated_data["purpose"])


class ScoreLookupQuery(PurposeQuery):
    """Find the customer by a blind-indexed identifier (hashed server-side, never stored or logged)."""

    openapi_exactly_one_of = [["email"], ["phone"], ["source", "external_id"]]

    email = serializers.CharField(max_length=254, required=False)
    phone = serializers.CharField(max_length=40, required=False)
    country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False,
                                     help_text="ISO 3166 country of a national-format phone number.")
    source = serializers.CharField(max_length=16, required=False)  # type: ignore[assignment]
    external_id = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("email", "phone") if attrs.get(k)]
        if attrs.get("source") or attrs.get("external_id"):
            if not (attrs.get("source") and attrs.get("external_id")):
                raise serializers.ValidationError({"external_id": "source and external_id go together."},
                                                  code="required")
            given.append("source")
        if len(given) != 1:
            raise serializers.ValidationError(
                {"identifier": "Give exactly one of email, phone or source + external_id."}, code="invalid")
        return attrs


class MoneyOutput(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    horizon_days = serializers.IntegerField()


class ServiceLevelOutput(serializers.Serializer):
    response_time = serializers.CharField()
    response_time_hours = serializers.IntegerField()
    escalation = serializers.CharField()
    extras = serializers.CharField()


class RecommendationOutput(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()


class ContributionOutput(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    value = serializers.JSONField()
    contribution = serializers.FloatField()
    text = serializers.CharField()


class ModelExplanationOutput(serializers.Serializer):
    title = serializers.CharField()
    unit = serializers.CharField()
    baseline = serializers.FloatField()
    output = serializers.FloatField()
    contributions = ContributionOutput(many=True)
    other_features = serializers.FloatField(help_text="Sum of the contributions not listed.")


class TierBasisOutput(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=["clv_model", "clv_estimate_from_attributes", "historical_spend"],
        help_text="What the tiers rank by: the CLV model, a CLV estimated from CRM attributes (attribute-only "
                  "data), or the naive fallback by historical spend when no CLV model passed its quality floor.")
    text = serializers.CharField()


class ExplanationOutput(serializers.Serializer):
    clv = ModelExplanationOutput(allow_null=True, help_text="null when the CLV is unavailable.")
    churn = ModelExplanationOutput(allow_null=True, help_text="null when the churn score is unavailable.")
    upsell = ModelExplanationOutput(allow_null=True, help_text="null when the upsell score is unavailable.")
    advocacy = ModelExplanationOutput(allow_null=True, help_text="null when the advocacy score is unavailable.")
    tiers = TierBasisOutput(required=False, allow_null=True)


class UnavailableOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["clv", "churn", "upsell", "advocacy"])
    code = serializers.ChoiceField(choices=["model_unavailable"])
    reason = serializers.CharField()


class OverrideOutput(serializers.Serializer):
    tier = serializers.CharField()
    automated_tier = serializers.CharField()
    review_of_decision = serializers.IntegerField()
    since = serializers.CharField()


class MoodOutput(serializers.Serializer):
    """The customer's current mood: mean sentiment of their latest scored tickets within the window."""

    label = serializers.ChoiceField(choices=["positive", "neutral", "negative", "unknown"])
    score = serializers.FloatField(allow_null=True)
    tickets = serializers.IntegerField(min_value=0)
    window_days = serializers.IntegerField()


class ScoreOutput(serializers.Serializer):
    customer = serializers.UUIDField()
    purpose = serializers.CharField()
    clv = MoneyOutput(allow_null=True, help_text="null when unavailable (see `unavailable`).")
    clv_score = serializers.IntegerField(min_value=0, max_value=100, allow_null=True)
    churn_probability = serializers.FloatField(allow_null=True, help_text="null when unavailable.")
    risk_level = serializers.CharField(help_text="low / medium / high, or unavailable with the churn score.")
    upsell = serializers.FloatField(allow_null=True, help_text="null when unavailable.")
    advocacy = serializers.FloatField(allow_null=True, help_text="null when unavailable.")
    segment = serializers.CharField()
    tier = serializers.CharField()
    service_level = ServiceLevelOutput()
    recommendation = RecommendationOutput()
    explanation = ExplanationOutput()
    model_versions = serializers.DictField(child=serializers.CharField())
    decision_id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    override = OverrideOutput(allow_null=True)
    current_mood = MoodOutput()
    unavailable = UnavailableOutput(
        many=True, help_text="Score kinds not served because no model of that kind passed its quality floor and "
        "naive baseline (code model_unavailable); their fields are null.")
    tier_basis = TierBasisOutput(allow_null=True)


class TicketCategoryField(serializers.ChoiceField):
    """A known ticket category, or a name that ``TICKET_CATEGORY_MAP`` maps onto one (case-insensitive)."""

    def __init__(self, **kwargs: Any) -> None:
        from django.conf import settings

        from scoring.ml.tiers import ticket_categories

        super().__init__(choices=ticket_categories(settings.TICKET_CATEGORY_MAP), **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return super().to_internal_value(data.strip().lower() if isinstance(data, str) else data)


class RouteInput(serializers.Serializer):
    customer = serializers.UUIDField()
    ticket_category = TicketCategoryField(help_text="Unknown categories are refused with the allowed list.")
    purpose = serializers.CharField(max_length=PURPOSE_MAX)

    def validate_purpose(self, value: str) -> str:
        return _known_purpose(value)


class RouteOutput(serializers.Serializer):
    customer = serializers.UUIDField()
    purpose = serializers.CharField()
    ticket_category = serializers.CharField()
    queue = serializers.CharField()
    sla_hours = serializers.IntegerField()
    escalation_level = serializers.IntegerField()
    handler = serializers.CharField()
    personalised = serializers.BooleanField(help_text=(
        "False: the customer may not be profiled for this purpose now (no consent, restriction or objection); "
        "the ticket gets the non-personalised default queue, and tier, risk_level and decision_id are null."))
    tier = serializers.CharField(allow_null=True)
    risk_level = serializers.CharField(allow_null=True)
    decision_id = serializers.IntegerField(allow_null=True)
    model_versions = serializers.DictField(child=serializers.CharField())


class OutcomeInput(serializers.Serializer):
    customer = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Outcome.Kind.values)
    at = serializers.DateTimeField(required=False, help_text="When it happened (default: now; never in the "
                                                             "future: a future instant is refused with 400).")
    source = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,64}$", required=False)  # type: ignore[assignment]


class OutcomeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.UUIDField(source="customer_id")
    kind = serializers.CharField()
    at = serializers.DateTimeField()
    source = serializers.CharField()  # type: ignore[assignment]


# --------------------------------------------------------------------------- GET /api/v1/models/active


#: The one error envelope of the API (config.schema documents it on every operation).
ErrorOutput = ErrorEnvelope


class DataWindowOutput(serializers.Serializer):
    first_fact_at = serializers.DateTimeField(allow_null=True, help_text="Earliest fact in the training data.")
    as_of = serializers.DateTimeField(allow_null=True, help_text="The training's as-of time.")
    cutoffs = serializers.ListField(child=serializers.DateTimeField(), help_text="Label cutoffs (features as of).")
    cross_validation = serializers.CharField(allow_null=True)


class QualityOutput(serializers.Serializer):
    metric = serializers.CharField(help_text="Headline metric (auc; top_decile_share for CLV).")
    value = serializers.FloatField(allow_null=True)
    baseline = serializers.FloatField(allow_null=True, help_text="The naive baseline on the same validation window.")
    baseline_method = serializers.CharField(allow_blank=True)
    floor = serializers.FloatField(allow_null=True)
    status = serializers.CharField(help_text="ok | below_floor | below_baseline | not_trained | not_assessed")
    reason = serializers.CharField(allow_blank=True)


class LabelCountsOutput(serializers.Serializer):
    explicit = serializers.IntegerField(help_text="Labels from outcomes reported through POST /api/v1/outcomes.")
    derived = serializers.IntegerField(help_text="Labels derived from the history.")


class FairnessGroupOutput(serializers.Serializer):
    n = serializers.IntegerField()
    tier_shares = serializers.DictField(child=serializers.FloatField())
    high_risk_rate = serializers.FloatField()


class FairnessCharacteristicOutput(serializers.Serializer):
    groups = serializers.DictField(child=FairnessGroupOutput())
    missing = serializers.IntegerField()
    suppressed_groups = serializers.IntegerField()
    suppressed_customers = serializers.IntegerField()
    high_risk_ratio = serializers.FloatField(allow_null=True, help_text="Lowest group's high-risk rate / highest's.")
    lowest_group = serializers.CharField(allow_null=True)
    highest_group = serializers.CharField(allow_null=True)
    flagged = serializers.BooleanField(help_text="True when the ratio is below 0.8 (four-fifths rule).")


class FairnessOutput(serializers.Serializer):
    rule = serializers.CharField(required=False)
    threshold = serializers.FloatField(required=False)
    min_group_size = serializers.IntegerField(required=False)
    population = serializers.IntegerField(required=False)
    characteristics = serializers.DictField(child=FairnessCharacteristicOutput())
    note = serializers.CharField(required=False)


class DriftFeatureOutput(serializers.Serializer):
    feature = serializers.CharField()
    psi = serializers.FloatField(allow_null=True)
    importance = serializers.FloatField(allow_null=True)


class DriftOutput(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    job = serializers.CharField()
    population = serializers.IntegerField()
    threshold = serializers.FloatField()
    max_psi = serializers.FloatField(allow_null=True)
    status = serializers.CharField(help_text="stable (< 0.1) | moderate (<= 0.2) | significant | unknown")
    top_features = DriftFeatureOutput(many=True)
    drifted_features = serializers.ListField(child=serializers.CharField())
    retrain_triggered = serializers.BooleanField()


class ActiveModelOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["clv", "churn", "upsell", "advocacy"])
    version = serializers.CharField()
    model_type = serializers.CharField(help_text="full (fact history) or churn_table (CRM table with a label)")
    trained_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    data_window = DataWindowOutput()
    horizon_days = serializers.IntegerField(allow_null=True)
    quality = QualityOutput()
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    labels = LabelCountsOutput(allow_null=True)
    fairness = FairnessOutput(allow_null=True)
    drift = DriftOutput(allow_null=True)


class ActiveModelsOutput(serializers.Serializer):
    models = ActiveModelOutput(many=True)
