"""The pure rules of `fyp bench feed-loop` (fyp/bench/feed_loop.py), on plain data: when to poll, and when a poll
shows that a watch has reached the feed, the user's features and the fine ranker's scores.

Unit-tested in tests/unit/fyp/bench/test_feed_loop_rules.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fyp.bench.stats import latency_summary

__all__ = ["SCORE_TOLERANCE", "fine_scores", "fine_scores_changed", "has_left_feed", "outcome_summary",
           "poll_delays", "user_features_reflect"]

# The feed rounds each score to 6 decimals: two reads of the same inputs give the same rounded score, and a
# difference below one unit of the last decimal could be the rounding alone.
SCORE_TOLERANCE = 1e-6


def poll_delays(*, first_ms: float = 10.0, factor: float = 2.0, cap_ms: float = 100.0,
                timeout_ms: float = 10_000.0) -> Iterator[float]:
    """Milliseconds after the produce at which to poll: first_ms, then each gap `factor` times the last, no gap
    over `cap_ms`, the last poll at `timeout_ms` at most. 10, 30, 70, 150, 250, 350, … with the defaults: the cap
    bounds how late a change is seen (one gap) while the start stays dense, where a quiet stack answers."""
    if first_ms <= 0 or factor < 1 or cap_ms <= 0 or timeout_ms <= 0:
        raise ValueError("first_ms, cap_ms and timeout_ms must be > 0 and factor >= 1")
    at, gap = first_ms, first_ms
    while at <= timeout_ms:
        yield at
        gap = min(gap * factor, cap_ms)
        at += gap


def has_left_feed(body: Mapping[str, Any], video_id: str) -> bool:
    """Whether `video_id` is out of this `/v1/feed` body: not among its items, nor (with `explain=true`) in the
    shortlist the fine ranker scored. A body without `explain` is judged on its items alone."""
    if any(item.get("video_id") == video_id for item in body.get("items", ())):
        return False
    return video_id not in body.get("explain", {}).get("shortlist", ())


def fine_scores(body: Mapping[str, Any], among: Iterable[str] | None = None) -> dict[str, float]:
    """{video: fine score} of the body's items that have one (none without a loaded model), limited to `among`."""
    wanted = None if among is None else set(among)
    return {item["video_id"]: float(item["fine"]) for item in body.get("items", ())
            if item.get("fine") is not None and (wanted is None or item["video_id"] in wanted)}


def fine_scores_changed(before: Mapping[str, float], after: Mapping[str, float], *,
                        tolerance: float = SCORE_TOLERANCE) -> bool | None:
    """Whether any video scored in both differs by more than `tolerance`; None when no video is in both (nothing
    to compare yet: not a "no")."""
    common = before.keys() & after.keys()
    if not common:
        return None
    return any(abs(before[v] - after[v]) > tolerance for v in common)


def user_features_reflect(event_time_ms: int | None, watch_time_ms: int) -> bool:
    """Whether the user's packed feature value (docs/REDIS_LAYOUT.md: its first 8 bytes are the event time of the
    newest counted event) reflects a watch stamped `watch_time_ms`. None: no value yet."""
    return event_time_ms is not None and event_time_ms >= watch_time_ms


def outcome_summary(samples_ms: Iterable[float], missing: int) -> dict[str, float]:
    """p50/p95/p99/max (ms) of the resolved probes, their count, and how many never resolved (`missing`): a
    probe that timed out is counted, never dropped. NaN percentiles when none resolved."""
    values = [float(s) for s in samples_ms]
    if any(math.isnan(v) or v < 0 for v in values):
        raise ValueError("latencies must be numbers >= 0")
    if missing < 0:
        raise ValueError(f"missing must be >= 0, got {missing}")
    return latency_summary(values) | {"missing": missing}
