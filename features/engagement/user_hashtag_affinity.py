"""A viewer's interest in a topic (hashtag)."""

from features.engagement.common import COMPLETIONS, HALF_LIVES, LONG_WINDOWS, PLAYS, SKIPS, WATCH_MS
from featurespec import USER_HASHTAG, FeatureSet

v1 = FeatureSet(
    name="user_hashtag_affinity", version=1, entity=USER_HASHTAG, windows=LONG_WINDOWS, half_lives=HALF_LIVES,
    aggregations=(PLAYS, WATCH_MS, COMPLETIONS, SKIPS),
)
