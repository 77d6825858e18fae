"""How a creator's videos perform across all viewers."""

from features.engagement.common import (
    COMPLETION_RATE,
    COMPLETIONS,
    FOLLOW_RATE,
    FOLLOWS,
    HALF_LIVES,
    LIKE_RATE,
    LIKES,
    PLAYS,
    SHARES,
    WINDOWS,
)
from featurespec import AUTHOR, FeatureSet

v1 = FeatureSet(
    name="author_engagement", version=1, entity=AUTHOR, windows=WINDOWS, half_lives=HALF_LIVES,
    aggregations=(PLAYS, COMPLETIONS, LIKES, FOLLOWS, SHARES),
    ratios=(COMPLETION_RATE, LIKE_RATE, FOLLOW_RATE),
)
