"""Comment sentiment on the real stack: comments in, per-video and per-author mean sentiment out of Redis."""

from __future__ import annotations

import uuid

import pytest

from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from fyp.serving import FeatureClient
from tests.integration.conftest import eventually
from udfs.sentiment import comment_sentiment

pytestmark = pytest.mark.integration

TEXTS = ["love this so much", "worst video ever", "haha I love it", "where is this?"]


def test_comment_sentiment_features_reach_redis(settings, running_job, engagement_producer):
    running_job(ENGAGEMENT_FEATURES_JOB)
    run = uuid.uuid4().hex[:8]
    video, author = f"v-sentiment-{run}", f"a-sentiment-{run}"
    for i, text in enumerate(TEXTS):
        engagement_producer.send("Comment", user_id=f"u-sentiment-{run}", video_id=video, author_id=author,
                                 comment_id=f"c{i}", text=text)
    engagement_producer.send("Watch", user_id=f"u-sentiment-{run}", video_id=video, author_id=author,
                             watch_ms=5_000, video_duration_ms=10_000)
    engagement_producer.flush()

    client = FeatureClient.from_settings(settings)
    scores = [comment_sentiment(t) for t in TEXTS]
    features = eventually(
        lambda: (f := client.get("video", video)) and f.values.get("scored_comments_1h") == len(TEXTS)
        and f.values.get("plays_1h") == 1 and f,
        timeout_s=90, message=f"comment sentiment and engagement of {video} in Redis")
    # One read gives both sets of the video: engagement (plays, comments) and comment sentiment.
    assert features.values["comments_1h"] == len(TEXTS)
    assert features.values["mean_sentiment_1h"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
    assert features.values["positive_share_24h"] == pytest.approx(0.5)
    assert features.values["negative_share_24h"] == pytest.approx(0.25)
    # The author's two sets reach Redis through separate aggregations and writers, either one first.
    by_author = eventually(
        lambda: (f := client.get("author", author)) and f.values.get("scored_comments_24h") == len(TEXTS) and f,
        timeout_s=30, message=f"comment sentiment of author {author} in Redis")
    assert by_author.values["mean_sentiment_24h"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
