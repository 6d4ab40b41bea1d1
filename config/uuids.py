"""Parsing a UUID from untrusted input (an id in a URL, a body or a task argument), in one place."""

from __future__ import annotations

from typing import Any
from uuid import UUID

__all__ = ["as_uuid"]


def as_uuid(value: Any) -> UUID:
    """``value`` as a :class:`UUID` (returned as is when it already is one); ``ValueError`` when it is not a
    UUID, whatever its type. Callers turn that into their own error (a 4xx), never echoing the value."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError("not a UUID") from exc
