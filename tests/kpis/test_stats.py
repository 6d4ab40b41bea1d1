"""Suppression rules and the uplift interval, on hand-made inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kpis.stats import TOTAL, diff_ci, suppress


def test_primary_and_complementary_suppression_per_month() -> None:
    grid = {
        "m1": {"VIP": 3, "Premium": 40, "Standard": 25, TOTAL: 68},  # VIP primary -> Standard (next smallest)
        "m2": {"VIP": 12, "Premium": 40, "Standard": 25, TOTAL: 77},  # nothing
        "m3": {"VIP": 3, "Premium": 4, "Standard": 25, TOTAL: 32},  # two primaries: no complement needed
        "m4": {"VIP": 3, "Premium": 0, "Standard": 0, TOTAL: 3},  # the total is small too
        "m5": {"VIP": 5, "Premium": 0, "Standard": 0, TOTAL: 15},  # no candidate: the total is suppressed
        "m6": {"VIP": 0, "Premium": 0, "Standard": 0, TOTAL: 0},  # no data is not a disclosure
    }
    assert suppress(grid, k=10) == {
        "m1": {"VIP": "primary", "Standard": "complementary"},
        "m3": {"VIP": "primary", "Premium": "primary"},
        "m4": {"VIP": "primary", TOTAL: "primary"},
        "m5": {"VIP": "primary", TOTAL: "complementary"},
    }


def test_no_single_hidden_cell_next_to_a_published_total_for_any_grid() -> None:
    import itertools

    for a, b, c in itertools.product([0, 1, 5, 9, 10, 30], repeat=3):
        grid = {"m": {"A": a, "B": b, "C": c, TOTAL: a + b + c}}
        marks = suppress(grid, k=10).get("m", {})
        hidden = [r for r in "ABC" if r in marks]
        assert not (len(hidden) == 1 and TOTAL not in marks), (a, b, c, marks)
        assert all(r in marks for r, n in grid["m"].items() if 0 < n < 10)


def test_bootstrap_interval_is_reproducible_and_welch_is_used_for_large_groups() -> None:
    t = [1.0] * 30 + [0.0] * 10
    h = [1.0] * 20 + [0.0] * 20
    first = diff_ci(t, h, binary=True)
    assert first == diff_ci(t, h, binary=True)
    assert first.estimate == pytest.approx(0.25)
    assert first.low < 0.25 < first.high
    big = diff_ci([1.0, 3.0] * 15_000, [1.0, 1.0] * 15_000)
    assert big.method.startswith("normal (Welch)")
    # hand-computed: var(t) = 1.0000333 (ddof 1), var(h) = 0 -> se = sqrt(1.0000333 / 30000)
    assert big.estimate == pytest.approx(1.0)
    assert big.high - big.estimate == pytest.approx(1.959963984540054 * (1.0000333 / 30000) ** 0.5, rel=1e-4)


def test_ticket_tier_is_the_tier_in_force_when_it_opened() -> None:
    import uuid

    from kpis.selectors import _ticket_tier

    cid = uuid.uuid4()
    history = {cid: [(datetime(2025, 1, 1, tzinfo=UTC), "Standard"), (datetime(2025, 3, 1, tzinfo=UTC), "VIP")]}
    assert _ticket_tier(history, cid, datetime(2025, 2, 1, tzinfo=UTC), "Basic") == "Standard"
    assert _ticket_tier(history, cid, datetime(2025, 3, 2, tzinfo=UTC), "Basic") == "VIP"
    assert _ticket_tier(history, cid, datetime(2024, 12, 1, tzinfo=UTC), "Basic") == "Basic"
