"""Finding M5 (no log line holds a query string with personal data), worker log lines with a raw
``%(name)s`` template (fault 8), and log lines that are one JSON record each with no raw escape bytes."""

from __future__ import annotations

import io
import json
import logging

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
