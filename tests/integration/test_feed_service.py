"""The feed service on the real stack: the features job's serving sets (recent-seen, not-interested), the index
service's candidates, a ranker version in S3 run by ONNX Runtime, and `/v1/feed` over HTTP.

One market of this run's own, so its trending set holds exactly this test's videos: a user who just watched a
video does not get it in the next feed, a video marked not interested is gone at once, and an author whose videos
were marked twice is gone with all their videos.
"""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from connectors.redis_video_store import video_key
from features.serving_sets import NOT_INTERESTED_AUTHORS, NOT_INTERESTED_VIDEOS, RECENT_SEEN, TRENDING, USER_MARKET
from fyp.feed.assemble import FeedConfig, FeedRanker
from fyp.feed.candidates import local_candidates
from fyp.feed.filters import AUTHOR_NOT_INTERESTED_THRESHOLD
from fyp.feed.model import RankerSlot
from fyp.feed.profiles import profile_key, today, write_profiles
from fyp.feed.service import create_app, http_vectors
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB
from tests.integration.conftest import eventually
from tests.integration.rankers import save_untrained_ranker
from tests.integration.test_index_service import running_service
from udfs.video_record import encode_video

pytestmark = pytest.mark.integration


def test_the_feed_drops_what_was_just_seen_and_what_was_marked_not_interested(
        settings, running_job, engagement_producer, redis_client, index_name):
    from connectors.s3_objects import S3ObjectStore
    from fyp.media.publish import make_s3_client

    running_job(ENGAGEMENT_FEATURES_JOB)
    run = uuid.uuid4().hex[:8]
    region, language = "ZF", f"fe{run}"
    user = f"feed-{run}-u"
    authors = {"a": f"feed-{run}-a", "b": f"feed-{run}-b", "c": f"feed-{run}-c"}
    # v0-v2 by a, v3 by b, v4-v5 by c; v6 (by c) is removed.
    owner = {0: "a", 1: "a", 2: "a", 3: "b", 4: "c", 5: "c", 6: "c"}
    videos = {i: f"feed-{run}-v{i}" for i in owner}
    for i, video in videos.items():
        redis_client.hset(video_key(video), mapping=encode_video({
            "video_id": video, "status": "removed" if i == 6 else "ready", "author_id": authors[owner[i]],
            "hashtags": ["it"]}))
        for viewer in range(2):  # plays put every video in the market's trending set
            engagement_producer.send("Watch", user_id=f"feed-{run}-viewer{viewer}", video_id=video, watch_ms=5_000,
                                     video_duration_ms=10_000, region=region, language=language,
                                     author_id=authors[owner[i]])
    engagement_producer.send("Watch", user_id=user, video_id=videos[5], watch_ms=1_000, video_duration_ms=10_000,
                             region=region, language=language, author_id=authors["c"])
    engagement_producer.flush()
    market_key = TRENDING.key_prefix + f"{region}:{language}"
    eventually(lambda: redis_client.zcard(market_key) == len(videos), timeout_s=240,
               message=f"the features job's trending set {market_key}")
    eventually(lambda: redis_client.zscore(RECENT_SEEN.key_prefix + user, videos[5]) is not None
               and redis_client.zcard(USER_MARKET.key_prefix + user) == 1, timeout_s=60,
               message="the user's recent-seen set and market")

    s3 = S3ObjectStore(make_s3_client(settings), settings.media_bucket)
    prefix = f"models/ranker-it-{run}/"
    version = save_untrained_ranker(s3, prefix)
    slot = RankerSlot(s3, prefix=prefix)
    assert slot.reload()["version"] == version
    try:
        with running_service(settings, index_name) as index:
            # Candidates as `fyp serve feed` makes them: generated here, the index service asked for ANN and dots.
            fetch = local_candidates(redis_client, index)
            # The index service's real /v1/vectors through the feed's own client (this test's videos have none).
            vectors = http_vectors(str(index.base_url), client=index)
            ranker = FeedRanker(fetch, redis_client, slot, config=FeedConfig(candidate_k=100, coarse_k=100),
                                vectors=vectors)
            with TestClient(create_app(ranker)) as feed_service:
                def feed(**params) -> dict:
                    response = feed_service.get("/v1/feed", params={"user": user, "n": 20, "explain": "true",
                                                                    **params})
                    assert response.status_code == 200, response.text
                    return response.json()

                def ours(ids) -> set[str]:
                    return set(ids) & set(videos.values())

                first = feed()
                assert first["model"] == {"version": version, "fallback": False}
                assert first["items"] and all(item["fine"] is not None for item in first["items"])
                assert set(first["timings_ms"]) >= {"candidates", "filters", "coarse", "features", "fine", "rerank",
                                                    "embeddings"}
                assert first["embeddings"] == {"found": 0}  # asked, answered, none in the index
                # v5 was seen and v6 is removed (candidate generation drops both); the market's other five reach
                # the fine ranker.
                assert ours(first["explain"]["shortlist"]) == {videos[i] for i in (0, 1, 2, 3, 4)}

                # The viewer's age: v3 becomes age-restricted; no profile and a minor's profile never see it, an
                # adult's does. Pages of 100, the whole shortlist: v3 is author b's only video, so the spacing rule
                # can always place it and a full page holds it whatever its score.
                assert videos[3] in {item["video_id"] for item in feed(n=100)["items"]}
                redis_client.hset(video_key(videos[3]), "actions", '["AGE_RESTRICT"]')
                today_ = today(int(time.time() * 1000))
                try:
                    for birth_date, age, shown in [(None, "unknown", False), ("2015-01-01", "minor", False),
                                                   ("1990-01-01", "adult", True)]:
                        if birth_date:
                            write_profiles(redis_client, [(user, birth_date)], on=today_)
                        body = feed(n=100)
                        assert body["viewer"] == {"age": age}
                        assert (videos[3] in {item["video_id"] for item in body["items"]}) is shown, age
                finally:
                    redis_client.hdel(video_key(videos[3]), "actions")
                    redis_client.delete(profile_key(user))

                # Recent-seen: the user watches v4; the next feed has no v4.
                engagement_producer.send("Watch", user_id=user, video_id=videos[4], watch_ms=9_000,
                                         video_duration_ms=10_000, region=region, language=language,
                                         author_id=authors["c"])
                engagement_producer.flush()
                eventually(lambda: videos[4] not in feed()["explain"]["shortlist"], timeout_s=60,
                           message="a watched video leaves the feed")

                # Not interested in v3: that video goes; its author (one signal) does not.
                engagement_producer.send("NotInterested", user_id=user, video_id=videos[3], author_id=authors["b"],
                                         region=region, language=language)
                engagement_producer.flush()
                eventually(lambda: feed()["explain"]["dropped"].get(videos[3]) == "not_interested_video",
                           timeout_s=60, message="a video marked not interested leaves the feed")
                body = feed()
                assert ours(body["explain"]["shortlist"]) == {videos[i] for i in (0, 1, 2)}
                assert not ours(item["video_id"] for item in body["items"]) & {videos[3], videos[4]}

                # Not interested twice in author a's videos (v0, v1): v2, never marked, goes with its author.
                for i in range(AUTHOR_NOT_INTERESTED_THRESHOLD):
                    engagement_producer.send("NotInterested", user_id=user, video_id=videos[i],
                                             author_id=authors["a"], region=region, language=language)
                engagement_producer.flush()
                key = NOT_INTERESTED_AUTHORS.key_prefix + user
                eventually(lambda: (redis_client.zscore(key, authors["a"]) or 0) >= AUTHOR_NOT_INTERESTED_THRESHOLD,
                           timeout_s=60, message="the not-interested author count")
                assert redis_client.zscore(NOT_INTERESTED_VIDEOS.key_prefix + user, videos[0]) is not None
                body = feed()
                dropped = body["explain"]["dropped"]
                assert dropped.get(videos[2]) == "not_interested_author"
                assert dropped.get(videos[0]) == dropped.get(videos[1]) == "not_interested_video"
                assert not ours(body["explain"]["shortlist"]) and not ours(i["video_id"] for i in body["items"])

                # A user with no event at all gets a cold-start feed, not an error.
                cold = feed_service.get("/v1/feed", params={"user": f"feed-{run}-nobody", "n": 5})
                assert cold.status_code == 200 and cold.json()["cold_start"] is True
    finally:
        s3.delete([f"{prefix}{version}/ranker.zip", f"{prefix}LATEST"])
