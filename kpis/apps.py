"""KPIs and ROI: retention, revenue, calibration, upsell, referrals, SLA, CSAT/NPS per tier and month, and the
uplift of treatment over the holdout group. Reads engagement and below through their selectors; no models."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    verbose_name = "KPIs and ROI"
    default_auto_field = "django.db.models.BigAutoField"
