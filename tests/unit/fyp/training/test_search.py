"""The explainer's capped searches (fyp.training.search) on plain vectors: what they find, and what their caps keep."""

from __future__ import annotations

import numpy as np

from fyp.training.search import combinations, read_position_options

RNG = np.random.default_rng(0)
VALUES = RNG.random((400, 6))


def value(i: int) -> np.ndarray:
    return VALUES[i]


def suffix_groups(partitions: int, events: int) -> list[list[list[int]]]:
    """Per partition a chain of options: none of its events, its first, its first two, ..."""
    return [[list(range(p * events, p * events + k)) for k in range(events)] for p in range(partitions)]


def test_a_long_suffix_survives_a_tight_cap_beside_short_ones():
    """Twelve events of the first partition and two of the second: with room for 40 partial sums, keeping only
    those with the fewest events cuts the twelve-event ones before the later partitions are added."""
    groups = suffix_groups(5, 30)
    need = VALUES[0:12].sum(axis=0) + VALUES[30:32].sum(axis=0)
    found = list(combinations(groups, value, need, np.full(6, 1e-9), max_states=40))
    assert found and found[0] == frozenset([*range(12), 30, 31])


def test_a_read_position_and_events_just_before_it():
    """Offsets 0-9 of one partition, events 0-9; served value's event time 100: events newer than it (8, 9) are
    always left out; the job may have read only up to 6 and left out 4 (overtaken)."""
    times = np.array([10, 20, 30, 40, 50, 60, 70, 80, 110, 120])
    events = list(range(10))
    recent = set(range(2, 10))
    options = read_position_options(events, times, 100, recent, value, np.full(6, np.inf))
    assert options[0] == [8, 9] and [4, 6, 7, 8, 9] in options and [6, 7, 8, 9] in options
    assert all(set(o) >= {8, 9} and set(o) <= recent for o in options)
    assert len(options) == len({frozenset(o) for o in options})  # each set once
    # Nothing beyond what the served value lacks: one more event than `limit` allows is no option.
    tight = read_position_options(events, times, 100, recent, value, VALUES[7] + 1e-9)
    assert sorted(map(sorted, tight)) == [[7, 8, 9], [8, 9]]
