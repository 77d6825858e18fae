"""The exploration job on the real stack: crafted engagement in, one promote and one demote out on Kafka and in
Redis, and candidate generation's exploration pool honouring them."""

from __future__ import annotations

import contextlib
import time
import uuid

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.redis_video_store import FRESH_VIDEOS_KEY
from features.exploration import decisions_key
from fyp.candidates.sources import RedisSources
from fyp.stack.submit import cancel_job, submit_job
from schemas.registry import default_registry
from schemas.topics import ENGAGEMENT, EXPLORATION
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


def end_offsets(settings, topic) -> dict[int, int]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{uuid.uuid4().hex}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic.name, p), timeout=10)[1]
                for p in range(topic.partitions)}
    finally:
        consumer.close()


def test_new_videos_are_promoted_or_demoted_once(settings, engagement_producer, redis_client):
    run = uuid.uuid4().hex[:8]
    good, bad = f"v-explore-good-{run}", f"v-explore-bad-{run}"
    start = end_offsets(settings, ENGAGEMENT)  # the job reads only what this test sends
    decisions_from = end_offsets(settings, EXPLORATION)
    job_id = submit_job(settings, "exploration", job_args=[
        "--min-impressions", "5", "--promote-completion-rate", "0.5", "--promote-like-rate", "0.2",
        "--demote-completion-rate", "0.3", "--demote-like-rate", "0.05",
        "--group-id", f"fyp-exploration-it-{run}", "--start-offsets", ",".join(f"{p}:{o}" for p, o in start.items())])
    try:
        for video, completes, likes in ((good, True, True), (bad, False, False)):
            user = f"u-{video}"  # one key: the video's events stay in order on one partition
            for i in range(8):  # decided at the 5th impression; the rest must not decide again
                engagement_producer.send("Impression", user_id=user, video_id=video, position=i, surface="for_you")
                engagement_producer.send("Watch", user_id=user, video_id=video,
                                         watch_ms=10_000 if completes else 1_000, video_duration_ms=10_000)
                if likes:
                    engagement_producer.send("Like", user_id=user, video_id=video, action="LIKE")
        engagement_producer.flush()

        consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{run}", "enable.auto.commit": False})
        consumer.assign([TopicPartition(EXPLORATION.name, p, o) for p, o in decisions_from.items()])
        seen: list[dict] = []

        def poll() -> list[dict]:
            for message in consumer.consume(100, timeout=1):
                if message.error() is None:
                    record = default_registry().decode(message.value()).record
                    if record["video_id"] in (good, bad):
                        assert message.key() == record["video_id"].encode()
                        seen.append(record)
            return seen if {r["video_id"] for r in seen} == {good, bad} else []

        eventually(poll, timeout_s=120, interval_s=0, message="a decision for each video on fyp.exploration.v1")
        deadline = time.monotonic() + 3  # a second decision would follow within a few hundred ms
        while time.monotonic() < deadline:
            poll()
        consumer.close()
        by_video = {r["video_id"]: r for r in seen}
        assert len(seen) == 2, seen
        assert by_video[good]["decision"] == "PROMOTE" and by_video[bad]["decision"] == "DEMOTE"
        assert by_video[good]["impressions"] == by_video[bad]["impressions"] == 5
        assert by_video[good]["completion_rate"] == 1.0 and by_video[bad]["completion_rate"] == 0.0
        assert by_video[good]["author_id"] == "author-it"

        # The same decisions in Redis, and the exploration pool follows them: the demoted video leaves it, the
        # promoted one comes first (it is the newest promotion), however new the pool's other videos are.
        eventually(lambda: redis_client.zscore(decisions_key("PROMOTE"), good) is not None
                   and redis_client.zscore(decisions_key("DEMOTE"), bad) is not None,
                   timeout_s=10, message="both decisions in Redis")
        assert redis_client.zscore(decisions_key("PROMOTE"), bad) is None
        assert redis_client.zscore(decisions_key("DEMOTE"), good) is None
        now = time.time() * 1000
        redis_client.zadd(FRESH_VIDEOS_KEY, {good: now - 60_000, bad: now + 60_000})
        pool = [c.video_id for c in RedisSources(redis_client).exploration(50)]
        assert pool[0] == good and bad not in pool, pool
    finally:
        redis_client.zrem(FRESH_VIDEOS_KEY, good, bad)
        with contextlib.suppress(httpx.HTTPError):
            cancel_job(settings, job_id)
