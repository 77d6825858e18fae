"""The accelerated event-time clock `fyp produce --start-ago --speed` uses."""

from __future__ import annotations

import pytest

from fyp.traffic.clock import accelerated_clock


def test_starts_in_the_past_and_runs_faster() -> None:
    ticks = iter([100.0, 100.0, 101.0, 103.0])
    clock = accelerated_clock(start_ms=1_000_000, speed=20, wall_s=lambda: next(ticks))
    assert [clock(), clock(), clock(), clock()] == [1_000_000, 1_000_000, 1_020_000, 1_060_000]


def test_refuses_a_clock_that_stands_still_or_runs_back() -> None:
    for speed in (0, -1):
        with pytest.raises(ValueError, match="speed must be positive"):
            accelerated_clock(start_ms=0, speed=speed)
