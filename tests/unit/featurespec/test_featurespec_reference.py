"""featurespec/reference: the SQL translator, the Python SLIDING_SUM / DECAYED_SUM, and the compiled feature set."""

from __future__ import annotations

import doctest
import math
import random
from array import array
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import ALL_FEATURE_SETS
from features.engagement.video_engagement import v1
from featurespec import VIDEO, Aggregation, FeatureSet, window_label
from featurespec.reference import aggregates, evaluate, parse
from featurespec.reference import sql as sql_module
from featurespec.reference.aggregates import DecayedSum, SlidingSum
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import (
    SqlTranslationError,
    compile_predicate,
    compile_value,
    engagement_row,
)
from fyp.serving.layout import HEADER_BYTES, ReadPlan, decode_matrix
from schemas.registry import default_registry
from udfs.envelope import to_engagement_row

T0 = 1_700_000_000_000


def row(**columns):
    return engagement_row(**{"event_time": T0, "video_id": "v1", "event_id": "e", "user_id": "u", **columns})


@pytest.mark.parametrize("module", [parse, sql_module, aggregates, evaluate], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    assert doctest.testmod(module, raise_on_error=True).failed == 0


# --- SQL translation -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("sql", "columns", "expected"), [
    ("event_type = 'watch'", {"event_type": "watch"}, True),
    ("event_type = 'watch'", {"event_type": "skip"}, False),
    ("event_type = 'watch'", {}, False),  # NULL = 'watch' is not true
    ("event_type <> 'watch'", {"event_type": "skip"}, True),
    ("event_type <> 'watch'", {}, False),  # NULL <> 'watch' is NULL, not true
    ("dwell_ms < 2000", {"dwell_ms": 1999}, True),
    ("dwell_ms < 2000", {"dwell_ms": 2000}, False),
    ("dwell_ms < 2000", {}, False),
    ("watch_ms >= 0.95 * video_duration_ms", {"watch_ms": 19_000, "video_duration_ms": 20_000}, True),
    ("watch_ms >= 0.95 * video_duration_ms", {"watch_ms": 18_999, "video_duration_ms": 20_000}, False),
    ("watch_ms >= 0.95 * video_duration_ms", {"watch_ms": 19_000}, False),
    ("action IN ('LIKE', 'UNLIKE')", {"action": "UNLIKE"}, True),
    ("action IN ('LIKE')", {"action": "SHARE"}, False),
    ("action NOT IN ('LIKE')", {"action": "SHARE"}, True),
    ("action NOT IN ('LIKE')", {}, False),  # NULL NOT IN (...) is NULL
    ("sound_id IS NULL", {}, True),
    ("sound_id IS NOT NULL", {"sound_id": "s1"}, True),
    ("dwell_ms < 10 OR event_type = 'skip'", {"event_type": "skip"}, True),  # NULL OR TRUE is TRUE
    ("dwell_ms < 10 AND event_type = 'skip'", {"event_type": "skip"}, False),
    ("(event_type = 'a' OR event_type = 'b') AND loop_count > 1", {"event_type": "b", "loop_count": 2}, True),
    ("`event_type` = 'it''s'", {"event_type": "it's"}, True),
])
def test_predicates_are_true_exactly_when_sql_says_true(sql, columns, expected):
    assert compile_predicate(sql)(engagement_row(**columns)) is expected


@pytest.mark.parametrize(("sql", "columns", "expected"), [
    ("watch_ms", {"watch_ms": 9_000}, 9_000),
    ("CAST(watch_ms AS DOUBLE)", {"watch_ms": 9_000}, 9_000.0),
    ("CAST(watch_ms AS DOUBLE)", {}, None),
    ("LEAST(CAST(watch_ms AS DOUBLE) / video_duration_ms, 1.0)", {"watch_ms": 3, "video_duration_ms": 4}, 0.75),
    ("LEAST(CAST(watch_ms AS DOUBLE) / video_duration_ms, 1.0)", {"watch_ms": 9, "video_duration_ms": 4}, 1.0),
    ("LEAST(CAST(watch_ms AS DOUBLE) / video_duration_ms, 1.0)", {"watch_ms": 9}, None),
    ("GREATEST(dwell_ms, 10)", {"dwell_ms": 3}, 10),
    ("watch_ms / video_duration_ms", {"watch_ms": 7, "video_duration_ms": 2}, 3),  # BIGINT division truncates
    ("watch_ms / video_duration_ms", {"watch_ms": -7, "video_duration_ms": 2}, -3),
    ("watch_ms / video_duration_ms", {"watch_ms": 7, "video_duration_ms": 0}, None),
    ("CAST(watch_ms AS DOUBLE) / video_duration_ms", {"watch_ms": 7, "video_duration_ms": 0}, math.inf),
    ("CASE WHEN action = 'UNLIKE' THEN -1 ELSE 1 END", {"action": "UNLIKE"}, -1),
    ("CASE WHEN action = 'UNLIKE' THEN -1 ELSE 1 END", {"action": "LIKE"}, 1),
    ("CASE WHEN action = 'UNLIKE' THEN -1 ELSE 1 END", {}, 1),
    ("CASE WHEN event_type = 'watch' THEN 1.0 END", {"event_type": "skip"}, None),
    ("-dwell_ms + 2 * 3", {"dwell_ms": 1}, 5),
    ("dwell_ms - 1", {}, None),
])
def test_values_follow_sql_null_and_division_rules(sql, columns, expected):
    assert compile_value(sql)(engagement_row(**columns)) == expected


@pytest.mark.parametrize(("sql", "message"), [
    ("NOT event_type = 'watch'", "NOT is not supported"),
    ("plays > 1", "unknown column 'plays'"),
    ("hashtags IS NULL", "ARRAY"),
    ("arms IS NULL", "ARRAY"),
    ("CAST(watch_ms AS STRING)", "CAST to STRING"),
    ("event_type = 'watch' AND", "unexpected"),
    ("action IN (NULL)", "non-NULL literals"),
    ("event_type + 1", "needs numbers"),
    ("UPPER(action) = 'LIKE'", "function UPPER is not supported"),
    ("event_type = 'a' $", "cannot read"),
])
def test_unsupported_sql_is_refused(sql, message):
    with pytest.raises(SqlTranslationError, match=message):
        compile_predicate(sql)


def test_value_and_condition_are_not_interchangeable():
    with pytest.raises(SqlTranslationError, match="cannot be used as a value"):
        compile_value("watch_ms > 1")
    with pytest.raises(SqlTranslationError, match="expected a condition"):
        compile_predicate("watch_ms")


@pytest.mark.parametrize("feature_set", ALL_FEATURE_SETS, ids=lambda fs: fs.qualified_name)
def test_every_declared_aggregation_translates(feature_set):
    derived = tuple(d.name for d in feature_set.derived)
    for column in feature_set.derived:
        compile_value(column.sql)
    for aggregation in feature_set.aggregations:
        compile_value(aggregation.value_sql(), derived)
        if aggregation.where:
            compile_predicate(aggregation.where, derived)
    if feature_set.where:
        compile_predicate(feature_set.where)


# --- video_engagement.v1 on sample rows ------------------------------------------------------------------

# One row each; what each aggregation adds. The others add 0.0 (value_sql's ELSE), which still moves their
# windows and decays to the row's time.
SAMPLES = [
    ({"event_type": "impression"}, {"impressions": 1.0}),
    ({"event_type": "watch", "watch_ms": 9_000, "video_duration_ms": 15_000},
     {"plays": 1.0, "watch_ms": 9_000.0, "watch_fraction": 0.6}),
    ({"event_type": "watch", "watch_ms": 14_250, "video_duration_ms": 15_000},
     {"plays": 1.0, "watch_ms": 14_250.0, "watch_fraction": 0.95, "completions": 1.0}),
    ({"event_type": "watch", "watch_ms": 40_000, "video_duration_ms": 15_000},
     {"plays": 1.0, "watch_ms": 40_000.0, "watch_fraction": 1.0, "completions": 1.0}),
    ({"event_type": "watch", "watch_ms": 500, "video_duration_ms": 0}, {"plays": 1.0, "watch_ms": 500.0}),
    ({"event_type": "loop", "loop_count": 2, "video_duration_ms": 15_000}, {"loops": 1.0}),
    ({"event_type": "skip", "dwell_ms": 1_999, "video_duration_ms": 15_000}, {"skips": 1.0}),
    ({"event_type": "skip", "dwell_ms": 2_000, "video_duration_ms": 15_000}, {}),
    ({"event_type": "like", "action": "LIKE"}, {"likes": 1.0}),
    ({"event_type": "like", "action": "UNLIKE"}, {"likes": -1.0}),
    ({"event_type": "share", "action": "copy_link"}, {"shares": 1.0}),
    ({"event_type": "save"}, {"saves": 1.0}),
    ({"event_type": "follow", "action": "FOLLOW"}, {"follows": 1.0}),
    ({"event_type": "follow", "action": "UNFOLLOW"}, {"follows": -1.0}),
    ({"event_type": "comment", "comment_text": "nice"}, {"comments": 1.0}),
    ({"event_type": "not_interested", "action": "seen_too_often"}, {"not_interested": 1.0}),
    ({"event_type": "sound_engagement", "action": "USE_SOUND"}, {}),
]


def _columns_of(aggregation_name: str) -> list[str]:
    return ([f"{aggregation_name}_{window_label(w)}" for w in v1.windows]
            + [f"{aggregation_name}_decay_{window_label(h)}" for h in v1.half_lives])


@pytest.mark.parametrize(("columns", "expected"), SAMPLES, ids=[c["event_type"] for c, _ in SAMPLES])
def test_video_engagement_values_per_sample_row(columns, expected):
    evaluator = FeatureEvaluator.of(v1)
    state = evaluator.new_state()
    evaluator.update(state, row(**columns))
    values = evaluator.values(state)
    got = {a.name: {values[c] for c in _columns_of(a.name)} for a in v1.aggregations}
    # Every window and decay of an aggregation holds the row's value (one row: no decay, nothing expired).
    assert got == {a.name: {expected.get(a.name, 0.0)} for a in v1.aggregations}
    assert evaluator.event_time(state) == T0


def test_every_sample_event_type_is_covered():
    assert {c["event_type"] for c, _ in SAMPLES} >= {"impression", "watch", "loop", "skip", "like", "share", "save",
                                                      "follow", "comment", "not_interested"}
    assert {name for _, e in SAMPLES for name in e} == {a.name for a in v1.aggregations}


def test_keyless_rows_are_not_the_sets():
    evaluator = FeatureEvaluator.of(v1)
    assert evaluator.key(row(event_type="save")) == "v1"
    assert evaluator.key(row(event_type="save", video_id="")) is None
    assert evaluator.key(row(event_type="save", video_id=None)) is None


def test_columns_and_state_name_follow_the_declaration():
    evaluator = FeatureEvaluator.of(v1)
    assert evaluator.columns == v1.columns()
    other = FeatureSet(name=v1.name, version=v1.version, entity=VIDEO, aggregations=v1.aggregations,
                       windows=v1.windows, half_lives=v1.half_lives, tiles=6)
    assert FeatureEvaluator.of(other).state_name != evaluator.state_name
    assert evaluator.state_name.startswith("video_engagement.v1:")


def test_decoded_payload_rows_feed_the_evaluator():
    payload = default_registry().encode("Watch", {
        "event_id": "e1", "event_time": T0, "user_id": "u1", "video_id": "v9", "author_id": "a1", "region": "US",
        "language": "en", "session_id": "s1", "watch_ms": 15_000, "video_duration_ms": 15_000})
    decoded = to_engagement_row(payload, now_ms=T0)
    evaluator = FeatureEvaluator.of(v1)
    state = evaluator.new_state()
    evaluator.update(state, decoded)
    assert evaluator.key(decoded) == "v9"
    assert evaluator.values(state)["completions_10m"] == 1.0


def test_packed_value_reads_back_with_the_serving_layout():
    evaluator = FeatureEvaluator.of(v1)
    state = evaluator.new_state()
    for t, kind in ((T0, "impression"), (T0 + 5_000, "impression"), (T0 + 6_000, "like")):
        evaluator.update(state, row(event_type=kind, event_time=t, action="LIKE"))
    packed = evaluator.pack(state, update_time_ms=T0 + 7_000)
    assert len(packed) == HEADER_BYTES + 4 * len(v1.columns())
    assert int.from_bytes(packed[8:16], "little") == T0 + 7_000
    matrix, event_times = decode_matrix(ReadPlan.of(v1), [packed], now_ms=T0 + 6_000)
    got = dict(zip(v1.columns(), matrix[0], strict=True))
    assert event_times[0] == T0 + 6_000
    assert got["impressions_1m"] == 2.0 and got["likes_24h"] == 1.0
    assert got["plays_1h"] == 0.0


def test_a_column_that_accepted_no_row_packs_as_nan():
    dwell = FeatureSet(name="t", version=1, entity=VIDEO, windows=(timedelta(minutes=1),),
                       aggregations=(Aggregation(name="dwell", operation="sum", expression="dwell_ms"),))
    evaluator = FeatureEvaluator.of(dwell)
    state = evaluator.new_state()
    evaluator.update(state, row(event_type="save"))  # dwell_ms is NULL: the row does not count
    matrix, event_times = decode_matrix(ReadPlan.of(dwell), [evaluator.pack(state)], now_ms=T0)
    assert np.isnan(matrix[0, 0]) and event_times[0] == T0


def test_state_survives_bytes_and_merges():
    evaluator = FeatureEvaluator.of(v1)
    a, b, both = evaluator.new_state(), evaluator.new_state(), evaluator.new_state()
    rows = [row(event_type="watch", event_time=T0 + 7_000 * i, watch_ms=1_000 * i, video_duration_ms=9_000)
            for i in range(40)]
    for i, r in enumerate(rows):
        evaluator.update(a if i % 3 else b, r)
        evaluator.update(both, r)
    a = evaluator.state_from_bytes(evaluator.state_to_bytes(a))
    evaluator.merge(a, b)
    assert evaluator.values(a) == pytest.approx(evaluator.values(both))
    assert evaluator.event_time(a) == evaluator.event_time(both)
    with pytest.raises(ValueError, match="does not fit"):
        evaluator.state_from_bytes(b"\0" * 8)


# --- aggregators -----------------------------------------------------------------------------------------

def _run(aggregator, events):
    state = array("d", bytes(8 * aggregator.width))
    aggregator.initialize(state, 0)
    for value, t in events:
        aggregator.add(state, 0, value, t)
    return aggregator.result(state, 0)


MINUTE = SlidingSum(window_ms=60_000, tiles=12)  # 5 s tiles


@pytest.mark.parametrize(("events", "expected"), [
    ([], None),
    ([(1.0, 0)], 1.0),
    ([(1.0, 0), (2.0, 4_999)], 3.0),  # same tile
    ([(1.0, 0), (2.0, 59_999)], 3.0),  # tile 0 is the oldest of (11 - 12, 11]
    ([(1.0, 0), (2.0, 60_000)], 2.0),  # tile 0 fell out when tile 12 arrived
    ([(2.0, 60_000), (1.0, 0)], 2.0),  # a late event older than the window is dropped
    ([(2.0, 60_000), (1.0, 5_000)], 3.0),  # a late event still inside the window counts
    ([(1.0, 0), (1.0, 60_000), (1.0, 5_000)], 2.0),  # slot of tile 0 reused by tile 12, then late tile 1 added
    ([(1.0, -1)], 1.0),  # negative times: floor division, as Math.floorDiv
    ([(1.0, -1), (1.0, 59_999)], 1.0),  # tile -1 is out of (11 - 12, 11]
    ([(1.0, 0), (1.0, 10 * 60_000)], 1.0),  # a gap longer than the window resets every slot it reaches
])
def test_sliding_sum(events, expected):
    assert _run(MINUTE, events) == expected


@pytest.mark.parametrize(("events", "expected"), [
    ([], None),
    ([(8.0, 0)], 8.0),
    ([(8.0, 0), (0.0, 60_000)], 4.0),  # one half-life later
    ([(0.0, 60_000), (8.0, 0)], 4.0),  # late: added decayed to the reference
    ([(1.0, 0), (1.0, 0)], 2.0),
    ([(8.0, 0), (8.0, 120_000)], 10.0),
])
def test_decayed_sum(events, expected):
    assert _run(DecayedSum(half_life_ms=60_000), events) == pytest.approx(expected)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SlidingSum(window_ms=60_000, tiles=7), "multiple of tiles"),
    (lambda: SlidingSum(window_ms=0, tiles=12), "positive"),
    (lambda: DecayedSum(half_life_ms=0), "positive"),
])
def test_aggregator_parameters_are_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_state_suffix_names_the_parameters():
    assert MINUTE.state_suffix == "sliding_sum_60000ms_12t"
    assert DecayedSum(half_life_ms=1_800_000).state_suffix == "decayed_sum_1800000ms"


events_strategy = st.lists(st.tuples(st.integers(-50, 50).map(float), st.integers(0, 400_000)), max_size=60)


def _reference_sliding(events, window_ms, tiles):
    """The Java tests' brute-force definition (Reference.slidingSum)."""
    if not events:
        return None
    tile = window_ms // tiles
    ref_tile = max(t for _, t in events) // tile
    return sum(v for v, t in events if t // tile > ref_tile - tiles)


def _reference_decayed(events, half_life_ms):
    if not events:
        return None
    ref = max(t for _, t in events)
    return sum(v * 2.0 ** (-(ref - t) / half_life_ms) for v, t in events)


@settings(max_examples=150, deadline=None)
@given(events_strategy, st.randoms(use_true_random=False))
def test_aggregators_match_the_reference_in_any_order(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    sliding = SlidingSum(window_ms=120_000, tiles=12)
    decayed = DecayedSum(half_life_ms=90_000)
    assert _run(sliding, shuffled) == _reference_sliding(events, 120_000, 12)  # integer values: exact
    assert _run(decayed, shuffled) == pytest.approx(_reference_decayed(events, 90_000), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(events_strategy, events_strategy)
def test_merge_equals_adding_everything(left, right):
    for aggregator in (SlidingSum(window_ms=120_000, tiles=12), DecayedSum(half_life_ms=90_000)):
        a = array("d", bytes(8 * aggregator.width))
        b = array("d", bytes(8 * aggregator.width))
        aggregator.initialize(a, 0)
        aggregator.initialize(b, 0)
        for value, t in left:
            aggregator.add(a, 0, value, t)
        for value, t in right:
            aggregator.add(b, 0, value, t)
        aggregator.merge(a, 0, b, 0)
        expected = _run(aggregator, left + right)
        assert aggregator.result(a, 0) == (None if expected is None else pytest.approx(expected, abs=1e-9))


def test_windows_and_decays_of_a_busy_entity_match_the_reference():
    rnd = random.Random(7)
    spec = FeatureSet(name="t", version=1, entity=VIDEO, windows=(timedelta(minutes=1), timedelta(hours=1)),
                      half_lives=(timedelta(minutes=30),),
                      aggregations=(Aggregation(name="plays", operation="count", where="event_type = 'watch'"),))
    evaluator = FeatureEvaluator.of(spec)
    state = evaluator.new_state()
    rows = [row(event_type=rnd.choice(["watch", "impression"]), event_time=T0 + rnd.randrange(0, 3_600_000))
            for _ in range(2_000)]
    for r in rows:
        evaluator.update(state, r)
    plays = [(1.0 if r[0] == "watch" else 0.0, r[2]) for r in rows]  # value_sql: ELSE 0.0
    values = evaluator.values(state)
    assert values["plays_1m"] == _reference_sliding(plays, 60_000, 12)
    assert values["plays_1h"] == _reference_sliding(plays, 3_600_000, 12)
    assert values["plays_decay_30m"] == pytest.approx(_reference_decayed(plays, 1_800_000))
    assert evaluator.event_time(state) == max(r[2] for r in rows)


def test_derived_columns_are_computed_per_row_after_the_filter():
    from features.comments import video_comment_sentiment
    from udfs.sentiment import comment_sentiment

    evaluator = FeatureEvaluator.of(video_comment_sentiment.v1)
    texts = ["love this so much", "worst video ever", "lol"]
    rows = [engagement_row(event_type="comment", event_time=1_000 + i, video_id="v1", comment_text=t)
            for i, t in enumerate(texts)]
    assert evaluator.key(engagement_row(event_type="watch", event_time=1, video_id="v1")) is None
    state = evaluator.new_state()
    for row in rows:
        assert evaluator.key(row) == "v1"
        evaluator.update(state, row)
    values = evaluator.values(state)
    scores = [comment_sentiment(t) for t in texts]
    assert values["scored_comments_1h"] == 3
    assert values["sentiment_sum_1h"] == pytest.approx(sum(scores))
    assert values["negative_comments_24h"] == sum(s <= -0.05 for s in scores) == 1


def test_rows_that_count_in_no_aggregation_are_not_the_sets():
    from features import feature_set_for_entity

    evaluator = FeatureEvaluator.of(feature_set_for_entity("author"))  # plays, completions, likes, follows, shares
    assert evaluator.key(row(event_type="watch", author_id="a1")) == "a1"
    assert evaluator.key(row(event_type="impression", author_id="a1")) is None
    assert evaluator.key(row(event_type="skip", dwell_ms=100, author_id="a1")) is None
    hashtags = FeatureEvaluator.of(feature_set_for_entity("user_hashtag"))
    assert hashtags.keys(row(event_type="impression", hashtags=["cats"])) == []
    assert hashtags.keys(row(event_type="skip", dwell_ms=100, hashtags=["cats"])) == ["u:cats"]
    assert hashtags.keys(row(event_type="skip", dwell_ms=5000, hashtags=["cats"])) == []
