"""Info findings: schema, API docs and admin were public in production; status links lived 183 days."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from tests.foundation.test_settings_and_tokens import _manage, _production_env

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_authentication_unless_exposed(make_api_client, dpo_client, settings, path):
    from django.test import Client

    client = Client()  # anonymous (dpo_client is the signed-in one)
    settings.API_DOCS_PUBLIC = False
    anonymous = client.get(path)
    assert anonymous.status_code in (401, 403)
    assert make_api_client(scopes=["score:read"]).get(path).status_code == 200
    assert dpo_client.get(path).status_code == 200
    settings.API_DOCS_PUBLIC = True
    assert client.get(path).status_code == 200


def test_production_hides_docs_and_admin_by_default_and_exposes_them_on_request():
    script = ("from django.conf import settings; from django.urls import resolve, Resolver404\n"
              "try:\n    resolve('/admin/'); admin = 'admin-on'\nexcept Resolver404:\n    admin = 'admin-off'\n"
              "print(admin, settings.API_DOCS_PUBLIC)")
    hidden = _manage("shell", "-c", script, env=_production_env())
    assert hidden.returncode == 0, hidden.stderr[-2000:]
    assert hidden.stdout.split()[-2:] == ["admin-off", "False"]
    shown = _manage("shell", "-c", script, env=_production_env(ADMIN_ENABLED="true", API_DOCS_PUBLIC="true"))
    assert shown.stdout.split()[-2:] == ["admin-on", "True"]


def test_status_links_live_for_the_statutory_period_plus_a_margin(settings):
    from config.errors import NotFound
    from subject_rights import links

    assert settings.DSR_STATUS_LINK_TTL_DAYS == 106
    request_id = uuid.uuid4()
    token = links.status_token(request_id)
    with freeze_time(timezone.now() + timedelta(days=105)):
        assert links.status_token_read(token) == request_id
    with freeze_time(timezone.now() + timedelta(days=107)), pytest.raises(NotFound):
        links.status_token_read(token)
    settings.DSR_STATUS_LINK_TTL_DAYS = 30
    with freeze_time(timezone.now() + timedelta(days=31)), pytest.raises(NotFound):
        links.status_token_read(token)
