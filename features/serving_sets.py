"""Serving sets: sorted sets that candidate generation and filtering read directly."""

from __future__ import annotations

from datetime import timedelta

from featurespec import SortedSetSpec

__all__ = ["RECENT_SEEN", "SERVING_SETS", "TRENDING"]

TRENDING_HALF_LIFE_MS = 3_600_000

# The seed design's "negative signals dedup": serving drops candidates the user has already seen.
RECENT_SEEN = SortedSetSpec(
    name="recent_seen", version=1, key_columns=("user_id",), member_column="video_id",
    score="event_time", per_event=True, where="event_type IN ('impression', 'watch', 'skip')",
    max_size=500, ttl=timedelta(days=7),
    description="a user's last 500 seen videos, score = last seen time (epoch ms)",
)

# Cold start: what a market watches now. The score log2(decayed plays) + last play / half-life orders
# videos by their decayed play count at any common read time, without rewriting old members.
TRENDING = SortedSetSpec(
    name="trending", version=1, key_columns=("region", "language"), member_column="video_id",
    score=(f"LOG2(DECAYED_SUM(1.0, `event_time`, {TRENDING_HALF_LIFE_MS})) "
           f"+ MAX(`event_time`) / {TRENDING_HALF_LIFE_MS}.0"),
    where="event_type = 'watch'", max_size=200, ttl=timedelta(days=2), state_ttl=timedelta(hours=25),
    description="top 200 videos per region x language by plays decayed with a 1 h half-life",
)

SERVING_SETS = (RECENT_SEEN, TRENDING)
