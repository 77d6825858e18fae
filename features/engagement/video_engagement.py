"""How a video performs: the ranker's main real-time item features."""

from features.engagement.common import (
    COMMENT_RATE,
    COMMENTS,
    COMPLETION_RATE,
    COMPLETIONS,
    FOLLOW_RATE,
    FOLLOWS,
    HALF_LIVES,
    IMPRESSIONS,
    LIKE_RATE,
    LIKES,
    LOOP_RATE,
    LOOPS,
    MEAN_WATCH_FRACTION,
    NOT_INTERESTED,
    PLAYS,
    SAVE_RATE,
    SAVES,
    SHARE_RATE,
    SHARES,
    SKIP_RATE,
    SKIPS,
    WATCH_FRACTION,
    WATCH_MS,
    WINDOWS,
)
from featurespec import VIDEO, FeatureSet

v1 = FeatureSet(
    name="video_engagement", version=1, entity=VIDEO, windows=WINDOWS, half_lives=HALF_LIVES,
    aggregations=(IMPRESSIONS, PLAYS, WATCH_MS, WATCH_FRACTION, COMPLETIONS, LOOPS, SKIPS, LIKES, SHARES, SAVES,
                  FOLLOWS, COMMENTS, NOT_INTERESTED),
    ratios=(COMPLETION_RATE, LOOP_RATE, SKIP_RATE, MEAN_WATCH_FRACTION, LIKE_RATE, SHARE_RATE, SAVE_RATE,
            FOLLOW_RATE, COMMENT_RATE),
    description="Per video; trending velocity = plays_1m * 60 / plays_1h, derived at read time.",
)
