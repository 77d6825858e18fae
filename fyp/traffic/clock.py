"""Event-time clocks for generated traffic: the wall clock, or a clock that starts in the past and runs faster.

An accelerated clock lets a short run cover minutes of event time, so that a training set's label windows
(10 minutes for training/watch_outcomes.py) close within a demo or a test: a 60 s run at speed 20 that starts
20 minutes ago ends at about now. Reads that must see the features as of that simulated time pass the same
clock's reading as their `now_ms` (`FeatureClient.for_request(..., now_ms=clock())`).

>>> ticks = iter([1_000.0, 1_002.5])
>>> clock = accelerated_clock(start_ms=50_000, speed=10, wall_s=lambda: next(ticks))
>>> clock(), clock()
(50000, 75000)
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "accelerated_clock"]

Clock = Callable[[], int]  # epoch milliseconds


def accelerated_clock(*, start_ms: int, speed: float, wall_s: Callable[[], float] = time.monotonic) -> Clock:
    """A clock reading `start_ms` at its first call and advancing `speed` ms per wall-clock ms after it.
    Monotonic (it follows `time.monotonic`), so a partition's event times never go back because of it."""
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    origin: list[float] = []

    def clock() -> int:
        now = wall_s()
        if not origin:
            origin.append(now)
        return start_ms + int((now - origin[0]) * 1000 * speed)

    return clock
