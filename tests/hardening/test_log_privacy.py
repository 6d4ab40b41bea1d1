"""Finding M5 (no log line holds a query string with personal data), worker log lines with a raw
``%(name)s`` template (fault 8), and log lines that are one JSON record each with no raw escape bytes."""

from __future__ import annotations

import io
import json
import logging
import socket

import pytest

from config.logging import JsonFormatter

CANARY_EMAIL = "canary.query@example.org"
CANARY_PHONE = "+441632960999"


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.django_db
def test_requests_with_personal_data_in_query_strings_leave_none_in_any_log_line(api, dpo_client, client, log_lines):
    query = f"email={CANARY_EMAIL}&phone={CANARY_PHONE}"
    api.get(f"/api/v1/customers/lookup?{query}")
    api.get(f"/api/v1/score?purpose=automated_scoring&{query}")
    api.get(f"/api/v1/no-such-thing?{query}")
    dpo_client.get(f"/console/access/?subject={CANARY_EMAIL}")
    dpo_client.get(f"/console/decisions/?{query}")
    client.get(f"/console/?{query}")  # anonymous: redirected to the login with ?next=...
    client.get(f"/me/?{query}")
    lines = log_lines()
    assert any('"path": "/api/v1/customers/lookup"' in line for line in lines)
    text = "\n".join(lines)
    for canary in (CANARY_EMAIL, "canary.query", "canary.query%40example.org", CANARY_PHONE, "1632960999"):
        assert canary not in text
    for line in lines:
        json.loads(line)


def test_a_message_built_by_its_caller_loses_its_query_string(log_lines):
    logging.getLogger("thirdparty").warning(f"GET /api/v1/customers/lookup?email={CANARY_EMAIL} failed")
    logging.getLogger("thirdparty").info(f"redirect to https://scoring.example.com/me/status?t={CANARY_PHONE}")
    [first, second] = [json.loads(line) for line in log_lines()]
    assert first["msg"] == "GET /api/v1/customers/lookup?[query withheld] failed"
    assert second["msg"] == "redirect to https://scoring.example.com/me/status?[query withheld]"


def test_fields_lose_their_query_string_too(log_lines):
    logging.getLogger("http").info("request", extra={"path": f"/api/v1/score?email={CANARY_EMAIL}"})
    [line] = [json.loads(line) for line in log_lines()]
    assert line["path"] == "/api/v1/score?[query withheld]"


def test_worker_lines_carry_task_name_id_and_runtime_not_the_raw_template(log_lines):
    logging.getLogger("celery.app.trace").info(
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        {"name": "scoring.tasks.rescore_chunk", "id": "3f0c", "runtime": 0.25, "return_value": CANARY_EMAIL},
    )
    [line] = [json.loads(line) for line in log_lines()]
    assert line["msg"] == "Task scoring.tasks.rescore_chunk[3f0c] succeeded in 0.25s: [withheld]"


def test_positional_arguments_are_still_never_interpolated(log_lines):
    logging.getLogger("x").info("looked up %s", CANARY_EMAIL)
    assert CANARY_EMAIL not in "\n".join(log_lines())


def test_worker_failure_lines_carry_the_outcome_but_not_the_exception_text(log_lines):
    logging.getLogger("celery.app.trace").error(
        "Task %(name)s[%(id)s] %(description)s: %(exc)s",
        {"name": "scoring.tasks.rescore_chunk", "id": "3f0c", "description": "raised unexpected",
         "exc": f"IntegrityError('Key (email)=({CANARY_EMAIL})')"},
    )
    [line] = [json.loads(line) for line in log_lines()]
    assert line["msg"] == "Task scoring.tasks.rescore_chunk[3f0c] raised unexpected: [withheld]"


def test_application_templates_with_named_arguments_stay_raw(log_lines):
    logging.getLogger("profiles").info("customer %(name)s", {"name": "Oliver"})
    [line] = [json.loads(line) for line in log_lines()]
    assert line["msg"] == "customer %(name)s"


@pytest.mark.parametrize(("logger", "template", "args", "expected"), [
    ("celery.beat", "Scheduler: Sending due task %s (%s)", ("rescore-watchdog", "scoring.tasks.rescore_watchdog"),
     "Scheduler: Sending due task rescore-watchdog (scoring.tasks.rescore_watchdog)"),
    ("celery.worker.consumer.connection", "Connected to %s", ("redis://:s3cret-pw@127.0.0.1:6379/2",),
     "Connected to redis://127.0.0.1:6379/2"),
    ("celery.worker.consumer.connection", "Connected to %s", ("redis://default:**@broker.internal:6380//",),
     "Connected to redis://broker.internal:6380//"),
    ("celery.beat", "beat pidbox: Connected to %s.", ("redis://127.0.0.1:6379/0?password=s3cret-pw",),
     "beat pidbox: Connected to redis://127.0.0.1:6379/0."),
    ("celery.apps.worker", "%s ready.", (f"worker@{socket.gethostname()}",), f"worker@{socket.gethostname()} ready."),
    ("celery.apps.worker", "%s ready.", (CANARY_EMAIL,), "[withheld] ready."),
    ("celery.worker.request", "Task accepted: %s[%s] pid:%r", ("scoring.tasks.rescore_chunk", "3f0c-11", 4242),
     "Task accepted: scoring.tasks.rescore_chunk[3f0c-11] pid:4242"),
    ("celery.worker.request", "Task %s[%s] retry: %s", ("scoring.tasks.rescore_chunk", "3f0c", f"Retry in 5s: {CANARY_EMAIL}"),
     "Task scoring.tasks.rescore_chunk[3f0c] retry: [withheld]"),
    ("celery.beat", "beat: Connection error: %s. Trying again in %s seconds...", (f"Error for {CANARY_EMAIL}", 2.0),
     "beat: Connection error: [withheld]. Trying again in 2.0 seconds..."),
])
def test_celery_positional_lines_are_filled_with_their_non_personal_arguments(log_lines, logger, template, args,
                                                                              expected):
    logging.getLogger(logger).info(template, *args)
    [line] = [json.loads(line) for line in log_lines()]
    assert line["msg"] == expected
    assert "s3cret" not in line["msg"] and CANARY_EMAIL not in line["msg"]


@pytest.mark.parametrize("value", [CANARY_EMAIL, "Oliver Kanar", CANARY_PHONE, CANARY_PHONE[1:], "a\nb", 7, None])
def test_an_allowed_position_holding_something_else_is_withheld(log_lines, value):
    """A task or entry name position that holds an address, a name with a space, or a non-string is withheld."""
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s (%s)", value, "scoring.tasks.x")
    [line] = [json.loads(line) for line in log_lines()]
    assert line["msg"] == "Scheduler: Sending due task [withheld] (scoring.tasks.x)"


def test_an_unlisted_celery_template_keeps_its_positional_arguments_out(log_lines):
    logging.getLogger("celery.worker.consumer.consumer").info("Started consuming from %s", CANARY_EMAIL)
    logging.getLogger("celery.beat").info("Scheduler: Sending due task %s", "x")  # wrong arity for the listed one
    text = "\n".join(log_lines())
    assert CANARY_EMAIL not in text
    assert [json.loads(line)["msg"] for line in log_lines()] == ["Started consuming from %s",
                                                                 "Scheduler: Sending due task %s"]


def test_escape_bytes_from_a_request_path_stay_escaped_and_one_record_per_line(log_lines):
    logging.getLogger("http").info("request", extra={"path": "/a\x1b[31m\x9b2J\u2028b\nc"})
    logging.getLogger("x").info("odd \x1b]0;title\x07 \x85 message\r\nsecond")
    lines = log_lines()
    assert len(lines) == 2
    for raw in lines:
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029" for ch in raw)
        json.loads(raw)


def test_runserver_access_lines_are_not_plain_text(settings):
    logger = settings.LOGGING["loggers"]["django.server"]
    assert logger == {"handlers": ["console"], "level": "ERROR", "propagate": False}
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "json"
