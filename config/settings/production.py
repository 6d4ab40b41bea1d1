"""Production settings: PostgreSQL, Redis broker and real Celery workers, all from the environment.

Refuses to start without its secrets: SECRET_KEY, KEK_KEYS, BLIND_INDEX_KEY and AUDIT_SIGNING_KEY; and without
its services: a real mail server (EMAIL_URL; one-time codes must never land in the server log), a cache
shared by every process (CACHE_URL: throttles, one-time-code limits and lockouts count across processes) and
a broker (CELERY_BROKER_URL). Each refusal names the variable.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import b64_decode_padded, env, parse_kek_keys

_missing = [name for name in ("SECRET_KEY", "KEK_KEYS", "BLIND_INDEX_KEY", "AUDIT_SIGNING_KEY", "DATABASE_URL")
            if not env(name, default="")]
if _missing:
    raise ImproperlyConfigured("Production needs these environment variables: " + ", ".join(_missing))

SECRET_KEY = env("SECRET_KEY")
KEK_KEYS = parse_kek_keys(env("KEK_KEYS"))
KEK_ACTIVE_ID = env("KEK_ACTIVE_ID", default=list(KEK_KEYS)[-1])
BLIND_INDEX_KEY = b64_decode_padded(env("BLIND_INDEX_KEY"))
AUDIT_SIGNING_KEY = b64_decode_padded(env("AUDIT_SIGNING_KEY"))
if len(BLIND_INDEX_KEY) < 32 or len(AUDIT_SIGNING_KEY) != 32:
    raise ImproperlyConfigured("BLIND_INDEX_KEY needs >= 32 bytes and AUDIT_SIGNING_KEY exactly 32 bytes")
if KEK_ACTIVE_ID not in KEK_KEYS:
    raise ImproperlyConfigured("KEK_ACTIVE_ID names no key in KEK_KEYS")

DEBUG = False
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
SITE_URL = (env("SITE_URL", default="") or env("PUBLIC_BASE_URL", default="")).rstrip("/")
if not SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("Production needs SITE_URL, the https address people reach the service at "
                               "(e.g. https://privacy.example.com): links in e-mails are absolute")
PUBLIC_BASE_URL = SITE_URL
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Services production cannot do without (issue 20) ------------------------------------------------
_LOCAL_MAIL_BACKENDS = {"console", "locmem", "filebased", "dummy"}
_LOCAL_CACHE_BACKENDS = {"LocMemCache", "DummyCache", "FileBasedCache"}
if not env("EMAIL_URL", default=""):
    raise ImproperlyConfigured("Production needs EMAIL_URL (an SMTP server, e.g. smtp+tls://user:pw@host:587): "
                               "without it one-time codes and e-mails would be written to the server log")
EMAIL_CONFIG = env.email_url("EMAIL_URL")
if EMAIL_CONFIG["EMAIL_BACKEND"].rsplit(".", 2)[-2] in _LOCAL_MAIL_BACKENDS:
    raise ImproperlyConfigured("EMAIL_URL must name a real mail server in production, not "
                               f"{EMAIL_CONFIG['EMAIL_BACKEND'].rsplit('.', 2)[-2]}")
vars().update(EMAIL_CONFIG)
if not env("CACHE_URL", default=""):
    raise ImproperlyConfigured("Production needs CACHE_URL (a cache shared by every process, e.g. redis://host:6379/1)")
CACHES = {"default": env.cache("CACHE_URL")}
if CACHES["default"]["BACKEND"].rsplit(".", 1)[-1] in _LOCAL_CACHE_BACKENDS:
    raise ImproperlyConfigured("CACHE_URL must name a cache shared by every process (Redis, Memcached) in "
                               "production, not a per-process one")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
if not CELERY_BROKER_URL or CELERY_BROKER_URL.startswith("memory://"):
    raise ImproperlyConfigured("Production needs CELERY_BROKER_URL (e.g. redis://host:6379/0): a broker for "
                               "the background workers")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# Schema, API docs and admin need authentication in production unless these settings expose them.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=False)
ADMIN_ENABLED = env.bool("ADMIN_ENABLED", default=False)

# Webhooks: https only in production, whatever the environment says; private hosts only when listed.
WEBHOOK_ALLOW_HTTP = False
WEBHOOK_ALLOWED_PRIVATE_HOSTS = env.list("WEBHOOK_ALLOWED_PRIVATE_HOSTS", default=[])
