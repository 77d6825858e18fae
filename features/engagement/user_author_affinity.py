"""A viewer's affinity to a creator: the follow/recall signal for the ranker."""

from features.engagement.common import (
    COMPLETION_RATE,
    COMPLETIONS,
    HALF_LIVES,
    LIKES,
    LONG_WINDOWS,
    NOT_INTERESTED,
    PLAYS,
    SKIPS,
    WATCH_MS,
)
from featurespec import USER_AUTHOR, FeatureSet

v1 = FeatureSet(
    name="user_author_affinity", version=1, entity=USER_AUTHOR, windows=LONG_WINDOWS, half_lives=HALF_LIVES,
    aggregations=(PLAYS, WATCH_MS, COMPLETIONS, SKIPS, LIKES, NOT_INTERESTED),
    ratios=(COMPLETION_RATE,),
)
