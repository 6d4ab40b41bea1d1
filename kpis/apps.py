"""KPIs and ROI: retention, revenue, calibration, upsell, referrals, SLA, CSAT/NPS per tier and month, and the
uplift of treatment over the holdout group. Reads engagement and below through their selectors; its own models
hold only the rollup (aggregates, see ``kpis.models``), refreshed after a rescore of the scores' purpose
(``scoring.signals.rescore_run_completed``, task queued on commit) and periodically (beat, or the in-process
scheduler of embedded mode)."""

from django.apps import AppConfig


class KpisConfig(AppConfig):
    name = "kpis"
    verbose_name = "KPIs and ROI"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from kpis import receivers
        from kpis.schedule import start_in_process
        from scoring import signals as scoring_signals

        scoring_signals.rescore_run_completed.connect(receivers.on_rescore_run_completed,
                                                      dispatch_uid="kpis.rescore_completed")
        start_in_process()  # embedded mode, runserver only
