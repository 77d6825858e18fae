"""Property test: the job's windows and decays (decode, lateness, dedup, FEATURE_VECTOR) against brute force.

Hypothesis draws event sequences with out-of-order times, events later than the allowed lateness, and
redelivered duplicates; they run through the features job's own views and compiled query on a local Flink,
and every column must equal an independent recomputation in plain Python from the definitions of
docs/AGGREGATES.md (a sliding sum keeps the rows whose tile is within `tiles` of the newest row's tile; a
decayed sum is sum(v * 2^-(ref - t) / h)). Each example is one Flink job, so there are few examples, each
with several videos.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurespec import VIDEO, Aggregation, FeatureSet
from featurespec.sql import feature_query
from jobs.engagement_features import engagement_views
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, new_t_env, raw_view

NOW = int(time.time() * 1000)
LATENESS = timedelta(minutes=20)
WINDOWS_MS = (60_000, 3_600_000)
TILES = 12
HALF_LIFE_MS = 1_800_000
SPEC = FeatureSet(
    name="prop", version=1, entity=VIDEO, windows=tuple(timedelta(milliseconds=w) for w in WINDOWS_MS),
    tiles=TILES, half_lives=(timedelta(milliseconds=HALF_LIFE_MS),),
    aggregations=(Aggregation(name="plays", operation="count", where="event_type = 'watch'"),
                  Aggregation(name="watch_ms", operation="sum", where="event_type = 'watch'", expression="watch_ms"),
                  Aggregation(name="likes", operation="sum", where="event_type = 'like'",
                              expression="CASE WHEN action = 'UNLIKE' THEN -1 ELSE 1 END")))

# (kind, video, milliseconds before NOW, watch_ms); a `None` kind repeats an earlier event (a redelivery).
EVENT = st.tuples(st.sampled_from(["watch", "like", "unlike", "impression", None]), st.integers(0, 3),
                  st.integers(0, 2 * 3_600_000), st.integers(0, 60_000))


def _payload(kind: str, video: str, event_time: int, watch_ms: int) -> tuple[bytes, dict]:
    record = {"event_id": str(uuid.uuid4()), "event_time": event_time, "user_id": "u1", "video_id": video,
              "author_id": "a1", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": []}
    if kind == "watch":
        record |= {"watch_ms": watch_ms, "video_duration_ms": 60_000}
    elif kind in ("like", "unlike"):
        record |= {"action": kind.upper()}
    else:
        record |= {"position": 0, "surface": "for_you"}
    name = {"watch": "Watch", "like": "Like", "unlike": "Like", "impression": "Impression"}[kind]
    values = {"plays": 1.0 if kind == "watch" else 0.0, "watch_ms": float(watch_ms) if kind == "watch" else 0.0,
              "likes": {"like": 1.0, "unlike": -1.0}.get(kind, 0.0)}
    return default_registry().encode(name, record), values


def _brute_force(arrivals: list[tuple[str, int, dict, str]]) -> dict[str, dict[str, float]]:
    """Per video, every column, from the definitions: first copy of each event_id, not later than the allowed
    lateness behind the newest event time decoded before it, counted by at least one aggregation, then the
    window / decay formulas."""
    seen, newest, kept = set(), None, {}
    for video, event_time, values, event_id in arrivals:
        if newest is not None and event_time < newest - LATENESS.total_seconds() * 1000:
            continue  # late: counted in a metric, not featured
        newest = event_time if newest is None else max(newest, event_time)
        if event_id in seen:
            continue
        seen.add(event_id)
        if not any(values.values()):
            continue  # an impression counts in none of SPEC's aggregations: it leaves the video untouched
        kept.setdefault(video, []).append((event_time, values))
    expected = {}
    for video, rows in kept.items():
        ref = max(t for t, _ in rows)
        columns = {"event_time": ref}
        for name in ("plays", "watch_ms", "likes"):
            for window_ms in WINDOWS_MS:
                tile = window_ms // TILES
                columns[f"{name}_{window_ms // 60_000}m" if window_ms < 3_600_000 else f"{name}_1h"] = sum(
                    v[name] for t, v in rows if t // tile > ref // tile - TILES)
            columns[f"{name}_decay_30m"] = sum(v[name] * 2.0 ** (-(ref - t) / HALF_LIFE_MS) for t, v in rows)
        expected[video] = columns
    return expected


@settings(max_examples=2, deadline=None)  # each example is one Flink job
@given(st.lists(EVENT, min_size=1, max_size=80))
def test_windows_and_decays_equal_a_brute_force_recomputation(events):
    payloads, arrivals = [], []
    for kind, v, before_ms, watch_ms in events:
        if kind is None:
            if payloads:  # a redelivery of an earlier event: same bytes, same event_id
                i = before_ms % len(payloads)
                payloads.append(payloads[i])
                arrivals.append(arrivals[i])
            continue
        payload, values = _payload(kind, f"v{v}", NOW - before_ms, watch_ms)
        payloads.append(payload)
        arrivals.append((f"v{v}", NOW - before_ms, values, default_registry().decode(payload).record["event_id"]))
    t_env = new_t_env()
    raw_view(t_env, payloads)
    engagement_views(t_env, "raw", allowed_lateness=LATENESS)
    results = final_rows(t_env.sql_query(feature_query(SPEC)).execute(), key_width=1)
    columns = ["video_id", "event_time", *SPEC.columns()]
    actual = {key[0]: dict(zip(columns[1:], row[1:], strict=True)) for key, row in results.items()}
    expected = _brute_force(arrivals)
    assert actual.keys() == expected.keys()
    for video, want in expected.items():
        assert actual[video] == pytest.approx(want, rel=1e-9, abs=1e-9), video
