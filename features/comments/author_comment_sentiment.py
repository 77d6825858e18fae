"""What viewers say about a creator's videos, across all of them."""

from features.comments.common import AGGREGATIONS, COMMENTS_ONLY, HALF_LIVES, RATIOS, SENTIMENT, WINDOWS
from featurespec import AUTHOR, FeatureSet

v1 = FeatureSet(
    name="author_comment_sentiment", version=1, entity=AUTHOR, windows=WINDOWS, half_lives=HALF_LIVES,
    where=COMMENTS_ONLY, derived=(SENTIMENT,), aggregations=AGGREGATIONS, ratios=RATIOS,
    description="Per creator, over the comments on all their videos (lexicon scores: VADER for English, word "
                "lists for other languages; udfs/sentiment.py).",
)
