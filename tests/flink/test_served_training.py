"""The served-training job's SQL on in-memory Kafka records (no Kafka, no Iceberg): served requests exploded into
candidates, labelled by the engagement events that followed within each label's window, one row per candidate.

The raw tables are JSON files with the Kafka source's shape (payload, and kafka_time with a watermark), so the
interval join and the windows run on event time as they do on Kafka; the real sink is in
tests/integration/test_zz_served_training.py.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import uuid
from datetime import UTC, timedelta

import numpy as np
import pytest

from features import feature_set_for_entity
from featurespec.training import Label, TrainingSet, feature_column
from fyp.serving.layout import ReadPlan
from fyp.serving.served_log import ServedRead, ServedRows, encode_served
from jobs.served_training import JOB_CONFIG, _entity_sets, served_training_views
from schemas.registry import default_registry
from training.watch_outcomes import v1 as WATCH_OUTCOMES

T = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the first request's served time
MINUTE = 60_000
USER, VIDEO = feature_set_for_entity("user"), feature_set_for_entity("video")
USER_PLAN, VIDEO_PLAN = ReadPlan.of(USER), ReadPlan.of(VIDEO)


def _packed(plan: ReadPlan, event_time: int, seed: float) -> bytes:
    values = [seed + i for i in range(len(plan.columns))]
    return struct.pack(f"<qq{len(values)}f", event_time, event_time, *values)


def _served(request_id: str, user_id: str, videos: list[str], served_time: int, *,
            missing: frozenset[str] = frozenset()) -> tuple[bytes, int]:
    read = ServedRead(
        request_id=request_id, served_time_ms=served_time, user_id=user_id, video_ids=tuple(videos),
        user_value=_packed(USER_PLAN, served_time - 5_000, 1.0),
        # A video's value depends on the video only, as in Redis; v1's has a 0/0 ratio (NaN).
        video_values=[None if v in missing else _packed(VIDEO_PLAN, served_time - 1_000, 10.0 * (int(v[1:]) - 1))
                      for v in videos],
        user_plan=USER_PLAN, video_plan=VIDEO_PLAN)
    return encode_served(read), served_time


def _event(record_name: str, user_id: str, video_id: str, event_time: int, **fields) -> tuple[bytes, int]:
    record = {"event_id": str(uuid.uuid4()), "event_time": event_time, "user_id": user_id, "video_id": video_id,
              "author_id": "a1", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": [], **fields}
    return default_registry().encode(record_name, record), event_time


def _raw_table(t_env, tmp_path, name: str, records: list[tuple[bytes, int]]) -> None:
    """A bounded table shaped like connectors.kafka_source (payload, kafka_time + a 5 s watermark)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "part.json").write_text("".join(
        json.dumps({"payload": base64.b64encode(payload).decode(), "ts": ts}) + "\n" for payload, ts in records))
    t_env.execute_sql(
        f"CREATE TEMPORARY TABLE `{name}` (payload BYTES, ts BIGINT, kafka_time AS TO_TIMESTAMP_LTZ(ts, 3), "
        "WATERMARK FOR kafka_time AS kafka_time - INTERVAL '5' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{folder}', 'format' = 'json')")


def _rows(t_env, view: str) -> dict[tuple[str, str], dict]:
    # PyFlink's collect takes neither a TIMESTAMP_LTZ (a java.time.Instant) nor a NaN FLOAT: read served_time as
    # UTC wall time and the values as text.
    t_env.get_config().set("table.local-time-zone", "UTC")
    schema = t_env.from_path(view).get_schema()
    names, types = schema.get_field_names(), [str(t) for t in schema.get_field_data_types()]
    floats = {n for n, t in zip(names, types, strict=True) if t.startswith("FLOAT")}
    columns = ", ".join("CAST(served_time AS TIMESTAMP(3)) AS served_time" if n == "served_time"
                        else f"CAST(`{n}` AS STRING)" if n in floats else f"`{n}`" for n in names)
    with t_env.sql_query(f"SELECT {columns} FROM {view}").execute().collect() as results:
        rows = [{n: float(v) if n in floats and v is not None else v for n, v in zip(names, tuple(row), strict=True)}
                for row in results]
    keyed = {(r["request_id"], r["video_id"]): r for r in rows}
    assert len(keyed) == len(rows), "one row per (request_id, video_id)"
    return keyed


def test_candidates_get_the_labels_of_what_followed_within_the_window(t_env, tmp_path):
    served = [_served("r1", "u1", ["v1", "v2", "v3", "v4", "v5"], T, missing=frozenset({"v5"})),
              _served("r2", "u2", ["v1"], T + 1_000),
              _served("r3", "u3", ["v2", "v2"], T + 2_000)]  # a candidate listed twice: one row, its first position
    events = [
        _event("Like", "u1", "v1", T - 1_000, action="LIKE"),  # before the serve: not a label
        _event("Watch", "u1", "v1", T + MINUTE, watch_ms=10_000, video_duration_ms=10_000),  # completed
        _event("Watch", "u1", "v1", T + 2 * MINUTE, watch_ms=10_000, video_duration_ms=10_000),  # again: one row
        _event("Watch", "u1", "v2", T + MINUTE, watch_ms=1_000, video_duration_ms=10_000),  # not completed
        _event("Like", "u1", "v2", T + 10 * MINUTE - 1, action="LIKE"),  # the window's last millisecond
        _event("Share", "u1", "v2", T + 10 * MINUTE, channel="copy_link"),  # the window's end: outside
        _event("Skip", "u1", "v3", T, dwell_ms=100, video_duration_ms=10_000),  # at the served time: inside
        _event("Like", "u1", "v4", T + MINUTE, action="UNLIKE"),  # `where` says LIKE only
        _event("Like", "u2", "v4", T + MINUTE, action="LIKE"),  # another viewer
        _event("Follow", "u2", "v1", T + 3_000, author_id="a1", action="FOLLOW"),
        _event("Impression", "u9", "v9", T + 30 * MINUTE, position=0, surface="for_you"),  # moves the watermark
    ]
    _raw_table(t_env, tmp_path, "served_raw", served)
    _raw_table(t_env, tmp_path, "engagement_raw", events)
    for key, value in {**JOB_CONFIG, "parallelism.default": "2"}.items():  # two subtasks: the keyed exchanges
        t_env.get_config().set(key, value)
    rows = _rows(t_env, served_training_views(t_env, "served_raw", "engagement_raw", WATCH_OUTCOMES))

    assert set(rows) == {("r1", v) for v in ("v1", "v2", "v3", "v4", "v5")} | {("r2", "v1"), ("r3", "v2")}
    labels = {key: {label.name for label in WATCH_OUTCOMES.labels if row[label.column]} for key, row in rows.items()}
    assert labels == {("r1", "v1"): {"completed"}, ("r1", "v2"): {"liked"}, ("r1", "v3"): {"skipped"},
                      ("r1", "v4"): set(), ("r1", "v5"): set(), ("r2", "v1"): {"followed"}, ("r3", "v2"): set()}
    assert [rows[("r1", v)]["position"] for v in ("v1", "v2", "v3", "v4", "v5")] == [0, 1, 2, 3, 4]
    assert rows[("r3", "v2")]["position"] == 0
    assert rows[("r2", "v1")]["served_time"].replace(tzinfo=UTC).timestamp() * 1000 == T + 1_000

    # Values pass through as the log encoded them (ServedRows, the table function's own decode).
    expected = {(r[0], r[3]): r for payload, _ in served for r in ServedRows(USER, VIDEO)(payload)}
    names = ServedRows(USER, VIDEO)
    columns = [feature_column(USER, c) for c in names.user_columns] + [
        feature_column(VIDEO, c) for c in names.video_columns]
    for key, row in rows.items():
        want = [None if w is None else np.float32(w) for w in expected[key][7:]]
        got = [None if row[c] is None else np.float32(row[c]) for c in columns]
        assert [w if w is None or not math.isnan(w) else "NaN" for w in want] == [
            g if g is None or not math.isnan(g) else "NaN" for g in got], key
        assert any(w is not None and math.isnan(w) for w in want) == (key[1] == "v1"), key  # v1's 0/0 ratio
        assert row[feature_column(USER, "event_time_ms")] == expected[key][5]
        assert row[feature_column(VIDEO, "event_time_ms")] == expected[key][6]
    assert rows[("r1", "v5")][feature_column(VIDEO, "event_time_ms")] == 0  # Redis held no value for v5
    assert all(rows[("r1", "v5")][c] is None for c in columns if c.startswith(VIDEO.name))


def test_labels_keyed_by_anything_else_are_refused():
    by_author = TrainingSet(name="by_author", version=1, spine="event_type = 'impression'", feature_sets=(USER, VIDEO),
                            labels=(Label(name="followed", where="event_type = 'follow'", within=timedelta(minutes=1),
                                          keys=("user_id", "author_id")),))
    with pytest.raises(ValueError, match=r"labels \['followed'\] are not keyed by \(user_id, video_id\)"):
        _entity_sets(by_author)
    no_video = TrainingSet(name="no_video", version=1, spine="event_type = 'impression'", feature_sets=(USER,),
                           labels=WATCH_OUTCOMES.labels)
    with pytest.raises(ValueError, match="need a video feature set"):
        _entity_sets(no_video)


def test_the_examples_in_the_docstrings_run():
    import doctest

    import jobs.served_training as module

    assert doctest.testmod(module, raise_on_error=True).failed == 0
