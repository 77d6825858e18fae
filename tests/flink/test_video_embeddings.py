"""The embedding job's stream on in-memory status payloads: decode, batch per shard, plan against the video
hashes, encode once per batch, emit upserts and deletes. The encoder and the Redis store are plain objects
(the real ones run in tests/integration/test_video_embeddings_pipeline.py)."""

from __future__ import annotations

import sys

import numpy as np
from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from jobs.video_embeddings import FollowLatest, embed, embeddings_stream
from schemas.registry import default_registry
from udfs.video_embedding import BatchPolicy, StatusChange

HASHES = {
    "v1": {"video_id": "v1", "status": "ready", "author_id": "a1", "caption": "cats", "hashtags": '["cats"]'},
    "v2": {"video_id": "v2", "status": "ready", "author_id": "a2", "caption": "dogs", "hashtags": "[]"},
    "v3": {"video_id": "v3", "status": "removed", "author_id": "a3"},  # taken down after it became ready
    "v4": {"video_id": "v4", "status": "rejected", "author_id": "a4"},
}


class PlainStore:
    def read_many(self, video_ids):
        return {v: HASHES.get(v) for v in video_ids}

    def record_searchable(self, entries):
        pass


class CountingEncoder:
    """Vectors from the caption's length; `calls` shows the batching (one call per batch of upserts)."""

    name = "plain-encoder-v1"

    def __init__(self):
        self.calls = []

    def encode(self, videos):
        self.calls.append([v.video_id for v in videos])
        return np.array([[len(v.caption), 1.0] for v in videos], dtype=np.float32)


def status(video_id: str, value: str, t: int) -> bytes:
    return default_registry().encode("VideoStatusChanged", {
        "event_id": f"e-{video_id}-{t}", "event_time": t, "video_id": video_id, "author_id": f"a{video_id[1:]}",
        "status": value, "reason": None})


def test_status_changes_become_upserts_and_deletes():
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    env.set_python_executable(sys.executable)  # the mini cluster's Python workers: this environment's
    payloads = [status("v1", "moderating", 1), status("v1", "ready", 2), status("v2", "ready", 3),
                status("v3", "ready", 4), status("v4", "rejected", 5), b"\x00not avro", status("v9", "ready", 6)]
    source = env.from_collection([(bytearray(p),) for p in payloads],
                                 type_info=Types.ROW([Types.PRIMITIVE_ARRAY(Types.BYTE())]))
    # 5 changes ask for an action (v1 ready, v2 ready, v3 ready, v4 rejected, v9 ready); batches of 5 = one flush.
    stream = embeddings_stream(source, policy=BatchPolicy(max_items=5), shards=1,
                               encoder_factory=CountingEncoder, store_factory=PlainStore)
    rows = {r[0]: r for r in stream.execute_and_collect()}
    assert set(rows) == {"v1", "v2", "v3", "v4"}  # v9 has no hash: skipped
    assert [rows["v1"][3], rows["v2"][3]] == [[4.0, 1.0], [4.0, 1.0]] and not rows["v1"][4]
    assert rows["v3"][4] and rows["v3"][3] == [] and rows["v4"][4]  # the hash said removed: a delete
    assert {r[2] for r in rows.values()} == {"plain-encoder-v1"}
    decoded = default_registry().decode(unsigned(rows["v1"][7]))
    assert decoded.record_name == "VideoEmbedding" and decoded.record["video_id"] == "v1"
    assert unsigned(rows["v1"][6]) == b"v1"


def unsigned(java_bytes) -> bytes:
    """A collected BYTE array comes back as signed ints."""
    return bytes(b & 0xFF for b in java_bytes)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_encoder_follows_latest_and_the_records_name_the_model_that_made_them(tmp_path):
    """After a retrain moves LATEST, the next batch (at most `every_s` later) is embedded with the new model."""
    latest = tmp_path / "models" / "two-tower" / "LATEST"
    latest.parent.mkdir(parents=True)
    latest.write_text("20261124T161500Z-1a2b3c4d\n")
    loads, clock = [], Clock()

    def load():
        encoder = CountingEncoder()
        encoder.name = f"two-tower-{latest.read_text().strip()}"
        loads.append(encoder.name)
        return encoder

    follow = FollowLatest(load, tmp_path, every_s=10, clock=clock)
    change = StatusChange(video_id="v1", author_id="a1", status="ready", event_time_ms=1)
    first = embed([change], follow, PlainStore(), default_registry())
    assert first[0][2] == "two-tower-20261124T161500Z-1a2b3c4d"

    latest.write_text("20261125T090000Z-5e6f7a8b\n")
    clock.now = 5.0  # not yet time to look
    assert embed([change], follow, PlainStore(), default_registry())[0][2].endswith("1a2b3c4d")
    clock.now = 10.0
    moved = embed([change], follow, PlainStore(), default_registry())
    assert moved[0][2] == "two-tower-20261125T090000Z-5e6f7a8b" == follow.name
    record = default_registry().decode(unsigned(moved[0][7])).record
    assert record["model"] == "two-tower-20261125T090000Z-5e6f7a8b" and record["vector"] == [4.0, 1.0]
    assert loads == ["two-tower-20261124T161500Z-1a2b3c4d", "two-tower-20261125T090000Z-5e6f7a8b"]
