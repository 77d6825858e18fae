"""The index service on the real stack: Kafka feed, Redis user embeddings, S3 snapshots, restart and replay."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from fyp.index.config import ServiceConfig
from fyp.index.service import build_app
from fyp.index.users import USER_EMBEDDING_KEY, encode_user_embedding
from schemas.registry import default_registry
from schemas.topics import VIDEO_EMBEDDINGS
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

DIM = 64


class EmbeddingProducer:
    def __init__(self, settings) -> None:
        self.producer = Producer(settings.kafka_producer_config())
        self.sent: set[str] = set()

    def send(self, video_id: str, vector: np.ndarray | None = None, *, deleted: bool = False) -> None:
        record = {
            "event_id": str(uuid.uuid4()),
            "event_time": int(time.time() * 1000),
            "video_id": video_id,
            "author_id": "author-it",
            "model": "it-model",
            "vector": [] if vector is None else vector.astype(float).tolist(),
            "deleted": deleted,
        }
        value = default_registry().encode("VideoEmbedding", record)
        self.producer.produce(VIDEO_EMBEDDINGS.name, key=video_id.encode(), value=value)
        self.sent.add(video_id)

    def tombstone(self, video_id: str) -> None:
        self.producer.produce(VIDEO_EMBEDDINGS.name, key=video_id.encode(), value=None)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0, "Kafka did not acknowledge every record"


@pytest.fixture
def embeddings(settings) -> Iterator[EmbeddingProducer]:
    producer = EmbeddingProducer(settings)
    yield producer
    for video_id in producer.sent:  # leave the compacted topic as we found it
        producer.tombstone(video_id)
    producer.flush()


@contextmanager
def running_service(settings, name: str) -> Iterator[TestClient]:
    config = ServiceConfig(name=name, dim=DIM, model="it-model", replica_id=uuid.uuid4().hex[:8], snapshot_every_s=0)
    with TestClient(build_app(settings, config)) as client:
        eventually(lambda: client.get("/healthz").status_code == 200, timeout_s=60, message="index service ready")
        yield client


def present(client: TestClient, video_id: str) -> bool:
    return client.get(f"/v1/similar/{video_id}", params={"k": 1}).status_code == 200


def test_feed_delete_candidates_snapshot_restart_replay(settings, redis_client, embeddings, index_name):
    rng = np.random.default_rng()
    base = {f"it-{uuid.uuid4().hex[:8]}-{i}": rng.standard_normal(DIM) for i in range(30)}
    for video_id, vector in base.items():
        embeddings.send(video_id, vector)
    embeddings.flush()
    first, second, *rest = base

    with running_service(settings, index_name) as client:
        assert all(present(client, v) for v in base), "the replay at start-up missed records"

        fresh = f"it-fresh-{uuid.uuid4().hex[:8]}"
        fresh_vector = rng.standard_normal(DIM)
        started = time.monotonic()
        embeddings.send(fresh, fresh_vector)
        embeddings.flush()
        eventually(lambda: present(client, fresh), timeout_s=5, interval_s=0.05, message="new vector searchable")
        print(f"\nnew vector searchable {time.monotonic() - started:.2f} s after produce")

        user = f"u-it-{uuid.uuid4().hex[:8]}"
        key = USER_EMBEDDING_KEY.format(user_id=user)
        redis_client.set(key, encode_user_embedding("it-model", fresh_vector), ex=300)
        try:
            body = client.get("/v1/candidates", params={"user": user, "k": 5}).json()
            assert body["results"][0]["video_id"] == fresh
        finally:
            redis_client.delete(key)
        assert client.get("/v1/candidates", params={"user": user, "sources": "ann"}).status_code == 404

        started = time.monotonic()
        embeddings.send(fresh, deleted=True)
        embeddings.tombstone(first)
        embeddings.flush()
        eventually(
            lambda: not present(client, fresh) and not present(client, first),
            timeout_s=5,
            interval_s=0.05,
            message="deletes applied",
        )
        print(f"delete and tombstone applied {time.monotonic() - started:.2f} s after produce")
        snapshot = client.post("/v1/snapshot").json()
        assert snapshot["prefix"].startswith(f"index-snapshots/{index_name}/")

    # While the service is down: one new video, one delete. The restart must restore and replay both.
    later = f"it-later-{uuid.uuid4().hex[:8]}"
    embeddings.send(later, rng.standard_normal(DIM))
    embeddings.send(second, deleted=True)
    embeddings.flush()
    with running_service(settings, index_name) as client:
        feed = client.get("/v1/stats").json()["feed"]
        assert feed["restored_from"] == snapshot["prefix"]
        assert feed["replayed"] >= 2
        assert present(client, later)
        assert not present(client, second) and not present(client, first) and not present(client, fresh)
        assert all(present(client, v) for v in rest), "a video was lost across snapshot and restart"
        print(
            f"restart: restored {feed['restored_size']} vectors, replayed {feed['replayed']} records "
            f"in {feed['replay_s']} s"
        )
