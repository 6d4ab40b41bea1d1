"""Bounded ``__in`` lookups of the profiles services (the chunk size; the splitting is ``config.chunking``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from config.chunking import chunked

_IN_CHUNK = 500  # ids per ``__in`` query (SQLite's bound-parameter limit, PostgreSQL plan size)


def in_chunks(items: Iterable[Any], size: int | None = None) -> Iterator[list[Any]]:
    return chunked(items, _IN_CHUNK if size is None else size)
