"""Test settings: fixed test keys, fast hashing, real database from DATABASE_URL when set."""

from __future__ import annotations

import base64
import tempfile

from . import isolation

isolation.enable()  # before base is imported: no .env, no stray variables (see isolation.py)

from .base import *  # noqa: E402, F403
from .base import DATABASES, REST_FRAMEWORK, env, parse_kek_keys  # noqa: E402

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
KEK_KEYS = parse_kek_keys(
    "test1:" + base64.urlsafe_b64encode(b"1" * 32).decode() + ",test2:" + base64.urlsafe_b64encode(b"2" * 32).decode()
)
KEK_ACTIVE_ID = "test2"
BLIND_INDEX_KEY = b"blind-index-test-key-32-bytes!!!"
AUDIT_SIGNING_KEY = b"t" * 32
_tmp = tempfile.mkdtemp(prefix="scoring-test-")
AUDIT_CHECKPOINT_DIR = env("AUDIT_CHECKPOINT_DIR", default=f"{_tmp}/checkpoints")
AUDIT_ALLOW_TRUNCATE = True  # the test-database flush TRUNCATEs audit tables (UPDATE/DELETE stay refused)
AUDIT_SEAL_REQUEST_INTERVAL_S = 0.0  # every commit requests sealing (tests of the throttle set it themselves)
EXPORT_DIR = env("EXPORT_DIR", default=f"{_tmp}/exports")
MODEL_ARTIFACT_DIR = f"{_tmp}/models"
ERASURE_LEDGER_DIR = f"{_tmp}/erasure-ledger"
VAR_DIR_TEST = _tmp
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "100000/min", "anon": "100000/min", "otp": "100000/min"}}
# Live-server threads must not keep connections open (PostgreSQL could not drop the test database).
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": f"{_tmp}/test.sqlite3"}
# Webhook tests run receivers on http://127.0.0.1 (the production rules are tested with overrides).
WEBHOOK_ALLOW_HTTP = True
WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
WEBHOOK_TIMEOUT_SECONDS = 2.0
SCORING_INPROCESS_SCHEDULER = False  # never a scheduler thread in tests (they drive its clock themselves)
# One locmem cache lives through the whole run: tests that mistype passwords must not lock out later ones.
# The lockout tests set their own limit.
AXES_FAILURE_LIMIT = 1000
INVALID_TOKEN_THROTTLE_RATE = "100000/min"  # the invalid-token tests set their own
