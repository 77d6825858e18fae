"""A retrain's swap on the real stack: the index service (real HTTP, Kafka feed, S3 snapshots, Redis user
embeddings) serves model A; `fyp.index.reembed` re-embeds the catalogue (video hashes in Redis) with model B
and swaps the running service to it while queries run in a loop. No query fails; before the swap A's vectors and
user embeddings are accepted and B's refused, after it the other way round."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import uvicorn
from confluent_kafka import Producer

from fyp.index.config import ServiceConfig
from fyp.index.reembed import reembed
from fyp.index.service import build_app
from fyp.index.snapshot import S3ObjectStore, SnapshotStore
from fyp.index.users import SERVED_MODEL_KEY, USER_EMBEDDING_KEY, encode_user_embedding
from fyp.media.publish import make_s3_client
from schemas.registry import default_registry
from schemas.topics import VIDEO_EMBEDDINGS
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

DIM = 64
VIDEOS = 2500  # past ScaNN's brute-force size (2000): the swapped-in index is a trained tree


def vector(model: str, video_id: str) -> np.ndarray:
    """A fixed vector per (model, video): the two models put the same video in different places."""
    seed = int.from_bytes(hashlib.sha256(f"{model}:{video_id}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


class PlainEncoder:
    """An item encoder (`name`, `encode`) for model `name`; counts the videos it was given."""

    def __init__(self, name: str) -> None:
        self.name, self.encoded = name, 0

    def encode(self, videos) -> np.ndarray:
        self.encoded += len(videos)
        return np.stack([vector(self.name, v.video_id) for v in videos])


@contextmanager
def http_service(settings, config: ServiceConfig) -> Iterator[str]:
    """The service on a real port, in a thread (uvicorn, as `fyp serve index` runs it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(settings, config), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _ok(f"{url}/healthz"), timeout_s=120, message="index service ready")
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class QueryLoop:
    """Threads that query the service without pause; every answer is kept with its time and latency."""

    def __init__(self, url: str, requests: dict[str, tuple[str, dict]]) -> None:
        self.url, self.requests = url, requests
        self.answers: list[tuple[float, str, int, float]] = []  # (time, request name, status or -1, seconds)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(name,), daemon=True) for name in requests]

    def _run(self, name: str) -> None:
        path, params = self.requests[name]
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = http.get(path, params=params).status_code
                except httpx.HTTPError:
                    status = -1
                self.answers.append((started, name, status, time.monotonic() - started))

    def __enter__(self) -> QueryLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter[tuple[str, int]]:
        return Counter((name, status) for t, name, status, _ in self.answers if since <= t < until)


@pytest.fixture
def world(settings, redis_client) -> Iterator[dict]:
    """VIDEOS ready video hashes (the catalogue), two users, the producer; all removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"it-swap-{tag}-{i}" for i in range(VIDEOS)]
    pipe = redis_client.pipeline(transaction=False)
    for video_id in ids:
        pipe.hset(f"fyp:video:v1:{video_id}", mapping={
            "video_id": video_id, "status": "ready", "author_id": f"a-{tag}", "hashtags": '["swap"]', "seq": "1"})
    pipe.execute()
    producer = Producer(settings.kafka_producer_config())
    name = f"it-swap-{tag}"
    users = {"a": f"u-it-swap-a-{tag}", "b": f"u-it-swap-b-{tag}"}
    yield {"tag": tag, "ids": ids, "producer": producer, "name": name, "users": users,
           "models": {"a": f"it-model-a-{tag}", "b": f"it-model-b-{tag}"}}
    for video_id in [*ids, f"it-swap-{tag}-late-a", f"it-swap-{tag}-late-b", f"it-swap-{tag}-new-a"]:
        producer.produce(VIDEO_EMBEDDINGS.name, key=video_id.encode(), value=None)  # leave the topic as found
    producer.flush(60)
    redis_client.delete(*(f"fyp:video:v1:{v}" for v in ids), *(USER_EMBEDDING_KEY.format(user_id=u)
                        for u in users.values()), SERVED_MODEL_KEY.format(name=name))
    snapshots = SnapshotStore(S3ObjectStore(make_s3_client(settings), settings.media_bucket), name)
    for prefix in snapshots.snapshots():
        snapshots.store.delete(list(snapshots.store.list_keys(prefix)))
    snapshots.store.delete([f"index-snapshots/{name}/_latest"])


def send(producer: Producer, model: str, video_id: str) -> None:
    record = {"event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": video_id,
              "author_id": "a-it", "model": model, "vector": vector(model, video_id).astype(float).tolist(),
              "deleted": False}
    producer.produce(VIDEO_EMBEDDINGS.name, key=video_id.encode(),
                     value=default_registry().encode("VideoEmbedding", record))


def present(url: str, video_id: str) -> bool:
    return httpx.get(f"{url}/v1/similar/{video_id}", params={"k": 1}, timeout=10).status_code == 200


def test_reembed_swaps_the_model_while_queries_run_and_refuses_the_old_one(settings, redis_client, world):
    a, b = world["models"]["a"], world["models"]["b"]
    producer, ids, tag = world["producer"], world["ids"], world["tag"]
    for video_id in ids:  # what the embedding job wrote with model A
        send(producer, a, video_id)
    assert producer.flush(60) == 0
    for key, model in (("a", a), ("b", b)):  # each user near their model's vector of the first video
        redis_client.set(USER_EMBEDDING_KEY.format(user_id=world["users"][key]),
                         encode_user_embedding(model, vector(model, ids[0])), ex=600)
    ann = {key: ("/v1/candidates", {"user": user, "k": 10, "sources": "ann"}) for key, user in world["users"].items()}
    config = ServiceConfig(name=world["name"], dim=DIM, model=a, replica_id=tag, snapshot_every_s=0)

    with http_service(settings, config) as url:
        assert httpx.get(f"{url}/v1/model").json()["model"] == a
        assert redis_client.get(SERVED_MODEL_KEY.format(name=world["name"])) == a.encode()
        # Before the swap: A's vectors are accepted, B's refused; A's user embeddings answered, B's refused.
        send(producer, a, f"it-swap-{tag}-late-a")
        send(producer, b, f"it-swap-{tag}-late-b")
        producer.flush(30)
        eventually(lambda: present(url, f"it-swap-{tag}-late-a"), timeout_s=10, interval_s=0.05,
                   message="an A vector searchable before the swap")
        assert not present(url, f"it-swap-{tag}-late-b")
        assert httpx.get(f"{url}{ann['a'][0]}", params=ann["a"][1]).status_code == 200
        refused = httpx.get(f"{url}{ann['b'][0]}", params=ann["b"][1])
        assert refused.status_code == 409 and f"serves '{a}'" in refused.json()["detail"]

        requests = {"similar": (f"/v1/similar/{ids[1]}", {"k": 10}), "ann_a": ann["a"], "ann_b": ann["b"],
                    "health": ("/healthz", {})}
        with QueryLoop(url, requests) as loop:
            time.sleep(1.0)
            started = time.monotonic()
            report = reembed(settings, PlainEncoder(b), [url], batch=500, videos=f"it-swap-{tag}-*")
            finished = time.monotonic()
            time.sleep(1.0)
        swap = report.swaps[url]
        during = sorted(s * 1000 for t, *_, s in loop.answers if started <= t < finished)
        print(f"\nre-embedded {report.videos} videos in {report.total_s:.2f} s (encode {report.encode_s:.2f} s, "
              f"produce {report.produce_s:.2f} s); swap: built {swap['size']} vectors in {swap['build_s']:.2f} s, "
              f"lock held {swap['swap_ms']:.3f} ms; {len(during)} queries during the re-embed and swap (of "
              f"{len(loop.answers)}): p50 {during[len(during) // 2]:.1f} ms, p99 {during[len(during) * 99 // 100]:.1f}"
              f" ms, max {during[-1]:.1f} ms (the service shares this process and its GIL with the re-embedding)")

        # No query failed: every answer is one the model in service at that moment gives.
        statuses = loop.statuses()
        assert all(status in (200, 409) for _, status in statuses), statuses  # no 5xx, 503 or timeout
        assert all(status == 200 for name, status in statuses if name in ("similar", "health")), statuses
        assert statuses[("similar", 200)] > 0 and statuses[("health", 200)] > 0
        assert swap["swap_ms"] < 100  # the lock is held for two assignments; the build ran beside the searches
        before, after = loop.statuses(until=started), loop.statuses(since=finished)
        assert before[("ann_a", 200)] > 0 and before[("ann_b", 409)] > 0
        assert before[("ann_a", 409)] == 0 and before[("ann_b", 200)] == 0
        assert after[("ann_a", 409)] > 0 and after[("ann_b", 200)] > 0
        assert after[("ann_a", 200)] == 0 and after[("ann_b", 409)] == 0

        # After the swap: the catalogue in model B (the late A-only video is gone: it has no hash), B accepted.
        assert report.videos == VIDEOS and swap["model"] == b and swap["previous"] == a
        assert swap["size"] == VIDEOS and swap["previous_size"] == VIDEOS + 1 and swap["snapshot"]
        assert httpx.get(f"{url}/v1/model").json()["model"] == b
        assert redis_client.get(SERVED_MODEL_KEY.format(name=world["name"])) == b.encode()
        nearest = httpx.get(f"{url}{ann['b'][0]}", params=ann["b"][1]).json()["results"]
        assert nearest[0]["video_id"] == ids[0]  # B's user is nearest B's vector of the first video
        send(producer, a, f"it-swap-{tag}-new-a")
        send(producer, b, f"it-swap-{tag}-late-b")
        producer.flush(30)
        eventually(lambda: present(url, f"it-swap-{tag}-late-b"), timeout_s=10, interval_s=0.05,
                   message="a B vector searchable after the swap")
        assert not present(url, f"it-swap-{tag}-new-a") and not present(url, f"it-swap-{tag}-late-a")
        stats = httpx.get(f"{url}/v1/stats").json()
        assert stats["feed"]["refused_vectors"]["other_model"][a] >= 1
        assert stats["refused_queries"]["other_model"][a] > 0 and stats["refused_queries"]["other_model"][b] > 0

    # A restart restores the snapshot taken at the swap: it serves B, with no model configured.
    restarted = ServiceConfig(name=world["name"], dim=DIM, model=None, replica_id=tag + "r", snapshot_every_s=0)
    with http_service(settings, restarted) as url:
        assert httpx.get(f"{url}/v1/model").json()["model"] == b
        assert present(url, f"it-swap-{tag}-late-b") and present(url, ids[0])
