"""Explicit serializers of the actions API (every exposed field chosen on purpose; no personal data)."""

from __future__ import annotations

from rest_framework import serializers

from engagement.models import Action


class ErrorOutput(serializers.Serializer):
    """The error body of every endpoint (config.errors)."""

    code = serializers.CharField()
    detail = serializers.CharField()
    correlation_id = serializers.CharField(required=False)


# "errors" would shadow Serializer.errors: declared under its wire name.
ErrorOutput._declared_fields["errors"] = serializers.DictField(required=False,
                                                               help_text="Field name -> list of {code}.")


class ActionListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Action.Status.values, required=False)
    type = serializers.ChoiceField(choices=Action.Type.values, required=False)
    tier = serializers.CharField(required=False, max_length=32)


class ActionScores(serializers.Serializer):
    clv = serializers.FloatField(required=False)
    churn_probability = serializers.FloatField(required=False)
    risk_level = serializers.CharField(required=False)
    upsell = serializers.FloatField(required=False)
    advocacy = serializers.FloatField(required=False)
    past_revenue = serializers.FloatField(required=False)
    days_since_last_order = serializers.IntegerField(required=False)


class ActionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.UUIDField(source="customer_id", help_text="The customer's pseudonym.")
    type = serializers.ChoiceField(choices=Action.Type.values)
    status = serializers.ChoiceField(choices=Action.Status.values)
    purpose = serializers.CharField()
    tier = serializers.CharField()
    scores = ActionScores()
    priority = serializers.FloatField()
    value_at_stake = serializers.FloatField()
    currency = serializers.CharField()
    due_at = serializers.DateTimeField()
    reason = serializers.CharField()
    decision_id = serializers.IntegerField(allow_null=True)
    ticket_id = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField(allow_blank=True)
    close_reason = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


class CompleteInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Action.Outcome.values)


class ActionPage(serializers.Serializer):
    """One page of the queue (cursor pagination: follow ``next``)."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ActionOutput(many=True)


class ActionEventPayload(serializers.Serializer):
    """Payload of the outbox events ``action.created`` and ``action.closed`` (contract 4; no personal data)."""

    action_id = serializers.IntegerField()
    action_type = serializers.ChoiceField(choices=Action.Type.values)
    status = serializers.ChoiceField(choices=Action.Status.values)
    outcome = serializers.ChoiceField(choices=Action.Outcome.values, allow_null=True)
    tier = serializers.CharField()
    priority = serializers.FloatField()
    value_at_stake = serializers.FloatField()
    due_at = serializers.DateTimeField()
    reason = serializers.CharField(allow_blank=True)
    decision_id = serializers.IntegerField(allow_null=True)
