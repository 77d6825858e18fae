"""The Pathway peer of `fyp bench throughput` on the real stack: its Redis values are the naive peer's fold's
(`FastFold`, within 1e-9 of the reference evaluator: tests/unit/fyp/bench/test_fast_fold.py), bit for bit.

Events go to a fresh one-partition topic, so their order is the offset order and the fold can take them in the
same order. Runs in the Pathway environment (.venv-pathway, made by scripts/install.sh).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from features.engagement.video_engagement import v1
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.pathway_process import PATHWAY_PYTHON
from fyp.bench.peers.runner import run_peer
from fyp.config import Settings
from schemas.registry import default_registry
from udfs.envelope import to_engagement_row

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not PATHWAY_PYTHON.exists(),
                       reason=f"{PATHWAY_PYTHON} is missing: scripts/install.sh creates the Pathway environment"),
]

HOUR_MS = 3_600_000
RECORDS = ("Impression", "Watch", "Like", "Share", "Skip", "Loop", "Comment", "Save", "Follow", "NotInterested")


def _event(rng: random.Random, record: str, *, video: str, event_time: int) -> dict:
    event = {"event_id": str(uuid.uuid4()), "event_time": event_time, "user_id": f"u{rng.randrange(40)}",
             "video_id": video, "author_id": "author-it", "region": "US", "language": "en", "session_id": "s-it"}
    duration = rng.choice((0, 8_000, 15_000, 60_000))
    extra = {
        "Impression": {"position": rng.randrange(10), "surface": "for_you"},
        "Watch": {"watch_ms": rng.randrange(0, 70_000), "video_duration_ms": duration},
        "Like": {"action": rng.choice(("LIKE", "UNLIKE"))},
        "Share": {"channel": "link"},
        "Skip": {"dwell_ms": rng.randrange(0, 3_000), "video_duration_ms": duration},
        "Loop": {"loop_count": rng.randrange(1, 4), "video_duration_ms": duration},
        "Comment": {"comment_id": str(uuid.uuid4()), "text": rng.choice(("great", "meh", "awful", ""))},
        "Follow": {"action": rng.choice(("FOLLOW", "UNFOLLOW"))},
    }.get(record, {})
    return {**event, **extra}


def _payloads(events: int, videos: list[str], seed: int) -> list[bytes]:
    """Events over the last 30 h (windows of 1 min to 24 h and the decays all see old and new rows), a tenth of
    them out of order, and a few records the job dead-letters."""
    rng = random.Random(seed)
    registry = default_registry()
    now = int(time.time() * 1000)
    start = now - 30 * HOUR_MS
    payloads = []
    for i in range(events):
        if i % 97 == 13:
            payloads.append(b"\x00not avro")
            continue
        in_order = start + (30 * HOUR_MS) * i // events
        event_time = in_order - rng.randrange(0, 3 * HOUR_MS) if rng.random() < 0.1 else in_order
        record = rng.choice(RECORDS)
        payloads.append(registry.encode(record, _event(rng, record, video=rng.choice(videos), event_time=event_time)))
    return payloads


@pytest.fixture
def one_partition_topic(settings: Settings) -> Iterator[str]:
    name = f"fyp.bench-pathway-{uuid.uuid4().hex[:8]}.v1"
    admin = AdminClient(settings.kafka_client_config())
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name], operation_timeout=30)[name].result(30)


def test_pathway_peer_writes_the_reference_values(settings: Settings, redis_client, one_partition_topic):
    videos = [f"pw-{uuid.uuid4().hex[:8]}-{i}" for i in range(25)]
    payloads = _payloads(3_000, videos, seed=21)
    producer = Producer(settings.kafka_producer_config())
    for payload in payloads:
        producer.produce(one_partition_topic, key=b"k", value=payload)
    assert producer.flush(30) == 0

    group_id = f"it-pathway-{uuid.uuid4().hex[:8]}"
    report = run_peer("pathway", settings, events=len(payloads), group_id=group_id, timeout_s=300,
                      topic=one_partition_topic)
    consumer = Consumer({**settings.kafka_client_config(), "group.id": group_id, "enable.auto.commit": False})
    try:  # state lived in the peer's process only, so it committed no offsets
        assert consumer.committed([TopicPartition(one_partition_topic, 0)], timeout=10)[0].offset < 0
    finally:
        consumer.close()

    evaluator = FastFold.of(v1)
    states: dict[str, object] = {}
    now_ms = int(time.time() * 1000)
    bad = 0
    for payload in payloads:  # offset order
        row = to_engagement_row(payload, now_ms)
        video = evaluator.key(row) if row[-1] is None else None
        if video is None:
            bad += 1
            continue
        evaluator.update(states.setdefault(video, evaluator.new_state()), row)
    assert bad >= len(payloads) // 97  # the undecodable ones at least
    assert report["events"] == len(payloads)
    assert report["good_events"] == len(payloads) - bad
    assert report["entities"] == len(states) == len(videos)
    assert report["seconds"] > 0 and report["cpu_seconds"] > 0
    for video, state in states.items():
        stored = redis_client.get(v1.key_prefix + video)
        expected = evaluator.pack(state)
        assert stored is not None, video
        # Bytes 8..16 are the update time, stamped at write.
        assert stored[:8] + stored[16:] == expected[:8] + expected[16:], video
