"""Serializers of the KPI API (aggregates only; no pseudonyms)."""

from __future__ import annotations

from rest_framework import serializers


class KpiQuery(serializers.Serializer):
    # "from" is a Python keyword: declared below under its query-parameter name.
    to = serializers.DateField(required=False, help_text="Last month included (any date in it); default: today.")
    tier = serializers.CharField(required=False, max_length=32)
    # "from" after "to" is an empty window (no months), not an error: a relation between two parameters is
    # something an OpenAPI schema cannot state, so a client or fuzzer could not know to avoid it.


KpiQuery._declared_fields["from"] = serializers.DateField(
    required=False, help_text="First month included (any date in it); default: 11 months before 'to'.")


class KpiCell(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(allow_null=True, help_text="Distinct customers the figure is computed over.")
    suppressed = serializers.BooleanField()
    suppression = serializers.ChoiceField(choices=["primary", "complementary"], allow_null=True)


class KpiRow(serializers.Serializer):
    tier = serializers.CharField()
    months = serializers.DictField(child=KpiCell(), help_text="YYYY-MM -> cell")


class KpiMetric(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField()
    description = serializers.CharField()
    rows = KpiRow(many=True)


class UpliftFigure(serializers.Serializer):
    treatment = serializers.FloatField()
    holdout = serializers.FloatField()
    uplift = serializers.FloatField()
    ci95 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)


class Roi(serializers.Serializer):
    value = serializers.FloatField()
    cost = serializers.FloatField()
    actions = serializers.IntegerField()
    cost_per_action = serializers.FloatField()
    net = serializers.FloatField()
    net_ci95 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    ratio = serializers.FloatField(allow_null=True)


class UpliftCounts(serializers.Serializer):
    treatment_customers = serializers.IntegerField()
    holdout_customers = serializers.IntegerField()
    window_days = serializers.IntegerField()


class UpliftWindow(serializers.Serializer):
    to = serializers.DateField()


UpliftWindow._declared_fields["from"] = serializers.DateField()


class Uplift(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "insufficient_data"])
    window = UpliftWindow()
    have = UpliftCounts()
    needed = UpliftCounts()
    retention = UpliftFigure(allow_null=True)
    revenue_per_customer = UpliftFigure(allow_null=True)
    roi = Roi(allow_null=True)
    ci_method = serializers.DictField(child=serializers.CharField(), allow_null=True)


class KpiOutput(serializers.Serializer):
    to = serializers.DateField()
    months = serializers.ListField(child=serializers.CharField())
    tiers = serializers.ListField(child=serializers.CharField())
    k = serializers.IntegerField(help_text="Cells over fewer than k customers are suppressed.")
    currency = serializers.CharField()
    tier_basis = serializers.CharField()
    metrics = KpiMetric(many=True)
    uplift = Uplift()


KpiOutput._declared_fields["from"] = serializers.DateField()


class KpiSource(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["rollup", "live"],
                                   help_text="rollup: served from the newest fresh snapshot; live: computed now.")
    as_of = serializers.DateTimeField(help_text="The moment the figures describe (the snapshot's time, or now).")
    snapshot_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why a live answer was computed (no_snapshot, "
                                   "snapshot_stale, settings_changed, months_not_in_snapshot, "
                                   "window_not_in_snapshot, rollup_disabled); null otherwise.")


KpiOutput._declared_fields["source"] = KpiSource()


class KpiNextPage(serializers.Serializer):
    to = serializers.DateField()


KpiNextPage._declared_fields["from"] = serializers.DateField()
KpiOutput._declared_fields["next"] = KpiNextPage(
    allow_null=True, help_text="A window longer than 36 months is answered 36 months at a time: the rest of the "
                               "window, to ask for next with these `from` and `to`; null on the last page.")
