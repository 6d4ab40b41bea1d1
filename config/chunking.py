"""Splitting a list of ids (or records) into bounded chunks: ``__in`` queries, batch transactions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["chunked"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive chunks of at most ``size`` items, in order (a list is sliced, anything else is read
    into a list first)."""
    seq = items if isinstance(items, list) else list(items)
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
