"""Bench-only Django settings: the base settings, production-like behaviour, fixed bench keys.

Used by every Django-side step of the harness (loaders, gunicorn, management commands run as child
processes). It refuses any database that is not a bench database (``bench_*`` on PostgreSQL, a file under
``var/bench/`` on SQLite), so a benchmark can never touch the developer's or the test database.
"""

from __future__ import annotations

import base64
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import BASE_DIR, DATABASES, REST_FRAMEWORK, env, parse_kek_keys

_BENCH_VAR = Path(env("BENCH_VAR_DIR", default=str(BASE_DIR / "var" / "bench")))

DEBUG = False
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdefghij"
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

# Synthetic data only: fixed keys so that loaders, server and commands of one run agree.
KEK_KEYS = parse_kek_keys("bench1:" + base64.urlsafe_b64encode(b"k" * 32).decode())
KEK_ACTIVE_ID = "bench1"
BLIND_INDEX_KEY = b"bench-blind-index-key-32-bytes!!"
AUDIT_SIGNING_KEY = b"b" * 32
AUDIT_CHECKPOINT_DIR = env("AUDIT_CHECKPOINT_DIR", default=str(_BENCH_VAR / "checkpoints" / "default"))
EXPORT_DIR = str(_BENCH_VAR / "exports")
MODEL_ARTIFACT_DIR = str(_BENCH_VAR / "models")
VAR_DIR = _BENCH_VAR

# Batch work runs in the calling process (the harness measures it there) unless a section gives its own
# broker (section 1: the server queues audit sealing to a real Celery worker, as in production).
CELERY_BROKER_URL = env("BENCH_CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# A section's own queue name (bench.fleet: its workers never see a message an earlier run left on the broker).
if env("BENCH_CELERY_QUEUE", default=""):
    CELERY_TASK_DEFAULT_QUEUE = env("BENCH_CELERY_QUEUE")
CACHES = (
    {"default": env.cache("BENCH_CACHE_URL")} if env("BENCH_CACHE_URL", default="")
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench"}}
)
# Throttles still run (same cost for the score and the bare endpoint) but never refuse a benchmark request.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"client": "100000000/min", "anon": "100000000/min", "otp": "100000000/min"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOG_LEVEL = env("BENCH_LOG_LEVEL", default="WARNING")
LOGGING["root"]["level"] = LOG_LEVEL  # noqa: F405

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _name = Path(str(_db["NAME"])).resolve()
    if _BENCH_VAR.resolve() not in _name.parents:
        raise ImproperlyConfigured("bench settings need a SQLite file under var/bench/ (set DATABASE_URL)")
elif not str(_db.get("NAME", "")).startswith("bench_"):
    raise ImproperlyConfigured("bench settings need a database named bench_* (set DATABASE_URL)")
_db["CONN_MAX_AGE"] = 600 if _db["ENGINE"] != "django.db.backends.sqlite3" else 0
