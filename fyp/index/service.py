"""The video index service: a ScaNN index kept current from fyp.video-embeddings.v1, behind a small HTTP API.

    GET  /v1/similar/{video_id}?k=10    videos most like this one (itself left out)
    GET  /v1/candidates?user=ID&k=100   candidates merged from every source (fyp/candidates), each with its source;
                                        `&sources=ann`: only the videos nearest the user's embedding (Redis
                                        `fyp:user_embedding:v1:{id}`)
    GET  /healthz                       200 once restored and caught up with the topic, 503 before
    GET  /v1/stats                      index size and shape, consumer offsets and lag, snapshots
    POST /v1/snapshot                   take a snapshot now (waits for it)

Every replica holds the whole index: the feed thread *assigns* itself every partition of the topic (no
consumer-group balancing; its group id is per replica, and it commits nothing: offsets live in snapshots).
Start-up: restore the latest snapshot from S3 (index + per-partition offsets), replay the topic from those
offsets to its end, then apply records as they come. A record with `deleted=true`, or a tombstone (null
value), removes the video. One thread writes; searches and writes take turns on one lock.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse

from fyp.index.ann import Neighbor, ScannIndex, ScannParams, normalize
from fyp.index.snapshot import OffsetTracker, SnapshotManifest, SnapshotStore, start_offsets
from schemas.topics import VIDEO_EMBEDDINGS

__all__ = [
    "DEFAULT_PORT",
    "USER_EMBEDDING_KEY",
    "EmbeddingDecoder",
    "IndexFeed",
    "IndexHolder",
    "RedisUserEmbeddings",
    "ServiceConfig",
    "Update",
    "UserEmbeddings",
    "collapse",
    "create_app",
    "default_port",
    "serve",
]

log = logging.getLogger("fyp.index.service")

DEFAULT_PORT = 8090
USER_EMBEDDING_KEY = "fyp:user_embedding:v1:{user_id}"  # value: dim float32, little-endian, no header


def default_port() -> int:
    """FYP_INDEX_PORT, else 8090 shifted by FYP_PORT_OFFSET (like every port of the local stack)."""
    return int(os.environ.get("FYP_INDEX_PORT", DEFAULT_PORT + int(os.environ.get("FYP_PORT_OFFSET", "0"))))


def _default_replica() -> str:
    return os.environ.get("FYP_INDEX_REPLICA") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """One index service.

    name: the index's name; snapshots live under index-snapshots/{name}/.
    dim: vector dimension (a restored snapshot's dimension wins); records of another width are rejected.
    model: only records of this embedding model (None: any), so a new model's vectors never mix with old.
    replica_id: makes the consumer group id unique per replica.
    snapshot_every_s: seconds between snapshots (0: only on POST /v1/snapshot); keep_snapshots: how many stay.
    restore: start from the latest snapshot (else replay the whole topic).
    """

    name: str = "videos"
    dim: int = 64
    model: str | None = None
    topic: str = VIDEO_EMBEDDINGS.name
    replica_id: str = field(default_factory=_default_replica)
    snapshot_every_s: float = 300.0
    keep_snapshots: int = 3
    restore: bool = True
    max_k: int = 1000
    params: ScannParams = field(default_factory=ScannParams)

    def __post_init__(self) -> None:
        if self.dim < 1 or self.max_k < 1 or self.keep_snapshots < 1 or self.snapshot_every_s < 0:
            raise ValueError("dim, max_k, keep_snapshots must be >= 1 and snapshot_every_s >= 0")

    @property
    def group_id(self) -> str:
        return f"fyp-index-{self.name}-{self.replica_id}"


# -- the index behind a lock --------------------------------------------------------------------------------


class IndexHolder:
    """The live index; `lock` serialises searches and writes (ScaNN is not safe to search while it changes)."""

    def __init__(self, index: ScannIndex) -> None:
        self.index = index
        self.lock = threading.Lock()
        self.searches = 0

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        with self.lock:
            self.searches += 1
            return self.index.search(query, k)

    def similar(self, video_id: str, k: int) -> list[Neighbor] | None:
        """Neighbours of a video already in the index, without itself; None when it is not there."""
        with self.lock:
            vector = self.index.vector(video_id)
            if vector is None:
                return None
            self.searches += 1
            found = self.index.search(vector, k + 1)
        return [n for n in found if n.video_id != video_id][:k]

    def apply(self, upsert_ids: Sequence[str], upsert_vectors: np.ndarray, delete_ids: Sequence[str]) -> None:
        with self.lock:
            if delete_ids:
                self.index.delete(delete_ids)
            if upsert_ids:
                self.index.upsert(upsert_ids, upsert_vectors)

    def swap(self, index: ScannIndex) -> None:
        with self.lock:
            self.index = index


# -- user embeddings -------------------------------------------------------------------------------------------


class UserEmbeddings(Protocol):
    def get(self, user_id: str) -> np.ndarray | None: ...


class RedisUserEmbeddings:
    """User embeddings stored as raw little-endian float32 under `fyp:user_embedding:v1:{user_id}`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, user_id: str) -> np.ndarray | None:
        raw = self._client.get(USER_EMBEDDING_KEY.format(user_id=user_id))
        if raw is None:
            return None
        if len(raw) % 4:
            raise ValueError(f"user embedding of {user_id} is {len(raw)} bytes, not whole float32s")
        return np.frombuffer(raw, dtype="<f4")


# -- records to updates --------------------------------------------------------------------------------------


class Update(NamedTuple):
    """One change to the index: a new vector for a video, or (vector None) its removal."""

    video_id: str
    vector: np.ndarray | None


class EmbeddingDecoder:
    """Kafka (key, value) of fyp.video-embeddings.v1 -> `Update`, or the reason it is skipped."""

    def __init__(self, *, dim: int, model: str | None = None, registry: Any = None) -> None:
        from schemas.registry import default_registry

        self.dim = dim
        self.model = model
        self._registry = registry or default_registry()

    def parse(self, key: bytes | None, value: bytes | None) -> Update | str:
        if value is None:  # tombstone: compaction's way of saying the key is gone
            if not key:
                return "tombstone_without_key"
            return Update(key.decode("utf-8", "replace"), None)
        from schemas.registry import UndecodableEvent

        try:
            event = self._registry.decode(value)
        except UndecodableEvent:
            return "undecodable"
        if event.record_name != "VideoEmbedding":
            return "not_a_video_embedding"
        record = event.record
        if record["deleted"]:
            return Update(record["video_id"], None)
        if self.model is not None and record["model"] != self.model:
            return "other_model"
        try:
            vector = normalize(record["vector"], self.dim)[0]
        except ValueError:
            return "bad_vector"
        return Update(record["video_id"], vector)


class Batch(NamedTuple):
    upsert_ids: list[str]
    upsert_vectors: np.ndarray
    delete_ids: list[str]


def collapse(updates: Sequence[Update], dim: int) -> Batch:
    """The net effect of updates in order: per video only the last one counts.

    >>> v = np.ones(2, np.float32)
    >>> b = collapse([Update("a", v), Update("b", v), Update("a", None), Update("c", None), Update("c", v)], 2)
    >>> b.upsert_ids, b.delete_ids
    (['b', 'c'], ['a'])
    """
    last: dict[str, np.ndarray | None] = {}
    for update in updates:
        last.pop(update.video_id, None)  # re-insert, so the order is that of the last update
        last[update.video_id] = update.vector
    upserts = [(video_id, v) for video_id, v in last.items() if v is not None]
    vectors = np.stack([v for _, v in upserts]) if upserts else np.zeros((0, dim), np.float32)
    return Batch([video_id for video_id, _ in upserts], vectors, [vid for vid, v in last.items() if v is None])


# -- the feed: restore, replay, follow -----------------------------------------------------------------------


class KafkaConsumerLike(Protocol):
    """The confluent_kafka.Consumer calls the feed makes (a fake one drives the unit tests)."""

    def assign(self, partitions: list[Any]) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...

    def list_topics(self, topic: str, timeout: float) -> Any: ...

    def get_watermark_offsets(self, partition: Any, timeout: float, cached: bool) -> tuple[int, int]: ...

    def close(self) -> None: ...


@dataclass
class FeedStats:
    phase: str = "starting"  # starting, restoring, replaying, live, stopped, failed
    error: str | None = None
    restored_from: str | None = None
    restored_size: int = 0
    replayed: int = 0
    replay_s: float | None = None
    records: int = 0
    upserts: int = 0
    deletes: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    last_applied_at_ms: int | None = None
    lag: dict[int, int] = field(default_factory=dict)
    rebuilds: int = 0
    last_rebuild_s: float | None = None
    snapshots: int = 0
    last_snapshot: str | None = None
    last_snapshot_s: float | None = None
    last_snapshot_at_ms: int | None = None


class IndexFeed(threading.Thread):
    """The one writer: restores, replays and then follows the embeddings topic into `holder`."""

    def __init__(
        self,
        holder: IndexHolder,
        config: ServiceConfig,
        *,
        consumer_factory: Callable[[], KafkaConsumerLike],
        snapshots: SnapshotStore | None = None,
        decoder: EmbeddingDecoder | None = None,
        batch_size: int = 1000,
        poll_s: float = 0.1,
    ) -> None:
        super().__init__(name=f"index-feed-{config.name}", daemon=True)
        self.holder = holder
        self.config = config
        self.snapshots = snapshots
        self.decoder = decoder or EmbeddingDecoder(dim=config.dim, model=config.model)
        self.offsets = OffsetTracker()
        self.stats = FeedStats()
        self.ready = threading.Event()
        self._factory = consumer_factory
        self._batch_size = batch_size
        self._poll_s = poll_s
        self._stopping = threading.Event()
        self._requests: queue.Queue[Future[SnapshotManifest]] = queue.Queue()
        self._partitions: list[int] = []

    # -- control, from other threads

    def stop(self) -> None:
        self._stopping.set()

    def request_snapshot(self, timeout_s: float = 120.0) -> SnapshotManifest:
        """Ask the feed thread for a snapshot at its next batch boundary and wait for it."""
        if self.snapshots is None:
            raise RuntimeError("snapshots are not configured for this service")
        if not self.is_alive():
            raise RuntimeError(f"the feed is not running (phase {self.stats.phase})")
        future: Future[SnapshotManifest] = Future()
        self._requests.put(future)
        return future.result(timeout=timeout_s)

    # -- the thread

    def run(self) -> None:
        consumer = None
        try:
            self._restore()
            consumer = self._factory()
            self._assign(consumer)
            self._replay(consumer)
            self.stats.phase = "live"
            self.ready.set()
            last_snapshot = last_lag = time.monotonic()
            while not self._stopping.is_set():
                messages = consumer.consume(self._batch_size, self._poll_s)
                if messages:
                    self._apply(self._updates(messages))
                self._maybe_rebuild()
                now = time.monotonic()
                if now - last_lag >= 1.0:
                    self._update_lag(consumer)
                    last_lag = now
                every = self.config.snapshot_every_s
                if self.snapshots is not None and every > 0 and now - last_snapshot >= every:
                    self._snapshot_safely()
                    last_snapshot = time.monotonic()
                self._serve_requests()
            self.stats.phase = "stopped"
        except Exception as exc:
            log.exception("index feed failed")
            self.stats.phase, self.stats.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._fail_requests()
            if consumer is not None:
                consumer.close()

    def _restore(self) -> None:
        if self.snapshots is None or not self.config.restore:
            return
        self.stats.phase = "restoring"
        manifest = self.snapshots.latest()
        if manifest is None:
            log.info("no snapshot of index %s yet: replaying the whole topic", self.config.name)
            return
        if manifest.topic != self.config.topic:
            raise ValueError(f"snapshot {manifest.prefix} is of topic {manifest.topic}, not {self.config.topic}")
        started = time.monotonic()
        with self.snapshots.fetched(manifest) as directory:
            index = ScannIndex.load(directory)
        self.holder.swap(index)
        self.offsets = OffsetTracker(manifest.offsets)
        if index.dim != self.decoder.dim:
            log.warning(
                "snapshot has dimension %d, not the configured %d: using %d", index.dim, self.decoder.dim, index.dim
            )
            self.decoder.dim = index.dim
        self.stats.restored_from, self.stats.restored_size = manifest.prefix, len(index)
        log.info("restored %s (%d vectors) in %.1f s", manifest.prefix, len(index), time.monotonic() - started)

    def _assign(self, consumer: KafkaConsumerLike) -> None:
        from confluent_kafka import TopicPartition

        metadata = consumer.list_topics(self.config.topic, timeout=30)
        topic = metadata.topics.get(self.config.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise RuntimeError(f"topic {self.config.topic} is missing ({getattr(topic, 'error', None)})")
        self._partitions = sorted(topic.partitions)
        starts = start_offsets(self.offsets.next_offsets(), self._partitions)
        consumer.assign([TopicPartition(self.config.topic, p, o) for p, o in starts.items()])

    def _replay(self, consumer: KafkaConsumerLike) -> None:
        """Read every partition to its current end, then apply the net effect in one go."""
        from confluent_kafka import KafkaError, TopicPartition

        self.stats.phase = "replaying"
        started = time.monotonic()
        pending: dict[int, int] = {}  # partition -> high watermark still to reach
        for p in self._partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(self.config.topic, p), timeout=30, cached=False)
            if high > max(low, self.offsets.next_offsets().get(p, 0)):
                pending[p] = high
        updates: list[Update] = []
        while pending and not self._stopping.is_set():
            for message in consumer.consume(self._batch_size, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.pop(message.partition(), None)
                    elif error.fatal():
                        raise RuntimeError(f"Kafka error while replaying: {error}")
                    else:
                        log.warning("Kafka error while replaying (librdkafka retries): %s", error)
                    continue
                updates.extend(self._updates([message]))
                if message.offset() + 1 >= pending.get(message.partition(), 0):
                    pending.pop(message.partition(), None)
        self.stats.replayed = len(updates)
        if len(self.holder.index) == 0 and self.stats.restored_from is None:
            batch = collapse(updates, self.decoder.dim)
            if batch.upsert_ids:  # a cold start: train once on everything rather than grow a brute-force index
                built = ScannIndex.build(batch.upsert_ids, batch.upsert_vectors, params=self.config.params)
                self.holder.swap(built)
                self.stats.upserts += len(batch.upsert_ids)
        else:
            self._apply(updates)
        self._maybe_rebuild()
        self.stats.replay_s = round(time.monotonic() - started, 3)
        log.info(
            "replayed %d records in %.1f s; index holds %d", len(updates), self.stats.replay_s, len(self.holder.index)
        )

    def _updates(self, messages: Sequence[Any]) -> list[Update]:
        """Decode messages (advancing the offsets past each one, kept or not); skip and count the bad ones."""
        from confluent_kafka import KafkaError

        out = []
        for message in messages:
            error = message.error()
            if error is not None:  # partition EOF while live, and errors librdkafka retries itself
                if error.fatal():
                    raise RuntimeError(f"fatal Kafka error: {error}")
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("Kafka error (librdkafka retries): %s", error)
                continue
            self.offsets.advance(message.partition(), message.offset())
            self.stats.records += 1
            parsed = self.decoder.parse(message.key(), message.value())
            if isinstance(parsed, str):
                self.stats.rejected[parsed] = self.stats.rejected.get(parsed, 0) + 1
            else:
                out.append(parsed)
        return out

    def _apply(self, updates: Sequence[Update]) -> None:
        if not updates:
            return
        batch = collapse(updates, self.decoder.dim)
        self.holder.apply(batch.upsert_ids, batch.upsert_vectors, batch.delete_ids)
        self.stats.upserts += len(batch.upsert_ids)
        self.stats.deletes += len(batch.delete_ids)
        self.stats.last_applied_at_ms = int(time.time() * 1000)

    def _maybe_rebuild(self) -> None:
        """Retrain off to the side when the index outgrew its tree; searches go on against the old one."""
        index = self.holder.index
        if not index.needs_rebuild():
            return
        started = time.monotonic()
        self.holder.swap(index.rebuilt())
        self.stats.rebuilds += 1
        self.stats.last_rebuild_s = round(time.monotonic() - started, 3)
        log.info("retrained the index at %d vectors in %.1f s", len(index), self.stats.last_rebuild_s)

    def _update_lag(self, consumer: KafkaConsumerLike) -> None:
        from confluent_kafka import TopicPartition

        positions = self.offsets.next_offsets()
        lag = {}
        for p in self._partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self.config.topic, p), timeout=1, cached=True)
            lag[p] = max(0, high - positions.get(p, 0)) if high >= 0 else -1
        self.stats.lag = lag

    def snapshot(self) -> SnapshotManifest:
        """Save the index and the offsets it contains (call from the feed thread, or before it starts)."""
        import tempfile
        from pathlib import Path

        assert self.snapshots is not None
        started = time.monotonic()
        index = self.holder.index  # this thread is the only writer: nothing changes while we save
        offsets = self.offsets.next_offsets()
        with tempfile.TemporaryDirectory(prefix="fyp-index-save-") as tmp:
            index.save(Path(tmp))
            manifest = self.snapshots.save_directory(
                Path(tmp), topic=self.config.topic, offsets=offsets, kind=index.kind, dim=index.dim, size=len(index)
            )
        self.snapshots.prune(self.config.keep_snapshots)
        self.stats.snapshots += 1
        self.stats.last_snapshot = manifest.prefix
        self.stats.last_snapshot_s = round(time.monotonic() - started, 3)
        self.stats.last_snapshot_at_ms = manifest.taken_at_ms
        log.info("snapshot %s: %d vectors in %.1f s", manifest.prefix, len(index), self.stats.last_snapshot_s)
        return manifest

    def _snapshot_safely(self) -> None:
        try:
            self.snapshot()
        except Exception:  # a failed snapshot must not stop the index from following the topic
            log.exception("snapshot failed")

    def _serve_requests(self) -> None:
        while True:
            try:
                future = self._requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self.snapshot())
                except Exception as exc:
                    future.set_exception(exc)

    def _fail_requests(self) -> None:
        while True:
            try:
                future = self._requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError(f"the feed stopped ({self.stats.phase})"))


# -- HTTP ----------------------------------------------------------------------------------------------------


def _results(found: Sequence[Neighbor]) -> list[dict[str, Any]]:
    return [{"video_id": n.video_id, "score": round(n.score, 6)} for n in found]


def create_app(
    holder: IndexHolder,
    *,
    users: UserEmbeddings | None = None,
    feed: IndexFeed | None = None,
    max_k: int = 1000,
    generator: Any = None,
) -> FastAPI:
    """The HTTP API over `holder`; the feed (if any) runs for the app's lifetime.

    generator: a `fyp.candidates.CandidateGenerator`; without one, /v1/candidates serves ANN only.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if feed is not None:
            feed.start()
        try:
            yield
        finally:
            if feed is not None:
                feed.stop()
                feed.join(timeout=30)

    app = FastAPI(title="fyp video index", lifespan=lifespan)

    def ensure_ready() -> None:
        if feed is not None and not feed.ready.is_set():
            raise HTTPException(503, f"the index is not ready yet (phase {feed.stats.phase})")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        phase = feed.stats.phase if feed is not None else "live"
        ok = phase == "live"
        body = {"status": "ok" if ok else phase, "size": len(holder.index)}
        if feed is not None and feed.stats.error:
            body["error"] = feed.stats.error
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/similar/{video_id:path}")  # ids may contain '/'; clients percent-encode them
    def similar(video_id: str, k: int = Query(10, ge=1, le=max_k)) -> dict[str, Any]:
        ensure_ready()
        started = time.perf_counter()
        found = holder.similar(video_id, k)
        if found is None:
            raise HTTPException(404, f"video {video_id!r} is not in the index")
        took = (time.perf_counter() - started) * 1000
        return {"video_id": video_id, "k": k, "results": _results(found), "took_ms": round(took, 3)}

    def user_embedding(user: str) -> np.ndarray:
        """The user's embedding, checked; HTTPException 404 (absent) or 500 (unusable) otherwise."""
        if users is None:
            raise HTTPException(503, "no user embedding store is configured")
        try:
            embedding = users.get(user)
        except ValueError as exc:
            raise HTTPException(500, str(exc)) from exc
        if embedding is None:
            key = USER_EMBEDDING_KEY.format(user_id=user)
            raise HTTPException(404, f"no embedding for user {user!r} (Redis key {key} is absent)")
        dim = holder.index.dim
        if embedding.shape != (dim,):
            raise HTTPException(500, f"the embedding of user {user!r} has {embedding.size} floats; the index has {dim}")
        return embedding

    def nearest(user: str, k: int) -> list[Neighbor]:
        embedding = user_embedding(user)
        try:
            return holder.search(embedding, k)
        except ValueError as exc:  # NaN or all-zero embedding
            raise HTTPException(500, f"the embedding of user {user!r} is unusable: {exc}") from exc

    @app.get("/v1/candidates")
    def candidates(
        user: str = Query(..., min_length=1),
        k: int = Query(100, ge=1, le=max_k),
        sources: str = Query("all", pattern="^(all|ann)$"),
    ) -> dict[str, Any]:
        ensure_ready()
        started = time.perf_counter()
        if generator is None or sources == "ann":
            found = nearest(user, k)
            took = (time.perf_counter() - started) * 1000
            return {"user": user, "k": k, "results": _results(found), "took_ms": round(took, 3)}
        from fyp.candidates.merge import Candidate

        def ann(n: int) -> list[Candidate]:
            try:
                return [Candidate(c.video_id, "ann", round(c.score, 6)) for c in nearest(user, min(n, max_k))]
            except HTTPException as exc:  # the other sources still answer
                raise LookupError(exc.detail) from exc

        generated = generator.generate(user, k, ann)
        took = (time.perf_counter() - started) * 1000
        return {"user": user, "k": k, **generated.as_json(), "took_ms": round(took, 3)}

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:
        with holder.lock:
            index_stats = holder.index.stats()
        body: dict[str, Any] = {"index": index_stats, "searches": holder.searches}
        if feed is not None:
            body["feed"] = {
                **asdict(feed.stats),
                "topic": feed.config.topic,
                "group_id": feed.config.group_id,
                "offsets": feed.offsets.next_offsets(),
            }
        return body

    @app.post("/v1/snapshot")
    def snapshot() -> dict[str, Any]:
        if feed is None or feed.snapshots is None:
            raise HTTPException(409, "snapshots are not configured for this service")
        try:
            manifest = feed.request_snapshot()
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from exc
        except TimeoutError as exc:
            raise HTTPException(504, "the snapshot did not finish in time; see /v1/stats") from exc
        return {"prefix": manifest.prefix, "size": manifest.size, "offsets": manifest.offsets}

    return app


def build_app(settings: Any, config: ServiceConfig, *, bucket: str | None = None) -> FastAPI:
    """The service wired to the stack of `settings` (Kafka, Redis, S3)."""
    from confluent_kafka import Consumer

    from fyp.index.snapshot import S3ObjectStore
    from fyp.media.publish import make_s3_client

    def consumer_factory() -> Consumer:
        return Consumer(
            {
                **settings.kafka_client_config(),
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "client.id": f"fyp-index-{config.replica_id}",
            }
        )

    store = S3ObjectStore(make_s3_client(settings), bucket or settings.media_bucket)
    holder = IndexHolder(ScannIndex(dim=config.dim, params=config.params))
    feed = IndexFeed(holder, config, consumer_factory=consumer_factory, snapshots=SnapshotStore(store, config.name))
    from fyp.candidates import CandidateGenerator, RedisSources

    client = settings.redis_client()
    users = RedisUserEmbeddings(client)
    generator = CandidateGenerator(RedisSources(client), max_fetch=config.max_k)
    return create_app(holder, users=users, feed=feed, max_k=config.max_k, generator=generator)


def serve(settings: Any, config: ServiceConfig, *, host: str, port: int, bucket: str | None = None) -> None:
    """Run the service until interrupted (one process: the index lives in its memory)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(build_app(settings, config, bucket=bucket), host=host, port=port, log_level="info")
