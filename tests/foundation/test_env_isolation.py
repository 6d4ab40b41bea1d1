"""`make run` then `make test` in one clone: the tests neither read nor depend on the clone's .env or the shell.

Each test builds a throw-away clone (a real copy of ``config/``, so that BASE_DIR is the clone; the other
packages are linked) holding a ``.env`` like the one ``make run`` writes, and starts Django in it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PROCESS_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "VIRTUAL_ENV", "TMPDIR")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    target = tmp_path / "clone"
    target.mkdir()
    shutil.copytree(ROOT / "config", target / "config", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "manage.py", target / "manage.py")  # a linked script would run from the real repo
    for entry in ROOT.iterdir():
        if entry.name not in {"config", "manage.py", ".env", ".git"} and (entry.is_dir() or entry.suffix == ".py"):
            (target / entry.name).symlink_to(entry)
    keygen = subprocess.run([sys.executable, "-m", "config.keygen"], cwd=target, capture_output=True, text=True,  # noqa: S603
                            check=True, env=_env(target))
    (target / ".env").write_text(
        keygen.stdout + 'TIER_SHARES={"VIP": 1.0}\nSCORING_CURRENCY=XDN\nEMAIL_URL=smtp://mail.invalid:25\n'
        "API_THROTTLE_RATE=1/min\n"
    )
    return target


def _env(clone: Path, **extra: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PROCESS_VARIABLES if k in os.environ}
    env["PYTHONPATH"] = str(clone)
    env.update(extra)
    return env


_SHOW = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'tiers': settings.TIER_SHARES, 'currency': settings.SCORING_CURRENCY, "
    "'email': settings.EMAIL_BACKEND, 'rate': settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['client'], "
    "'log_level': settings.LOG_LEVEL, 'base_dir': str(settings.BASE_DIR)}))"
)


def test_test_settings_ignore_the_clones_dotenv_and_stray_variables(clone):
    env = _env(clone, DJANGO_SETTINGS_MODULE="config.settings.test", SCORING_CURRENCY="XAU", LOG_LEVEL="DEBUG",
               TIER_SHARES='{"Basic": 1.0}')
    result = subprocess.run([sys.executable, "-c", _SHOW], cwd=clone, env=env, capture_output=True, text=True,  # noqa: S603
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["base_dir"] == str(clone)  # the clone's settings, with its .env beside them
    assert shown["tiers"] == {"VIP": 0.10, "Premium": 0.20, "Standard": 0.60, "Basic": 0.10}
    assert shown["currency"] == "EUR"
    assert shown["log_level"] == "INFO"
    assert shown["email"] == "django.core.mail.backends.locmem.EmailBackend"
    assert shown["rate"] == "100000/min"


def test_the_documented_ci_variables_still_reach_the_test_settings(clone):
    show = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.DATABASES['default']['NAME'], settings.CELERY_BROKER_URL)")
    env = _env(clone, DJANGO_SETTINGS_MODULE="config.settings.test",
               DATABASE_URL=f"sqlite:///{clone}/ci.sqlite3", CELERY_BROKER_URL="memory://")
    result = subprocess.run([sys.executable, "-c", show], cwd=clone, env=env, capture_output=True, text=True,  # noqa: S603
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [f"{clone}/ci.sqlite3", "memory://"]


def test_production_refusal_is_not_hidden_by_a_dotenv_when_env_file_is_empty(clone):
    env = _env(clone, DJANGO_SETTINGS_MODULE="config.settings.production", ENV_FILE="",
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres", ALLOWED_HOSTS="scoring.example.com")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=clone, env=env, capture_output=True,  # noqa: S603
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_production_reads_the_file_env_file_names(clone):
    env = _env(clone, DJANGO_SETTINGS_MODULE="config.settings.production", ENV_FILE=str(clone / ".env"),
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres", ALLOWED_HOSTS="scoring.example.com",
               CACHE_URL="redis://127.0.0.1:6379/1", CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
               SITE_URL="https://scoring.example.com")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c",  # noqa: S603
                             "from django.conf import settings; print(settings.SCORING_CURRENCY)"],
                            cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "XDN"


def test_base_settings_still_read_the_dotenv_for_the_demo(clone):
    env = _env(clone, DJANGO_SETTINGS_MODULE="config.settings.base")
    result = subprocess.run([sys.executable, "-c", _SHOW], cwd=clone, env=env, capture_output=True, text=True,  # noqa: S603
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["tiers"] == {"VIP": 1.0}
    assert shown["currency"] == "XDN"
