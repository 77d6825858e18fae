"""The index service without Kafka: HTTP endpoints over an in-memory index, record decoding, and the feed
(replay, follow, snapshot, restore) driven by a fake consumer."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from fyp.index.ann import ScannIndex, ScannParams
from fyp.index.service import (
    USER_EMBEDDING_KEY,
    EmbeddingDecoder,
    IndexFeed,
    IndexHolder,
    RedisUserEmbeddings,
    ServiceConfig,
    Update,
    collapse,
    create_app,
)
from fyp.index.snapshot import LocalObjectStore, SnapshotStore
from schemas.registry import default_registry

DIM = 8
TOPIC = "fyp.video-embeddings.v1"


def embedding(video_id: str, vector=None, *, deleted: bool = False, model: str = "clip-v1") -> bytes:
    return default_registry().encode(
        "VideoEmbedding",
        {
            "event_id": str(uuid.uuid4()),
            "event_time": 1_700_000_000_000,
            "video_id": video_id,
            "author_id": "a1",
            "model": model,
            "vector": [] if vector is None else [float(x) for x in vector],
            "deleted": deleted,
        },
    )


def unit(i: int) -> np.ndarray:
    v = np.full(DIM, 0.05, np.float32)
    v[i % DIM] = 1.0
    return v


# -- HTTP over an in-memory index ----------------------------------------------------------------------------


class DictUsers:
    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def get(self, user_id: str):
        return self.vectors.get(user_id)


@pytest.fixture
def client() -> TestClient:
    ids = [f"v{i}" for i in range(40)]
    vectors = np.stack([unit(i) + 0.01 * i for i in range(40)])
    holder = IndexHolder(ScannIndex.build(ids, vectors))
    users = DictUsers({"u1": unit(3), "u-bad": np.ones(3, np.float32), "u-zero": np.zeros(DIM, np.float32)})
    with TestClient(create_app(holder, users=users, max_k=50)) as c:
        yield c


def test_similar_leaves_the_video_itself_out(client):
    body = client.get("/v1/similar/v3", params={"k": 4}).json()
    found = [r["video_id"] for r in body["results"]]
    assert len(found) == 4 and "v3" not in found
    assert set(found) <= {f"v{i}" for i in range(3, 40, DIM)}  # same direction as v3
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_similar_of_an_unknown_video_is_404(client):
    response = client.get("/v1/similar/nope")
    assert response.status_code == 404
    assert "not in the index" in response.json()["detail"]


def test_similar_accepts_ids_with_slashes():
    holder = IndexHolder(ScannIndex.build(["a/b", "c", "d"], np.eye(3, dtype=np.float32) + 0.1))
    with TestClient(create_app(holder)) as client:
        body = client.get("/v1/similar/a%2Fb", params={"k": 1}).json()
        assert body["video_id"] == "a/b" and len(body["results"]) == 1


@pytest.mark.parametrize("k", [0, 51, "x"])
def test_k_is_validated(client, k):
    assert client.get("/v1/similar/v1", params={"k": k}).status_code == 422


def test_candidates_from_the_user_embedding(client):
    body = client.get("/v1/candidates", params={"user": "u1", "k": 3}).json()
    assert body["user"] == "u1" and len(body["results"]) == 3
    assert body["results"][0]["video_id"] in {f"v{i}" for i in range(3, 40, DIM)}


def test_candidates_without_an_embedding_say_which_key_is_missing(client):
    response = client.get("/v1/candidates", params={"user": "ghost"})
    assert response.status_code == 404
    assert USER_EMBEDDING_KEY.format(user_id="ghost") in response.json()["detail"]


@pytest.mark.parametrize(("user", "message"), [("u-bad", "has 3 floats"), ("u-zero", "unusable")])
def test_candidates_with_a_broken_embedding_are_a_server_error(client, user, message):
    response = client.get("/v1/candidates", params={"user": user})
    assert response.status_code == 500 and message in response.json()["detail"]


def test_health_and_stats(client):
    assert client.get("/healthz").json() == {"status": "ok", "size": 40}
    client.get("/v1/similar/v1")
    stats = client.get("/v1/stats").json()
    assert stats["index"]["size"] == 40 and stats["index"]["kind"] == "scann" and stats["searches"] == 1
    assert client.post("/v1/snapshot").status_code == 409  # no feed, no snapshots


def test_redis_user_embeddings_read_float32_bytes():
    class FakeRedis:
        def __init__(self, data):
            self.data = data

        def get(self, key):
            return self.data.get(key)

    raw = np.arange(4, dtype="<f4").tobytes()
    users = RedisUserEmbeddings(FakeRedis({"fyp:user_embedding:v1:u1": raw, "fyp:user_embedding:v1:u2": b"abc"}))
    assert users.get("u1").tolist() == [0, 1, 2, 3]
    assert users.get("u0") is None
    with pytest.raises(ValueError, match="3 bytes"):
        users.get("u2")


# -- records to updates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (b"v1", None, Update("v1", None)),
        (None, None, "tombstone_without_key"),
        (b"v1", embedding("v1", deleted=True), Update("v1", None)),
        (b"v1", b"garbage", "undecodable"),
        (b"v1", embedding("v1", [1.0] * 3), "bad_vector"),
        (b"v1", embedding("v1", [0.0] * DIM), "bad_vector"),
        (b"v1", embedding("v1", [1.0] * DIM, model="other"), "other_model"),
    ],
)
def test_decoder(key, value, expected):
    assert EmbeddingDecoder(dim=DIM, model="clip-v1").parse(key, value) == expected


def test_decoder_normalises_vectors():
    parsed = EmbeddingDecoder(dim=DIM).parse(b"v1", embedding("v1", [2.0] * DIM))
    assert parsed.video_id == "v1"
    assert np.linalg.norm(parsed.vector) == pytest.approx(1.0)


def test_decoder_refuses_other_records():
    save = default_registry().encode(
        "Save",
        {
            "event_id": "e1",
            "event_time": 1,
            "user_id": "u1",
            "video_id": "v1",
            "author_id": "a1",
            "region": "US",
            "language": "en",
            "session_id": "s1",
        },
    )
    assert EmbeddingDecoder(dim=DIM).parse(b"v1", save) == "not_a_video_embedding"


def test_collapse_keeps_the_last_update_per_video():
    v = np.ones(DIM, np.float32)
    batch = collapse([Update("a", v), Update("b", None), Update("a", None), Update("b", v * 2)], DIM)
    assert batch.upsert_ids == ["b"] and batch.delete_ids == ["a"]
    assert batch.upsert_vectors.tolist() == [(v * 2).tolist()]
    empty = collapse([], DIM)
    assert empty.upsert_vectors.shape == (0, DIM)


# -- the feed, with a fake consumer ------------------------------------------------------------------------------


class FakeMessage:
    def __init__(self, partition, offset, key=None, value=None, eof=False):
        self._p, self._o, self._k, self._v, self._eof = partition, offset, key, value, eof

    def error(self):
        return SimpleNamespace(code=lambda: KafkaError._PARTITION_EOF, fatal=lambda: False) if self._eof else None

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def key(self):
        return self._k

    def value(self):
        return self._v


class FakeConsumer:
    """A topic log per partition; messages come in order, each partition says EOF once it is drained."""

    def __init__(self, log: dict[int, list[tuple[bytes | None, bytes | None]]]) -> None:
        self.log = log
        self.position: dict[int, int] = {}
        self.eof_sent: dict[int, bool] = {}
        self.assigned: dict[int, int] = {}
        self.closed = False
        self.lock = threading.Lock()

    def list_topics(self, topic, timeout):
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=dict.fromkeys(self.log))})

    def assign(self, partitions):
        for tp in partitions:
            self.assigned[tp.partition] = tp.offset
            self.position[tp.partition] = 0 if tp.offset < 0 else tp.offset

    def get_watermark_offsets(self, tp, timeout, cached):
        return 0, len(self.log[tp.partition])

    def consume(self, num_messages, timeout):
        out = []
        with self.lock:
            for p, records in self.log.items():
                while self.position[p] < len(records) and len(out) < num_messages:
                    key, value = records[self.position[p]]
                    out.append(FakeMessage(p, self.position[p], key, value))
                    self.position[p] += 1
                    self.eof_sent[p] = False
                if self.position[p] >= len(records) and not self.eof_sent.get(p):
                    out.append(FakeMessage(p, self.position[p], eof=True))
                    self.eof_sent[p] = True
        if not out:
            time.sleep(min(timeout, 0.01))
        return out

    def append(self, partition, key, value):
        with self.lock:
            self.log[partition].append((key, value))

    def close(self):
        self.closed = True


def wait_for(check, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def make_feed(consumer, store=None, **config):
    cfg = ServiceConfig(
        dim=DIM, snapshot_every_s=0, replica_id="test", params=ScannParams(brute_force_below=50), **config
    )
    holder = IndexHolder(ScannIndex(dim=DIM, params=cfg.params))
    snapshots = SnapshotStore(store, cfg.name) if store is not None else None
    return holder, IndexFeed(holder, cfg, consumer_factory=lambda: consumer, snapshots=snapshots, poll_s=0.01)


def test_feed_replays_follows_deletes_snapshots_and_restores(tmp_path):
    records = {p: [] for p in range(3)}
    for i in range(90):
        records[i % 3].append((f"v{i}".encode(), embedding(f"v{i}", unit(i) + 0.001 * i)))
    records[0].append((b"v0", None))  # tombstone
    records[1].append((b"v1", embedding("v1", deleted=True)))
    records[2].append((b"junk", b"not avro"))
    consumer = FakeConsumer(records)
    store = LocalObjectStore(tmp_path / "s3")
    holder, feed = make_feed(consumer, store)
    app = create_app(holder, feed=feed)
    with TestClient(app) as client:
        wait_for(feed.ready.is_set)
        assert client.get("/healthz").json() == {"status": "ok", "size": 88}
        assert holder.index.mode == "tree"  # a cold start trains once on everything it replayed
        assert "v0" not in holder.index and "v1" not in holder.index

        consumer.append(1, b"fresh", embedding("fresh", unit(5) * -1))
        wait_for(lambda: "fresh" in holder.index)
        assert client.get("/v1/similar/v5", params={"k": 3}).status_code == 200
        consumer.append(2, b"v2", embedding("v2", deleted=True))
        wait_for(lambda: "v2" not in holder.index)

        body = client.post("/v1/snapshot").json()
        assert body["size"] == 88 and body["offsets"] == {"0": 31, "1": 32, "2": 32}
        stats = client.get("/v1/stats").json()["feed"]
        assert stats["phase"] == "live" and stats["rejected"] == {"undecodable": 1}
        assert stats["snapshots"] == 1 and stats["group_id"] == "fyp-index-videos-test"
    assert consumer.closed and feed.stats.phase == "stopped"

    # Restart: restore the snapshot and read only what came after it.
    consumer.append(0, b"later", embedding("later", unit(6)))
    restarted = FakeConsumer(consumer.log)
    holder2, feed2 = make_feed(restarted, store)
    with TestClient(create_app(holder2, feed=feed2)):
        wait_for(feed2.ready.is_set)
        assert restarted.assigned == {0: 31, 1: 32, 2: 32}
        assert feed2.stats.restored_size == 88 and feed2.stats.replayed == 1
        assert len(holder2.index) == 89 and "later" in holder2.index and "fresh" in holder2.index
        assert "v2" not in holder2.index


def test_feed_on_an_empty_topic_is_ready_at_once():
    consumer = FakeConsumer({0: [], 1: []})
    holder, feed = make_feed(consumer)
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(feed.ready.is_set)
        assert client.get("/healthz").json()["size"] == 0
        consumer.append(0, b"first", embedding("first", unit(1)))
        wait_for(lambda: "first" in holder.index)


def test_a_failed_feed_reports_unhealthy():
    class Broken(FakeConsumer):
        def list_topics(self, topic, timeout):
            return SimpleNamespace(topics={})

    holder, feed = make_feed(Broken({0: []}))
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(lambda: feed.stats.phase == "failed")
        response = client.get("/healthz")
        assert response.status_code == 503 and "missing" in response.json()["error"]
        assert client.get("/v1/similar/x").status_code == 503
