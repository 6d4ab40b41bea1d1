"""Any shape of customer data end to end: the example files of docs/examples are imported with
``manage.py import_csv``, trained with ``manage.py train`` and scored through the score API.

- attribute-only (a CRM table with an explicit churn flag): churn from the table model, the CLV estimated
  from the monthly charges and that churn risk, upsell/advocacy unavailable (``model_unavailable``);
- orders only: the full models, each kind served only when it passes its quality floor;
- both: the full models plus the churn model of the CRM table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.scoring.helpers import SCORING, SMALL_CONFIG_KW

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
END = "2026-11-30"
KINDS = {"clv", "churn", "upsell", "advocacy"}


@pytest.fixture
def small_models(settings):
    settings.SCORING_MODEL_CONFIG = SMALL_CONFIG_KW


def _import(folder: str, *, orders: bool) -> None:
    base = EXAMPLES / folder
    call_command("import_csv", "--source", "crm", str(base / "customers.csv"), "--inline", verbosity=0,
                 stdout=StringIO())
    if orders:
        call_command("import_csv", "--source", "erp", str(base / "orders.csv"), "--inline", verbosity=0,
                     stdout=StringIO())
    call_command("import_csv", "--source", "consent", str(base / "consents.csv"), "--inline", verbosity=0,
                 stdout=StringIO())


def _score(api, external_id: str) -> dict:
    response = api.post("/api/v1/score", {"purpose": SCORING, "source": "crm", "external_id": external_id},
                        format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _consistent(body: dict) -> set[str]:
    """Each kind is either served (a value and an explanation) or listed as unavailable (null, no explanation)."""
    unavailable = {u["kind"] for u in body["unavailable"]}
    assert all(u["code"] == "model_unavailable" and u["reason"] for u in body["unavailable"])
    fields = {"clv": body["clv"], "churn": body["churn_probability"], "upsell": body["upsell"],
              "advocacy": body["advocacy"]}
    for kind in KINDS:
        assert (fields[kind] is None) == (kind in unavailable), kind
        assert (body["explanation"][kind] is None) == (kind in unavailable), kind
    assert body["explanation"]["tiers"] == body["tier_basis"]
    return KINDS - unavailable


def test_attribute_only_data_imports_trains_and_scores(api, small_models):
    from scoring.models import ModelVersion

    _import("attributes_only", orders=False)
    out = StringIO()
    call_command("train", "--from-attributes", "--label", "churned", stdout=out)
    version = ModelVersion.objects.get(kind="churn_table")
    assert version.status == "active", out.getvalue()
    q = version.card["quality"]
    assert q["churn"]["status"] == "ok" and q["churn"]["value"] >= 0.6
    assert q["clv"]["status"] == "ok" and q["clv"]["metric"] == "estimate"
    assert q["upsell"]["status"] == q["advocacy"]["status"] == "not_trained"
    assert "churn" in out.getvalue() and "not_trained" in out.getvalue()

    body = _score(api, "A0000")
    assert _consistent(body) == {"clv", "churn"}
    assert body["tier_basis"]["method"] == "clv_estimate_from_attributes"
    clv = body["explanation"]["clv"]
    assert {c["feature"] for c in clv["contributions"]} == {"monthly_charges", "churn_probability"}
    # additive: baseline + contributions = output = the served amount
    assert clv["baseline"] + sum(c["contribution"] for c in clv["contributions"]) + clv["other_features"] == \
        pytest.approx(clv["output"], abs=1e-4)
    assert float(body["clv"]["amount"]) == pytest.approx(clv["output"], abs=0.01)
    assert body["clv"]["horizon_days"] == 365
    churn = body["explanation"]["churn"]
    assert churn["output"] == pytest.approx(100 * body["churn_probability"], abs=0.01)
    assert body["risk_level"] in {"low", "medium", "high"}
    # a customer with higher monthly charges and the same churn risk is worth more: tiers are not a tie-break
    other = _score(api, "A0001")
    assert float(other["clv"]["amount"]) != float(body["clv"]["amount"])

    # the nightly batch scores attribute-only customers the same way: every one, tiers at the configured shares
    from collections import Counter

    from scoring import services
    from scoring.models import CustomerScore

    run = services.rescore_run_start(purpose=SCORING, requester="job:test", chunk_size=200)
    for ids in services.rescore_pending_chunks(run_id=run.id):
        services.rescore_chunk(run_id=run.id, customer_ids=ids)
    rows = CustomerScore.objects.filter(purpose=SCORING)
    assert rows.count() == 500
    assert Counter(rows.values_list("tier", flat=True)) == {"VIP": 50, "Premium": 100, "Standard": 300,
                                                            "Basic": 50}
    assert all(e["upsell"] is None and e["advocacy"] is None and e["clv"]["output"] >= 0
               for e in rows.values_list("explanation", flat=True))


def test_orders_only_data_imports_trains_and_scores(api, small_models):
    from scoring.models import ModelVersion

    _import("orders_only", orders=True)
    out = StringIO()
    call_command("train", "--as-of", END, stdout=out)
    version = ModelVersion.objects.get(kind="full")
    assert version.status == "active", out.getvalue()
    q = version.card["quality"]
    assert set(q) == KINDS
    served = {k for k, e in q.items() if e["status"] == "ok"}
    body = _score(api, "T0001")
    assert _consistent(body) == served
    # The validation hold-out follows the (random) pseudonyms: on this small example the CLV model beats the
    # historical-spend ranking in most runs, not all. Either way the answer says what the tiers rank by.
    if q["clv"]["status"] == "ok":
        assert body["tier_basis"]["method"] == "clv_model"
        assert body["clv"]["horizon_days"] == version.card["data_window"]["horizon_days"]
    else:
        assert body["tier_basis"]["method"] == "historical_spend" and body["clv"] is None


def test_both_shapes_together_import_train_and_score(api, small_models):
    from scoring.models import ModelVersion

    _import("both", orders=True)
    call_command("train", "--as-of", END, stdout=StringIO())
    call_command("train", "--from-attributes", "--label", "churned", stdout=StringIO())
    full = ModelVersion.objects.get(kind="full")
    table = ModelVersion.objects.get(kind="churn_table")
    assert full.status == "active"
    body = _score(api, "B0001")
    served = _consistent(body)
    # The validation hold-out follows the (random) pseudonyms, so on this small example the CLV model beats
    # the historical-spend ranking in some runs and not in others: either way the answer must say which.
    clv_quality = full.card["quality"]["clv"]["status"]
    assert ("clv" in served) == (clv_quality == "ok")
    if clv_quality != "ok":
        assert [u["kind"] for u in body["unavailable"]].count("clv") == 1
    if table.status == "active":  # churn comes from the CRM table's model when it passed its floor
        assert body["model_versions"]["churn"] == table.version
        assert "churn" in served
    assert body["model_versions"]["clv"] == full.version


def test_a_short_history_fits_the_horizon_or_is_refused_with_the_days(seed_population, small_models, settings):
    from django.core.management.base import CommandError

    from scoring import services
    from scoring.models import ModelVersion

    seed_population(120, days=300)  # 300 days of history: 60 days of calibration + 365 do not fit
    version = services.model_train(actor="cli", horizon_days=365, activate=False)
    window = version.card["data_window"]
    assert window["horizon_fitted"] is True and window["horizon_requested_days"] == 365
    assert 30 <= window["horizon_days"] <= 300 - 60 and window["horizon_days"] == window["history_days"] - 60
    assert version.card["data_window"]["horizon_days"] == version.card["data_window"]["horizon_days"]

    settings.SCORING_MIN_HORIZON_DAYS = 280  # now no horizon fits: a clear refusal through the CLI
    before = ModelVersion.objects.count()
    with pytest.raises(CommandError) as err:
        call_command("train", stdout=StringIO())
    text = str(err.value)
    assert text.startswith("history_too_short:") and "needs at least 340 days" in text
    assert f"covers {window['history_days']} days" in text
    assert ModelVersion.objects.count() == before


def test_a_model_at_chance_is_refused_even_as_the_first_model_and_the_kind_is_unavailable(
        api, active_model, small_models):
    """Noise labels: a churn table whose flag is a coin toss gives AUC ~0.5; it is refused with no previous
    churn model (forced or not), and a full version whose churn is below the floor serves churn as
    model_unavailable while its other kinds are served."""
    import random

    from config.errors import Conflict
    from profiles.services import customer_ingest
    from scoring import registry, services
    from scoring.models import ModelVersion
    from tests.scoring.helpers import ACTOR, customer_with_history, grant

    rng = random.Random(3)
    # 1,200 rows: the holdout (a stratified quarter, whose rows depend on the customers' random ids) must be
    # large enough that a coin toss cannot pass the 0.60 floor by luck (with 300 rows, ~75 held out, its AUC
    # exceeded 0.60 in about one run in fourteen; with 300 held out, about one in six hundred)
    for i in range(1200):
        cid = customer_ingest(source="crm", external_id=f"NOISE-{i}", personal={}, actor=ACTOR,
                              attributes={"plan": rng.choice(["a", "b", "c"]), "seats": rng.randint(1, 50),
                                          "churned": rng.random() < 0.4},
                              feature_attributes=["plan", "seats"]).customer_id
        grant(cid)
    version = services.model_train_from_attributes(actor="cli", label="churned")
    version.refresh_from_db()
    assert version.status == "candidate"
    assert version.card["quality"]["churn"]["status"] in {"below_floor", "below_baseline"}
    with pytest.raises(Conflict) as err:
        services.model_activate(version=version.version, force=True, actor="cli")
    assert err.value.code == "model_below_floor"
    assert not ModelVersion.objects.filter(kind="churn_table", status="active").exists()

    # the active full version's churn below the floor: churn is served as unavailable, the rest as before
    active_model.card = {**active_model.card, "quality": {
        **active_model.card["quality"],
        "churn": {**active_model.card["quality"]["churn"], "value": 0.5, "status": "below_floor",
                  "reason": "The churn model's AUC 0.500 is below the quality floor 0.60."}}}
    active_model.save(update_fields=["card"])
    registry.cache_clear()
    cid = customer_with_history()
    body = api.get(f"/api/v1/customers/{cid}/score", {"purpose": SCORING}).json()
    assert body["unavailable"] == [{"kind": "churn", "code": "model_unavailable",
                                    "reason": "The churn model's AUC 0.500 is below the quality floor 0.60."}]
    assert body["churn_probability"] is None and body["explanation"]["churn"] is None
    assert body["risk_level"] == "unavailable"
    assert body["clv"] is not None and body["tier_basis"]["method"] == "clv_model"
    from tests.scoring.helpers import decisions_for

    [decision] = decisions_for(cid)
    assert decision.outputs["churn_probability"] is None


def test_without_a_clv_model_tiers_fall_back_to_historical_spend(api, active_model):
    from scoring import registry

    active_model.card = {**active_model.card, "quality": {
        **active_model.card["quality"],
        "clv": {**active_model.card["quality"]["clv"], "status": "below_baseline",
                "reason": "Historical spend ranks better."}}}
    active_model.save(update_fields=["card"])
    registry.cache_clear()
    from tests.scoring.helpers import customer_with_history

    cid = customer_with_history(orders=5)
    body = api.get(f"/api/v1/customers/{cid}/score", {"purpose": SCORING}).json()
    assert body["clv"] is None and body["clv_score"] is None
    assert [u["kind"] for u in body["unavailable"]] == ["clv"]
    assert body["tier_basis"]["method"] == "historical_spend"
    assert "historical spend" in body["explanation"]["tiers"]["text"]
    assert body["tier"]


def test_the_activation_gate_refuses_a_version_whose_every_kind_fails(synthetic_artifact, db):
    from config.errors import Conflict
    from scoring import services
    from tests.scoring.helpers import register_model

    v = register_model(synthetic_artifact, version="weak-1", active=False)
    v.card = {**v.card, "quality": {k: {**e, "status": "below_floor", "reason": f"{k} weak"}
                                    for k, e in v.card["quality"].items()}}
    v.save(update_fields=["card"])
    with pytest.raises(Conflict) as err:
        services.model_activate(version="weak-1", actor="cli")
    assert err.value.code == "model_below_floor"
    v.refresh_from_db()
    assert v.status == "candidate"
    assert datetime.now(UTC)  # nothing else changed


def test_the_console_model_page_shows_model_and_baseline_side_by_side_with_a_warning(dpo_client, active_model):
    from django.urls import reverse

    from scoring import registry

    active_model.card = {**active_model.card, "quality": {
        **active_model.card["quality"],
        "upsell": {**active_model.card["quality"]["upsell"], "value": 0.55, "status": "below_floor",
                   "reason": "The upsell model's AUC 0.550 is below the quality floor 0.60."}}}
    active_model.save(update_fields=["card"])
    registry.cache_clear()
    response = dpo_client.get(reverse("console:model-overview"))
    assert response.status_code == 200
    [q] = response.context["quality"]
    rows = {r["kind"]: r for r in q["rows"]}
    assert rows["churn"]["value"] == active_model.card["quality"]["churn"]["value"]
    assert rows["churn"]["baseline"] == active_model.card["quality"]["churn"]["baseline"]
    assert rows["churn"]["warning"] == "" and rows["upsell"]["warning"].startswith("Not served (below_floor)")
    html = response.content.decode()
    assert "Quality: model against naive baseline" in html
    assert "recency rank (days since the last order)" in html
    assert "⚠ Not served (below_floor)" in html


def test_attribute_only_data_without_monthly_charges_serves_churn_and_ranks_tiers_naively(api, small_models):
    import random

    from profiles.services import customer_ingest
    from scoring import services
    from tests.scoring.helpers import ACTOR, grant

    rng = random.Random(7)
    for i in range(400):
        plan = rng.choice(["basic", "pro", "enterprise"])
        seats = rng.randint(1, 50)
        risk = {"basic": 0.8, "pro": 0.4, "enterprise": 0.1}[plan] - seats / 250
        cid = customer_ingest(source="crm", external_id=f"NOMRR-{i}", personal={}, actor=ACTOR,
                              attributes={"plan": plan, "seats": seats, "total_spend": seats * 100,
                                          "churned": rng.random() < risk},
                              feature_attributes=["plan", "seats", "total_spend"]).customer_id
        grant(cid)
    version = services.model_train_from_attributes(actor="cli", label="churned")
    version.refresh_from_db()
    assert version.status == "active"
    assert version.card["quality"]["clv"]["status"] == "not_trained"
    body = _score(api, "NOMRR-3")
    assert _consistent(body) == {"churn"}
    assert [u["kind"] for u in body["unavailable"]] == ["clv", "upsell", "advocacy"]
    assert body["tier_basis"]["method"] == "historical_spend"
    assert body["clv"] is None and body["churn_probability"] is not None
