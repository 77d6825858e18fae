"""The explainer's searches (fyp.training.search) on plain vectors: what they find, in which order."""

from __future__ import annotations

import numpy as np

from fyp.training import search
from fyp.training.search import SearchOutcome, combinations, read_position_options

RNG = np.random.default_rng(0)
VALUES = RNG.random((400, 6))


def value(i: int) -> np.ndarray:
    return VALUES[i]


def suffix_groups(partitions: int, events: int) -> list[list[list[int]]]:
    """Per partition a chain of options: none of its events, its first, its first two, ..."""
    return [[list(range(p * events, p * events + k)) for k in range(events)] for p in range(partitions)]


def test_a_long_suffix_beside_short_ones_is_found_exactly():
    """Twelve events of the first of eight partitions and two of the second: 30^8 choices in all, one of which
    sums to what the value lacks."""
    groups = suffix_groups(8, 30)
    need = VALUES[0:12].sum(axis=0) + VALUES[30:32].sum(axis=0)
    found = list(combinations(groups, value, need, np.full(6, 1e-9)))
    assert found == [frozenset([*range(12), 30, 31])]


def test_candidates_come_fewest_events_first_each_once():
    """Two groups whose options hold events of equal value: several choices sum alike; each is given once, the
    choices with fewer events first."""
    ones = lambda i: np.ones(1)  # noqa: E731
    groups = [[[], [0], [0, 1], [0, 1, 2]], [[], [10], [10, 11], [10, 11, 12]]]
    found = list(combinations(groups, ones, np.array([3.0]), np.array([1e-9])))
    assert sorted(map(sorted, found)) == [[0, 1, 2], [0, 1, 10], [0, 10, 11], [10, 11, 12]]
    assert all(len(c) == 3 for c in found) and len(set(found)) == 4
    sized = list(combinations([[[], [0]], [[], [1, 2]]], ones, np.array([1.0]), np.array([1e-9])))
    assert sized == [frozenset([0])]
    assert list(combinations(groups, ones, np.array([7.0]), np.array([1e-9]))) == []  # nothing sums to 7
    assert len(list(combinations(groups, ones, np.array([3.0]), np.array([1e-9]), max_candidates=2))) == 2


def test_a_search_that_stops_at_its_time_limit_says_so_and_one_proven_empty_does_not(monkeypatch):
    """Twelve lanes of 250 events, a suffix of each planted, ten real-valued sums: too much for a 50 ms solve (a hot
    video in a backlog is of this size, docs/TRAINING.md), so the search gives up and notes it. A program HiGHS
    proves to have no solution finds none too, and is not noted."""
    monkeypatch.setattr(search, "_SOLVE_S", 0.05)
    rng = np.random.default_rng(1)
    values = rng.random((3_000, 10))
    groups = [[list(range(g * 250 + k, g * 250 + 250)) for k in range(250, -1, -1)] for g in range(12)]
    planted = [i for g in range(12) for i in range(g * 250 + int(rng.integers(0, 250)), g * 250 + 250)]
    gave_up = SearchOutcome()
    assert list(combinations(groups, lambda i: values[i], values[planted].sum(axis=0), np.full(10, 1e-6), 1,
                             gave_up)) == []
    assert gave_up.at_time_limit
    proven = SearchOutcome()
    ones = lambda i: np.ones(1)  # noqa: E731
    assert list(combinations([[[], [0]], [[], [1]]], ones, np.array([5.0]), np.array([1e-9]), outcome=proven)) == []
    assert not proven.at_time_limit


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
