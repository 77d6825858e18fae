"""fyp/bench/peers/fast_fold.py against the reference evaluator (featurespec/reference/evaluate.py), entity by entity.

Windowed columns and the header must be equal bit for bit: the fold keeps the same tile sums and adds them in the
same order. Decayed columns are compared with a tolerance, because forward decay rounds differently from the
reference's decay-to-each-newer-event: both are float64 evaluations of the same sum with a handful of rounding
steps, so they agree to ~1e-15 relative of the summed terms; 1e-9 relative (or 1e-12 absolute, where likes and
unlikes cancel to near zero) leaves room without hiding a wrong weight, which would be off by far more.
"""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pytest

from features.comments import video_comment_sentiment
from features.engagement import (
    author_engagement,
    region_language_engagement,
    sound_engagement,
    user_author_affinity,
    user_engagement,
    user_hashtag_affinity,
    video_engagement,
)
from featurespec import VIDEO, Aggregation, FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from fyp.bench.peers.fast_fold import FastFold
from fyp.traffic.config import TrafficConfig
from fyp.traffic.stream import TrafficGenerator
from udfs.envelope import to_engagement_row

SETS = [author_engagement.v1, region_language_engagement.v1, sound_engagement.v1, user_author_affinity.v1,
        user_engagement.v1, video_engagement.v1]
START_MS = 1_700_000_000_000
REL_TOL, ABS_TOL = 1e-9, 1e-12


@pytest.fixture(scope="module")
def rows() -> list[tuple]:
    """~20k good rows over ~3.7 hours of event time (the clock moves 5 minutes per block of 200 views), with late
    events (5 % of views, up to 2 hours old), so that every window slides and tiles go stale and come back."""
    clock = itertools.count(START_MS, 300_000)
    config = TrafficConfig(users=2_000, videos=3_000, late_fraction=0.05, late_by=timedelta(hours=2))
    generator = TrafficGenerator(config, 11,
                                 run_id="00000000-0000-4000-8000-000000000011", clock=lambda: next(clock))
    payloads: list[bytes] = []
    while len(payloads) < 20_000:
        payloads += [value for _, value in generator.next_batch(200).pairs]
    decoded = [to_engagement_row(p, now_ms=START_MS + 10**9) for p in payloads[:20_000]]
    return [r for r in decoded if r[-1] is None]


def _fold_all(fold, rows):
    states = {}
    for row in rows:
        key = fold.key(row)
        if key is None:
            continue
        state = states.get(key)
        if state is None:
            state = states[key] = fold.new_state()
        fold.update(state, row)
    return states


@pytest.mark.parametrize("feature_set", SETS, ids=lambda s: s.name)
def test_fold_packs_what_the_reference_packs(feature_set, rows):
    reference, fast = FeatureEvaluator.of(feature_set), FastFold.of(feature_set)
    expected, actual = _fold_all(reference, rows), _fold_all(fast, rows)
    assert actual.keys() == expected.keys() and len(expected) > 10
    decayed = {i for i, c in enumerate(feature_set.columns()) if "_decay_" in c}
    for entity, state in expected.items():
        want, got = reference.pack(state), fast.pack(actual[entity])
        assert got[:16] == want[:16], entity
        assert len(got) == len(want)
        for i in range(len(feature_set.columns())):
            if i not in decayed:  # float32 bytes, so that NaN and -0.0 compare too
                assert got[16 + 4 * i: 20 + 4 * i] == want[16 + 4 * i: 20 + 4 * i], (entity, fast.columns[i])
        for name, w, g in zip(fast.columns, reference.results(state), fast.results(actual[entity]), strict=True):
            assert math.isclose(w, g, rel_tol=REL_TOL, abs_tol=ABS_TOL), (entity, name, w, g)
    assert fast.irregular_rows == 0


def test_windows_slide_and_late_rows_land_in_their_tile():
    """Hand-made rows: a late row inside the minute, one too old for it, and a jump past every window."""
    feature_set = video_engagement.v1
    reference, fast = FeatureEvaluator.of(feature_set), FastFold.of(feature_set)
    times = [60_000, 61_000, 125_000, 70_000, 30_000, 126_000, 4_000_000, 3_999_000, 90_000_000, 90_000_001]
    a, b = reference.new_state(), fast.new_state()
    for t in times:
        row = engagement_row(event_type="watch", event_time=t, video_id="v1", watch_ms=1_500,
                             video_duration_ms=2_000)
        reference.update(a, row)
        fast.update(b, row)
        assert fast.pack(b)[:16] == reference.pack(a)[:16]
        for name, w, g in zip(fast.columns, reference.results(a), fast.results(b), strict=True):
            if "_decay_" in name:
                assert math.isclose(w, g, rel_tol=REL_TOL, abs_tol=ABS_TOL), (t, name, w, g)
            else:
                assert w == g, (t, name, w, g)


def test_decay_landmark_rescales_over_long_lives():
    """An entity older than 400 half-lives (the rescale point) keeps the reference's decayed values."""
    feature_set = FeatureSet(name="long_lived", version=1, entity=VIDEO, windows=(timedelta(minutes=1),),
                             half_lives=(timedelta(seconds=1),),
                             aggregations=(Aggregation(name="plays", operation="count", where="event_type = 'watch'"),))
    reference, fast = FeatureEvaluator.of(feature_set), FastFold.of(feature_set)
    a, b = reference.new_state(), fast.new_state()
    for t in range(0, 2_000_000, 7_000):
        row = engagement_row(event_type="watch", event_time=t, video_id="v1", watch_ms=1, video_duration_ms=2)
        reference.update(a, row)
        fast.update(b, row)
    assert b[1] > 0  # the landmark moved
    assert math.isclose(reference.results(a)[0], fast.results(b)[0], rel_tol=REL_TOL)


def test_key_follows_the_set():
    fast = FastFold.of(video_engagement.v1)
    watch = engagement_row(event_type="watch", event_time=1, video_id="v1", watch_ms=1, video_duration_ms=2)
    assert fast.key(watch) == "v1"
    assert fast.key(engagement_row(event_type="watch", event_time=1, video_id="")) is None
    assert fast.key(engagement_row(event_type="sound_engagement", event_time=1, video_id="v1")) is None
    pair = FastFold.of(user_author_affinity.v1)
    assert pair.key(engagement_row(event_type="watch", event_time=1, user_id="u", author_id="a", video_id="v",
                                   watch_ms=1, video_duration_ms=2)) == "u:a"


def test_a_null_value_counts_as_zero_and_is_counted():
    fast = FastFold.of(video_engagement.v1)
    state = fast.new_state()
    fast.update(state, engagement_row(event_type="watch", event_time=1_000, video_id="v1", watch_ms=None,
                                      video_duration_ms=None))
    values = fast.values(state)
    assert (values["plays_1m"], values["watch_ms_1m"], fast.irregular_rows) == (1.0, 0.0, 1)


def test_empty_state_packs_as_the_reference():
    assert FastFold.of(video_engagement.v1).pack(FastFold.of(video_engagement.v1).new_state()) == \
        FeatureEvaluator.of(video_engagement.v1).pack(FeatureEvaluator.of(video_engagement.v1).new_state())


@pytest.mark.parametrize(("feature_set", "message"), [
    (user_hashtag_affinity.v1, "explode hashtags"),
    (video_comment_sentiment.v1, "derived columns"),
])
def test_refuses_what_it_does_not_handle(feature_set, message):
    with pytest.raises(ValueError, match=message):
        FastFold.of(feature_set)
