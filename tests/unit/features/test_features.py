"""Feature declarations: spec validation, the SQL compiler, the reference doc, and read-time decoding."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest

from features import ALL_FEATURE_SETS, feature_set_for_entity
from features.serving_sets import GLOBAL_TRENDING, RECENT_SEEN, SERVING_SETS, TRENDING, USER_MARKET
from featurespec import (
    ENTITIES,
    USER_HASHTAG,
    VIDEO,
    Aggregation,
    DerivedColumn,
    FeatureSet,
    Ratio,
    SortedSetSpec,
    double_literals,
)
from featurespec.docs import render_feature_reference
from featurespec.sql import (
    JAVA_AGGREGATES,
    feature_query,
    read_columns,
    sink_columns,
    sorted_set_query,
    source_columns,
    vector_function,
    vector_spec,
)
from fyp.config import REPO_ROOT
from fyp.serving.layout import HEADER_BYTES, ReadPlan, decode_matrix, ratio_columns

PLAYS = Aggregation(name="plays", operation="count", where="event_type = 'watch'")


def _set(**overrides) -> FeatureSet:
    spec = {"name": "t", "version": 1, "entity": VIDEO, "aggregations": (PLAYS,),
            "windows": (timedelta(minutes=1), timedelta(hours=1)), "half_lives": (timedelta(minutes=30),)}
    return FeatureSet(**{**spec, **overrides})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"name": "Bad-Name"}, "lower_snake_case"),
    ({"version": 0}, "version must be >= 1"),
    ({"aggregations": ()}, "at least one aggregation"),
    ({"aggregations": (PLAYS, PLAYS)}, "duplicate aggregation"),
    ({"windows": (), "half_lives": ()}, "declare windows or half_lives"),
    ({"windows": (timedelta(milliseconds=5),)}, "whole-millisecond tiles"),
    ({"ttl": timedelta(minutes=5)}, "shorter than the longest window"),
    ({"ratios": (Ratio(name="r", numerator="plays", denominator="likes"),)}, "undeclared"),
])
def test_invalid_declarations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        _set(**overrides)


def test_sum_needs_an_expression_and_count_refuses_one():
    with pytest.raises(ValueError, match="expression"):
        Aggregation(name="x", operation="sum")
    with pytest.raises(ValueError, match="expression"):
        Aggregation(name="x", operation="count", expression="watch_ms")


def test_columns_are_aggregation_by_window_then_decays():
    assert _set().columns() == ("plays_1m", "plays_1h", "plays_decay_30m")


def test_key_prefix_carries_the_version():
    assert _set(version=3).key_prefix == "fyp:t:v3:"


def test_query_groups_by_entity_keys_and_explodes_hashtags():
    query = feature_query(_set(entity=USER_HASHTAG))
    assert "CROSS JOIN UNNEST(`hashtags`)" in query
    assert "STATE_TTL('src' = '7200s')" in query  # the longest window (1 h) plus one hour
    assert "MAX(`event_time`) AS `event_time`" in query
    assert "`user_id` IS NOT NULL AND `user_id` <> '' AND `hashtag` IS NOT NULL AND `hashtag` <> ''" in query
    assert "GROUP BY `user_id`, `hashtag`\n" in query
    # Only what the set reads goes through the explode, which copies it once per hashtag.
    assert ("FROM (SELECT `event_type`, `event_time`, `user_id`, `hashtag` FROM (SELECT `event_type`, "
            "`event_time`, `user_id`, `hashtags` FROM `engagement`) AS narrowed CROSS JOIN UNNEST") in query


def test_a_set_reads_the_columns_its_declaration_names_and_no_word_inside_a_literal():
    sums = Aggregation(name="watch_ms", operation="sum", where="event_type = 'watch' AND action <> 'session_id'",
                       expression="watch_ms")
    assert read_columns(_set(aggregations=(PLAYS, sums))) == ("event_type", "event_time", "video_id", "watch_ms",
                                                              "action")
    assert read_columns(_set(entity=USER_HASHTAG)) == ("event_type", "event_time", "user_id", "hashtags")


def test_the_engagement_view_keeps_what_some_set_reads_and_the_dedup_key():
    columns = source_columns(ALL_FEATURE_SETS, SERVING_SETS)
    assert "event_id" in columns
    for feature_set in ALL_FEATURE_SETS:
        assert set(read_columns(feature_set)) <= set(columns)
    assert {"region", "language", "comment_text", "hashtags"} <= set(columns)
    assert not {"session_id", "loop_count", "schema_version"} & set(columns)  # no declared set reads them
    assert source_columns([_set()]) == ("event_type", "event_id", "event_time", "video_id")
    assert set(source_columns([], [RECENT_SEEN])) >= {"user_id", "video_id", "event_type", "event_time"}


def test_query_computes_one_feature_vector_per_set_and_flattens_it_in_column_order():
    likes = Aggregation(name="likes", operation="sum", where="event_type = 'like'", expression="delta")
    fs = _set(aggregations=(PLAYS, likes), half_lives=(timedelta(minutes=30), timedelta(hours=24)))
    query = feature_query(fs)
    assert query.count("FEATURE_VECTOR_ONE_PHASE(") == 1  # a user-keyed set: many keys
    assert "SLIDING_SUM" not in query and "DECAYED_SUM" not in query
    assert vector_spec(fs) == "60000/12,3600000/12;1800000,86400000"
    values = f"CAST({PLAYS.value_sql()} AS DOUBLE),\n    CAST({likes.value_sql()} AS DOUBLE)"
    spec = "60000/12,3600000/12;1800000,86400000"
    assert f"FEATURE_VECTOR_ONE_PHASE(ARRAY[\n    {values}],\n    `event_time`, '{spec}') AS `fv`" in query
    outer = query[:query.index("FROM (")]
    flattened = re.findall(r"`fv`\[(\d+)\] AS `(\w+)`", outer)
    assert flattened == [(str(i), c) for i, c in enumerate(fs.columns(), start=1)]
    selected = re.findall(r"^  `(\w+)`,?$", outer, flags=re.MULTILINE)
    assert selected == ["video_id", "event_time"]
    assert [c for c, _ in sink_columns(fs)] == [*selected, *(c for _, c in flattened)]


@pytest.mark.parametrize(("sql", "expected"), [
    ("CASE WHEN a THEN 1.0 ELSE 0.0 END", "CASE WHEN a THEN 1.0E0 ELSE 0.0E0 END"),
    ("watch_ms >= 0.95 * d AND x < .5 AND y > 2.", "watch_ms >= 0.95E0 * d AND x < .5E0 AND y > 2.E0"),
    ("n < 2000 AND m = 1.5E3", "n < 2000 AND m = 1.5E3"),  # integers and DOUBLE literals stay
    ("comment_text = 'rated 4.5 / 5.0' AND `v1.0` > 0", "comment_text = 'rated 4.5 / 5.0' AND `v1.0` > 0"),
    ("a = 'it''s 1.0' OR b > 1.25", "a = 'it''s 1.0' OR b > 1.25E0"),
])
def test_decimal_literals_become_double_literals_outside_quotes(sql, expected):
    assert double_literals(sql) == expected


def test_compiled_feature_sql_has_no_decimal_literal():
    """A decimal literal makes Flink compute that expression in DECIMAL per row (castToDecimal)."""
    decimal = re.compile(r"(?<![\w.])(\d+\.\d*|\.\d+)(?![\w.])")
    queries = [feature_query(fs) for fs in ALL_FEATURE_SETS] + [sorted_set_query(s) for s in SERVING_SETS]
    for query in queries:
        unquoted = re.sub(r"'(?:[^']|'')*'|`[^`]*`", "", query)
        assert not decimal.findall(unquoted), query
    assert "THEN 1.0E0 ELSE 0.0E0 END" in feature_query(feature_set_for_entity("video"))


@pytest.mark.parametrize(("windows", "half_lives", "spec"), [
    ((timedelta(minutes=1),), (), "60000/12;"),
    ((), (timedelta(hours=24),), ";86400000"),
])
def test_vector_spec_lists_may_be_empty(windows, half_lives, spec):
    assert vector_spec(_set(windows=windows, half_lives=half_lives)) == spec


def test_the_vector_function_is_registered_next_to_the_single_ones():
    assert JAVA_AGGREGATES["FEATURE_VECTOR"] == "dev.fyp.flink.aggregates.FeatureVector"
    assert JAVA_AGGREGATES["FEATURE_VECTOR_ONE_PHASE"] == "dev.fyp.flink.aggregates.FeatureVectorOnePhase"
    assert {"SLIDING_SUM", "DECAYED_SUM"} <= JAVA_AGGREGATES.keys()  # features/serving_sets.py uses DECAYED_SUM


def test_sink_columns_match_the_query_outputs():
    fs = _set()
    assert [c for c, _ in sink_columns(fs)] == ["video_id", "event_time", *fs.columns()]


def test_every_entity_of_the_brief_is_declared():
    assert {fs.entity.name for fs in ALL_FEATURE_SETS} == {
        "user", "video", "author", "sound", "user_author", "user_hashtag", "region_language"}
    with pytest.raises(ValueError, match="no feature set"):
        feature_set_for_entity("planet")


def test_committed_feature_reference_matches_the_declarations():
    assert (REPO_ROOT / "docs" / "FEATURES.md").read_text() == render_feature_reference(ALL_FEATURE_SETS)


def _packed(event_time: int, values: list[float]) -> bytes:
    header = event_time.to_bytes(8, "little", signed=True) + (event_time + 5).to_bytes(8, "little", signed=True)
    return header + np.asarray(values, dtype="<f4").tobytes()


def test_read_time_expires_windows_and_decays_sums():
    plan = ReadPlan.of(_set())
    value = _packed(1_000_000, [3.0, 5.0, 8.0])
    fresh, _ = decode_matrix(plan, [value], now_ms=1_000_000)
    assert fresh[0].tolist() == [3.0, 5.0, 8.0]
    two_minutes, _ = decode_matrix(plan, [value], now_ms=1_000_000 + 120_000)
    assert two_minutes[0, 0] == 0.0  # the 1-minute window has wholly passed
    assert two_minutes[0, 1] == 5.0  # the 1-hour window still holds every counted event
    half_life_later, _ = decode_matrix(plan, [value], now_ms=1_000_000 + 1_800_000)
    assert half_life_later[0, 2] == pytest.approx(4.0)


def test_missing_or_malformed_values_read_as_nan():
    plan = ReadPlan.of(_set())
    matrix, times = decode_matrix(plan, [None, b"short"], now_ms=0)
    assert np.isnan(matrix).all() and times.tolist() == [0, 0]
    assert len(_packed(0, [1, 2, 3])) == HEADER_BYTES + 12


def test_ratios_pair_columns_of_the_same_window():
    fs = _set(aggregations=(PLAYS, Aggregation(name="likes", operation="count", where="event_type = 'like'")),
              ratios=(Ratio(name="like_rate", numerator="likes", denominator="plays"),))
    assert ratio_columns(fs)[0] == ("like_rate_1m", "likes_1m", "plays_1m")


def test_only_entities_with_few_keys_are_pre_aggregated_before_the_shuffle():
    assert [e.name for e in ENTITIES if e.few_keys] == ["region_language"]
    for feature_set in ALL_FEATURE_SETS:
        expected = "FEATURE_VECTOR(" if feature_set.entity.few_keys else "FEATURE_VECTOR_ONE_PHASE("
        assert vector_function(feature_set.entity) + "(" == expected
        assert feature_query(feature_set).count(expected) == 1, feature_set.name


def test_a_per_event_serving_set_selects_rows_without_grouping_and_an_aggregated_one_groups():
    assert RECENT_SEEN.per_event and not TRENDING.per_event
    per_event = sorted_set_query(RECENT_SEEN)
    assert "GROUP BY" not in per_event and "STATE_TTL" not in per_event
    assert per_event.startswith("SELECT `user_id`, `video_id`, CAST(event_time AS DOUBLE) AS `score`")
    aggregated = sorted_set_query(TRENDING)
    assert "GROUP BY `region`, `language`, `video_id`" in aggregated and "STATE_TTL('src' = '90000s')" in aggregated


def test_a_derived_key_or_member_is_computed_in_a_subquery():
    market = sorted_set_query(USER_MARKET)
    assert "FROM (SELECT *, `region` || ':' || `language` AS `market` FROM `engagement`) AS src" in market
    assert market.startswith("SELECT `user_id`, `market`, CAST(`event_time` AS DOUBLE) AS `score`")
    assert "GROUP BY" not in market and USER_MARKET.max_size == 1  # ZADD GT + trim to 1: the latest event's market
    everything = sorted_set_query(GLOBAL_TRENDING)
    assert "FROM (SELECT *, 'all' AS `scope` FROM `engagement`) AS src" in everything
    assert "GROUP BY `scope`, `video_id`" in everything and GLOBAL_TRENDING.score == TRENDING.score
    assert {"region", "language"} <= set(source_columns([], [USER_MARKET]))
    # v1 was the candidate-sets batch's plain string under the same name: a zset must not share its keys
    assert USER_MARKET.key_prefix == "fyp:user_market:v2:"


@pytest.mark.parametrize(("changes", "message"), [
    ({"key_columns": ()}, "needs a key column"),
    ({"derived": (DerivedColumn(name="m", sql="1"), DerivedColumn(name="m", sql="2")), "member_column": "m"},
     "repeat a name"),
    ({"derived": (DerivedColumn(name="unused", sql="1"),)}, r"\['unused'\] are neither a key nor the member"),
])
def test_a_serving_set_declaration_is_checked(changes, message):
    fields = dict(name="s", version=1, key_columns=("user_id",), member_column="video_id", score="event_time",
                  where="TRUE", max_size=10, ttl=timedelta(days=1), per_event=True)
    with pytest.raises(ValueError, match=message):
        SortedSetSpec(**{**fields, **changes})


def test_an_aggregated_serving_set_needs_a_state_ttl():
    fields = dict(name="s", version=1, key_columns=("user_id",), member_column="video_id", score="MAX(event_time)",
                  where="TRUE", max_size=10, ttl=timedelta(days=1))
    with pytest.raises(ValueError, match="needs state_ttl"):
        SortedSetSpec(**fields)
    assert SortedSetSpec(**fields, per_event=True).state_ttl is None


def test_a_set_counts_the_rows_of_its_aggregations_only():
    likes = Aggregation(name="likes", operation="count", where="event_type = 'like'")
    completions = Aggregation(name="completions", operation="count", where="event_type = 'watch' AND watch_ms > 0")
    assert _set(aggregations=(PLAYS,)).counted_where == "event_type = 'watch'"
    # "watch AND ..." adds nothing next to "watch"; the same predicate twice is listed once.
    assert _set(aggregations=(PLAYS, completions, likes, Aggregation(name="p2", operation="count",
                                                                      where="event_type = 'watch'"))
                ).counted_where == "(event_type = 'watch') OR (event_type = 'like')"
    assert _set(aggregations=(completions,)).counted_where == "event_type = 'watch' AND watch_ms > 0"
    # An OR after the AND binds looser: "watch AND x OR like" admits likes, which "watch" does not.
    loose = Aggregation(name="loose", operation="count", where="event_type = 'watch' AND watch_ms > 0 OR action = 'X'")
    assert _set(aggregations=(PLAYS, loose)).counted_where == (
        "(event_type = 'watch') OR (event_type = 'watch' AND watch_ms > 0 OR action = 'X')")
    # One aggregation over every row: every row counts, no filter.
    assert _set(aggregations=(PLAYS, Aggregation(name="events", operation="count"))).counted_where is None
    query = feature_query(_set(aggregations=(PLAYS, likes)))
    assert "AND ((event_type = 'watch') OR (event_type = 'like'))\nGROUP BY" in query


def test_impressions_leave_a_user_x_hashtag_pair_untouched():
    user_hashtag = feature_set_for_entity("user_hashtag")
    assert user_hashtag.counted_where == "(event_type = 'watch') OR (event_type = 'skip' AND dwell_ms < 2000)"
