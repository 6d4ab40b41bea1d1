"""Console: the model governance page flags a fairness ratio below 0.8 (four-fifths rule) and shows drift and
the training history; DPO only."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _group(n, rate):
    return {"n": n, "tier_shares": {"VIP": 0.1, "Premium": 0.2, "Standard": 0.6, "Basic": 0.1}, "high_risk_rate": rate}


def _model(ratio_groups):
    from scoring.models import ModelVersion

    lo, hi = ratio_groups
    ratio = round(lo / hi, 4)
    card = {"data_window": {"horizon_days": 180},
            "labels": {"explicit": 3, "derived": 97, "by_kind": {"churn": {"explicit": 3, "derived": 47}}},
            "fairness": {"characteristics": {"gender": {
                "groups": {"f": _group(40, lo), "m": _group(44, hi)}, "missing": 1, "suppressed_groups": 1,
                "suppressed_customers": 4, "high_risk_ratio": ratio, "lowest_group": "f", "highest_group": "m",
                "flagged": ratio < 0.8}}}}
    return ModelVersion.objects.create(version="m-console-1", status=ModelVersion.Status.ACTIVE, sha256="0" * 64,
                                       card=card, metrics={"churn_auc": 0.8, "upsell_auc": 0.7})


def test_a_ratio_below_four_fifths_is_flagged_with_drift_and_history_shown(dpo_client):
    from scoring.models import DriftReport, ScheduleRun

    version = _model((0.1, 0.25))
    DriftReport.objects.create(model_version=version, job="rescore", population=88, psi={"recency_days": 0.34},
                               top_features=["recency_days"], drifted_features=["recency_days"], max_psi=0.34,
                               retrain_triggered=True)
    ScheduleRun.objects.create(job="retrain", trigger="drift", status="completed", model_version=version,
                               activated=True, seconds=12.5, detail={"outcome": "activated",
                                                                     "labels": {"explicit": 3, "derived": 97}})
    response = dpo_client.get("/console/models/governance/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Flagged:" in html and "0.40 (below 0.8)" in html
    assert "recency_days 0.340" in html and "significant" in html and "triggered" in html
    assert "retrain" in html and "drift" in html and "3 / 97" in html


def test_a_ratio_at_or_above_four_fifths_is_not_flagged(dpo_client):
    _model((0.2, 0.24))
    html = dpo_client.get("/console/models/governance/").content.decode()
    assert "Flagged:" not in html and "0.83" in html


def test_the_model_governance_page_is_for_the_dpo_only(client):
    response = client.get("/console/models/governance/")
    assert response.status_code in (302, 403)
