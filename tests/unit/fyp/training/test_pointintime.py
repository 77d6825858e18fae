"""Point-in-time features and histories (fyp.training.pointintime) on plain histories: the strict `<` boundary,
the row's own event, lateness and dedup, Redis's ttl and the job's state ttl, per-hashtag sums, histories with
their ttl and size, and a property test against the brute-force reading of tests/unit/fyp/training/streams.py."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features import feature_set_for_entity
from features.serving_sets import RECENT_POSITIVES
from featurespec.training import feature_column
from fyp.training.backfill import backfill
from fyp.training.pointintime import feature_block, history_lists
from fyp.training.skew import same
from tests.unit.fyp.training.streams import HOUR, MINUTE, T0, event, history, kept_rows, reference_value
from training import watch_outcomes

USER, VIDEO = feature_set_for_entity("user"), feature_set_for_entity("video")
HASHTAG = feature_set_for_entity("user_hashtag")


def block_at(feature_set, rows, lookups, partitions=None):
    """(values by column, present) of `feature_set` for lookup rows [(row, t)] over the history `rows`."""
    hist = history(rows, partitions)
    block = feature_block(feature_set, hist.rows, hist.admitted(), hist.event_times, [r for r, _ in lookups],
                          np.array([t for _, t in lookups], np.int64))
    return [dict(zip(block.columns, row, strict=True)) for row in block.values.tolist()], block.present.tolist()


def test_a_row_sees_events_strictly_before_its_time_and_never_its_own_event():
    watch_early, watch_at = event("watch", T0 - 1), event("watch", T0)
    impression = event("impression", T0)
    values, present = block_at(USER, [watch_early, watch_at, impression], [(impression, T0)])
    assert present == [True]
    assert values[0]["plays_1m"] == 1.0  # the watch at t - 1 ms, not the one at t
    assert values[0]["impressions_1m"] == 0.0  # nor the impression that is the row itself
    values, _ = block_at(USER, [watch_early, watch_at, impression], [(impression, T0 + 1)])
    assert values[0]["plays_1m"] == 2.0 and values[0]["impressions_1m"] == 1.0


def test_an_entity_with_no_earlier_event_is_null():
    impression = event("impression", T0, video="v-new")
    values, present = block_at(VIDEO, [impression, event("watch", T0 + 5, video="v-new")], [(impression, T0)])
    assert present == [False] and all(math.isnan(v) for v in values[0].values())


def test_late_rows_and_repeated_event_ids_are_left_out_as_the_job_leaves_them_out():
    newest = event("watch", T0 - MINUTE, video="v2")
    late = event("watch", T0 - 10 * MINUTE)  # behind the newest of its partition by more than 2 min
    first = event("like", T0 - 30_000, event_id="dup")
    copy = event("like", T0 - 20_000, event_id="dup")
    row = event("impression", T0)
    values, _ = block_at(USER, [newest, late, first, copy, row], [(row, T0)])
    assert values[0]["plays_1h"] == 1.0 and values[0]["likes_1h"] == 1.0
    # On its own partition the old watch is on time: lateness is per Kafka partition.
    values, _ = block_at(USER, [newest, late, first, copy, row], [(row, T0)], partitions=[0, 1, 0, 0, 0])
    assert values[0]["plays_1h"] == 2.0


def test_read_time_rules_are_serving_windows_emptied_and_decays_decayed_to_the_row_time():
    watch = event("watch", T0)
    later = event("impression", T0 + 30 * MINUTE)
    values, _ = block_at(USER, [watch, later], [(later, T0 + 30 * MINUTE)])
    assert values[0]["plays_1m"] == 0.0 and values[0]["plays_1h"] == 1.0
    assert values[0]["plays_decay_30m"] == 0.5  # one half-life after the play


def test_a_key_redis_dropped_reads_null_and_an_idle_entity_starts_afresh():
    watch = event("watch", T0)
    ttl_ms = int(USER.ttl.total_seconds() * 1000)
    row = event("impression", T0 + ttl_ms)
    _, present = block_at(USER, [watch, row], [(row, T0 + ttl_ms), (row, T0 + ttl_ms - 1)])
    assert present == [False, True]
    # 26 h idle: past the job's state ttl (24 h + 1 h), so the 24 h decay forgets the first play.
    second = event("watch", T0 + 26 * HOUR)
    row = event("impression", T0 + 26 * HOUR + 1)
    values, _ = block_at(USER, [watch, second, row], [(row, T0 + 26 * HOUR + 1)])
    assert same(values[0]["plays_decay_24h"], 2.0 ** (-1 / 86_400_000))


def test_a_per_hashtag_set_is_summed_over_the_rows_distinct_hashtags():
    rows = [event("watch", T0, hashtags=["cats"]), event("watch", T0 + 1, hashtags=["dogs", "dogs"]),
            event("watch", T0 + 2, hashtags=["birds"])]
    row = event("impression", T0 + 10, hashtags=["cats", "dogs", "dogs", "fish"])
    values, present = block_at(HASHTAG, [*rows, row], [(row, T0 + 10)])
    # cats 1 + dogs 2 (a repeated hashtag counts twice in the job's UNNEST); the row's repeated dogs once.
    assert present == [True] and values[0]["plays_1h"] == 3.0
    lonely = event("impression", T0 + 10, hashtags=["fish"])
    values, present = block_at(HASHTAG, [*rows, lonely], [(lonely, T0 + 10)])
    assert present == [False] and math.isnan(values[0]["plays_1h"])


def positives(rows, lookups, spec=RECENT_POSITIVES):
    hist = history(rows)
    return history_lists(spec, hist.rows, hist.admitted(), hist.event_times, [r for r, _ in lookups],
                         np.array([t for _, t in lookups], np.int64))


def test_a_history_is_newest_first_by_each_members_greatest_score_and_sees_only_earlier_rows():
    rows = [event("watch", T0, video="v1"), event("like", T0 + 1, video="v2"), event("watch", T0 + 2, video="v1"),
            event("half_watch", T0 + 3, video="v3"), event("share", T0 + 4, video="v4")]
    row = event("impression", T0 + 4, video="v9")
    assert positives([*rows, row], [(row, T0 + 4), (row, T0 + 5)]) == [["v1", "v2"], ["v4", "v1", "v2"]]


def test_a_history_keeps_the_max_size_newest_and_empties_after_its_ttl():
    from dataclasses import replace

    small = replace(RECENT_POSITIVES, max_size=2)
    rows = [event("watch", T0 + i, video=f"v{i}") for i in range(4)]
    row = event("impression", T0 + 10)
    assert positives([*rows, row], [(row, T0 + 10)], small) == [["v3", "v2"]]
    ttl_ms = int(small.ttl.total_seconds() * 1000)
    later = event("watch", T0 + 3 + ttl_ms, video="v7")  # after the key expired: a new set
    assert positives([*rows, later, row], [(row, T0 + 3 + ttl_ms), (row, T0 + 4 + ttl_ms)], small) == [
        [], ["v7"]]


_KINDS = st.sampled_from(["impression", "watch", "half_watch", "skip", "like", "share", "follow"])
_STEP = st.one_of(st.integers(0, 90_000), st.integers(0, 90_000), st.sampled_from([3 * HOUR, 26 * HOUR, 49 * HOUR]))
_EVENT = st.tuples(_KINDS, _STEP, st.integers(0, 2), st.integers(0, 3), st.integers(0, 1),
                   st.lists(st.sampled_from(["cats", "dogs", "fish"]), max_size=3),
                   st.sampled_from(["none", "none", "none", "late", "copy"]))


@settings(max_examples=25, deadline=None)
@given(st.lists(_EVENT, min_size=1, max_size=60))
def test_every_feature_equals_the_brute_force_reading_at_the_rows_time(draws):
    """Random histories (gaps past the state ttl and the Redis ttl, late rows, redelivered copies, two partitions):
    every feature column of every row equals reading its entity by the rules alone, in float32."""
    rows, partitions, t = [], [], T0
    for kind, step, user, video, partition, tags, fault in draws:
        t += step
        if fault == "copy" and rows:
            rows.append(rows[step % len(rows)])
            partitions.append(partitions[step % len(partitions)])
            continue
        at = t - 10 * MINUTE if fault == "late" else t
        rows.append(event(kind, at, user=f"u{user}", video=f"v{video}", author=f"a{video % 2}", hashtags=tags))
        partitions.append(partition)
    rows.append(event("like", t + HOUR, user="u-closing"))  # closes every row's label horizon
    partitions.append(0)
    hist = history(rows, partitions)
    built = backfill(watch_outcomes.v1, hist).table
    built_times = (built.column("event_time").cast("int64").to_numpy() // 1000).tolist()
    kept = kept_rows(hist)
    by_id = {r[1]: r for r in rows}
    for i, event_id in enumerate(built.column("event_id").to_pylist()):
        row, t = by_id[event_id], built_times[i]
        for feature_set in watch_outcomes.v1.feature_sets:
            columns = [c for c in built.column_names if c.startswith(feature_set.name + "__")]
            keys = _keys(feature_set, row)
            readings = [v for v in (reference_value(feature_set, kept, k, t) for k in keys) if v is not None]
            for column in columns:
                name = column.removeprefix(feature_set.name + "__")
                got = built.column(column)[i].as_py()
                if not readings:
                    assert got is None, (column, event_id)
                elif feature_set.entity.explodes_hashtags:
                    assert same(got, sum(r[name] for r in readings)), (column, event_id)
                else:
                    assert same(got, readings[0][name]), (column, event_id, got, readings[0][name])


def _keys(feature_set, row):
    from featurespec.reference.sql import COLUMN_INDEX

    parts = [row[COLUMN_INDEX[c]] for c in feature_set.entity.key_columns if c != "hashtag"]
    if feature_set.entity.explodes_hashtags:
        return [f"{parts[0]}:{tag}" for tag in dict.fromkeys(row[COLUMN_INDEX["hashtags"]])]
    return [":".join(parts)] if all(parts) else []


def test_the_table_names_each_feature_column_after_its_set():
    hist = history([event("watch", T0), event("impression", T0 + 20 * MINUTE)])
    built = backfill(watch_outcomes.v1, hist).table
    assert feature_column(USER, "plays_1m") in built.column_names
    assert "user_engagement__completion_rate_1m" in built.column_names  # ratios, as serving's decode gives them


def test_decoding_many_values_each_at_its_own_time_equals_servings_single_entity_decode():
    from featurespec.reference.evaluate import FeatureEvaluator
    from fyp.serving.layout import ReadPlan, decode_row, decode_rows_at, read_columns

    rng = np.random.default_rng(3)
    evaluator, plan = FeatureEvaluator.of(VIDEO), ReadPlan.of(VIDEO)
    values, nows = [], []
    for n in range(40):
        state = evaluator.new_state()
        for t in sorted(rng.integers(T0, T0 + 3 * HOUR, size=n % 7 + 1).tolist()):
            evaluator.update(state, event(["watch", "skip", "like", "impression"][t % 4], t, video="v1"))
        values.append(evaluator.pack(state) if n % 9 else None)
        nows.append(evaluator.event_time(state) + int(rng.integers(0, 30 * HOUR)))
    matrix, times = decode_rows_at(plan, values, np.array(nows))
    for row, value, now, event_time in zip(matrix.tolist(), values, nows, times.tolist(), strict=True):
        expected = decode_row(plan, value, now)
        if expected is None:
            assert all(math.isnan(v) for v in row) and event_time == 0
            continue
        got = dict(zip(read_columns(plan), row, strict=True))
        assert event_time == expected[1]
        # Within one ulp: numpy's pow may be a SIMD routine (AVX-512) one ulp off C's (decode_rows_at's docstring).
        assert all(abs(got[c] - v) <= math.ulp(v) or (math.isnan(got[c]) and math.isnan(v))
                   for c, v in expected[0].items()), [(c, got[c], v) for c, v in expected[0].items() if got[c] != v]
