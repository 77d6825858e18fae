"""How a sound performs: plays of videos using it, and direct use of the sound."""

from features.engagement.common import (
    COMPLETION_RATE,
    COMPLETIONS,
    HALF_LIVES,
    LIKES,
    PLAYS,
    SOUND_ENGAGEMENTS,
    SOUND_USES,
    WINDOWS,
)
from featurespec import SOUND, FeatureSet

v1 = FeatureSet(
    name="sound_engagement", version=1, entity=SOUND, windows=WINDOWS, half_lives=HALF_LIVES,
    aggregations=(PLAYS, COMPLETIONS, LIKES, SOUND_USES, SOUND_ENGAGEMENTS),
    ratios=(COMPLETION_RATE,),
)
