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


def make_feed(consumer, store=None, *, default_model=None, on_model=None, **config):
    cfg = ServiceConfig(
        dim=DIM, snapshot_every_s=0, replica_id="test", params=ScannParams(brute_force_below=50),
        **{"model": "clip-v1", **config},
    )
    holder = IndexHolder(ScannIndex(dim=DIM, params=cfg.params))
    snapshots = SnapshotStore(store, cfg.name) if store is not None else None
    return holder, IndexFeed(holder, cfg, consumer_factory=lambda: consumer, snapshots=snapshots, poll_s=0.01,
                             default_model=default_model, on_model=on_model)


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
        assert client.get("/healthz").json() == {"status": "ok", "size": 88, "model": "clip-v1"}
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


# -- the model: resolved once, refused when it is another, changed by stage + swap ------------------------------


def test_without_a_configured_model_the_snapshot_names_it_else_the_default(tmp_path):
    store = LocalObjectStore(tmp_path / "s3")
    published = []
    consumer = FakeConsumer({0: [(b"a", embedding("a", unit(1), model="m1")), (b"b", embedding("b", unit(2)))]})
    holder, feed = make_feed(consumer, store, model=None, default_model=lambda: "m1", on_model=published.append)
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(feed.ready.is_set)
        assert holder.model == "m1" and published == ["m1"] and "a" in holder.index and "b" not in holder.index
        assert client.post("/v1/snapshot").json()["size"] == 1

    # A restart without a model takes the snapshot's, even when the default has moved on.
    holder2, feed2 = make_feed(FakeConsumer(consumer.log), store, model=None, default_model=lambda: "m2")
    with TestClient(create_app(holder2, feed=feed2)):
        wait_for(feed2.ready.is_set)
        assert holder2.model == "m1" and "a" in holder2.index

    # A restart configured for another model refuses the snapshot: it would mix two models' vectors.
    holder3, feed3 = make_feed(FakeConsumer(consumer.log), store, model="m2")
    with TestClient(create_app(holder3, feed=feed3)) as client:
        wait_for(lambda: feed3.stats.phase == "failed")
        error = client.get("/healthz").json()["error"]
        assert "holds vectors of model m1, not m2" in error and "--no-restore" in error


def test_a_snapshot_that_does_not_name_its_model_is_refused(tmp_path):
    store = LocalObjectStore(tmp_path / "s3")
    holder, feed = make_feed(FakeConsumer({0: [(b"a", embedding("a", unit(1)))]}), store)
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(feed.ready.is_set)
        prefix = client.post("/v1/snapshot").json()["prefix"]
    manifest = store.get_bytes(prefix + "manifest.json").decode()
    store.put_bytes(prefix + "manifest.json", manifest.replace('"model": "clip-v1",', "").encode())
    holder2, feed2 = make_feed(FakeConsumer({0: []}), store)
    with TestClient(create_app(holder2, feed=feed2)):
        wait_for(lambda: feed2.stats.phase == "failed")
        assert "does not name the model" in feed2.stats.error


def test_stage_then_swap_moves_the_index_to_the_new_model_and_refuses_the_old(tmp_path):
    old = {f"v{i}": unit(i) for i in range(12)}
    consumer = FakeConsumer({0: [(v.encode(), embedding(v, x)) for v, x in old.items()], 1: []})
    store = LocalObjectStore(tmp_path / "s3")
    published = []
    holder, feed = make_feed(consumer, store, on_model=published.append)
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(feed.ready.is_set)
        assert client.post("/v1/model/stage", json={"model": "clip-v1"}).status_code == 409  # already served
        assert client.post("/v1/model/swap", json={"model": "clip-v2"}).status_code == 409  # nothing staged
        staged = client.post("/v1/model/stage", json={"model": "clip-v2"}).json()
        assert staged == {"model": "clip-v2", "serving": "clip-v1", "offsets": {"0": 12}}

        # The re-embedded catalogue (one video fewer), a takedown during the re-embed (a video's records share a
        # partition, so the delete comes after its re-embedding), a late old-model vector.
        for i in range(11):
            consumer.append(0, f"v{i}".encode(), embedding(f"v{i}", -unit(i), model="clip-v2"))
        consumer.append(0, b"v3", embedding("v3", deleted=True, model="clip-v1"))
        consumer.append(1, b"new-old", embedding("new-old", unit(4), model="clip-v1"))
        after = {"0": 24, "1": 1}
        report = client.post("/v1/model/swap", json={"model": "clip-v2", "after_offsets": after}).json()
        assert report["model"] == "clip-v2" and report["previous"] == "clip-v1"
        assert report["size"] == 10 and report["previous_size"] == 12  # v3 deleted from both; new-old only in old
        assert report["snapshot"].startswith("index-snapshots/videos/") and report["swap_ms"] < 1000
        assert holder.model == "clip-v2" and published == ["clip-v1", "clip-v2"]
        assert "v3" not in holder.index and "v11" not in holder.index and "new-old" not in holder.index
        assert holder.search(-unit(5), 1, model="clip-v2")[0].video_id == "v5"

        consumer.append(0, b"v5", embedding("v5", unit(5), model="clip-v1"))  # the old model, after the swap
        consumer.append(1, b"v20", embedding("v20", unit(6), model="clip-v2"))
        wait_for(lambda: "v20" in holder.index)
        assert holder.index.vector("v5") @ unit(5) < 0  # still the new model's vector
        stats = client.get("/v1/stats").json()
        assert stats["model"] == "clip-v2" and stats["feed"]["swaps"] == 1
        assert stats["feed"]["refused_vectors"] == {"other_model": {"clip-v1": 1}}
        assert client.get("/v1/model").json() == {"model": "clip-v2", "swaps": 1, "staging": None, "staged": 0}

    # The snapshot taken at the swap restores the new model.
    holder2, feed2 = make_feed(FakeConsumer(consumer.log), store, model=None)
    with TestClient(create_app(holder2, feed=feed2)):
        wait_for(feed2.ready.is_set)
        assert holder2.model == "clip-v2" and "v20" in holder2.index and len(holder2.index) == 11


def test_a_swap_waits_for_the_feed_to_read_its_records_and_times_out_otherwise():
    consumer = FakeConsumer({0: [(b"a", embedding("a", unit(1)))]})
    holder, feed = make_feed(consumer)
    with TestClient(create_app(holder, feed=feed)) as client:
        wait_for(feed.ready.is_set)
        client.post("/v1/model/stage", json={"model": "clip-v2"})
        consumer.append(0, b"a", embedding("a", unit(2), model="clip-v2"))
        late = client.post("/v1/model/swap", json={"model": "clip-v2", "after_offsets": {"0": 5}, "timeout_s": 0.3})
        assert late.status_code == 504 and "has not read up to" in late.json()["detail"]
        assert holder.model == "clip-v1"

        result: dict = {}
        waiting = threading.Thread(target=lambda: result.update(client.post(
            "/v1/model/swap", json={"model": "clip-v2", "after_offsets": {"0": 3}}).json()))
        waiting.start()
        time.sleep(0.2)
        assert holder.model == "clip-v1"  # offset 2 not read yet: the swap waits
        consumer.append(0, b"b", embedding("b", unit(3), model="clip-v2"))
        waiting.join(10)
        assert result["size"] == 2 and holder.model == "clip-v2"
