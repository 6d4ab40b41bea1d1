"""``demo_seed`` and ``demo_credentials``."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from consent.demo import CONSENT_SHARE, MARKETING_SHARE, build_plan
from consent.models import ConsentEvent, ConsentStateCurrent

PURPOSES = ("automated_scoring", "service_prioritization", "marketing")


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), verbosity=0)
    return out.getvalue()


def test_demo_plan_is_deterministic_and_grants_consent_to_about_80_percent():
    plan = build_plan(customers=800, seed=42)
    again = build_plan(customers=800, seed=42)
    assert [c.personal for c in plan.customers] == [c.personal for c in again.customers]
    assert [c.consents for c in plan.customers] == [c.consents for c in again.customers]
    assert build_plan(customers=5, seed=43).customers[0].personal != plan.customers[0].personal
    asked = sum(1 for c in plan.customers if c.consent_now("automated_scoring") is not None) / 800
    assert abs(asked - CONSENT_SHARE) < 0.05
    marketing = sum(1 for c in plan.customers if c.consent_now("marketing") is not None) / 800
    assert abs(marketing - MARKETING_SHARE) < 0.06
    assert {c.locale for c in plan.customers} == {"en_GB", "de_DE", "nl_NL", "pl_PL", "fi_FI", "sv_SE"}
    assert len({c.personal["email"] for c in plan.customers}) == 800
    assert len({c.personal["phone"] for c in plan.customers}) == 800
    assert {c.segment for c in plan.customers} == {"vip", "regular", "occasional"}
    assert any(c.churner for c in plan.customers) and plan.expected_withdrawn("automated_scoring") > 0
    vip_spend = [sum(float(o["amount"]) for o in c.orders) for c in plan.customers if c.segment == "vip"]
    other_spend = [sum(float(o["amount"]) for o in c.orders) for c in plan.customers if c.segment != "vip"]
    assert sum(vip_spend) / len(vip_spend) > 5 * sum(other_spend) / len(other_spend)
    assert all(c.personal["email"].split("@")[1] in {"example.com", "example.org", "example.net"}
               for c in plan.customers)


@pytest.mark.django_db
def test_demo_seed_writes_the_planned_customers_facts_and_consents_through_the_services():
    from profiles.models import Order, Ticket
    from profiles.selectors import customer_count

    output = _run("demo_seed", "--customers", "30", "--seed", "7")
    plan = build_plan(customers=30, seed=7)
    assert customer_count() == 30
    assert Order.objects.count() == plan.count("orders")
    assert Ticket.objects.count() == plan.count("tickets")
    assert ConsentEvent.objects.count() == sum(len(c.consents) for c in plan.customers)
    for purpose in PURPOSES:
        granted = ConsentStateCurrent.objects.filter(purpose__code=purpose, granted=True).count()
        withdrawn = ConsentStateCurrent.objects.filter(purpose__code=purpose, granted=False).count()
        assert (granted, withdrawn) == (plan.expected_granted(purpose), plan.expected_withdrawn(purpose))
    # Free text went through Presidio: no e-mail address or phone number of a demo customer is stored.
    stored = " ".join(Ticket.objects.values_list("text_pseudonymized", flat=True))
    for c in plan.customers:
        assert c.personal["email"] not in stored
        assert c.personal["phone"] not in stored
    assert "<EMAIL_1>" in stored or "<PERSON_1>" in stored
    assert "customers      30" in output

    assert "nothing to do" in _run("demo_seed", "--customers", "30", "--seed", "8", "--if-empty")
    assert customer_count() == 30
    assert ConsentEvent.objects.count() == sum(len(c.consents) for c in plan.customers)


@pytest.mark.django_db
def test_demo_credentials_are_idempotent_and_the_printed_token_and_password_work(client, customer, grant):
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    from audit.models import ApiClient

    grant(customer)
    first = _run("demo_credentials", "--port", "8123")
    for url in ("http://127.0.0.1:8123/console/", "http://127.0.0.1:8123/me/", "http://127.0.0.1:8123/api/docs/"):
        assert url in first
    token = re.search(r"API token\s+(\S+)", first).group(1)
    password = re.search(r"DPO login\s+dpo / (\S+)", first).group(1)
    assert f"/api/v1/customers/{customer}/score?purpose=automated_scoring" in first
    dpo = User.objects.get(username="dpo")
    assert dpo.check_password(password) and dpo.groups.filter(name="dpo").exists()
    assert User.objects.get(username="admin").is_superuser

    second = _run("demo_credentials", "--port", "8123")
    assert re.search(r"API token\s+(\S+)", second).group(1) == token
    assert re.search(r"DPO login\s+dpo / (\S+)", second).group(1) == password
    assert ApiClient.objects.filter(name="demo-support-desk", revoked_at__isnull=True).count() == 1
    assert User.objects.filter(username="dpo").count() == 1
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/purposes").status_code == 200


@pytest.mark.django_db
def test_demo_credentials_differ_per_checkout_secret_and_replace_any_other_token(client, customer, grant, settings):
    from rest_framework.test import APIClient

    from audit.api_clients import api_client_rotate

    grant(customer)
    first = re.search(r"API token\s+(\S+)", _run("demo_credentials")).group(1)
    stray = api_client_rotate(name="demo-support-desk", actor="test").token
    assert re.search(r"API token\s+(\S+)", _run("demo_credentials")).group(1) == first
    settings.SECRET_KEY = "another-checkout-" + "x" * 40
    other = re.search(r"API token\s+(\S+)", _run("demo_credentials")).group(1)
    assert other != first
    for token, status in ((stray, 401), (first, 401), (other, 200)):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        assert api.get("/api/v1/purposes").status_code == status


@pytest.mark.django_db
def test_the_banner_names_a_demo_customer_email_where_mail_lands_and_how_to_stop(client, customer, grant):
    from audit.models import AccessRecord
    from profiles.selectors import customer_personal_data

    grant(customer)
    out = _run("demo_credentials", "--port", "8123")
    email = customer_personal_data(customer_id=customer)["email"]
    assert email and f"http://127.0.0.1:8123/me/ with the e-mail {email}" in out
    assert "E-mails (one-time codes, outcomes) land in:" in out and "Ctrl+C" in out
    assert AccessRecord.objects.filter(subject=customer, what="demo_credentials.email").count() == 1
