"""Base settings: everything comes from the environment (12-factor), read by one reader.

Local development reads ``.env`` (``make run`` writes one with fresh random keys on first use).
Every variable is listed in ``.env.example`` and in the README.
"""

from __future__ import annotations

import base64
from pathlib import Path

import environ

from . import isolation

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# Test settings see neither .env nor stray variables (config.settings.isolation); others read ENV_FILE.
env.ENVIRON = isolation.environ()
_dotenv = isolation.dotenv_path(BASE_DIR)
if _dotenv and Path(_dotenv).exists():
    env.read_env(_dotenv, overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-local-development-key-change-me")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Our apps, in dependency order: each may use only those above it.
    "audit",
    "events",
    "profiles",
    "consent",
    "scoring",
    "webhooks",
    "engagement",
    "kpis",
    "subject_rights",
    "console",  # the DPO console: top of the house, nothing imports it
]

MIDDLEWARE = [
    "config.logging.CorrelationIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.errors.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})
    # secure_delete: erased rows are overwritten in the database file, not left in free pages.
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA secure_delete=ON;"}
    )
    _sqlite_name = str(DATABASES["default"]["NAME"])
    if not isolation.enabled() and _sqlite_name not in ("", ":memory:") and not _sqlite_name.startswith("file:"):
        # The database file (and its journal, which SQLite creates with the file's mode) is owner-only.
        from config.file_modes import ensure_private_file

        ensure_private_file(DATABASES["default"]["NAME"])
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        # The real-time path's statements (config.compiled_queries.hot_cursor) are prepared on a connection after
        # 5 runs there; every other query uses client-side binding and is never prepared. Behind PgBouncer in
        # transaction mode this needs PgBouncer >= 1.21 with max_prepared_statements > 0, or
        # DB_PREPARED_STATEMENTS=false.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
    if not env.bool("DB_JIT", default=False):
        # PostgreSQL's JIT compiles a statement whose estimated cost passes jit_above_cost; the batch reads by
        # chunk (a few thousand customers joined to orders, tickets, ...) pass it once the tables hold ~1M
        # customers, and each then spent ~0.3 s compiling (inlining + optimisation) to run for ~0.2 s. None of
        # the service's statements is a long analytical query that JIT would pay for.
        _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
        _pg_options["options"] = (_pg_options.get("options", "") + " -c jit=off").strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": env.cache("CACHE_URL", default="locmemcache://scoring")
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/console/login/"
LOGIN_REDIRECT_URL = "/console/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("nl", "Nederlands"), ("pl", "Polski"), ("fi", "Suomi"), ("sv", "Svenska")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static"))
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# --- Keys -------------------------------------------------------------------------------------------
# KEK_KEYS: "kid1:base64key,kid2:base64key"; every listed KEK can unwrap, the newest (KEK_ACTIVE_ID,
# default: the last listed) wraps new data keys. BLIND_INDEX_KEY: base64, HMAC key for lookups.
# AUDIT_SIGNING_KEY: base64 Ed25519 private key (32 bytes) that signs audit chain checkpoints.


def b64_decode_padded(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def parse_kek_keys(raw: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kid, _, material = item.partition(":")
        key = b64_decode_padded(material)
        if len(key) != 32 or not kid:
            raise ValueError("KEK_KEYS entries must be 'kid:base64(32 bytes)'")
        keys[kid] = key
    return keys


# Local-development defaults, used only when .env lacks keys. Production settings refuse them.
_DEV_KEK = "dev1:" + base64.urlsafe_b64encode(b"D" * 32).decode()
_DEV_BLIND = base64.urlsafe_b64encode(b"B" * 32).decode()
_DEV_SIGN = base64.urlsafe_b64encode(b"S" * 32).decode()

KEK_KEYS = parse_kek_keys(env("KEK_KEYS", default=_DEV_KEK))
KEK_ACTIVE_ID = env("KEK_ACTIVE_ID", default=list(KEK_KEYS)[-1])
BLIND_INDEX_KEY = b64_decode_padded(env("BLIND_INDEX_KEY", default=_DEV_BLIND))
AUDIT_SIGNING_KEY = b64_decode_padded(env("AUDIT_SIGNING_KEY", default=_DEV_SIGN))
AUDIT_CHECKPOINT_DIR = env("AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "audit-checkpoints"))
AUDIT_CHECKPOINT_EVERY_N = env.int("AUDIT_CHECKPOINT_EVERY_N", default=1000)
AUDIT_CHECKPOINT_EVERY_MINUTES = env.int("AUDIT_CHECKPOINT_EVERY_MINUTES", default=10)
# Public key(s) (base64, raw 32 bytes, comma-separated) that verify checkpoints without the private key.
AUDIT_VERIFY_PUBLIC_KEY = env("AUDIT_VERIFY_PUBLIC_KEY", default="")
AUDIT_CHECKPOINT_STORE = env("AUDIT_CHECKPOINT_STORE", default="audit.checkpoints.DirectoryStore")
AUDIT_SEAL_MAX_LAG_SECONDS = env.int("AUDIT_SEAL_MAX_LAG_SECONDS", default=3600)
# At most one seal request (cache + broker round trip) per process per this many seconds (0: every commit).
AUDIT_SEAL_REQUEST_INTERVAL_S = env.float("AUDIT_SEAL_REQUEST_INTERVAL_S", default=1.0)
# The chain head is signed (into the checkpoint store's head slot) after every seal, and at least this often
# while records wait: beat's seal-and-sign interval, and the embedded timer of `make run`. Records sealed
# since the last head signature are the only ones a database owner can rewrite or cut off undetected.
AUDIT_HEAD_SIGN_SECONDS = env.float("AUDIT_HEAD_SIGN_SECONDS", default=5.0)
AUDIT_EXPORT_MAX_ROWS = env.int("AUDIT_EXPORT_MAX_ROWS", default=100_000)
AUDIT_ALLOW_TRUNCATE = False  # tests only: lets Django flush the append-only tables on PostgreSQL
# Free text typed by the DPO into the audit app (breach register) is pseudonymized by this callable.
AUDIT_FREE_TEXT_SCRUBBER = "profiles.services.free_text_scrub"

# --- Privacy and business configuration --------------------------------------------------------------
DEFAULT_PHONE_REGION = env("DEFAULT_PHONE_REGION", default="GB")
EXPORT_DIR = env("EXPORT_DIR", default=str(VAR_DIR / "exports"))
# Append-only erasure ledger, kept OUTSIDE the database so that a restored backup can be re-erased
# (manage.py replay_erasures). Put it on storage that is not restored with the database.
ERASURE_LEDGER_DIR = env("ERASURE_LEDGER_DIR", default=str(VAR_DIR / "erasure-ledger"))
# After each erasure (and replay) commits, VACUUM the tables it deleted from, so that PostgreSQL prunes the
# erased rows' dead tuples from the table files at once instead of at the next autovacuum (docs/RELIABILITY.md).
ERASURE_VACUUM = env.bool("ERASURE_VACUUM", default=True)
# Absolute prefix for links in e-mails (e.g. https://scoring.example.com); empty = relative links.
#: Where people reach this service: the prefix of every link in e-mails (absolute, never relative).
#: PUBLIC_BASE_URL is its former name and still read. Production requires an https SITE_URL.
SITE_URL = (env("SITE_URL", default="") or env("PUBLIC_BASE_URL", default="")
            or f"http://127.0.0.1:{env('PORT', default='8000')}").rstrip("/")
PUBLIC_BASE_URL = SITE_URL
EXPORT_LINK_TTL_SECONDS = env.int("EXPORT_LINK_TTL_SECONDS", default=24 * 3600)
DSR_OTP_TTL_SECONDS = env.int("DSR_OTP_TTL_SECONDS", default=15 * 60)
DSR_OTP_MAX_ATTEMPTS = env.int("DSR_OTP_MAX_ATTEMPTS", default=5)
DPO_EMAIL = env("DPO_EMAIL", default="dpo@example.invalid")
LEGAL_HOLD_REASONS = env.list("LEGAL_HOLD_REASONS", default=["litigation", "tax_retention"])
SCORING_HORIZON_DAYS = env.int("SCORING_HORIZON_DAYS", default=365)
TIER_SHARES = env.json("TIER_SHARES", default={"VIP": 0.10, "Premium": 0.20, "Standard": 0.60, "Basic": 0.10})
CHURN_RISK_THRESHOLDS = env.json("CHURN_RISK_THRESHOLDS", default={"medium": 0.35, "high": 0.6})
RESCORE_CHUNK_SIZE = env.int("RESCORE_CHUNK_SIZE", default=5000)
RESCORE_STALE_BATCH = env.int("RESCORE_STALE_BATCH", default=500)
RESCORE_WORKERS = env.int("RESCORE_WORKERS", default=0)  # rescore --all processes; 0: the CPU count, up to 4
RESCORE_FEATURE_CACHE_CUSTOMERS = env.int("RESCORE_FEATURE_CACHE_CUSTOMERS", default=2_000_000)
# Rescoring chunks written by the fast path (scoring/services/rescore_fast.py); False: the reference path
# (same rows, tests/scoring/test_rescore_fast.py).
RESCORE_FAST_PATH = env.bool("RESCORE_FAST_PATH", default=True)
SCORING_CURRENCY = env("SCORING_CURRENCY", default="EUR")
# Purposes the nightly batch scores (each gated by its own consent); the API may ask any purpose.
SCORING_BATCH_PURPOSES = env.list("SCORING_BATCH_PURPOSES", default=["automated_scoring", "service_prioritization"])
SCORE_MAX_AGE_HOURS = env.int("SCORE_MAX_AGE_HOURS", default=48)
# Training uses only customers whose consent for this purpose is active at training time.
SCORING_TRAINING_PURPOSE = env("SCORING_TRAINING_PURPOSE", default="automated_scoring")
SCORING_TRAINING_MAX_CUSTOMERS = env.int("SCORING_TRAINING_MAX_CUSTOMERS", default=200_000)
SCORING_MODEL_CONFIG = env.json("SCORING_MODEL_CONFIG", default={})
# Quality floors (issue 16): a score kind below this validation AUC (or below its naive baseline) is never served
SCORING_QUALITY_FLOOR_AUC = env.float("SCORING_QUALITY_FLOOR_AUC", default=0.60)
# The CLV horizon is shortened to fit a shorter history (never below this many days); else training refuses
SCORING_MIN_HORIZON_DAYS = env.int("SCORING_MIN_HORIZON_DAYS", default=30)

# --- Governance (issue 16 §5-§7): protected characteristics, fairness, drift, learning on a schedule.
# Age (age, date/year of birth, age band) may be a model feature only when this is true; gender or sex and
# special-category data (Art. 9) never are. Audit-only characteristics feed the fairness report (groups smaller
# than SCORING_FAIRNESS_MIN_GROUP are suppressed).
SCORING_ALLOW_AGE_FEATURE = env.bool("SCORING_ALLOW_AGE_FEATURE", default=False)
SCORING_FAIRNESS_MIN_GROUP = env.int("SCORING_FAIRNESS_MIN_GROUP", default=10)
# Cron expressions (UTC; minute hour day-of-month month day-of-week) of the daily rescore and weekly retrain:
# Celery beat in production, the in-process scheduler of `make run` (embedded mode, runserver only).
SCORING_RESCORE_SCHEDULE = env("SCORING_RESCORE_SCHEDULE", default="0 2 * * *")
SCORING_RETRAIN_SCHEDULE = env("SCORING_RETRAIN_SCHEDULE", default="0 3 * * sun")
SCORING_INPROCESS_SCHEDULER = env.bool("SCORING_INPROCESS_SCHEDULER", default=not env("CELERY_BROKER_URL", default=""))
SCORING_SCHEDULER_INTERVAL = env.float("SCORING_SCHEDULER_INTERVAL", default=30.0)
# A retrain is also triggered when a top-N feature's PSI exceeds the threshold, or enough new explicit outcomes.
SCORING_DRIFT_PSI_THRESHOLD = env.float("SCORING_DRIFT_PSI_THRESHOLD", default=0.2)
SCORING_DRIFT_TOP_FEATURES = env.int("SCORING_DRIFT_TOP_FEATURES", default=5)
SCORING_DRIFT_SAMPLE = env.int("SCORING_DRIFT_SAMPLE", default=20_000)
SCORING_RETRAIN_MIN_NEW_OUTCOMES = env.int("SCORING_RETRAIN_MIN_NEW_OUTCOMES", default=100)
IMPORT_CHUNK_ROWS = env.int("IMPORT_CHUNK_ROWS", default=2000)
# Worker processes for the free text of an import chunk (language, mood, pseudonymization); 1 = in-process.
TEXT_WORKERS = env.int("TEXT_WORKERS", default=1)
RETENTION_DAYS = env.json(
    "RETENTION_DAYS", default={"orders": 3650, "interactions": 730, "tickets": 1095, "reviews": 1825}
)
MODEL_ARTIFACT_DIR = env("MODEL_ARTIFACT_DIR", default=str(VAR_DIR / "models"))
# Whether the original (pre-pseudonymization) free text is kept, encrypted under the customer's data
# key, per source system. JSON object: {"support": true, "crm": false, ...}.
KEEP_ORIGINAL_TEXT = env.json(
    "KEEP_ORIGINAL_TEXT", default={"crm": False, "erp": False, "support": True, "web": False}
)

# --- E-mail -----------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="privacy@example.invalid")

# --- Celery -----------------------------------------------------------------------------------------
# Without CELERY_BROKER_URL, tasks run in-process (embedded mode: SQLite, no servers needed).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Webhooks (outbox relay, signed delivery; docs/WEBHOOKS.md) --------------------------------------------
# http:// URLs are accepted only when WEBHOOK_ALLOW_HTTP (production settings force False: https only).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
# Hosts that may resolve to private, loopback or link-local addresses (everything else must be public).
WEBHOOK_ALLOWED_PRIVATE_HOSTS = env.list(
    "WEBHOOK_ALLOWED_PRIVATE_HOSTS", default=["127.0.0.1", "localhost", "::1"] if DEBUG else [])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Requests a delivery pass sends side by side (never two of one customer to one endpoint).
WEBHOOK_SEND_CONCURRENCY = env.int("WEBHOOK_SEND_CONCURRENCY", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=5.0)
WEBHOOK_RETRY_MAX_INTERVAL_SECONDS = env.float("WEBHOOK_RETRY_MAX_INTERVAL_SECONDS", default=3600.0)
WEBHOOK_RETRY_WINDOW_SECONDS = env.int("WEBHOOK_RETRY_WINDOW_SECONDS", default=24 * 3600)
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=120)
# Relay right after each commit that wrote events (False: only beat / the embedded loop's timer relays).
WEBHOOK_KICK_ON_COMMIT = env.bool("WEBHOOK_KICK_ON_COMMIT", default=True)
# Embedded mode only: the in-process relay/delivery loop of runserver wakes at least this often (0: off).
WEBHOOK_EMBEDDED_INTERVAL_SECONDS = env.float("WEBHOOK_EMBEDDED_INTERVAL_SECONDS", default=2.0)

# --- REST framework ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["audit.api_clients.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.DepthLimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.ContractAutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "client": env("API_THROTTLE_RATE", default="6000/min"),
        "anon": env("ANON_THROTTLE_RATE", default="60/min"),
        "otp": env("OTP_THROTTLE_RATE", default="5/min"),
    },
    "UNAUTHENTICATED_USER": None,
}
CONSENT_BULK_MAX_RECORDS = env.int("CONSENT_BULK_MAX_RECORDS", default=1000)
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=365)
# Seconds a client's row stays in the SHARED cache after a token lookup (0: every request reads the database;
# a per-process cache is never used). Revocation and rotation still take effect at once (audit.api_clients).
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=60)

SPECTACULAR_SETTINGS = {
    "TITLE": "Privacy-first customer scoring API",
    "DESCRIPTION": "Consent-gated customer scores, consent ledger, ingestion and data-subject requests.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ScoreKindEnum": ["clv", "churn", "upsell", "advocacy"],
        "OutcomeKindEnum": "scoring.models.Outcome.Kind",
        "ConsentStopKindEnum": ["withdrawn", "restricted", "objected"],
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.contract_enums"],
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

#: Other ticket category names mapped onto known ones ("refund=billing,bug=technical"); any other unknown
#: category is refused by POST /api/v1/route with the allowed list.
TICKET_CATEGORY_MAP = env.dict("TICKET_CATEGORY_MAP", default={})

#: Request properties and parameters whose allowed values are this deployment's data (config.schema).
API_SCHEMA_ENUMS = {"purpose": "consent.selectors.purpose_codes", "notice_version": "consent.selectors.notice_versions"}
# --- Engagement (next-best actions, holdout) and KPIs (issue 17) ------------------------------------------
# Share of consented customers kept out of proactive actions (the holdout group, 0..0.5).
ENGAGEMENT_HOLDOUT_SHARE = env.float("ENGAGEMENT_HOLDOUT_SHARE", default=0.10)
# The purpose whose stored scores feed actions (its consent is checked as well as the action's own purpose).
ENGAGEMENT_SCORE_PURPOSE = env("ENGAGEMENT_SCORE_PURPOSE", default="automated_scoring")
# Action type -> purpose whose active consent it needs at creation (marketing actions need "marketing").
ENGAGEMENT_ACTION_PURPOSES = env.json("ENGAGEMENT_ACTION_PURPOSES", default={
    "retention_call": "service_prioritization", "sla_breach": "service_prioritization",
    "upsell_offer": "marketing", "advocacy_ask": "marketing", "win_back": "marketing"})
ENGAGEMENT_PROPENSITY_THRESHOLD = env.float("ENGAGEMENT_PROPENSITY_THRESHOLD", default=0.6)
ENGAGEMENT_LAPSED_DAYS = env.int("ENGAGEMENT_LAPSED_DAYS", default=180)
ENGAGEMENT_WIN_BACK_MIN_REVENUE = env.float("ENGAGEMENT_WIN_BACK_MIN_REVENUE", default=500.0)
ENGAGEMENT_COOLDOWN_DAYS = env.int("ENGAGEMENT_COOLDOWN_DAYS", default=30)  # no new action of a type closed since
# Small-cell suppression threshold k and the uplift/ROI parameters of GET /api/v1/kpis.
KPI_MIN_CELL = env.int("KPI_MIN_CELL", default=10)
KPI_ACTIVE_MONTHS = env.int("KPI_ACTIVE_MONTHS", default=3)  # a customer is live if they ordered in this many months
KPI_UPLIFT_MIN_PER_GROUP = env.int("KPI_UPLIFT_MIN_PER_GROUP", default=30)
KPI_UPLIFT_MIN_DAYS = env.int("KPI_UPLIFT_MIN_DAYS", default=28)
KPI_COST_PER_ACTION = env.float("KPI_COST_PER_ACTION", default=5.0)
# The KPI rollup (docs/KPIS.md): served while younger than KPI_ROLLUP_MAX_AGE_SECONDS (0: always live), refreshed
# after each rescore and every KPI_ROLLUP_REFRESH_SECONDS (beat / the embedded scheduler; 0: only after rescores),
# covering the last KPI_ROLLUP_MONTHS months and the uplift of the windows of KPI_ROLLUP_UPLIFT_WINDOWS months.
KPI_ROLLUP_MAX_AGE_SECONDS = env.int("KPI_ROLLUP_MAX_AGE_SECONDS", default=3600)
KPI_ROLLUP_REFRESH_SECONDS = env.int("KPI_ROLLUP_REFRESH_SECONDS", default=900)
KPI_ROLLUP_MONTHS = env.int("KPI_ROLLUP_MONTHS", default=36)
KPI_ROLLUP_UPLIFT_WINDOWS = [int(x) for x in env.list("KPI_ROLLUP_UPLIFT_WINDOWS", default=["12"])]

# --- Logging: JSON lines, allow-listed fields, correlation ids, never personal data -----------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING", "propagate": True},
        "faker": {"level": "WARNING"},
        "presidio-analyzer": {"level": "ERROR"},
    },
}

# --- Hardening (issue 20): input limits, lockouts, proxies, headers, production guards --------------
# JSON bodies nested deeper than this (arrays/objects) are refused with a 400 (config.parsers).
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=20)

# Client addresses (per-address limits: one-time codes, anonymous throttles, login lockouts) are read from
# X-Forwarded-For only when the peer is one of these proxies (addresses or networks); see config.client_address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# Brute-force limit on /console/login/ and /admin/login/ (django-axes; config.lockout): per account and per
# client address, each counted separately, keyed hashes only, in the shared cache.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS = ["config.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "config.lockout.LockoutCacheHandler"  # axes' cache handler, local while Redis is down
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "config.lockout.lockout_address"
AXES_USERNAME_CALLABLE = "config.lockout.lockout_username"
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Log lines: runserver's own access line (plain text, raw request line) is replaced by the JSON "request"
# line of config.logging.CorrelationIdMiddleware; only its errors are kept, as JSON.
LOGGING["loggers"]["django.server"] = {"handlers": ["console"], "level": "ERROR", "propagate": False}

# Invalid bearer tokens per client address and window; past it, 429 with Retry-After (config.throttling).
INVALID_TOKEN_THROTTLE_RATE = env("INVALID_TOKEN_THROTTLE_RATE", default="30/min")

# Cache-Control: no-store on the API, the console, the self-service pages and the admin (config.headers).
# Outermost after the correlation id: also covers responses made by other middleware (lockout page, CSRF).
MIDDLEWARE.insert(1, "config.headers.NoStoreMiddleware")

# Content-Security-Policy (django-csp 4): no inline scripts or styles anywhere; templates load static files.
INSTALLED_APPS += ["csp"]
MIDDLEWARE.insert(1, "csp.middleware.CSPMiddleware")
_CSP_SELF = "'self'"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_CSP_SELF],
        "script-src": [_CSP_SELF],
        "style-src": [_CSP_SELF],
        "img-src": [_CSP_SELF, "data:"],
        "font-src": [_CSP_SELF],
        "connect-src": [_CSP_SELF],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": [_CSP_SELF],
    },
}

# Plausibility bounds on facts (profiles.services): outside them a record is rejected with min_value /
# max_value (order amount and margin) or too_early (any fact date); dates more than a day ahead are in_future.
FACT_AMOUNT_MIN = env.float("FACT_AMOUNT_MIN", default=-100_000)
FACT_AMOUNT_MAX = env.float("FACT_AMOUNT_MAX", default=10_000_000)
FACT_EARLIEST_DATE = env("FACT_EARLIEST_DATE", default="1970-01-01")

# Status links of subject requests live for the statutory period (Art. 12(3): one month, plus up to two of
# extension) and a margin: 92 + 14 days by default (subject_rights.links).
DSR_STATUS_LINK_TTL_DAYS = env.int("DSR_STATUS_LINK_TTL_DAYS", default=106)

# Schema, API docs and the admin: open in local development; production serves the schema and docs only to an
# authenticated caller (an API token or a console session) unless API_DOCS_PUBLIC=true, and the admin only
# with ADMIN_ENABLED=true (config.urls, config.permissions.DocsAccess).
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=True)
ADMIN_ENABLED = env.bool("ADMIN_ENABLED", default=True)
SPECTACULAR_SETTINGS["SERVE_AUTHENTICATION"] = [
    "audit.api_clients.ApiTokenAuthentication", "rest_framework.authentication.SessionAuthentication"]
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["config.permissions.DocsAccess"]

# Celery reliability: database-outage retries outlast CELERY_RETRY_OUTLASTS_S (config.celery.db_retry_policy);
# the Redis visibility timeout is set deliberately above the longest task time limit (the nightly planner:
# 3 h + 5 min), so a running task is never delivered twice; a killed worker's chunks are redelivered after it.
CELERY_RETRY_BACKOFF_S = env.int("CELERY_RETRY_BACKOFF_S", default=5)
CELERY_RETRY_BACKOFF_MAX_S = env.int("CELERY_RETRY_BACKOFF_MAX_S", default=120)
CELERY_RETRY_MAX = env.int("CELERY_RETRY_MAX", default=12)
CELERY_RETRY_OUTLASTS_S = 300
CELERY_LONGEST_TASK_TIME_LIMIT_S = 3 * 3600 + 300  # scoring.tasks.rescore_all_nightly
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=CELERY_LONGEST_TASK_TIME_LIMIT_S + 900),
}
# Stale-run watchdog (beat, every 5 minutes): a running rescore run without progress for this long is resumed;
# one started longer ago than the give-up age is marked failed (scoring.services.rescore_runs_watchdog).
RESCORE_WATCHDOG_STALE_MINUTES = env.int("RESCORE_WATCHDOG_STALE_MINUTES", default=15)
RESCORE_WATCHDOG_GIVE_UP_HOURS = env.float("RESCORE_WATCHDOG_GIVE_UP_HOURS", default=24)
RESCORE_WATCHDOG_INTERVAL_S = env.float("RESCORE_WATCHDOG_INTERVAL_S", default=300.0)  # how often beat runs it
