"""How a viewer behaves right now: session intensity and taste signals for the user tower."""

from features.engagement.common import (
    COMPLETION_RATE,
    COMPLETIONS,
    HALF_LIVES,
    IMPRESSIONS,
    LIKES,
    NOT_INTERESTED,
    PLAYS,
    SHARES,
    SKIP_RATE,
    SKIPS,
    WATCH_MS,
    WINDOWS,
)
from featurespec import USER, FeatureSet

v1 = FeatureSet(
    name="user_engagement", version=1, entity=USER, windows=WINDOWS, half_lives=HALF_LIVES,
    aggregations=(IMPRESSIONS, PLAYS, WATCH_MS, COMPLETIONS, SKIPS, LIKES, SHARES, NOT_INTERESTED),
    ratios=(COMPLETION_RATE, SKIP_RATE),
)
