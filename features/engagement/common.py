"""Aggregations and windows shared by the engagement feature sets.

Predicates are Flink SQL over the engagement row (udfs/envelope.py). Thresholds are named constants here,
so changing one is a reviewed change that also bumps the feature sets' versions.
"""

from __future__ import annotations

from datetime import timedelta

from featurespec import Aggregation, Ratio

WINDOWS = (timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=24))
LONG_WINDOWS = (timedelta(hours=1), timedelta(hours=24))
HALF_LIVES = (timedelta(minutes=30), timedelta(hours=24))

SKIP_DWELL_MS = 2000  # a scroll-past shorter than this is a skip
COMPLETION_FRACTION = 0.95  # watched at least this share of the video counts as complete

IMPRESSIONS = Aggregation(name="impressions", operation="count", where="event_type = 'impression'")
PLAYS = Aggregation(name="plays", operation="count", where="event_type = 'watch'")
WATCH_MS = Aggregation(name="watch_ms", operation="sum", where="event_type = 'watch'", expression="watch_ms",
                       description="milliseconds watched in first plays")
WATCH_FRACTION = Aggregation(
    name="watch_fraction", operation="sum",
    where="event_type = 'watch' AND video_duration_ms > 0",
    expression="LEAST(CAST(watch_ms AS DOUBLE) / video_duration_ms, 1.0)",
    description="sum of per-play watched fractions (capped at 1)")
COMPLETIONS = Aggregation(
    name="completions", operation="count",
    where=f"event_type = 'watch' AND video_duration_ms > 0 AND watch_ms >= {COMPLETION_FRACTION} * video_duration_ms",
    description=f"plays watched to at least {COMPLETION_FRACTION:.0%}")
LOOPS = Aggregation(name="loops", operation="count", where="event_type = 'loop'")
SKIPS = Aggregation(name="skips", operation="count",
                    where=f"event_type = 'skip' AND dwell_ms < {SKIP_DWELL_MS}",
                    description=f"scroll-pasts with dwell under {SKIP_DWELL_MS} ms")
LIKES = Aggregation(name="likes", operation="sum", where="event_type = 'like'",
                    expression="CASE WHEN action = 'UNLIKE' THEN -1 ELSE 1 END",
                    description="likes minus unlikes")
SHARES = Aggregation(name="shares", operation="count", where="event_type = 'share'")
SAVES = Aggregation(name="saves", operation="count", where="event_type = 'save'")
FOLLOWS = Aggregation(name="follows", operation="sum", where="event_type = 'follow'",
                      expression="CASE WHEN action = 'UNFOLLOW' THEN -1 ELSE 1 END",
                      description="follows minus unfollows of the video's author")
COMMENTS = Aggregation(name="comments", operation="count", where="event_type = 'comment'")
NOT_INTERESTED = Aggregation(name="not_interested", operation="count", where="event_type = 'not_interested'")
SOUND_USES = Aggregation(name="sound_uses", operation="count",
                         where="event_type = 'sound_engagement' AND action = 'USE_SOUND'")
SOUND_ENGAGEMENTS = Aggregation(name="sound_engagements", operation="count",
                                where="event_type = 'sound_engagement'")


def per_play(name: str, numerator: str) -> Ratio:
    return Ratio(name=name, numerator=numerator, denominator="plays")


COMPLETION_RATE = Ratio(name="completion_rate", numerator="completions", denominator="plays")
LOOP_RATE = per_play("loop_rate", "loops")
SKIP_RATE = Ratio(name="skip_rate", numerator="skips", denominator="impressions")
MEAN_WATCH_FRACTION = per_play("mean_watch_fraction", "watch_fraction")
LIKE_RATE = per_play("like_rate", "likes")
SHARE_RATE = per_play("share_rate", "shares")
SAVE_RATE = per_play("save_rate", "saves")
FOLLOW_RATE = per_play("follow_rate", "follows")
COMMENT_RATE = per_play("comment_rate", "comments")
