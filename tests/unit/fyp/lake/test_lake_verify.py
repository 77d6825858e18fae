"""`fyp verify features` logic on plain data: recomputation, comparison and the documented explanations.

The "Redis" values here are packed by the same evaluator over the rows the job would have featured, then the
history is given with what the job left out (late rows, repeated ids, newer rows); each test checks that the
difference is reported, sized, and attributed to the right cause, and that a tampered value is a mismatch.
"""

from __future__ import annotations

import numpy as np
import pytest

from features import ALL_FEATURE_SETS, ALLOWED_LATENESS
from features.engagement import user_hashtag_affinity, video_engagement
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.reference.sql import engagement_row
from fyp.lake.history import HistoryEvent, late_flags, sample, split_id
from fyp.lake.verify import check_entity, summarize
from udfs.lateness import LatenessGate

VIDEO = video_engagement.v1
NOW = 1_800_000_000_000
MINUTE = 60_000


def watch(n: int, t: int, *, video: str = "v1", partition: int = 0, offset: int | None = None, late: bool = False,
          event_id: str | None = None, hashtags=("cats",)) -> HistoryEvent:
    row = engagement_row(event_type="watch", event_id=event_id or f"e{n}", event_time=t, user_id="u1",
                         video_id=video, author_id="a1", watch_ms=8_000 + n, video_duration_ms=10_000,
                         hashtags=list(hashtags))
    return HistoryEvent(row=row, partition=partition, offset=n if offset is None else offset, late=late)


def redis_value(evaluator: FeatureEvaluator, key: str, events) -> bytes:
    state = evaluator.new_state()
    for event in events:
        for row_key in evaluator.keys(event.row):
            if row_key == key:
                evaluator.update(state, event.row)
    return evaluator.pack(state, update_time_ms=NOW)  # the job's update time must not matter


def history(n: int = 5) -> list[HistoryEvent]:
    return [watch(i, NOW - (n - i) * 1_000) for i in range(n)]


def test_identical_history_matches_on_every_column():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    check = check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows), rows, now_ms=NOW)
    assert check.status == "match" and check.causes == ()
    assert check.mismatched == 0 and check.matched == 1 + len(VIDEO.columns())
    assert check.redis_event_time_ms == check.history_event_time_ms == rows[-1].row[2]
    plays = {c.column: c for c in check.columns}["plays_1m"]
    assert plays.redis == plays.recomputed == 5.0


def test_a_tampered_value_is_an_unexplained_mismatch_with_its_size():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    value = bytearray(redis_value(evaluator, "v1", rows))
    column = VIDEO.columns().index("plays_1h")
    floats = np.frombuffer(bytes(value[16:]), dtype="<f4").copy()
    floats[column] += 2
    value[16:] = floats.tobytes()
    check = check_entity(evaluator, "v1", bytes(value), rows, now_ms=NOW)
    assert check.status == "mismatch" and check.mismatched == 1
    (bad,) = [c for c in check.columns if not c.match]
    assert bad.column == "plays_1h" and bad.abs_diff == 2.0 and bad.rel_diff == pytest.approx(2 / 7)
    assert bad.explained_by is None


def test_a_repeated_event_id_counts_once_and_a_second_count_is_the_dedup_horizon():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    repeated = [*rows, watch(9, NOW - 500, event_id="e2", offset=99)]
    assert check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows[:2] + rows[3:] + [repeated[-1]]),
                        repeated, now_ms=NOW).status == "mismatch"  # the later copy won: not what the job does
    check = check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows), repeated, now_ms=NOW)
    assert check.status == "match"  # keep-first, as the job's dedup
    counted_twice = check_entity(evaluator, "v1", redis_value(evaluator, "v1", repeated), repeated, now_ms=NOW)
    assert counted_twice.status == "explained" and counted_twice.causes == ("dedup_horizon",)
    plays = {c.column: c for c in counted_twice.columns}["plays_1h"]
    assert (plays.redis, plays.recomputed, plays.explained_by) == (6.0, 5.0, ("dedup_horizon",))


def test_rows_the_job_dropped_as_late_are_explained_by_lateness():
    evaluator = FeatureEvaluator.of(VIDEO)
    on_time = history()
    late = watch(7, NOW - 30 * MINUTE, offset=10, late=True)
    check = check_entity(evaluator, "v1", redis_value(evaluator, "v1", on_time), [*on_time, late], now_ms=NOW)
    assert check.status == "explained" and check.causes == ("lateness",)
    by_name = {c.column: c for c in check.columns}
    assert by_name["plays_1m"].match and not by_name["plays_1h"].match  # only windows reaching back 30 min
    assert by_name["plays_1h"].explained_by == ("lateness",)
    # Without the flag, the same difference is a bug.
    unflagged = watch(7, NOW - 30 * MINUTE, offset=10)
    assert check_entity(evaluator, "v1", redis_value(evaluator, "v1", on_time), [*on_time, unflagged],
                        now_ms=NOW).status == "mismatch"


def test_late_flags_follow_the_newest_earlier_row_of_the_partition():
    lateness = int(ALLOWED_LATENESS.total_seconds() * 1000)
    stream = {0: (np.array([5, 3, 4, 6]), np.array([10 * MINUTE, 9 * MINUTE, 1 * MINUTE, 8 * MINUTE])),
              1: (np.array([0]), np.array([0]))}
    rows = [(0, 3, 9 * MINUTE), (0, 4, 1 * MINUTE), (0, 7, 8 * MINUTE - 1), (0, 6, 8 * MINUTE), (1, 0, 0),
            (None, None, 0), (2, 0, 0)]
    assert late_flags(stream, rows, lateness) == [False, True, True, False, False, False, False]


def test_the_lateness_gate_keeps_one_newest_time_per_partition():
    gate = LatenessGate(allowed_lateness_ms=2 * MINUTE)
    # Partition 1 is read minutes behind partition 0 (a backlog after a restart): none of it is late.
    assert [gate.admit(0, t * MINUTE) for t in (10, 11, 12)] == [True, True, True]
    assert [gate.admit(1, t * MINUTE) for t in (5, 6)] == [True, True]
    assert gate.admit(1, 4 * MINUTE - 1) is False and gate.admit(1, 4 * MINUTE) is True  # 2 min is still on time
    assert gate.newest == {0: 12 * MINUTE, 1: 6 * MINUTE}
    with pytest.raises(ValueError):
        LatenessGate(allowed_lateness_ms=-1)


def test_a_redis_value_behind_the_history_is_explained_as_of_its_event_time():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    check = check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows[:3]), rows, now_ms=NOW)
    assert check.status == "explained" and check.causes == ("as_of",)
    assert check.redis_event_time_ms < check.history_event_time_ms


def test_a_redis_value_ahead_of_the_history_is_a_commit_delay_only_while_recent():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    value = redis_value(evaluator, "v1", rows)
    assert check_entity(evaluator, "v1", value, rows[:3], now_ms=NOW).causes == ("commit_delay",)
    assert check_entity(evaluator, "v1", value, rows[:3], now_ms=NOW + 10 * MINUTE).status == "mismatch"
    assert check_entity(evaluator, "v1", value, [], now_ms=NOW).causes == ("commit_delay",)


def test_missing_keys_are_explained_by_ttl_or_lateness_only():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    assert check_entity(evaluator, "v1", None, rows, now_ms=NOW).status == "missing"
    expired = check_entity(evaluator, "v1", None, rows, now_ms=NOW + int(VIDEO.ttl.total_seconds() * 1000) + 1)
    assert expired.status == "explained" and expired.causes == ("ttl",)
    all_late = [watch(i, NOW, late=True) for i in range(2)]
    assert check_entity(evaluator, "v1", None, all_late, now_ms=NOW).causes == ("lateness",)
    assert check_entity(evaluator, "v9", None, rows, now_ms=NOW).status == "absent"  # rows of another video


def test_state_expired_in_an_idle_gap_is_explained_by_state_ttl():
    evaluator = FeatureEvaluator.of(VIDEO)
    old = [watch(i, NOW - 3 * 24 * 60 * MINUTE + i) for i in range(3)]
    recent = [watch(10 + i, NOW - i * 1_000) for i in range(2)]
    check = check_entity(evaluator, "v1", redis_value(evaluator, "v1", recent), [*old, *recent], now_ms=NOW)
    assert check.status == "explained" and check.causes == ("state_ttl",)
    assert {c.column for c in check.columns if not c.match} <= {f"{a.name}_decay_24h" for a in VIDEO.aggregations}


def test_every_feature_set_verifies_including_exploded_hashtags():
    for feature_set in ALL_FEATURE_SETS:
        evaluator = FeatureEvaluator.of(feature_set)
        rows = [HistoryEvent(row=engagement_row(
            event_type="watch", event_id=f"e{i}", event_time=NOW - i, user_id="u1", video_id="v1", author_id="a1",
            sound_id="s1", region="US", language="en", hashtags=["cats", "cats", "dogs"], watch_ms=9_000,
            video_duration_ms=10_000), partition=0, offset=i) for i in range(3)]
        # Sets filtered to comments (comment sentiment) key only comment rows.
        rows += [HistoryEvent(row=engagement_row(
            event_type="comment", event_id=f"c{i}", event_time=NOW - i, user_id="u1", video_id="v1", author_id="a1",
            region="US", language="en", hashtags=[], comment_text="love it"), partition=0, offset=3 + i)
            for i in range(2)]
        keys = next((k for event in rows if (k := evaluator.keys(event.row))), [])
        assert keys, feature_set.name
        check = check_entity(evaluator, keys[0], redis_value(evaluator, keys[0], rows), rows, now_ms=NOW)
        assert check.status == "match", (feature_set.name, check)
    hashtags = FeatureEvaluator.of(user_hashtag_affinity.v1)
    assert hashtags.keys(rows[0].row) == ["u1:cats", "u1:cats", "u1:dogs"]  # UNNEST keeps repeats
    check = check_entity(hashtags, "u1:cats", redis_value(hashtags, "u1:cats", rows), rows, now_ms=NOW)
    assert {c.column: c.redis for c in check.columns}["plays_1h"] == 6.0
    with pytest.raises(ValueError, match="keys"):
        hashtags.key(rows[0].row)


def test_summary_counts_statuses_causes_and_column_sizes():
    evaluator = FeatureEvaluator.of(VIDEO)
    rows = history()
    checks = [check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows), rows, now_ms=NOW),
              check_entity(evaluator, "v1", redis_value(evaluator, "v1", rows[:3]), rows, now_ms=NOW),
              check_entity(evaluator, "v1", None, rows, now_ms=NOW)]
    summary = summarize(VIDEO, checks)
    assert summary.by_status == {"match": 1, "explained": 1, "missing": 1} and summary.by_cause == {"as_of": 1}
    assert not summary.ok
    plays = summary.columns["plays_1h"]
    assert (plays["match"], plays["explained"], plays["mismatch"], plays["max_abs_diff"]) == (1, 1, 0, 2.0)


def test_ids_split_by_entity_and_samples_are_reproducible():
    assert split_id(user_hashtag_affinity.v1, "u1:a:b") == ("u1", "a:b")
    assert split_id(VIDEO, "v:1") == ("v:1",)
    with pytest.raises(ValueError, match="user_id:hashtag"):
        split_id(user_hashtag_affinity.v1, "u1")
    keys = [f"v{i}" for i in range(100)] * 2
    assert sample(keys, 5, 1) == sample(reversed(keys), 5, 1) and len(set(sample(keys, 5, 1))) == 5
    assert sample(keys, 500, 1) == sorted(set(keys))


def test_doctests_of_the_history_reader():
    import doctest

    import fyp.lake.history as history

    assert doctest.testmod(history).failed == 0
