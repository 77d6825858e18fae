"""The comment-sentiment feature sets on in-memory payloads: only comments are scored, means are right."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from features.comments import video_comment_sentiment
from featurespec.sql import feature_query
from jobs.engagement_features import engagement_views
from schemas.registry import default_registry
from tests.flink.conftest import final_rows, raw_view
from udfs.flink_functions import SCALAR_FUNCTIONS
from udfs.sentiment import comment_sentiment

NOW = int(time.time() * 1000)
# v2 also has comments in other languages: the Python worker loads their word lists (udfs/data/sentiment/).
TEXTS = {"v1": ["love this so much", "worst video ever", "lol"],
         "v2": ["this is boring", "que vídeo chato", "めっちゃかわいい", "çok güzel"]}


def _event(record_name: str, video_id: str, **fields) -> bytes:
    record = {"event_id": str(uuid.uuid4()), "event_time": NOW, "user_id": "u1", "video_id": video_id,
              "author_id": "a1", "sound_id": None, "region": "US", "language": "en", "session_id": "s1",
              "hashtags": [], **fields}
    return default_registry().encode(record_name, record)


@pytest.fixture
def raw(t_env):
    payloads = [_event("Comment", v, comment_id=f"c{i}", text=t)
                for v, texts in TEXTS.items() for i, t in enumerate(texts)]
    payloads += [_event("Watch", "v1", watch_ms=5_000, video_duration_ms=10_000),
                 _event("Impression", "v3", position=0, surface="for_you")]
    raw_view(t_env, payloads)
    engagement_views(t_env, "raw", allowed_lateness=timedelta(hours=3))
    for name, function in SCALAR_FUNCTIONS.items():
        t_env.create_temporary_system_function(name, function)
    return t_env


def test_mean_sentiment_per_video_over_comments_only(raw):
    feature_set = video_comment_sentiment.v1
    rows = final_rows(raw.sql_query(feature_query(feature_set)).execute(), key_width=1)
    assert set(rows) == {("v1",), ("v2",)}  # v3 had no comment
    columns = ["video_id", "event_time", *feature_set.columns()]
    for video, texts in TEXTS.items():
        values = dict(zip(columns, rows[(video,)], strict=True))
        scores = [comment_sentiment(t) for t in texts]
        assert all(scores), texts  # each language's scorer gave a score, none fell back to a neutral 0.0
        assert values["scored_comments_1h"] == len(texts)  # the watch of v1 is not a comment
        assert values["sentiment_sum_24h"] == pytest.approx(sum(scores))
        assert values["positive_comments_1h"] == sum(s >= 0.05 for s in scores)
        assert values["negative_comments_1h"] == sum(s <= -0.05 for s in scores)
