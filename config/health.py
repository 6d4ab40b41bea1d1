"""Liveness and readiness probes."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.errors import error_body


def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _broker_ok() -> bool:
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def ready(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database_ok()}
    if settings.CELERY_BROKER_URL and not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = _broker_ok()
    if all(checks.values()):
        return JsonResponse({"status": "ready", "checks": checks})
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return JsonResponse(
        error_body(503, "unavailable", f"Not ready: {failing} unreachable.", checks=checks), status=503
    )
