"""The Bytewax peer of `fyp bench throughput` on the stack's Kafka and Redis: over a fresh topic of generated
traffic (late events and bad records among it), every video's Redis value is bit-identical to the naive peer's
fold (`FastFold`, within 1e-9 of the reference evaluator: tests/unit/fyp/bench/test_fast_fold.py) for the same
events, the update time (bytes 8..16) excepted."""

from __future__ import annotations

import time
import uuid
import zlib

import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from features.engagement.video_engagement import v1
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.runner import run_peer
from fyp.bench.throughput import bench_topic
from fyp.config import Settings
from fyp.traffic import TrafficConfig, TrafficGenerator
from schemas.registry import default_registry
from udfs.envelope import to_engagement_row

BAD_PAYLOADS = (b"not avro", b"\xc3\x01" + bytes(8), b"")  # no marker; unknown fingerprint; empty


def generated_values(views: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of generated events whose video ids are this test's own (the job's values for v0.. would
    be newer and win the stale-write check), with bad payloads spread among them."""
    tag = uuid.uuid4().hex[:8]
    registry = default_registry()
    config = TrafficConfig(users=50, videos=80, late_fraction=0.1, malformed_fraction=0.02)
    pairs = []
    for i, (name, record) in enumerate(TrafficGenerator(config, seed=5).next_records(views)):
        if record.get("video_id"):
            record = {**record, "video_id": f"{record['video_id']}-it{tag}"}
        pairs.append((str(record.get("user_id")).encode(), registry.encode(name, record)))
        if i % 97 == 0:
            pairs.append((b"bad", BAD_PAYLOADS[i % len(BAD_PAYLOADS)]))
    return pairs


def fold_reference(values: list[bytes]) -> tuple[dict[str, bytes], list[str | None]]:
    """Each video's packed value after folding `values` in order, and each value's video (None: dropped)."""
    evaluator = FastFold.of(v1)
    states: dict = {}
    videos: list[str | None] = []
    now_ms = int(time.time() * 1000)
    for value in values:
        row = to_engagement_row(value, now_ms)
        video = evaluator.key(row) if row[-1] is None else None
        videos.append(video)
        if video is not None:
            evaluator.update(states.setdefault(video, evaluator.new_state()), row)
    return {video: evaluator.pack(state) for video, state in states.items()}, videos


def test_every_videos_value_is_the_reference_value(settings: Settings, redis_client: redis.Redis) -> None:
    pairs = generated_values(600)
    expected, videos = fold_reference([value for _, value in pairs])
    folded = sum(1 for video in videos if video is not None)
    assert len(expected) > 20 and folded < len(pairs), "several videos, and bad records among the events"
    keys = [v1.key_prefix + video for video in expected]
    topic = bench_topic(settings)
    try:
        # A video's events go to one partition, in generation order: then the peer folds each video's events in
        # that order, however it interleaves partitions (the decayed sums' float arithmetic depends on order).
        producer = Producer(settings.kafka_producer_config())
        for (key, value), video in zip(pairs, videos, strict=True):
            partition = 0 if video is None else zlib.crc32(video.encode()) % topic.partitions
            producer.produce(topic.name, key=key, value=value, partition=partition)
        assert producer.flush(30) == 0, "Kafka did not acknowledge every event"

        report = run_peer("bytewax", settings, events=len(pairs), group_id=f"it-bytewax-{uuid.uuid4().hex[:8]}",
                          timeout_s=120, topic=topic.name)

        assert (report["events"], report["good_events"], report["entities"]) == (len(pairs), folded, len(expected))
        assert report["redis_writes"] >= len(expected) and report["seconds"] > 0
        stored = dict(zip(expected, redis_client.mget(keys), strict=True))
        differing = [video for video, packed in expected.items()
                     if stored[video] is None or stored[video][:8] + stored[video][16:] != packed[:8] + packed[16:]]
        assert differing == [], f"{len(differing)} of {len(expected)} videos differ from the reference"
        assert all(0 < redis_client.pttl(key) <= v1.ttl.total_seconds() * 1000 for key in keys), "TTL on every key"
    finally:
        redis_client.delete(*keys)
        admin = AdminClient(settings.kafka_client_config())  # held: a handle collected mid-call fails the call
        admin.delete_topics([topic.name])[topic.name].result(30)


def test_a_topic_short_of_events_times_out_and_a_missing_topic_is_refused(settings: Settings) -> None:
    topic = bench_topic(settings)
    try:
        producer = Producer(settings.kafka_producer_config())
        for key, value in generated_values(2)[:3]:
            producer.produce(topic.name, key=key, value=value)
        assert producer.flush(30) == 0, "Kafka did not acknowledge every event"
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="bytewax peer: 3 of 10 events after 3"):
            run_peer("bytewax", settings, events=10, group_id="it-bytewax-short", timeout_s=3, topic=topic.name)
        assert time.monotonic() - started < 30
        with pytest.raises(ValueError, match="no topic"):
            run_peer("bytewax", settings, events=10, group_id="it-bytewax-none", timeout_s=3,
                     topic=f"{topic.name}-missing")
    finally:
        admin = AdminClient(settings.kafka_client_config())
        admin.delete_topics([topic.name])[topic.name].result(30)
