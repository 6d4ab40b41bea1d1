"""JSON logs carry allow-listed fields only and never interpolate arguments or exception messages."""

from __future__ import annotations

import json
import logging
import sys

from config.logging import JsonFormatter, bind_task, unbind_task


def _format(record: logging.LogRecord) -> dict:
    return json.loads(JsonFormatter().format(record))


def test_log_line_keeps_the_template_not_the_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "looked up %s", ("canary@example.org",), None)
    line = _format(record)
    assert line["msg"] == "looked up %s"
    assert "canary" not in json.dumps(line)


def test_only_allow_listed_extra_fields_are_written():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "scored", (), None)
    record.count = 3
    record.email = "canary@example.org"
    record.customer = "7d3c8e0c-0000-4000-8000-000000000000"
    line = _format(record)
    assert line["count"] == 3
    assert line["customer"] == "7d3c8e0c-0000-4000-8000-000000000000"
    assert "email" not in line
    assert "canary" not in json.dumps(line)


def test_exceptions_are_logged_by_type_and_location_without_their_message():
    try:
        raise ValueError("Key (email)=(canary@example.org) already exists")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = _format(record)
    assert line["exc_type"] == "ValueError"
    assert line["exc_where"][-1].startswith("test_logging.py:")
    assert "canary" not in json.dumps(line)


def test_task_context_adds_task_and_correlation_ids():
    bind_task(task_id="task-0001", task_name="scoring.tasks.rescore_chunk", correlation_id="corr-123456789")
    try:
        line = _format(logging.LogRecord("x", logging.INFO, __file__, 1, "chunk done", (), None))
    finally:
        unbind_task()
    assert line["task_id"] == "task-0001"
    assert line["task_name"] == "scoring.tasks.rescore_chunk"
    assert line["correlation_id"] == "corr-123456789"


def test_request_log_line_has_path_but_never_the_query_string(client, caplog, db):
    caplog.set_level(logging.INFO, logger="http")
    client.get("/health/live?email=canary@example.org")
    records = [r for r in caplog.records if r.name == "http"]
    assert len(records) == 1
    line = _format(records[0])
    assert line["path"] == "/health/live"
    assert line["status"] == 200
    assert "canary" not in json.dumps(line)
