"""Governance of the models (issue 16 §5-§7): the fairness report over audit-only characteristics, explicit
outcomes as labels, feature drift and the retrains it triggers, the schedule (beat and in-process), and
``GET /api/v1/models/active``."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from tests.scoring.helpers import SMALL_CONFIG_KW

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_models(settings):
    settings.SCORING_MODEL_CONFIG = SMALL_CONFIG_KW


# --------------------------------------------------------------------------- fairness


def test_fairness_report_figures_on_a_small_hand_checked_fixture():
    from scoring.fairness import fairness_report

    # F: 10 customers (one written " f"): VIP 2, Premium 3, Standard 5; 2 at high risk -> 0.2
    # M: 12 customers: VIP 1, Standard 9, Basic 2; 6 at high risk -> 0.5
    # X: 3 customers (below k = 10: suppressed); 2 without a value
    values = ["F"] * 9 + [" f"] + ["M"] * 12 + ["X"] * 3 + [None, ""]
    tiers = (["VIP"] * 2 + ["Premium"] * 3 + ["Standard"] * 5
             + ["VIP"] + ["Standard"] * 9 + ["Basic"] * 2 + ["VIP"] * 3 + ["Basic"] * 2)
    risks = (["high"] * 2 + ["low"] * 8
             + ["high"] * 6 + ["medium"] * 6 + ["high"] * 3 + ["high"] * 2)
    report = fairness_report({"gender": values}, tiers, risks, tier_names=["VIP", "Premium", "Standard", "Basic"],
                             min_group=10)
    g = report["characteristics"]["gender"]
    assert g["groups"] == {
        "f": {"n": 10, "tier_shares": {"VIP": 0.2, "Premium": 0.3, "Standard": 0.5, "Basic": 0.0},
              "high_risk_rate": 0.2},
        "m": {"n": 12, "tier_shares": {"VIP": 0.0833, "Premium": 0.0, "Standard": 0.75, "Basic": 0.1667},
              "high_risk_rate": 0.5},
    }
    assert (g["missing"], g["suppressed_groups"], g["suppressed_customers"]) == (2, 1, 3)
    assert (g["high_risk_ratio"], g["lowest_group"], g["highest_group"], g["flagged"]) == (0.4, "f", "m", True)
    assert "x" not in json.dumps(g["groups"])  # a suppressed group's label is not reported
    assert report["min_group_size"] == 10 and report["population"] == 27


def test_equal_high_risk_rates_are_not_flagged_and_a_single_group_has_no_ratio():
    from scoring.fairness import characteristic_report

    kw = {"tier_names": ["VIP", "Basic"], "min_group": 2}
    equal = characteristic_report(["a", "a", "b", "b"], ["VIP"] * 4, ["high", "low", "low", "high"], **kw)
    assert (equal["high_risk_ratio"], equal["flagged"]) == (1.0, False)
    nobody = characteristic_report(["a", "a", "b", "b"], ["VIP"] * 4, ["low"] * 4, **kw)
    assert (nobody["high_risk_ratio"], nobody["flagged"]) == (1.0, False)
    single = characteristic_report(["a", "a", "b"], ["VIP"] * 3, ["high"] * 3, **kw)
    assert (single["high_risk_ratio"], single["flagged"], list(single["groups"])) == (None, False, ["a"])


def test_training_reports_fairness_per_audit_only_group_from_ciphertext_in_memory(seed_population, small_models):
    from profiles.models import PersonalField
    from profiles.services import customer_rectify
    from scoring import services

    ids = seed_population(120, seed=41)
    genders = ["female" if i % 2 else "male" for i in range(114)] + ["other"] * 6
    year = timezone.now().year
    for i, (cid, gender) in enumerate(zip(ids, genders, strict=True)):
        born = str(year - 40) if i < 60 else str(year - 70)
        customer_rectify(customer_id=cid, fields={"audit_gender": gender, "audit_birth_year": born}, actor="test")
    rows = list(PersonalField.objects.filter(field__startswith="audit_"))
    assert len(rows) == 240 and not any(b"male" in bytes(r.ciphertext) for r in rows)

    version = services.model_train(actor="cli", seed=0, horizon_days=180)
    report = version.card["fairness"]
    assert report["min_group_size"] == 10 and report["population"] == 120
    g = report["characteristics"]["gender"]
    assert {k: v["n"] for k, v in g["groups"].items()} == {"female": 57, "male": 57}
    assert (g["suppressed_groups"], g["suppressed_customers"], g["missing"]) == (1, 6, 0)
    for group in g["groups"].values():
        assert set(group["tier_shares"]) == {"VIP", "Premium", "Standard", "Basic"}
        assert abs(sum(group["tier_shares"].values()) - 1.0) < 1e-3
    rates = {k: v["high_risk_rate"] for k, v in g["groups"].items()}
    expected = 1.0 if max(rates.values()) == 0 else round(min(rates.values()) / max(rates.values()), 4)
    assert g["high_risk_ratio"] == pytest.approx(expected, abs=1e-4)
    assert g["flagged"] == (g["high_risk_ratio"] < 0.8)
    ages = report["characteristics"]["birth_year"]  # reported by age band, never by single year
    assert {k: v["n"] for k, v in ages["groups"].items()} == {"35-44": 60, "65 and over": 60}
    assert "other" not in json.dumps(version.card)  # the suppressed group's label is nowhere in the card
    assert "gender" not in {f["name"] for f in version.card["features"]}  # never a feature


# --------------------------------------------------------------------------- explicit outcomes are labels


def test_explicit_outcomes_change_the_next_models_labels(api, seed_population, small_models):
    from profiles.models import Order
    from scoring import services
    from scoring.ml.features import build_matrix
    from scoring.ml.models import predict_all

    ids = seed_population(120, seed=42)
    as_of = timezone.now()
    cutoff = as_of - timedelta(days=180)
    before = set(Order.objects.filter(ordered_at__lt=cutoff).values_list("customer_id", flat=True))
    after = set(Order.objects.filter(ordered_at__gt=cutoff, returned=False).values_list("customer_id", flat=True))
    kept = sorted(before & after, key=str)[:25]  # derived label "not churned": they ordered in the horizon
    assert len(kept) == 25

    first = services.model_train(actor="cli", seed=0, horizon_days=180, as_of=as_of)
    assert first.card["labels"]["explicit"] == 0
    for cid in kept:  # reported through the API, as an internal system would
        response = api.post("/api/v1/outcomes", {"customer": str(cid), "kind": "churned",
                                                 "at": (as_of - timedelta(days=10)).isoformat()}, format="json")
        assert response.status_code == 201, response.content
    second = services.model_train(actor="cli", seed=0, horizon_days=180, as_of=as_of)

    a, b = first.card["labels"], second.card["labels"]
    assert b["by_kind"]["churn"]["explicit"] == 25 and b["explicit"] == 25
    assert b["by_kind"]["churn"]["derived"] == a["by_kind"]["churn"]["derived"] - 25  # the same rows, relabelled
    assert a["by_kind"]["upsell"] == b["by_kind"]["upsell"]
    from scoring import registry
    from scoring.features.aggregates import fact_aggregates

    bundles = [registry.load(registry.ref_of(v)) for v in (first, second)]
    X = build_matrix(fact_aggregates(customer_ids=ids, as_of=as_of), bundles[0].feature_names)
    p1, p2 = (predict_all(bundle, X, explain=False).churn_probability for bundle in bundles)
    assert not np.allclose(p1, p2)
    assert float(np.mean(p2[[ids.index(c) for c in kept]])) > float(np.mean(p1[[ids.index(c) for c in kept]]))


# --------------------------------------------------------------------------- drift and retrain triggers


def _add_recent_big_orders(ids):
    from profiles.models import Order

    now = timezone.now()
    Order.objects.bulk_create([
        Order(customer_id=cid, source="erp", external_digest=f"drift-{uuid.uuid4().hex}-{k}",
              ordered_at=now - timedelta(hours=2 + k), amount=Decimal("5000.00"), margin=Decimal("900.00"))
        for cid in ids for k in range(3)
    ])


def test_drift_above_the_threshold_on_a_top_feature_triggers_a_retrain(seed_population, small_models):
    from scoring import schedule, services
    from scoring.models import DriftReport, ModelVersion, ScheduleRun

    ids = seed_population(120, seed=43)
    first = services.model_train(actor="cli", seed=0, horizon_days=180)
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.ACTIVE
    assert len(first.card["feature_importance"]) == len(first.card["feature_distribution"])
    _add_recent_big_orders(ids)

    run = schedule.scheduled_rescore()
    report = DriftReport.objects.get(job="rescore")
    assert report.model_version_id == first.pk and report.population == 120
    assert report.top_features == schedule_top(first.card)
    assert report.drifted_features and set(report.drifted_features) <= set(report.top_features)
    assert all(report.psi[f] > 0.2 for f in report.drifted_features)
    assert report.retrain_triggered
    assert run.status == ScheduleRun.Status.COMPLETED and run.detail["retrain_trigger"] == "drift"
    retrain = ScheduleRun.objects.get(job="retrain")
    assert (retrain.trigger, retrain.status) == ("drift", ScheduleRun.Status.COMPLETED)
    assert retrain.model_version is not None and retrain.model_version.pk != first.pk
    assert ModelVersion.objects.count() == 2
    assert run.detail.get("rescore_runs")  # then the population was rescored


def schedule_top(card):
    from scoring.drift import top_features

    return top_features(card["feature_importance"], 5)


def test_drift_below_the_threshold_does_not_retrain(seed_population, small_models):
    from scoring import schedule, services
    from scoring.models import DriftReport, ModelVersion, ScheduleRun

    seed_population(120, seed=44)
    services.model_train(actor="cli", seed=0, horizon_days=180)
    run = schedule.scheduled_rescore()
    report = DriftReport.objects.get()
    assert report.drifted_features == [] and not report.retrain_triggered
    assert max(report.psi[f] for f in report.top_features) <= 0.2
    assert run.detail["retrain_trigger"] is None
    assert not ScheduleRun.objects.filter(job="retrain").exists()
    assert ModelVersion.objects.count() == 1


def test_enough_new_explicit_outcomes_trigger_a_retrain(active_model, settings):
    from profiles.services import customer_ingest
    from scoring import schedule, services

    settings.SCORING_RETRAIN_MIN_NEW_OUTCOMES = 3
    cid = customer_ingest(source="crm", external_id="OUT-1", personal={}, actor="test").customer_id
    for _ in range(2):
        services.outcome_record(customer_id=cid, kind="renewed", at=None, source="crm", actor="test")
    assert schedule.retrain_trigger(None) == (None, {"new_outcomes": 2})
    services.outcome_record(customer_id=cid, kind="churned", at=None, source="crm", actor="test")
    assert schedule.retrain_trigger(None) == ("outcomes", {"new_outcomes": 3, "threshold": 3})


def test_psi_is_zero_for_the_same_population_and_large_for_a_shifted_one():
    from scoring.drift import feature_drift, reference_distribution

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 2))
    ref = reference_distribution(X, ["a", "b"])
    assert feature_drift(ref, X, ["a", "b"]) == {"a": 0.0, "b": 0.0}
    shifted = X.copy()
    shifted[:, 1] += 2.0
    psi = feature_drift(ref, shifted, ["a", "b"])
    assert psi["a"] == 0.0 and psi["b"] > 1.0


# --------------------------------------------------------------------------- the schedule


def test_the_in_process_scheduler_runs_a_job_when_its_driven_clock_reaches_the_fire_time():
    from scoring.schedule import Cron, InProcessScheduler, Job

    calls: list[str] = []
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday
    scheduler = InProcessScheduler([
        Job("daily", Cron.parse("0 2 * * *"), lambda: calls.append("daily")),
        Job("weekly", Cron.parse("0 3 * * sun"), lambda: calls.append("weekly")),
    ], clock=lambda: start)
    assert scheduler.tick(start + timedelta(hours=13, minutes=59)) == []  # 01:59 next day
    assert scheduler.tick(start + timedelta(hours=14)) == ["daily"]  # 02:00
    assert scheduler.tick(start + timedelta(hours=14, minutes=30)) == []  # not twice
    assert scheduler.tick(start + timedelta(days=6, hours=15)) == ["daily", "weekly"]  # Sunday 03:00, missed 02:00
    assert calls == ["daily", "daily", "weekly"]
    assert scheduler.jobs[1].next_at == datetime(2026, 12, 20, 3, 0, tzinfo=UTC)


def test_the_in_process_scheduler_runs_the_real_daily_rescore(active_model, seed_population, settings,
                                                              django_capture_on_commit_callbacks):
    from scoring.models import CustomerScore, RescoreRun, ScheduleRun
    from scoring.schedule import InProcessScheduler, default_jobs

    settings.RESCORE_CHUNK_SIZE = 3  # several planning and scoring chunks
    both = seed_population(5, purposes=("automated_scoring", "service_prioritization"))
    scoring_only = seed_population(3, purposes=("automated_scoring",))
    settings.SCORING_RESCORE_SCHEDULE = "30 4 * * *"
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    scheduler = InProcessScheduler(default_jobs(), clock=lambda: start)
    with django_capture_on_commit_callbacks(execute=True):  # the chunk tasks, queued on commit, run here
        assert scheduler.tick(datetime(2026, 12, 8, 4, 30, tzinfo=UTC)) == ["scoring-daily-rescore"]
    run = ScheduleRun.objects.get()
    assert (run.job, run.trigger, run.status) == ("rescore", "schedule", "completed")
    assert run.drift_report is None  # the test bundle's card has no training distribution
    runs = RescoreRun.objects.filter(requester="job:scheduled_rescore")
    assert runs.count() == 2  # both batch purposes
    # planned in chunk tasks, then scored in chunk tasks (in-process in embedded mode): both passes complete
    for rescore in runs:
        assert rescore.status == RescoreRun.Status.COMPLETED
        assert rescore.chunks_planned == rescore.chunks_total == rescore.chunks_done
        assert rescore.done == rescore.total == 8 and rescore.chunks_total == 3
    assert set(CustomerScore.objects.filter(purpose="automated_scoring").values_list("customer_id", flat=True)) \
        == set(both) | set(scoring_only)
    assert set(CustomerScore.objects.filter(purpose="service_prioritization").values_list("customer_id", flat=True)) \
        == set(both)


def test_the_in_process_scheduler_starts_only_for_runserver_when_enabled(settings, monkeypatch):
    from scoring.schedule import should_start_in_process

    settings.SCORING_INPROCESS_SCHEDULER = True
    assert not should_start_in_process(["manage.py", "runserver", "--noreload"])  # never under pytest
    monkeypatch.delitem(sys.modules, "pytest")
    assert should_start_in_process(["manage.py", "runserver", "127.0.0.1:8000", "--noreload"])
    assert not should_start_in_process(["manage.py", "runserver"])  # the autoreloader's parent
    monkeypatch.setenv("RUN_MAIN", "true")
    assert should_start_in_process(["manage.py", "runserver"])  # its serving child
    for command in ("migrate", "train", "rescore", "demo_seed", "shell"):
        assert not should_start_in_process(["manage.py", command])
    settings.SCORING_INPROCESS_SCHEDULER = False
    assert not should_start_in_process(["manage.py", "runserver", "--noreload"])


def test_production_settings_schedule_the_daily_rescore_and_weekly_retrain_on_beat():
    import subprocess

    from tests.foundation.test_settings_and_tokens import ROOT, _production_env

    code = ("from config.celery import app; import json; s = app.conf.beat_schedule; "
            "print(json.dumps({k: [v['task'], str(v['schedule'])] for k, v in s.items()}))")
    env = _production_env(CELERY_BROKER_URL="redis://127.0.0.1:1/0", SCORING_RETRAIN_SCHEDULE="15 4 * * mon")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,  # noqa: S603
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    entries = json.loads(result.stdout.strip().splitlines()[-1])
    assert entries["scoring-daily-rescore"][0] == "scoring.tasks.scheduled_rescore"
    assert entries["scoring-daily-rescore"][1].startswith("<crontab: 0 2 * * *")
    assert entries["scoring-weekly-retrain"][0] == "scoring.tasks.scheduled_retrain"
    assert entries["scoring-weekly-retrain"][1].startswith("<crontab: 15 4 * * mon")
    assert "nightly-rescore" not in entries  # replaced by the scheduled rescore (drift + triggered retrain)


# --------------------------------------------------------------------------- GET /api/v1/models/active


def test_models_active_reports_each_kind_with_window_metrics_baseline_fairness_and_drift(api, active_model):
    from scoring.models import DriftReport

    card = dict(active_model.card)
    card["quality"] = {"churn": {"metric": "auc", "value": 0.81, "baseline": 0.66, "baseline_method": "recency rank",
                                 "floor": 0.6, "status": "ok", "reason": ""}}
    card["labels"] = {"explicit": 4, "derived": 96, "by_kind": {"churn": {"explicit": 4, "derived": 36},
                                                                "upsell": {"explicit": 0, "derived": 30},
                                                                "advocacy": {"explicit": 0, "derived": 30}}}
    card["fairness"] = {"rule": "four-fifths", "threshold": 0.8, "min_group_size": 10, "population": 40,
                        "characteristics": {"gender": {
                            "groups": {"f": {"n": 20, "tier_shares": {"VIP": 0.1}, "high_risk_rate": 0.1},
                                       "m": {"n": 20, "tier_shares": {"VIP": 0.1}, "high_risk_rate": 0.2}},
                            "missing": 0, "suppressed_groups": 0, "suppressed_customers": 0, "high_risk_ratio": 0.5,
                            "lowest_group": "f", "highest_group": "m", "flagged": True}}}
    card["feature_importance"] = {"recency_days": 0.4}
    active_model.card = card
    active_model.save(update_fields=["card"])
    DriftReport.objects.create(model_version=active_model, job="rescore", population=40,
                               psi={"recency_days": 0.31}, top_features=["recency_days"],
                               drifted_features=["recency_days"], max_psi=0.31, retrain_triggered=True)

    response = api.get("/api/v1/models/active")
    assert response.status_code == 200, response.content
    models = {m["kind"]: m for m in response.json()["models"]}
    assert list(models) == ["clv", "churn", "upsell", "advocacy"]
    churn = models["churn"]
    assert set(churn) == {"kind", "version", "model_type", "trained_at", "activated_at", "data_window",
                          "horizon_days", "quality", "metrics", "labels", "fairness", "drift"}
    assert (churn["version"], churn["model_type"], churn["horizon_days"]) == ("test-model-1", "full", 180)
    assert churn["quality"] == {"metric": "auc", "value": 0.81, "baseline": 0.66, "baseline_method": "recency rank",
                                "floor": 0.6, "status": "ok", "reason": ""}
    assert churn["metrics"]["auc"] == pytest.approx(active_model.metrics["churn_auc"])
    assert churn["labels"] == {"explicit": 4, "derived": 36}
    assert churn["fairness"]["characteristics"]["gender"]["flagged"] is True
    assert churn["drift"]["top_features"] == [{"feature": "recency_days", "psi": 0.31, "importance": 0.4}]
    assert churn["drift"]["status"] == "significant" and churn["drift"]["retrain_triggered"] is True
    upsell = models["upsell"]  # no quality block for this kind: its metric, with no baseline
    assert upsell["quality"]["baseline"] is None and upsell["quality"]["status"] == "not_assessed"
    assert upsell["quality"]["value"] == pytest.approx(active_model.metrics["upsell_auc"])
    assert models["clv"]["quality"]["metric"] == "top_decile_share" and models["clv"]["labels"] is None


def test_models_active_with_no_model_is_an_empty_list(api):
    response = api.get("/api/v1/models/active")
    assert response.status_code == 200 and response.json() == {"models": []}


def test_models_active_needs_the_score_read_scope(make_api_client, active_model):
    from rest_framework.test import APIClient

    assert make_api_client(scopes=["outcome:write"]).get("/api/v1/models/active").status_code == 403
    assert make_api_client(scopes=["score:read"]).get("/api/v1/models/active").status_code == 200
    assert APIClient().get("/api/v1/models/active").status_code == 401


def test_models_active_is_in_the_openapi_schema_with_a_typed_response(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/models/active"]["get"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ActiveModelsOutput"}
    assert {"401", "403"} <= set(operation["responses"])
    model = schema["components"]["schemas"]["ActiveModelOutput"]["properties"]
    assert {"version", "trained_at", "data_window", "horizon_days", "quality", "metrics", "fairness", "drift"} <= set(model)


@pytest.mark.parametrize(("value", "band"), [("1980", "45-54"), ("1980-05-01", "45-54"), ("23", "under 25"),
                                             (67, "65 and over"), ("2001", "25-34"), ("n/a", None), (None, None)])
def test_age_like_audit_values_are_reported_by_band(value, band):
    from scoring.fairness import age_band

    assert age_band(value, year=2026) == band


def test_drift_reports_and_schedule_runs_are_listed_read_only_in_the_admin(admin_client, active_model):
    from scoring.models import DriftReport, ScheduleRun

    DriftReport.objects.create(model_version=active_model, job="rescore", population=5, psi={}, max_psi=0.01)
    ScheduleRun.objects.create(job="rescore", trigger="schedule", status="completed")
    for page in ("/admin/scoring/driftreport/", "/admin/scoring/schedulerun/"):
        assert admin_client.get(page).status_code == 200
    assert admin_client.get("/admin/scoring/schedulerun/add/").status_code == 403
