"""Low findings: Cache-Control: no-store on console pages and every API response about a customer; a strict
Content-Security-Policy with no inline script or style anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def _inline_findings(html: str) -> list[str]:
    return [label for pattern, label in INLINE if pattern.search(html)]


def test_no_template_of_the_project_has_inline_script_or_style():
    offenders = {}
    for template in ROOT.glob("*/templates/**/*.html"):
        if ".venv" in template.parts:
            continue
        found = _inline_findings(template.read_text(encoding="utf-8"))
        if found:
            offenders[str(template.relative_to(ROOT))] = found
    assert offenders == {}


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/console/login/", "/me/", "/api/docs/", "/admin/login/"])
def test_pages_carry_a_strict_policy(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = _csp(response)
    assert policy["default-src"] == "default-src 'self'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["style-src"] == "style-src 'self'"
    assert policy["object-src"] == "object-src 'none'" and policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    if path != "/admin/login/":  # Django's own admin templates are outside this project
        assert _inline_findings(response.content.decode()) == []


def test_console_pages_render_without_inline_script_or_style(dpo_client):
    for path in ["/console/", "/console/decisions/", "/console/access/", "/console/consent/", "/console/requests/",
                 "/console/governance/", "/console/models/", "/console/rescore-runs/", "/console/chain/",
                 "/console/records-of-processing/", "/console/breaches/", "/console/reviews/"]:
        response = dpo_client.get(path)
        assert response.status_code == 200, path
        assert _inline_findings(response.content.decode()) == [], path
        assert "no-store" in response["Cache-Control"], path


def test_the_console_stylesheet_is_a_static_file():
    css = (ROOT / "console" / "static" / "console" / "console.css").read_text()
    assert "--accent" in css and "tr.overdue" in css


def test_api_answers_about_customers_are_no_store(api):
    from tests.scoring.helpers import customer_with_history

    cid = customer_with_history()
    for response in [api.get(f"/api/v1/customers/{cid}/consents"), api.get("/api/v1/customers/lookup?email=x@y.z"),
                     api.post("/api/v1/ingest/customers/", {"records": []}, format="json"),
                     api.get("/api/v1/purposes")]:
        assert "no-store" in response["Cache-Control"], response.status_code


def test_self_service_and_login_pages_are_no_store(client):
    for path in ["/me/", "/console/login/", "/admin/login/"]:
        assert "no-store" in client.get(path)["Cache-Control"], path


def test_the_lockout_page_is_no_store_and_carries_the_policy(settings):
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client

    cache.clear()
    settings.AXES_FAILURE_LIMIT = 1
    User.objects.create_user(username="erin", password="erin-correct-horse-9")
    Client().post("/console/login/", {"username": "erin", "password": "x"}, REMOTE_ADDR="192.0.2.90")
    locked = Client().post("/console/login/", {"username": "erin", "password": "x"}, REMOTE_ADDR="192.0.2.90")
    cache.clear()
    assert locked.status_code == 429
    assert "no-store" in locked["Cache-Control"]
    assert "script-src 'self'" in locked["Content-Security-Policy"]
