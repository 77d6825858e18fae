"""Activity per market (region x language), the baseline for cold-start users."""

from features.engagement.common import COMPLETIONS, HALF_LIVES, IMPRESSIONS, LIKES, PLAYS, SHARES, WINDOWS
from featurespec import REGION_LANGUAGE, FeatureSet

v1 = FeatureSet(
    name="region_language_engagement", version=1, entity=REGION_LANGUAGE, windows=WINDOWS,
    half_lives=HALF_LIVES, aggregations=(IMPRESSIONS, PLAYS, COMPLETIONS, LIKES, SHARES),
)
