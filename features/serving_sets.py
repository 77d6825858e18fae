"""Serving sets: sorted sets that candidate generation and filtering read directly."""

from __future__ import annotations

from datetime import timedelta

from featurespec import SortedSetSpec

__all__ = ["RECENT_POSITIVES", "RECENT_SEEN", "SERVING_SETS", "TRENDING"]

TRENDING_HALF_LIFE_MS = 3_600_000

# The seed design's "negative signals dedup": serving drops candidates the user has already seen.
RECENT_SEEN = SortedSetSpec(
    name="recent_seen", version=1, key_columns=("user_id",), member_column="video_id",
    score="event_time", per_event=True, where="event_type IN ('impression', 'watch', 'skip')",
    max_size=500, ttl=timedelta(days=7),
    description="a user's last 500 seen videos, score = last seen time (epoch ms)",
)

# The user tower's history, at serving (workers/user_embeddings.py) and in training (training/watch_outcomes.py):
# the videos a user completed, liked or shared, newest first. One definition for both, so the tower sees the same
# input in each (the recent-seen set also holds impressions and skips).
RECENT_POSITIVES = SortedSetSpec(
    name="recent_positives", version=1, key_columns=("user_id",), member_column="video_id",
    score="event_time", per_event=True,
    where=("(event_type = 'watch' AND video_duration_ms > 0 AND watch_ms >= 0.95 * video_duration_ms) "
           "OR (event_type = 'like' AND action = 'LIKE') OR event_type = 'share'"),
    max_size=50, ttl=timedelta(days=30),
    description="a user's last 50 completed, liked or shared videos, score = last such event time (epoch ms)",
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

SERVING_SETS = (RECENT_SEEN, RECENT_POSITIVES, TRENDING)
