"""Bounded ``__in`` lookups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_IN_CHUNK = 500  # ids per ``__in`` query (SQLite's bound-parameter limit, PostgreSQL plan size)


def _chunked(items: Iterable[Any], size: int = _IN_CHUNK) -> Iterable[list[Any]]:
    seq = list(items)
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
