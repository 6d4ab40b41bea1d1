"""Finding M4: 50 wrong passwords in a row on /console/login/ and /admin/login/ were all answered 200.
Now: locked out per account and per client address, the lockout logged and said on the page."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db

LOGINS = ["/console/login/", "/admin/login/"]


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(db):
    group, _ = Group.objects.get_or_create(name="dpo")
    users = {}
    for name in ("alice", "bob", "carol"):
        user = User.objects.create_user(username=name, password=f"{name}-correct-horse-9", is_staff=True,
                                        is_superuser=True)
        user.groups.add(group)
        users[name] = user
    return users


def _login(path: str, username: str, password: str, address: str = "203.0.113.7", client: Client | None = None):
    return (client or Client()).post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("path", LOGINS)
def test_fifty_wrong_passwords_lock_the_account_and_say_so(staff, path, settings, caplog):
    settings.AXES_FAILURE_LIMIT = 5
    caplog.set_level(logging.WARNING, logger="security")
    statuses = [_login(path, "alice", f"wrong-{i}", address=f"198.51.100.{i}").status_code for i in range(50)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert statuses[4:] == [429] * 46  # the fifth failure locks; every later try is refused
    locked = _login(path, "alice", "alice-correct-horse-9", address="198.51.100.200")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page and "locked" in page
    assert "_auth_user_id" not in locked.client.session
    events = [r for r in caplog.records if getattr(r, "event", None) == "login.locked_out"]
    assert events and all(r.path == path for r in events)
    # Another account, from another address, is untouched.
    assert _login(path, "bob", "bob-correct-horse-9", address="192.0.2.50").status_code == 302


@pytest.mark.parametrize("path", LOGINS)
def test_one_address_trying_many_accounts_is_locked_out(staff, path, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for i in range(5):
        _login(path, f"nobody-{i}", "guess", address="203.0.113.9")
    assert _login(path, "carol", "carol-correct-horse-9", address="203.0.113.9").status_code == 429
    assert _login(path, "carol", "carol-correct-horse-9", address="203.0.113.10").status_code == 302


def test_a_successful_sign_in_resets_the_count(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert _login("/console/login/", "bob", "nope").status_code == 200
    assert _login("/console/login/", "bob", "bob-correct-horse-9").status_code == 302
    for _ in range(2):
        assert _login("/console/login/", "bob", "nope", address="203.0.113.99").status_code == 200
    assert _login("/console/login/", "bob", "bob-correct-horse-9", address="203.0.113.98").status_code == 302


def test_neither_account_name_nor_address_is_a_cache_key_or_value(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(4):
        _login("/console/login/", "alice", "wrong", address="203.0.113.77")
    stored = repr(cache._cache) + repr(list(cache._cache.keys()))  # LocMemCache's store
    assert "alice" not in stored and "203.0.113.77" not in stored


def test_the_lockout_counts_the_client_behind_a_trusted_proxy(staff, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for _ in range(3):
        Client().post("/console/login/", {"username": "x", "password": "y"}, REMOTE_ADDR="10.0.0.2",
                      HTTP_X_FORWARDED_FOR="203.0.113.5")
    # The proxy itself is not locked: another client behind it signs in.
    ok = Client().post("/console/login/", {"username": "bob", "password": "bob-correct-horse-9"},
                       REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert ok.status_code == 302
    again = Client().post("/console/login/", {"username": "bob", "password": "bob-correct-horse-9"},
                          REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert again.status_code == 429


def test_sign_in_works_and_still_counts_while_the_shared_cache_is_down(staff, settings, caplog):
    from django.test import override_settings

    settings.AXES_FAILURE_LIMIT = 3
    down = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                        "LOCATION": "redis://127.0.0.1:1/10"}}
    with override_settings(CACHES=down):
        assert _login("/console/login/", "bob", "bob-correct-horse-9", address="192.0.2.61").status_code == 302
        statuses = [_login("/console/login/", "carol", "wrong", address="192.0.2.62").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    assert any(getattr(r, "event", None) == "lockout.cache_unavailable" for r in caplog.records)
