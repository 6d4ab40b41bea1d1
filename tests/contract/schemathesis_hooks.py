"""Schemathesis hooks for the API contract run (``.ci/contract``; ``SCHEMATHESIS_HOOKS=tests.contract.schemathesis_hooks``).

Two rules of the API that OpenAPI 3.0 cannot state, applied to generated bodies so that a "schema-valid"
request is one the API must accept:

- instants that record something that happened (``occurred_at`` of a consent decision, ``at`` of an
  outcome) may not lie in the future; the schema says so in their descriptions. A generated future instant
  is moved to an hour ago.
- a consent decision's ``occurred_at`` must fall after the purpose's notice was published (the notice
  history is data); generated decisions are placed within the last hour.
- a webhook URL must resolve to an address this deployment may call (DNS and the private-address rules are
  the environment's, not the schema's); subscriptions point at the run's own loopback receiver address.
- ``SCHEMATHESIS_CUSTOMERS`` (comma-separated pseudonyms of the demo) replaces generated customer ids most
  of the time, so that the run reaches past "customer not found" into scoring, consent and routing.

Schemathesis's coverage phase builds some bodies without the schema's ``allOf`` (the subject-request rules
"``fields`` only with rectification, ``decision_id`` only with contest"); ``filter_body`` drops exactly the
bodies that break those rules of the schema, since they are not schema-valid. Nothing else is changed:
every other generated value reaches the API as drawn.
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
    now = datetime.now(UTC)
    for key in PAST_ONLY:
        value = body.get(key)
        when = _parse(value) if isinstance(value, str) else None
        recent_only = key == "occurred_at"
        if when is not None and (when > now - timedelta(minutes=5) or (recent_only and when < now - timedelta(hours=1))):
            body[key] = (now - timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    if "customer" in body:
        body["customer"] = _known_customer(body["customer"])
    if "url" in body and "events" in body:
        body["url"] = "http://127.0.0.1:9/hook"
    return body


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: Any) -> Any:
    if isinstance(path_parameters, dict) and "customer_id" in path_parameters:
        path_parameters["customer_id"] = _known_customer(path_parameters["customer_id"])
    return path_parameters


_ONLY_WITH_TYPE = {"fields": "rectification", "decision_id": "contest"}


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    operation = getattr(ctx, "operation", None)
    if not isinstance(body, dict) or "subject-requests" not in str(getattr(operation, "path", "")):
        return True
    kind = body.get("type")
    return all((prop in body) == (kind == only) for prop, only in _ONLY_WITH_TYPE.items())
