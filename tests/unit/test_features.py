"""Feature declarations: spec validation, the SQL compiler, the reference doc, and read-time decoding."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from features import ALL_FEATURE_SETS, feature_set_for_entity
from fyp.config import REPO_ROOT
from fyp.serving.layout import HEADER_BYTES, ReadPlan, decode_matrix, ratio_columns
from udfs.feature_docs import render_feature_reference
from udfs.feature_sql import feature_query, sink_columns
from udfs.featurespec import USER_HASHTAG, VIDEO, Aggregation, FeatureSet, Ratio

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
    assert query.rstrip().endswith("GROUP BY `user_id`, `hashtag`")
    value = "CASE WHEN event_type = 'watch' THEN 1.0 ELSE 0.0 END"
    assert f"SLIDING_SUM({value}, `event_time`, 60000, 12) AS `plays_1m`" in query
    assert f"DECAYED_SUM({value}, `event_time`, 1800000) AS `plays_decay_30m`" in query


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
