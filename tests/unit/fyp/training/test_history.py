"""fyp.training.history: the lateness replay and the dedup, against `fyp verify`'s (fyp.lake.history.late_flags)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.lake.history import late_flags
from tests.unit.fyp.training.streams import LATENESS_MS, MINUTE, T0, event, history


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-10 * MINUTE, 10 * MINUTE)), min_size=1, max_size=40))
def test_late_flags_equal_fyp_verifys(arrivals):
    rows = [event("watch", T0 + dt) for _, dt in arrivals]
    hist = history(rows, [p for p, _ in arrivals])
    stream = {}
    for p in {p for p, _ in arrivals}:
        mine = hist.partitions == p
        stream[p] = (hist.offsets[mine], hist.event_times[mine])
    expected = late_flags(stream, list(zip(hist.partitions.tolist(), hist.offsets.tolist(),
                                           hist.event_times.tolist(), strict=True)), LATENESS_MS)
    assert hist.late_flags().tolist() == expected


def test_the_first_on_time_copy_of_an_event_is_admitted_and_the_first_copy_is_the_distinct_one():
    newest = event("watch", T0 + 10 * MINUTE)
    late_copy = event("like", T0, event_id="x")
    on_time_copy = event("like", T0, event_id="x")
    # partition 0: newest, then the late copy; partition 1: the same event again, on time there.
    hist = history([newest, late_copy, on_time_copy], partitions=[0, 0, 1])
    assert hist.late_flags().tolist() == [False, True, False]
    assert hist.admitted().tolist() == [True, False, True]
    assert hist.distinct().tolist() == [True, True, False]


def test_rows_without_kafka_coordinates_are_never_late():
    rows = [event("watch", T0 + 10 * MINUTE), event("watch", T0)]
    hist = history(rows, partitions=[-1, -1], offsets=[-1, -1])
    assert hist.late_flags().tolist() == [False, False]
    assert np.array_equal(hist.admitted(), [True, True])
