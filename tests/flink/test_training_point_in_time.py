"""Property test: the point-in-time backfill reads exactly what the features job had written at that time.

Hypothesis draws event streams with out-of-order times, events later than the allowed lateness and redelivered
copies, on two Kafka partitions. They run, in that arrival order, through the features job's own views
(`engagement_views`: the Java decoder's lateness rule, the dedup) and compiled queries (`feature_query`) of the
video set and the user x hashtag set, on a local Flink at parallelism 1 without mini-batches, so that the job's
changelog has one update per event a set counts, in arrival order. Each update is packed as the Redis sink packs
it (event time, then float32 per column).

For a key and a time t, the job's value "as of t" is its latest update whose events all had event_time < t, when
no later update brings another event with event_time < t (a late-arriving earlier event: there the job never
held exactly the events before t). At such times the backfill (fyp.training.pointintime.packed_at over the same
payloads decoded by the reference decoder, fyp.training.history's admission) must give the same value, both
decoded with serving's read-time rules at t.
"""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from features.engagement import user_hashtag_affinity, video_engagement
from featurespec.reference.evaluate import FeatureEvaluator
from featurespec.sql import feature_query
from fyp.serving.layout import HEADER_BYTES, ReadPlan, decode_rows_at
from fyp.training.history import History
from fyp.training.pointintime import Lookups, packed_at
from jobs.engagement_features import engagement_views
from schemas.registry import default_registry
from tests.flink.conftest import new_t_env, raw_view
from udfs.envelope import to_engagement_row

NOW = int(time.time() * 1000)
SETS = (video_engagement.v1, user_hashtag_affinity.v1)
WIDTH = max(len(fs.columns()) for fs in SETS)
REL_TOL = 1e-6  # fyp verify's: a different summation order (the backfill folds in event-time order)

# (kind, user, video, hashtags, step ms, fault); a step moves the stream's clock, a fault makes the event late
# (10 min behind), out of order (up to 90 s behind) or a redelivery of an earlier event.
EVENT = st.tuples(st.sampled_from(["impression", "watch", "half_watch", "skip", "like", "unlike", "share", "loop"]),
                  st.integers(0, 1), st.integers(0, 2), st.lists(st.sampled_from(["cats", "dogs"]), max_size=3),
                  st.integers(0, 20_000), st.sampled_from(["none", "none", "none", "late", "behind", "copy"]))


def _payload(kind: str, user: int, video: int, hashtags: list[str], event_time: int) -> bytes:
    record = {"event_id": str(uuid.uuid4()), "event_time": event_time, "user_id": f"u{user}", "video_id": f"v{video}",
              "author_id": "a1", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": hashtags}
    name, detail = {
        "impression": ("Impression", {"position": 0, "surface": "for_you"}),
        "watch": ("Watch", {"watch_ms": 14_500, "video_duration_ms": 15_000}),
        "half_watch": ("Watch", {"watch_ms": 6_000, "video_duration_ms": 15_000}),
        "skip": ("Skip", {"dwell_ms": 700, "video_duration_ms": 15_000}),
        "like": ("Like", {"action": "LIKE"}), "unlike": ("Like", {"action": "UNLIKE"}),
        "share": ("Share", {"channel": "copy_link"}),
        "loop": ("Loop", {"loop_count": 1, "video_duration_ms": 15_000}),
    }[kind]
    return default_registry().encode(name, record | detail)


def _stream(draws) -> tuple[list[bytes], list[int]]:
    payloads, partitions = [], []
    clock = NOW - 3_600_000
    for kind, user, video, hashtags, step, fault in draws:
        clock += step
        if fault == "copy" and payloads:
            i = step % len(payloads)
            payloads.append(payloads[i])
            partitions.append(partitions[i])
            continue
        at = clock - 600_000 if fault == "late" else clock - step % 90_000 if fault == "behind" else clock
        payloads.append(_payload(kind, user, video, hashtags, at))
        partitions.append(user)  # the topic's key is the user
    return payloads, partitions


def _job_changelog(payloads: list[bytes], partitions: list[int]) -> dict[str, list[tuple]]:
    """Per set and key, the job's successive values (event_time, columns), in emission order."""
    t_env = new_t_env()
    raw_view(t_env, payloads, partitions)
    engagement_views(t_env, "raw")
    branches = []
    for tag, fs in enumerate(SETS):
        key = " || ':' || ".join(f"`{k}`" for k in fs.entity.key_columns)
        pad = ", ".join(["CAST(NULL AS DOUBLE)"] * (WIDTH - len(fs.columns())))
        columns = ", ".join(f"`{c}`" for c in fs.columns()) + (f", {pad}" if pad else "")
        branches.append(f"SELECT {tag} AS s, {key} AS k, `event_time`, {columns} FROM ({feature_query(fs)})")
    from pyflink.common import RowKind

    updates: dict[str, list[tuple]] = {}
    with t_env.sql_query(" UNION ALL ".join(branches)).execute().collect() as results:
        for row in results:
            if row.get_row_kind() in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                values = tuple(row)
                fs = SETS[values[0]]
                updates.setdefault(f"{fs.name}/{values[1]}", []).append(
                    (values[2], values[3:3 + len(fs.columns())]))
    return updates


def _sink_pack(event_time: int, columns: tuple) -> bytes:
    """The Redis sink's packed value: event time, update time, float32 per column (NULL as NaN)."""
    floats = np.array([math.nan if c is None else c for c in columns], dtype="<f4")
    return event_time.to_bytes(8, "little", signed=True) + bytes(8) + floats.tobytes()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    both_nan = np.isnan(a32) & np.isnan(b32)
    return bool(np.all(both_nan | np.isclose(a32, b32, rtol=REL_TOL, atol=1e-12, equal_nan=False)))


def _rich(draws) -> bool:
    """Every fault on each partition, a repeated hashtag, and a late event with an earlier one on its partition."""
    faults = {(user, fault) for _, user, _, _, _, fault in draws}
    late_after_others = any(fault == "late" and any(u == user for _, u, _, _, _, _ in draws[:i])
                            for i, (_, user, _, _, _, fault) in enumerate(draws))
    return (late_after_others and {(u, f) for u in (0, 1) for f in ("behind", "copy")} <= faults
            and any(len(set(tags)) < len(tags) for _, _, _, tags, _, _ in draws))


@settings(max_examples=2, deadline=None)  # each example is one Flink job
@given(st.lists(EVENT, min_size=20, max_size=60).filter(_rich))
def test_the_backfill_at_t_equals_the_jobs_value_written_before_t(draws):
    payloads, partitions = _stream(draws)
    updates = _job_changelog(payloads, partitions)

    rows = [to_engagement_row(p, NOW + 60_000) for p in payloads]
    good = [i for i, r in enumerate(rows) if r[-1] is None]
    offsets = np.arange(len(payloads))  # raw_view's offsets: arrival order
    history = History(rows=[rows[i] for i in good], partitions=np.array(partitions)[good], offsets=offsets[good])
    admitted, times = history.admitted(), history.event_times
    compared = valued = 0
    for fs in SETS:
        evaluator, plan = FeatureEvaluator.of(fs), ReadPlan.of(fs)
        # The events the job counts, per key, in arrival order: one changelog update each.
        counted: dict[str, list[int]] = {}
        for i in np.flatnonzero(admitted).tolist():
            for key in evaluator.keys(history.rows[i]):
                counted.setdefault(key, []).append(int(times[i]))
        assert {k.split("/", 1)[1] for k in updates if k.startswith(fs.name + "/")} == set(counted), fs.name
        for key, event_times in counted.items():
            values = updates[f"{fs.name}/{key}"]
            assert len(values) == len(event_times), (fs.name, key, "one update per counted event")
            for j in range(len(event_times) + 1):  # after j updates
                before = max(event_times[:j], default=None)
                after = min(event_times[j:], default=None)
                if before is not None and after is not None and before >= after:
                    continue  # an earlier event arrived later: the job never held exactly "before t"
                # The first and the last time this value is "as of t" (the next event's own time: strictly before).
                for t in {before + 1 if before is not None else after, after if after is not None else before + 1}:
                    job = [None] if j == 0 else [_sink_pack(values[j - 1][0], values[j - 1][1])]
                    ours = packed_at(evaluator, history.rows, admitted, times,
                                     Lookups(keys=[key], times=np.array([t]), rows=np.zeros(1, np.int64)))
                    job_values, job_time = decode_rows_at(plan, job, np.array([t]))
                    our_values, our_time = decode_rows_at(plan, ours, np.array([t]))
                    assert job_time[0] == our_time[0], (fs.name, key, j, t)
                    assert _same(job_values[0], our_values[0]), (fs.name, key, j, t, job_values[0], our_values[0])
                    compared += 1
                    valued += j > 0 and len(ours[0] or b"") > HEADER_BYTES
    assert compared and valued
