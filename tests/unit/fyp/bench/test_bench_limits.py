"""fyp/bench/limits.py: its inputs sit exactly at the limits, and every case is timed."""

from __future__ import annotations

from fyp.bench.limits import hostile_comments, run_limits
from udfs import limits


def test_hostile_comments_fit_the_comment_limit():
    for name, text in hostile_comments().items():
        size = len(text.encode())
        assert limits.TEXT_LIMITS["comment_text"] - 5 <= size <= limits.TEXT_LIMITS["comment_text"], name


def test_every_case_is_timed_and_the_bound_beats_unbounded_vader_on_emoji():
    cases = run_limits(rounds=3, unbounded_rounds=1)
    assert {c.kind for c in cases} == {"decode", "sentiment", "sentiment, unbounded"}
    assert all(c.latency["samples"] >= 1 and c.latency["p50_ms"] > 0 for c in cases)
    emoji = {c.kind: c.latency["p50_ms"] for c in cases if c.name == "emoji"}
    assert emoji["sentiment"] * 10 < emoji["sentiment, unbounded"]
