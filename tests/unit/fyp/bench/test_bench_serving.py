"""`fyp bench serving`'s pure parts, and the matrix decode it times."""

from __future__ import annotations

import numpy as np
import pytest

from features.engagement import video_engagement
from fyp.bench.serving import _ratio, alternate, packed_value
from fyp.serving.layout import ReadPlan, decode_matrix

NOW_MS = 1_800_000_000_000


def test_packed_values_decode_to_the_rows_written():
    plan = ReadPlan.of(video_engagement.v1)
    rows = np.random.default_rng(3).random((3, len(plan.columns)), dtype=np.float32)
    matrix, event_times = decode_matrix(plan, [packed_value(NOW_MS, row) for row in rows], NOW_MS)
    assert event_times.tolist() == [NOW_MS] * 3
    np.testing.assert_allclose(matrix, rows, rtol=1e-6)


def test_a_missing_candidate_stays_nan_among_present_ones_long_after():
    """A missing key has no event time; it must not read as an expired (zero) window."""
    plan = ReadPlan.of(video_engagement.v1)
    row = np.ones(len(plan.columns), dtype=np.float32)
    matrix, event_times = decode_matrix(plan, [packed_value(NOW_MS, row), None, b"short"], NOW_MS + 60_000)
    assert np.isnan(matrix[1]).all() and np.isnan(matrix[2]).all()
    assert event_times.tolist() == [NOW_MS, 0, 0]
    windowed = plan.window_ms > 0
    one_minute = plan.window_ms == 60_000
    assert (matrix[0][one_minute] == 0).all()  # the 1 min windows have passed
    assert (matrix[0][windowed & ~one_minute] == 1).all()


def test_alternate_swaps_the_order_drops_warmup_and_skips_absent_reads():
    calls: list[str] = []

    def read(name: str):
        return lambda: calls.append(name)

    pairs = [(read("fyp"), read("feast") if i % 2 == 0 else None) for i in range(6)]
    samples = alternate(iter(pairs), progress=None, warmup=1)
    assert calls == ["fyp", "feast", "fyp", "feast", "fyp", "fyp", "fyp", "feast", "fyp"]  # Feast 2nd, 1st, 2nd
    assert len(samples["fyp"]) == 5 and len(samples["feast"]) == 2


@pytest.mark.parametrize(("feast", "fyp", "expected"), [(10.0, 2.0, 5.0), (1.0, 0.0, None)])
def test_ratio_is_feast_over_fyp(feast, fyp, expected):
    ratio = _ratio({"p50_ms": feast}, {"p50_ms": fyp}, "p50_ms")
    assert (np.isnan(ratio) if expected is None else ratio == expected)


def test_a_single_row_decodes_as_the_matrix_does_with_its_ratios():
    from fyp.serving.layout import decode_row, ratio_columns

    plan = ReadPlan.of(video_engagement.v1)
    row = np.random.default_rng(5).random(len(plan.columns), dtype=np.float32) * 10
    later = NOW_MS + 90_000  # past the 1 min windows, into the decays
    matrix, _ = decode_matrix(plan, [packed_value(NOW_MS, row)], later)
    values, event_time = decode_row(plan, packed_value(NOW_MS, row), later)
    assert event_time == NOW_MS
    np.testing.assert_allclose([values[c] for c in plan.columns], matrix[0])
    name, numerator, denominator = ratio_columns(video_engagement.v1)[-1]
    assert values[name] == values[numerator] / values[denominator]
    assert decode_row(plan, None, later) is None and decode_row(plan, b"short", later) is None
