"""The engagement features job's SQL on in-memory payloads (no Kafka, no Redis): decode, DLQ routing, windows."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from connectors.job_options import JobOptions
from features.engagement import user_hashtag_affinity, video_engagement
from featurespec import FeatureSet, window_label
from featurespec.sql import feature_query
from jobs.engagement_features import JOB_CONFIG, engagement_views, job_config, streaming_environment
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, raw_view

NOW = int(time.time() * 1000)


def _event(record_name: str, video_id: str, offset_ms: int = 0, **fields) -> bytes:
    record = {
        "event_id": str(uuid.uuid4()), "event_time": NOW - offset_ms, "user_id": "u1", "video_id": video_id,
        "author_id": "a1", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
        "hashtags": ["cats"], **fields,
    }
    return default_registry().encode(record_name, record)


@pytest.fixture
def raw(t_env):
    duplicated = _event("Watch", "v2", watch_ms=5_000, video_duration_ms=10_000)
    payloads = [
        _event("Impression", "v1", position=0, surface="for_you"),
        _event("Impression", "v1", position=1, surface="for_you"),
        _event("Impression", "v1", position=2, surface="for_you"),
        _event("Watch", "v1", watch_ms=10_000, video_duration_ms=10_000),  # complete
        _event("Watch", "v1", watch_ms=2_000, video_duration_ms=10_000),
        _event("Watch", "v1", offset_ms=2 * 3600 * 1000, watch_ms=1_000, video_duration_ms=10_000),  # 2 h old
        _event("Like", "v1", action="LIKE"),
        duplicated,
        b"\x00garbage",
        _event("Watch", "v3", watch_ms=-5, video_duration_ms=10_000),
        duplicated,  # a redelivery: same event_id
        _event("Watch", "v4", offset_ms=4 * 3600 * 1000, watch_ms=1_000, video_duration_ms=10_000),  # too late
    ]
    raw_view(t_env, payloads)
    engagement_views(t_env, "raw", allowed_lateness=timedelta(hours=3))
    return t_env


def test_malformed_records_are_routed_with_a_reason(raw):
    query = "SELECT kafka_offset, error FROM decoded WHERE error IS NOT NULL AND error <> 'late'"
    with raw.sql_query(query).execute().collect() as rows:
        errors = {row[0]: row[1] for row in rows}
    assert errors == {8: "undecodable:bad_marker", 9: "negative_duration:watch_ms"}


def test_video_windows_count_only_events_inside_them(raw):
    feature_set = video_engagement.v1
    rows = final_rows(raw.sql_query(feature_query(feature_set)).execute(), key_width=1)
    columns = ["video_id", "event_time", *feature_set.columns()]
    v1 = dict(zip(columns, rows[("v1",)], strict=True))
    assert v1["impressions_1h"] == 3
    assert v1["plays_1m"] == 2 and v1["plays_1h"] == 2  # the 2-hour-old play is outside both
    assert v1["plays_24h"] == 3
    assert v1["completions_1h"] == 1
    assert v1["watch_ms_24h"] == 13_000
    assert v1["likes_1h"] == 1
    assert v1["event_time"] == NOW
    assert dict(zip(columns, rows[("v2",)], strict=True))["plays_1h"] == 1  # the duplicate is dropped
    assert ("v3",) not in rows  # its only event was malformed
    assert ("v4",) not in rows  # its only event was later than the allowed lateness


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _per_column_query(feature_set: FeatureSet) -> str:
    """The same features with one SLIDING_SUM / DECAYED_SUM call per column (what FEATURE_VECTOR replaces)."""
    keys = [f"`{k}`" for k in feature_set.entity.key_columns]
    relation = "`engagement`"
    if feature_set.entity.explodes_hashtags:
        relation = "(SELECT * FROM `engagement` CROSS JOIN UNNEST(`hashtags`) AS exploded(`hashtag`))"
    values = [f"SLIDING_SUM({a.value_sql()}, `event_time`, {_ms(w)}, {feature_set.tiles}) "
              f"AS `{a.name}_{window_label(w)}`" for a in feature_set.aggregations for w in feature_set.windows]
    values += [f"DECAYED_SUM({a.value_sql()}, `event_time`, {_ms(h)}) AS `{a.name}_decay_{window_label(h)}`"
               for a in feature_set.aggregations for h in feature_set.half_lives]
    not_empty = " AND ".join(f"{k} IS NOT NULL AND {k} <> ''" for k in keys)
    return (f"SELECT {', '.join(keys)}, MAX(`event_time`) AS `event_time`, {', '.join(values)} "
            f"FROM {relation} AS src WHERE {not_empty} GROUP BY {', '.join(keys)}")


@pytest.mark.parametrize("feature_set", [video_engagement.v1, user_hashtag_affinity.v1], ids=lambda fs: fs.name)
def test_feature_vector_equals_the_per_column_functions(raw, feature_set):
    width = len(feature_set.entity.key_columns)
    vector = final_rows(raw.sql_query(feature_query(feature_set)).execute(), key_width=width)
    per_column = final_rows(raw.sql_query(_per_column_query(feature_set)).execute(), key_width=width)
    assert vector.keys() == per_column.keys() and vector
    columns = ["event_time", *feature_set.columns()]
    for key, row in per_column.items():
        expected = dict(zip(columns, row[width:], strict=True))
        actual = dict(zip(columns, vector[key][width:], strict=True))
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12), key


def test_late_events_are_not_dead_letters(raw):
    query = "SELECT kafka_offset FROM decoded WHERE error = 'late'"
    with raw.sql_query(query).execute().collect() as rows:
        assert [row[0] for row in rows] == [11]


def test_job_config_carries_the_freshness_knobs_into_flink() -> None:
    """The job's options reach the settings Flink reads (a misspelt key would be ignored silently)."""
    assert JOB_CONFIG["table.exec.mini-batch.allow-latency"] == "200 ms"
    config = job_config(JobOptions(mini_batch_ms=100, buffer_timeout_ms=7))
    assert config["table.exec.mini-batch.allow-latency"] == "100 ms"
    env, t_env = streaming_environment(config)
    assert env._j_stream_execution_environment.getBufferTimeout() == 7
    assert t_env.get_config().get("table.exec.mini-batch.allow-latency", "") == "100 ms"
