"""Fixtures of the profiles tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_counter = itertools.count(1)


@pytest.fixture
def facts_changed() -> Iterator[list[list[Any]]]:
    """Records every ``customer_facts_changed`` signal (list of customer id lists)."""
    from profiles.signals import customer_facts_changed

    received: list[list[Any]] = []

    def receiver(sender: Any, customer_ids: list[Any], **_: Any) -> None:
        received.append(list(customer_ids))

    customer_facts_changed.connect(receiver, dispatch_uid="tests.profiles.facts_changed")
    yield received
    customer_facts_changed.disconnect(dispatch_uid="tests.profiles.facts_changed")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("ext")`` -> a string unique within the test session."""
    return lambda prefix: f"{prefix}-{next(_counter):06d}"
