"""The comment-sentiment source and aggregations shared by the per-video and per-author sets.

Only comment events reach the scorer: the features job reads these sets from a view of the comment rows
(featurespec.sql.derived_sources), so the filter runs in Java before the derived `sentiment` column is computed
(tests/flink/test_derived_rows.py). With `--per-set-sql` every event reaches it.
"""

from __future__ import annotations

from datetime import timedelta

from featurespec import Aggregation, DerivedColumn, Ratio
from udfs.sentiment import NEGATIVE_BELOW, POSITIVE_FROM

COMMENTS_ONLY = "event_type = 'comment'"
SENTIMENT = DerivedColumn(name="sentiment", sql="COMMENT_SENTIMENT(`comment_text`)",
                          description="sentiment of the comment text, -1..1 (VADER compound for English, "
                                      "a word list for other languages: docs/SENTIMENT.md)")

WINDOWS = (timedelta(hours=1), timedelta(hours=24))
HALF_LIVES = (timedelta(hours=24),)

SCORED_COMMENTS = Aggregation(name="scored_comments", operation="count", description="comments scored")
SENTIMENT_SUM = Aggregation(name="sentiment_sum", operation="sum", expression="sentiment",
                            description="sum of comment sentiment scores (-1..1 each)")
POSITIVE_COMMENTS = Aggregation(name="positive_comments", operation="count", where=f"sentiment >= {POSITIVE_FROM}",
                                description=f"comments scoring at least {POSITIVE_FROM}")
NEGATIVE_COMMENTS = Aggregation(name="negative_comments", operation="count", where=f"sentiment <= {NEGATIVE_BELOW}",
                                description=f"comments scoring at most {NEGATIVE_BELOW}")

AGGREGATIONS = (SCORED_COMMENTS, SENTIMENT_SUM, POSITIVE_COMMENTS, NEGATIVE_COMMENTS)
RATIOS = (
    Ratio(name="mean_sentiment", numerator="sentiment_sum", denominator="scored_comments"),
    Ratio(name="positive_share", numerator="positive_comments", denominator="scored_comments"),
    Ratio(name="negative_share", numerator="negative_comments", denominator="scored_comments"),
)
