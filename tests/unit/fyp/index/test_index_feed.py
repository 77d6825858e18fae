"""The feed without Kafka: replay, follow, delete, snapshot and restore, driven by a fake consumer over a
plain topic log, with the HTTP app running it for its lifetime."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from confluent_kafka import KafkaError
from fastapi.testclient import TestClient

from fyp.index.api import create_app
from fyp.index.config import ServiceConfig
from fyp.index.feed import IndexFeed
from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex, ScannParams
from fyp.index.snapshot import LocalObjectStore, SnapshotStore
from tests.unit.fyp.index.index_records import DIM, embedding, unit


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


def test_the_feed_counts_what_it_skips_and_moves_past_it():
    consumer = FakeConsumer(
        {0: [(b"a", embedding("a", unit(1))), (b"b", embedding("b", unit(2), model="other")), (None, None)]}
    )
    holder, feed = make_feed(consumer, model="clip-v1")
    with TestClient(create_app(holder, feed=feed)):
        wait_for(feed.ready.is_set)
        assert "a" in holder.index and "b" not in holder.index
        assert feed.stats.rejected == {"other_model": 1, "tombstone_without_key": 1}
        assert feed.stats.records == 3 and feed.offsets.next_offsets() == {0: 3}
