"""Comment sentiment: the lexicon scorer, the derived-column declarations and the SQL they compile to."""

from __future__ import annotations

from datetime import timedelta

import pytest

from features import ALL_FEATURE_SETS, feature_sets_for_entity
from features.comments import author_comment_sentiment, video_comment_sentiment
from udfs.feature_sql import feature_query
from udfs.featurespec import VIDEO, Aggregation, DerivedColumn, FeatureSet
from udfs.sentiment import comment_sentiment


@pytest.mark.parametrize(("text", "sign"), [
    ("love this so much", 1), ("this is amazing 😍", 1), ("lol", 1),
    ("worst video ever", -1), ("this is boring", -1), ("so fake, hate it", -1),
    ("where is this?", 0), ("", 0), (None, 0),
])
def test_scores_have_the_expected_sign(text, sign):
    score = comment_sentiment(text)
    assert -1.0 <= score <= 1.0
    assert (score > 0.05) - (score < -0.05) == sign, (text, score)


def test_negation_flips_the_score():
    assert comment_sentiment("this is good") > 0 > comment_sentiment("this is not good")


def test_sentiment_sets_are_computed_and_read_with_the_entity():
    assert {video_comment_sentiment.v1, author_comment_sentiment.v1} <= set(ALL_FEATURE_SETS)
    assert feature_sets_for_entity("video")[0].name == "video_engagement"  # the main set stays first
    assert video_comment_sentiment.v1 in feature_sets_for_entity("video")


def test_derived_columns_are_computed_after_the_filter():
    query = feature_query(video_comment_sentiment.v1)
    inner = "SELECT *, COMMENT_SENTIMENT(`comment_text`) AS `sentiment` FROM `engagement` WHERE event_type = 'comment'"
    assert inner in query
    assert "CAST(sentiment AS DOUBLE)" in query  # sentiment_sum sums the derived column


def test_a_derived_column_needs_a_filter():
    with pytest.raises(ValueError, match="need a `where` filter"):
        FeatureSet(name="x", version=1, entity=VIDEO, windows=(timedelta(hours=1),),
                   aggregations=(Aggregation(name="s", operation="sum", expression="d"),),
                   derived=(DerivedColumn(name="d", sql="UPPER(comment_text)"),))
    with pytest.raises(ValueError, match="lower_snake_case"):
        DerivedColumn(name="Bad", sql="1")
