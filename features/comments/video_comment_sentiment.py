"""What viewers say about a video: mean comment sentiment and the shares of positive / negative comments."""

from features.comments.common import AGGREGATIONS, COMMENTS_ONLY, HALF_LIVES, RATIOS, SENTIMENT, WINDOWS
from featurespec import VIDEO, FeatureSet

v1 = FeatureSet(
    name="video_comment_sentiment", version=1, entity=VIDEO, windows=WINDOWS, half_lives=HALF_LIVES,
    where=COMMENTS_ONLY, derived=(SENTIMENT,), aggregations=AGGREGATIONS, ratios=RATIOS,
    description="Per video, over its comments only (lexicon scores: VADER for English, word lists for other "
                "languages; udfs/sentiment.py).",
)
