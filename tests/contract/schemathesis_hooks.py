"""Schemathesis hooks for the API contract run (``.ci/contract``; ``SCHEMATHESIS_HOOKS=tests.contract.schemathesis_hooks``).

Two rules of the API that OpenAPI 3.0 cannot state, applied to generated bodies so that a "schema-valid"
request is one the API must accept:

- instants that record something that happened (``occurred_at`` of a consent decision, ``at`` of an
  outcome) may not lie in the future; the schema says so in their descriptions. A generated future instant
  is moved to an hour ago.
- ``SCHEMATHESIS_CUSTOMERS`` (comma-separated pseudonyms of the demo) replaces generated customer ids most
  of the time, so that the run reaches past "customer not found" into scoring, consent and routing.

Nothing else is changed: every other generated value reaches the API as drawn.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

PAST_ONLY = ("occurred_at", "at")
_CUSTOMERS = [c.strip() for c in os.environ.get("SCHEMATHESIS_CUSTOMERS", "").split(",") if c.strip()]
_rng = random.Random(7)


def _parse(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _known_customer(value: Any) -> Any:
    if _CUSTOMERS and isinstance(value, str) and _rng.random() < 0.8:
        return _rng.choice(_CUSTOMERS)
    return value


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    for key in PAST_ONLY:
        value = body.get(key)
        when = _parse(value) if isinstance(value, str) else None
        if when is not None and when > datetime.now(UTC) - timedelta(minutes=5):
            body[key] = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    if "customer" in body:
        body["customer"] = _known_customer(body["customer"])
    return body


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: Any) -> Any:
    if isinstance(path_parameters, dict) and "customer_id" in path_parameters:
        path_parameters["customer_id"] = _known_customer(path_parameters["customer_id"])
    return path_parameters
