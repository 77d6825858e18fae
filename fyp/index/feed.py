"""The feed: the one thread that writes the index, keeping it consistent with fyp.video-embeddings.v1.

Every replica holds the whole index: the feed *assigns* itself every partition of the topic (no
consumer-group balancing; its group id is per replica, and it commits nothing: offsets live in snapshots).
Start-up: restore the latest snapshot from S3 (index + per-partition offsets), replay the topic from those
offsets to its end, then apply records as they come (`fyp.index.updates` decodes and collapses them).
Snapshots are taken in this thread, between batches, so the index and the offsets agree.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from fyp.index.config import ServiceConfig
from fyp.index.holder import IndexHolder
from fyp.index.scann_index import ScannIndex
from fyp.index.snapshot import OffsetTracker, SnapshotManifest, SnapshotStore, start_offsets
from fyp.index.updates import EmbeddingDecoder, Update, collapse

__all__ = ["FeedStats", "IndexFeed", "KafkaConsumerLike"]

log = logging.getLogger("fyp.index.feed")


class KafkaConsumerLike(Protocol):
    """The confluent_kafka.Consumer calls the feed makes (a fake one drives the unit tests)."""

    def assign(self, partitions: list[Any]) -> None: ...

    def consume(self, num_messages: int, timeout: float) -> list[Any]: ...

    def list_topics(self, topic: str, timeout: float) -> Any: ...

    def get_watermark_offsets(self, partition: Any, timeout: float, cached: bool) -> tuple[int, int]: ...

    def close(self) -> None: ...


@dataclass
class FeedStats:
    """What the feed has done, for /healthz and /v1/stats (durations in seconds, times in epoch ms)."""

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

    def _take_requests(self) -> Iterator[Future[SnapshotManifest]]:
        """The snapshot requests waiting now, each marked running (a cancelled one is dropped)."""
        while True:
            try:
                future = self._requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                yield future

    def _serve_requests(self) -> None:
        for future in self._take_requests():
            try:
                future.set_result(self.snapshot())
            except Exception as exc:
                future.set_exception(exc)

    def _fail_requests(self) -> None:
        for future in self._take_requests():
            future.set_exception(RuntimeError(f"the feed stopped ({self.stats.phase})"))
