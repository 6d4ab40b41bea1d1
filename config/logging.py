"""Structured JSON logging with an allow-list of fields and a correlation id per request and task.

Privacy rule: a log line never holds personal data. So the formatter
- writes the message *template* (``record.msg``), never the interpolated arguments, except for Celery's and
  kombu's own lines: their named arguments in ``SAFE_TEMPLATE_KEYS`` and the positional arguments of the
  templates in ``SAFE_POSITIONAL_TEMPLATES`` (task names, ids, runtimes, broker URLs without credentials), each
  checked against its kind (a value that does not look like a task name, id or number is withheld);
- drops every query string (``?...``) from the message and fields, and escapes raw control characters;
- writes only allow-listed ``extra`` fields;
- for exceptions, writes the exception class and the code locations, never ``str(exc)`` (database
  errors like ``DETAIL: Key (email)=...`` would otherwise leak).
Call sites pass ids and counts as ``extra={...}`` with allow-listed keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
_task: contextvars.ContextVar[tuple[str | None, str | None] | None] = contextvars.ContextVar("task", default=None)

ALLOWED_EXTRA_FIELDS = frozenset(
    {
        "event", "method", "path", "status", "duration_ms", "code", "client_id", "customer", "purpose",
        "count", "n_created", "updated", "merged", "rejected", "skipped", "scored", "run_id", "chunk",
        "decision_id", "request_id", "model_version", "seq", "kind", "source", "job", "batch", "total",
        "elapsed_s", "reason_code", "attempt",
    }
)
_SAFE_CORRELATION = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# A query string anywhere in a logged text (``/path?email=...``, ``https://host/x?...``): never written.
_QUERY = re.compile(r"(?<=[\w/.%-])\?[^\s\"'<>]+")
# Control characters JSON leaves raw (DEL, C1) and line separators: escaped, so a line stays one record.
_RAW_CONTROL = re.compile("[\x7f-\x9f\u2028\u2029]")
# Loggers whose templates may be filled: the worker's and beat's library lines. Application code never relies on
# interpolation (it passes ids and counts as allow-listed ``extra`` fields), so a template of its own stays raw.
_LIBRARY_LOGGERS = ("celery", "kombu")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,199}")  # task and schedule entry names (no "@": not an address)
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # task ids (UUIDs)
_OUTCOMES = frozenset({"raised expected", "raised unexpected", "INTERNAL ERROR", "ignored", "rejected"})
_WITHHELD = "[withheld]"


def _safe_name(value: object) -> str | None:
    return value if isinstance(value, str) and _NAME.fullmatch(value) else None


def _safe_node(value: object) -> str | None:
    """A Celery node name ``worker@<this machine's host name>`` (an address-like value for any other host is
    withheld)."""
    import socket

    if not isinstance(value, str) or "@" not in value:
        return None
    name, host = value.rsplit("@", 1)
    return value if _NAME.fullmatch(name) and host == socket.gethostname() else None


def _safe_id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def _safe_number(value: object) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _safe_outcome(value: object) -> str | None:
    return value if isinstance(value, str) and value in _OUTCOMES else None


def _safe_url(value: object) -> str | None:
    """A broker URL without user, password, path parameters or query: ``redis://host:port/db``."""
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme.isalnum() or not host or not _HOST.fullmatch(host):
        return None
    path = parts.path if re.fullmatch(r"[A-Za-z0-9_/.-]{0,64}", parts.path) else ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{path}"


_KINDS: dict[str, Callable[[object], object | None]] = {
    "name": _safe_name, "node": _safe_node, "id": _safe_id, "number": _safe_number, "outcome": _safe_outcome, "url": _safe_url,
}
# Celery's named arguments (``Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s``, ``Task
# %(name)s[%(id)s] %(description)s: %(exc)s``) by kind; the others (``return_value``, ``exc``, ...) are withheld.
SAFE_TEMPLATE_KEYS: dict[str, str] = {
    "name": "name", "id": "id", "runtime": "number", "hostname": "node", "pid": "number", "signum": "number",
    "alias": "name", "type": "name", "description": "outcome",
}
# Celery's positional templates (logger, template) -> the kind of each argument; "withheld" is never written
# (exception texts, retry reasons and reprs may quote a task's arguments).
SAFE_POSITIONAL_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("celery.beat", "Scheduler: Sending due task %s (%s)"): ("name", "name"),
    ("celery.beat", "beat pidbox: Connected to %s."): ("url",),
    ("celery.beat", "beat: Connection error: %s. Trying again in %s seconds..."): ("withheld", "number"),
    ("celery.worker.consumer.connection", "Connected to %s"): ("url",),
    ("celery.worker.consumer.consumer", "consumer: Cannot connect to %s: %s.\n%s\n"): ("url", "withheld", "withheld"),
    ("celery.apps.worker", "%s ready."): ("node",),
    ("celery.worker.request", "Task %s[%s] retry: %s"): ("name", "id", "withheld"),
    ("celery.worker.request", "Hard time limit (%ss) exceeded for %s[%s]"): ("number", "name", "id"),
    ("celery.worker.request", "Task accepted: %s[%s] pid:%r"): ("name", "id", "number"),
}


class _SafeArguments(dict):
    def __missing__(self, key: str) -> str:
        return _WITHHELD


def _checked(kind: str, value: object) -> object:
    check = _KINDS.get(kind)
    safe = check(value) if check is not None else None
    return _WITHHELD if safe is None else safe


def scrub_text(text: str) -> str:
    """Drop query strings and escape raw control characters in a text bound for a log line."""
    text = _QUERY.sub("?[query withheld]", text) if "?" in text else text
    return _RAW_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _message(record: logging.LogRecord) -> str:
    template = str(record.msg)
    args = record.args
    library = record.name.split(".", 1)[0] in _LIBRARY_LOGGERS
    if library and isinstance(args, dict) and args and "%(" in template:
        safe = _SafeArguments({k: _checked(SAFE_TEMPLATE_KEYS[k], v) for k, v in args.items()
                               if k in SAFE_TEMPLATE_KEYS})
        with contextlib.suppress(TypeError, ValueError, KeyError):
            template = template % safe
    elif library and isinstance(args, tuple) and args:
        kinds = SAFE_POSITIONAL_TEMPLATES.get((record.name, template))
        if kinds is not None and len(kinds) == len(args):
            filled = tuple(_checked(kind, value) for kind, value in zip(kinds, args, strict=True))
            # %r of an allowed value: its repr is the number or name itself
            with contextlib.suppress(TypeError, ValueError):
                template = template.replace("%r", "%s") % filled
    return scrub_text(template)[:300]


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def set_correlation_id(value: str | None) -> contextvars.Token:
    return _correlation_id.set(value)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_task(*, task_id: str | None, task_name: str | None, correlation_id: str | None) -> None:
    _task.set((task_id, task_name))
    _correlation_id.set(correlation_id if correlation_id and _SAFE_CORRELATION.match(correlation_id) else task_id)


def unbind_task() -> None:
    _task.set(None)
    _correlation_id.set(None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": _message(record),
        }
        correlation_id = _correlation_id.get()
        if correlation_id:
            payload["correlation_id"] = correlation_id
        task = _task.get()
        if task:
            payload["task_id"], payload["task_name"] = task
        for key in ALLOWED_EXTRA_FIELDS:
            if key in record.__dict__:
                value = record.__dict__[key]
                payload[key] = (value if isinstance(value, int | float | bool) or value is None
                                else scrub_text(str(value))[:200])
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            payload["exc_type"] = exc_type.__name__
            payload["exc_where"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}"
                                    for f in traceback.extract_tb(tb)][-8:]
        return json.dumps(payload, ensure_ascii=False)


class CorrelationIdMiddleware:
    """Takes a safe ``X-Request-ID`` or makes one; echoes it; logs one line per request (path only)."""

    logger = logging.getLogger("http")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        correlation_id = incoming if _SAFE_CORRELATION.match(incoming) else new_correlation_id()
        token = _correlation_id.set(correlation_id)
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = correlation_id
            self.logger.info(
                "request",
                extra={
                    "method": request.method,
                    # Only the path: query strings may hold e-mail lookups and are never logged.
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            _correlation_id.reset(token)
