"""The skew check (fyp.training.skew.compare) on plain served rows: rows served from the very state the backfill
computes match; a value missing the newest events (in flight), or events that reached Kafka after the serve
(lateness), is explained; anything else is unexplained and fails the 0.1 % target."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from features import feature_set_for_entity
from featurespec.reference.sql import engagement_row
from featurespec.training import feature_column
from fyp.serving.layout import ReadPlan, read_columns
from fyp.training.history import History
from fyp.training.pointintime import feature_block
from fyp.training.skew import IN_FLIGHT_BOUND_MS, compare, same, sample_rows
from tests.unit.fyp.training.streams import MINUTE, T0, event, history
from training import watch_outcomes

USER, VIDEO = feature_set_for_entity("user"), feature_set_for_entity("video")


def served_rows(hist: History, serves: list[tuple[str, str, int]], hidden: set[str] = frozenset()) -> pa.Table:
    """What serving logged for (user, video, served_time): each set read as of served_time from the job's state,
    the rows whose event_id is in `hidden` not (yet) in it."""
    admitted = hist.admitted() & np.array([r[1] not in hidden for r in hist.rows])
    lookups = [engagement_row(user_id=u, video_id=v) for u, v, _ in serves]
    times = np.array([t for _, _, t in serves], np.int64)
    columns = {"request_id": [f"r{i}" for i in range(len(serves))],
               "served_time": pa.array(times * 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
               "user_id": [u for u, _, _ in serves], "video_id": [v for _, v, _ in serves]}
    for fs in (USER, VIDEO):
        block = feature_block(fs, hist.rows, admitted, hist.event_times, lookups, times)
        for i, column in enumerate(block.columns):
            columns[feature_column(fs, column)] = pa.array(block.values[:, i].astype(np.float32), pa.float32(),
                                                           mask=~block.present)
        last = [max((r[2] for r, ok in zip(hist.rows, admitted, strict=True)
                     if ok and r[2] < t and (r[4] if fs is USER else r[5]) == key), default=0)
                for key, t in zip([u if fs is USER else v for u, v, _ in serves], times.tolist(), strict=True)]
        columns[f"{fs.name}__event_time_ms"] = last
    return pa.table(columns)


def caught_up(rows) -> History:
    """The history of `rows` (partition 0) with a later event of other entities on its own partition, so that the
    history has caught up with every serve here (served rows newer than the history are skipped)."""
    closing = event("impression", T0 + 10 * MINUTE, user="u-later", video="v-later")
    return history([*rows, closing], [0] * len(rows) + [1])


def world():
    rows = [event("watch", T0 + i * 1_000, user=f"u{i % 3}", video=f"v{i % 4}") for i in range(40)]
    return rows, caught_up(rows)


def test_rows_served_from_the_backfilled_state_match():
    _, hist = world()
    serves = [(f"u{i % 3}", f"v{i % 5}", T0 + 4_500 * i + 500) for i in range(8)]
    report = compare(watch_outcomes.v1, served_rows(hist, serves), hist)
    assert (report.rows, report.mismatches, report.unexplained, report.ok) == (8, 0, 0, True)
    assert report.columns == sum(len(read_columns(ReadPlan.of(fs))) for fs in (USER, VIDEO))  # values and ratios


def test_events_not_yet_in_redis_are_in_flight_within_the_bound_and_unexplained_beyond_it():
    rows, _ = world()
    fresh = event("like", T0 + 40_000, user="u1", video="v2")
    hist = caught_up([*rows, fresh])
    served_at = T0 + 40_000 + 300
    report = compare(watch_outcomes.v1, served_rows(hist, [("u1", "v2", served_at)], hidden={fresh[1]}), hist)
    assert report.mismatches == 1 and report.unexplained == 0 and report.by_cause == {"in_flight": 1}
    assert report.max_in_flight_gap_ms == 300 and report.by_set["user_engagement"]["in_flight"] == 1
    late_serve = T0 + 40_000 + IN_FLIGHT_BOUND_MS + 1  # too long after the event for it to be in flight still
    report = compare(watch_outcomes.v1, served_rows(hist, [("u1", "v2", late_serve)], hidden={fresh[1]}), hist)
    assert report.unexplained == 1 and not report.ok and report.examples[0]["cause"] == "unexplained"


def test_an_unexplained_row_whose_search_gave_up_is_counted_apart(monkeypatch):
    """The report tells a row no documented cause fits from one whose search stopped at its time limit (a hot
    video's twelve lanes): both are unexplained, the second is also counted in unexplained_at_search_limit."""
    from fyp.training import explain

    _, hist = world()
    served = served_rows(hist, [("u0", "v0", T0 + 30_000)])
    column = feature_column(VIDEO, "plays_1h")
    served = served.set_column(served.column_names.index(column), column,
                               pa.array([served.column(column)[0].as_py() + 1], pa.float32()))  # one play too many
    proven = compare(watch_outcomes.v1, served, hist)
    assert (proven.unexplained, proven.unexplained_at_search_limit) == (1, 0)
    assert "search_at_time_limit" not in proven.examples[0]

    def gives_up(*_args, outcome=None, **_kwargs):
        outcome.at_time_limit = True
        return iter(())

    monkeypatch.setattr(explain, "combinations", lambda *args: gives_up(*args[:5], outcome=args[5]))
    given_up = compare(watch_outcomes.v1, served, hist)
    assert (given_up.unexplained, given_up.unexplained_at_search_limit) == (1, 1)
    assert given_up.examples[0]["search_at_time_limit"] is True
    assert given_up.as_dict()["unexplained_at_search_limit"] == 1


def test_an_event_that_reached_its_partition_after_the_serve_is_lateness():
    rows, _ = world()
    newer = event("watch", T0 + 60_000, user="u2", video="v3")  # after the serve, but first in the partition
    behind = event("like", T0 + 40_000, user="u1", video="v2")  # before the serve in event time, arrived later
    hist = caught_up([*rows, newer, behind])
    serve = ("u1", "v2", T0 + 50_000)
    report = compare(watch_outcomes.v1, served_rows(hist, [serve], hidden={behind[1]}), hist)
    assert report.by_cause == {"lateness": 1} and report.unexplained == 0
    # The same event, had it arrived before the newer one, was in Redis at serving time: not explained.
    hist = caught_up([*rows, behind, newer])
    report = compare(watch_outcomes.v1, served_rows(hist, [(*serve[:2], T0 + 40_000 + IN_FLIGHT_BOUND_MS + 5)],
                                                        hidden={behind[1]}), hist)
    assert report.unexplained == 1


def test_a_changed_value_is_unexplained_and_named_in_the_examples():
    _, hist = world()
    served = served_rows(hist, [("u0", "v0", T0 + 30_000), ("u1", "v1", T0 + 31_000)])
    column = feature_column(VIDEO, "plays_1h")
    tampered = served.set_column(served.column_names.index(column), column,
                                 pa.array([served.column(column)[0].as_py() + 1, served.column(column)[1].as_py()],
                                          pa.float32()))
    report = compare(watch_outcomes.v1, tampered, hist)
    assert (report.mismatches, report.unexplained, report.unexplained_rate) == (1, 1, 0.5)
    (example,) = report.examples
    assert example["column"] == column and example["set"] == "video_engagement" and example["entity_id"] == "v0"


def test_served_rows_newer_than_the_history_are_skipped():
    _, hist = world()
    report = compare(watch_outcomes.v1, served_rows(hist, [("u0", "v0", T0 + 20 * MINUTE)]), hist)
    assert report.rows == 0 and report.skipped == 1


def test_equality_is_float32_with_null_equal_to_nan():
    assert same(None, float("nan")) and same(1.0, 1.0 + 1e-12) and not same(1.0, None) and not same(1.0, 1.001)


def test_in_flight_events_may_be_older_than_the_served_value_in_any_partition():
    """A video's events in three partitions; at serving time the job had read partition 0 up to its second event
    (the newest it held, the served event time), partition 1 not past an event older than that, partition 2 all."""
    rows = [event("impression", T0 + i * 1_000, user=f"u{i % 3}", video="v0") for i in range(30)]
    p0 = [event("watch", T0 + 40_000, user="u0", video="v0"), event("like", T0 + 40_500, user="u0", video="v0"),
          event("watch", T0 + 40_900, user="u0", video="v0")]
    p1 = [event("skip", T0 + 40_200, user="u1", video="v0"), event("watch", T0 + 40_300, user="u1", video="v0")]
    p2 = [event("share", T0 + 39_900, user="u2", video="v0")]
    closing = event("impression", T0 + 10 * MINUTE, user="u-later", video="v-later")
    hist = history([*rows, *p0, *p1, *p2, closing], [i % 3 for i in range(30)] + [0, 0, 0, 1, 1, 2, 5])
    unseen = {p0[2][1], p1[0][1], p1[1][1]}  # p1's skip is older than the served event time (the like)
    report = compare(watch_outcomes.v1, served_rows(hist, [("u9", "v0", T0 + 41_000)], hidden=unseen), hist)
    assert report.by_cause == {"in_flight": 1} and report.unexplained == 0
    assert report.max_in_flight_gap_ms == 800  # the skip, 800 ms before the serve


def test_an_event_overtaken_by_a_later_one_of_its_partition_is_in_flight_within_the_bound():
    """The job deduplicates by event_id before the entity's state (jobs/engagement_features.py), so one partition's
    events reach it through several subtasks: at serving time the state may hold a user's like but not the watch
    before it in the same partition (what `fyp demo` logged: docs/TRAINING.md, "The skew check")."""
    rows, _ = world()
    watch = event("watch", T0 + 40_000, user="u1", video="v2")
    like = event("like", T0 + 40_500, user="u1", video="v2")
    hist = caught_up([*rows, watch, like])  # one partition: the watch before the like
    report = compare(watch_outcomes.v1, served_rows(hist, [("u1", "v2", T0 + 41_000)], hidden={watch[1]}), hist)
    assert report.by_set["user_engagement"] == {"mismatches": 1, "in_flight": 1} and report.unexplained == 0
    assert report.max_in_flight_gap_ms == 1_000  # the watch, 1 s before the serve
    # Missing for longer than any event stays in flight: a bug.
    served_at = T0 + 40_000 + IN_FLIGHT_BOUND_MS + 1
    report = compare(watch_outcomes.v1, served_rows(hist, [("u1", "v2", served_at)], hidden={watch[1]}), hist)
    assert report.by_set["user_engagement"]["unexplained"] == 1 and not report.ok


def test_which_of_many_like_events_was_overtaken_is_told_by_the_decayed_sums():
    """Twenty impressions of one user 100 ms apart, the second newest not yet in the state: leaving out any one of
    them gives the same window sums, only the decayed sums (as of the served value's newest event) tell which (the
    search keeps 16 choices per equal sum)."""
    rows, _ = world()
    shown = [event("impression", T0 + 37_800 + 100 * i, user="u1", video="v2") for i in range(20)]
    like = event("like", T0 + 40_000, user="u1", video="v2")
    hist = caught_up([*rows, *shown, like])
    report = compare(watch_outcomes.v1, served_rows(hist, [("u1", "v2", T0 + 41_000)], hidden={shown[18][1]}), hist)
    assert report.by_set["user_engagement"] == {"mismatches": 1, "in_flight": 1} and report.unexplained == 0
    assert report.max_in_flight_gap_ms == 41_000 - 39_600


def hot_video_world():
    """A hot video's events on three partitions. At serving time (T0 + 100 s) the job had read partition 0 only up
    to before its last two events (a watch and a like 17-18 s before the serve), and on partition 1 a later
    impression had overtaken a skip; partition 2 it had read to its end. More than 48 events are newer than
    partition 0's missing ones: the overtaken search's window does not reach them."""
    old = [event("impression", T0 + i * 1_000, user=f"u{i % 3}", video="v0") for i in range(30)]
    p0 = [event("impression", T0 + 80_500, user="u0", video="v0"), event("watch", T0 + 82_000, user="u0", video="v0"),
          event("like", T0 + 83_000, user="u0", video="v0")]
    hot = [event("impression", T0 + 85_000 + 200 * i, user=f"w{i}", video="v0") for i in range(60)]
    skip = event("skip", T0 + 97_100, user="u1", video="v0")
    p1 = [*hot[0::2], skip, event("impression", T0 + 97_300, user="u1", video="v0")]
    p2 = [*hot[1::2], event("watch", T0 + 98_000, user="u2", video="v0")]
    closing = event("impression", T0 + 10 * MINUTE, user="u-later", video="v-later")
    rows = [*old, *p0, *p1, *p2, closing]
    hist = history(rows, [i % 3 for i in range(30)] + [0] * 3 + [1] * len(p1) + [2] * len(p2) + [5])
    return hist, {p0[1][1], p0[2][1], skip[1]}


def test_a_lagging_partitions_suffix_and_an_overtaken_event_elsewhere_are_in_flight_together():
    hist, unseen = hot_video_world()
    served = served_rows(hist, [("u9", "v0", T0 + 100_000)], hidden=unseen)
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=20_000)
    assert report.by_set["video_engagement"] == {"mismatches": 1, "in_flight": 1} and report.unexplained == 0
    assert report.max_in_flight_gap_ms == 18_000  # partition 0's watch
    # Within the bound of every partition but partition 0's: a bug.
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=20_000,
                     partition_bounds_ms={0: 10_000, 1: 20_000, 2: 20_000})
    assert report.by_set["video_engagement"]["unexplained"] == 1 and report.partition_bounds_ms[0] == 10_000


def test_a_partition_bound_is_capped_by_the_global_one():
    hist, unseen = hot_video_world()
    served = served_rows(hist, [("u9", "v0", T0 + 100_000)], hidden=unseen)
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=15_000, partition_bounds_ms={0: 20_000})
    assert report.partition_bounds_ms == {0: 15_000} and report.by_set["video_engagement"]["unexplained"] == 1
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=25_000, partition_bounds_ms={0: 20_000})
    assert report.by_set["video_engagement"] == {"mismatches": 1, "in_flight": 1}


def test_a_requests_own_bounds_are_searched_first_then_the_runs():
    hist, unseen = hot_video_world()
    served = served_rows(hist, [("u9", "v0", T0 + 100_000), ("u8", "v0", T0 + 100_000)], hidden=unseen)
    run_bounds = {0: 20_000, 1: 20_000, 2: 20_000}
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=20_000, partition_bounds_ms=run_bounds)
    assert report.unexplained == 0 and (report.rows_with_own_bounds, report.beyond_own_bounds) == (0, 0)
    # Measured at request r1's read, partition 0 trailed by 10 s only: its missing watch (18 s old) is beyond that,
    # and within the run's bound of 20 s (a probe sees a partition's leading lane only, no bound on the other).
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=20_000, partition_bounds_ms=run_bounds,
                     request_bounds_ms={"r1": {0: 10_000}, "r-other": {0: 1}})
    assert report.by_set["video_engagement"] == {"mismatches": 2, "in_flight": 2}
    assert (report.rows_with_own_bounds, report.beyond_own_bounds) == (1, 1)
    # A request's own bounds apply to its row only; partitions it does not name keep the run's.
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=20_000,
                     partition_bounds_ms={0: 10_000, 1: 20_000, 2: 20_000}, request_bounds_ms={"r0": {0: 20_000}})
    assert report.by_set["video_engagement"] == {"mismatches": 2, "in_flight": 1, "unexplained": 1}
    assert [(e["request_id"], e["cause"]) for e in report.examples] == [("r1", "unexplained"), ("r0", "in_flight")]
    # A request's bound above the global one is capped by it.
    report = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=15_000,
                     request_bounds_ms={"r0": {0: 20_000, 1: 20_000, 2: 20_000}})
    assert report.by_set["video_engagement"]["unexplained"] == 2


def test_the_sample_is_the_same_for_the_same_rows_in_any_order():
    served = pa.table({"request_id": [f"r{i // 3}" for i in range(60)], "video_id": [f"v{i % 3}" for i in range(60)]})
    shuffled = served.take(pa.array(np.random.default_rng(1).permutation(60)))
    first, second = sample_rows(served, 10, seed=0), sample_rows(shuffled, 10, seed=0)
    assert first.num_rows == 10 and first.equals(second)
    assert sample_rows(served, 100, seed=0).num_rows == 60


def test_a_suffix_of_each_deduplication_subtask_is_in_flight_when_the_subtasks_are_known():
    """The job deduplicates on event_id in a keyed step that keeps each input's order (jobs/engagement_features.py),
    so per partition and per subtask of that step the state holds a prefix of the events. A hot video whose state
    lacks the last 30 events of one subtask lacks events spread over its partition's last ~60: no suffix of the
    partition, and older than the overtaken search's window. Told the job's parallelism, the check takes a suffix
    per (partition, subtask) and explains it; not told, the row stays unexplained."""
    from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
    from fyp.traffic.keygroups import key_subtask

    # Event ids of their own: `event`'s counter depends on the tests run before, and the lanes on the ids.
    old = [event("watch", T0 + i * 1_000, user=f"u{i % 3}", video="v0", event_id=f"old{i}") for i in range(10)]
    kinds = ("impression", "impression", "watch", "half_watch", "impression", "skip")
    hot = [event(kinds[i % len(kinds)], T0 + 40_000 + 100 * i, user=f"w{i}", video="v0", event_id=f"hot{i}")
           for i in range(120)]
    lane = {row[1]: key_subtask(row[1], 2, ENGAGEMENT_FEATURES_JOB.max_parallelism) for row in hot}
    second = [row[1] for row in hot if lane[row[1]] == 1]
    assert 40 < len(second) < 80  # both subtasks carry the partition's events
    hidden = set(second[-30:])
    ids = [row[1] for row in hot]
    assert max(len(hot) - ids.index(h) for h in hidden) > 48  # some beyond the overtaken search's 48 newest
    hist = caught_up([*old, *hot])
    served = served_rows(hist, [("u0", "v0", T0 + 55_000)], hidden=hidden)

    blind = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=60_000)
    assert blind.by_set["video_engagement"]["unexplained"] == 1
    told = compare(watch_outcomes.v1, served, hist, in_flight_bound_ms=60_000, dedup_subtasks=2)
    assert told.by_set["video_engagement"] == {"mismatches": 1, "in_flight": 1} and told.unexplained == 0
    assert told.dedup_subtasks == 2 and told.as_dict()["dedup_subtasks"] == 2
