"""Serving sets: sorted sets that candidate generation and filtering read directly."""

from __future__ import annotations

from datetime import timedelta

from featurespec import DerivedColumn, SortedSetSpec

__all__ = ["GLOBAL_TRENDING", "GLOBAL_TRENDING_KEY", "NOT_INTERESTED_AUTHORS", "NOT_INTERESTED_VIDEOS",
           "NOT_INTERESTED_WINDOW", "RECENT_POSITIVES", "RECENT_SEEN", "SERVING_SETS", "TRENDING", "USER_MARKET"]

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

# The cold start's fallback when the market is unknown or its set is short: the same score over every market.
GLOBAL_TRENDING = SortedSetSpec(
    name="trending_global", version=1, key_columns=("scope",), member_column="video_id", score=TRENDING.score,
    where=TRENDING.where, max_size=TRENDING.max_size, ttl=TRENDING.ttl, state_ttl=TRENDING.state_ttl,
    derived=(DerivedColumn(name="scope", sql="'all'", description="one key for every event"),),
    description="top 200 videos over all markets by plays decayed with a 1 h half-life",
)
GLOBAL_TRENDING_KEY = GLOBAL_TRENDING.key_prefix + "all"

# A user's market ("US:en") from their first event on, so that a new user's trending set is known at once (the
# history batch knew it only after its next pass, and lost it a few idle days later). One member kept: ZADD GT of each
# event's time, trimmed to the highest score, is the market of the latest event, whatever order events arrive
# in. Region and language hold no ':' (the envelope's bad_id check), so the member splits back unambiguously.
USER_MARKET = SortedSetSpec(
    name="user_market", version=2, key_columns=("user_id",), member_column="market", score="`event_time`",
    per_event=True, where="`region` <> '' AND `language` <> ''", max_size=1, ttl=timedelta(days=30),
    derived=(DerivedColumn(name="market", sql="`region` || ':' || `language`",
                           description="region:language of the event"),),
    description="a user's market, the region:language of their latest event, score = its event time (epoch ms)",
)

# "Not interested" (NotInterested events): the feed never shows the video again, and drops an author the user has
# marked often enough (fyp/feed/filters.py AUTHOR_NOT_INTERESTED_THRESHOLD). Both sets live 30 days after the
# user's last such signal.
NOT_INTERESTED_WINDOW = timedelta(days=30)

NOT_INTERESTED_VIDEOS = SortedSetSpec(
    name="not_interested_videos", version=1, key_columns=("user_id",), member_column="video_id",
    score="event_time", per_event=True, where="event_type = 'not_interested'",
    max_size=1000, ttl=NOT_INTERESTED_WINDOW,
    description="the videos a user marked not interested (newest 1,000), score = last such time (epoch ms)",
)

# A count needs the group's state, so it is an aggregated set: the job keeps each (user, author) count while the
# pair has had a signal within `state_ttl`; after 30 idle days Flink forgets it and Redis drops the key, so a
# count is "signals since the first one of a run with no 30-day gap", not a sliding 30-day window.
NOT_INTERESTED_AUTHORS = SortedSetSpec(
    name="not_interested_authors", version=1, key_columns=("user_id",), member_column="author_id",
    score="COUNT(*)", where="event_type = 'not_interested'", max_size=200, ttl=NOT_INTERESTED_WINDOW,
    state_ttl=NOT_INTERESTED_WINDOW,
    description="per user, the authors of videos marked not interested (top 200), score = how many such signals",
)

SERVING_SETS = (RECENT_SEEN, RECENT_POSITIVES, TRENDING, GLOBAL_TRENDING, USER_MARKET, NOT_INTERESTED_VIDEOS,
                NOT_INTERESTED_AUTHORS)
