"""The feed: the one thread that writes the index, keeping it consistent with fyp.video-embeddings.v1.

Every replica holds the whole index: the feed *assigns* itself every partition of the topic (no
consumer-group balancing; its group id is per replica, and it commits nothing: offsets live in snapshots).
Start-up: restore the latest snapshot from S3 (index + per-partition offsets), replay the topic from those
offsets to its end, then apply records as they come (`fyp.index.updates` decodes and collapses them).
Snapshots are taken in this thread, between batches, so the index and the offsets agree.

The index serves one embedding model (`IndexHolder.model`): the configured one, else the restored snapshot's,
else the newest trained one. Records of other models are refused and counted. Moving to another model
(`fyp index reembed`): `stage(model)` keeps that model's vectors aside as they arrive; `swap_to(model,
after_offsets)` waits until the feed has read past the re-embedded records, builds an index of the staged
vectors off to the side (searches go on against the live one), and swaps index and model in one step under the
holder's lock; from then on the old model's vectors and queries are refused. Both run in this thread, between
batches, like snapshots.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from fyp.index.config import ServiceConfig
from fyp.index.holder import IndexHolder, RefusalLog
from fyp.index.scann_index import ScannIndex
from fyp.index.snapshot import OffsetTracker, SnapshotManifest, SnapshotStore, start_offsets
from fyp.index.updates import EmbeddingDecoder, Update, collapse

__all__ = ["FeedStats", "IndexFeed", "KafkaConsumerLike", "SwapReport"]

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
    model: str | None = None
    staging_model: str | None = None
    staged: int = 0
    swaps: int = 0
    last_swap: dict[str, Any] | None = None


@dataclass(frozen=True)
class SwapReport:
    """What one model swap did: sizes, the build time off to the side, the time the lock was held, the snapshot
    taken right after (None when snapshots are off; `snapshot_error` when it failed)."""

    model: str
    previous: str | None
    size: int
    previous_size: int
    build_s: float
    swap_ms: float
    snapshot: str | None = None
    snapshot_error: str | None = None


class _NotYet(Exception):
    """A request that waits for the feed to read further (a swap before its records arrived)."""


class IndexFeed(threading.Thread):
    """The one writer: restores, replays and then follows the embeddings topic into `holder`.

    default_model: the model to serve when neither the config nor a restored snapshot names one (the service
    passes `fyp.embeddings.store.current_model_name`). on_model: called with the served model once it is
    known and after each swap (the service publishes it in Redis for `fyp worker user-embeddings`).
    """

    def __init__(
        self,
        holder: IndexHolder,
        config: ServiceConfig,
        *,
        consumer_factory: Callable[[], KafkaConsumerLike],
        snapshots: SnapshotStore | None = None,
        decoder: EmbeddingDecoder | None = None,
        default_model: Callable[[], str] | None = None,
        on_model: Callable[[str], None] | None = None,
        batch_size: int = 1000,
        poll_s: float = 0.1,
    ) -> None:
        super().__init__(name=f"index-feed-{config.name}", daemon=True)
        self.holder = holder
        self.config = config
        self.snapshots = snapshots
        self.decoder = decoder or EmbeddingDecoder(dim=config.dim, model=None)
        self.offsets = OffsetTracker()
        self.stats = FeedStats()
        self.ready = threading.Event()
        self.refused = RefusalLog("vector")
        self._factory = consumer_factory
        self._default_model = default_model
        self._on_model = on_model
        self._batch_size = batch_size
        self._poll_s = poll_s
        self._stopping = threading.Event()
        self._requests: queue.Queue[tuple[Future[Any], Callable[[], Any]]] = queue.Queue()
        self._waiting: list[tuple[Future[Any], Callable[[], Any]]] = []
        self._staged: dict[str, np.ndarray] = {}
        self._partitions: list[int] = []

    # -- control, from other threads

    def stop(self) -> None:
        self._stopping.set()

    def _ask(self, work: Callable[[], Any], timeout_s: float) -> Any:
        """Run `work` in the feed thread at its next batch boundary and wait for its result."""
        if not self.is_alive():
            raise RuntimeError(f"the feed is not running (phase {self.stats.phase})")
        future: Future[Any] = Future()
        self._requests.put((future, work))
        return future.result(timeout=timeout_s)

    def request_snapshot(self, timeout_s: float = 120.0) -> SnapshotManifest:
        """Ask the feed thread for a snapshot at its next batch boundary and wait for it."""
        if self.snapshots is None:
            raise RuntimeError("snapshots are not configured for this service")
        return self._ask(self.snapshot, timeout_s)

    def stage(self, model: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Keep the vectors of `model` aside from now on (dropping any earlier staging), for `swap_to`."""
        return self._ask(lambda: self._stage(model), timeout_s)

    def swap_to(self, model: str, after_offsets: dict[int, int] | None = None, timeout_s: float = 300.0,
                ) -> SwapReport:
        """Once the feed has read every partition up to `after_offsets` (next offsets, as a producer's
        delivery reports give them), replace the live index by one of the staged vectors of `model`."""
        deadline = time.monotonic() + timeout_s
        return self._ask(lambda: self._swap(model, dict(after_offsets or {}), deadline), timeout_s + 5)

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

    def _resolve_model(self, manifest: SnapshotManifest | None) -> str:
        """The configured model, else the snapshot's, else the default; a snapshot of another model is refused."""
        configured = self.config.model
        if manifest is not None:
            if manifest.model is None:
                raise ValueError(f"snapshot {manifest.prefix} does not name the model of its vectors (it predates "
                                 "model tags): start with --no-restore to rebuild the index from the topic")
            if configured is not None and manifest.model != configured:
                raise ValueError(f"snapshot {manifest.prefix} holds vectors of model {manifest.model}, not "
                                 f"{configured}: start with --model {manifest.model} (or without --model), or "
                                 "with --no-restore to rebuild from the topic")
            return manifest.model
        if configured is not None:
            return configured
        if self._default_model is None:
            raise ValueError("no model to serve: configure one (fyp serve index --model M)")
        return self._default_model()

    def _serve_model(self, model: str) -> None:
        self.holder.swap(self.holder.index, model=model)
        self.decoder.model = model
        self.stats.model = model
        if self._on_model is not None:
            try:
                self._on_model(model)
            except Exception:  # publishing the model is advice to the user-embedding worker, never a failure
                log.exception("could not publish the served model %s", model)

    def _restore(self) -> None:
        manifest = None
        if self.snapshots is not None and self.config.restore:
            self.stats.phase = "restoring"
            manifest = self.snapshots.latest()
            if manifest is None:
                log.info("no snapshot of index %s yet: replaying the whole topic", self.config.name)
            elif manifest.topic != self.config.topic:
                raise ValueError(f"snapshot {manifest.prefix} is of topic {manifest.topic}, not {self.config.topic}")
        model = self._resolve_model(manifest)
        log.info("index %s serves model %s", self.config.name, model)
        if manifest is None:
            self._serve_model(model)
            return
        started = time.monotonic()
        with self.snapshots.fetched(manifest) as directory:  # type: ignore[union-attr]
            index = ScannIndex.load(directory)
        self.holder.swap(index)
        self._serve_model(model)
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
            batch = collapse(updates, self.decoder.dim)  # nothing is staged yet: every update is the live model's
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
                if parsed == "other_model":
                    self.refused.count(parsed, self.decoder.last_model, f"this index serves {self.decoder.model!r}")
            else:
                out.append(parsed)
        return out

    def _apply(self, updates: Sequence[Update]) -> None:
        """Live-model vectors and every removal to the index; staged vectors and every removal to the staging."""
        live = [u for u in updates if not u.staged]
        if self.stats.staging_model is not None:
            for update in updates:
                if update.vector is None:
                    self._staged.pop(update.video_id, None)
                elif update.staged:
                    self._staged[update.video_id] = update.vector
            self.stats.staged = len(self._staged)
        if not live:
            return
        batch = collapse(live, self.decoder.dim)
        self.holder.apply(batch.upsert_ids, batch.upsert_vectors, batch.delete_ids)
        self.stats.upserts += len(batch.upsert_ids)
        self.stats.deletes += len(batch.delete_ids)
        self.stats.last_applied_at_ms = int(time.time() * 1000)

    def _stage(self, model: str) -> dict[str, Any]:
        if model == self.holder.model:
            raise ValueError(f"the index already serves model {model}")
        if self.stats.staging_model is not None:
            log.info("staging of model %s replaced by %s", self.stats.staging_model, model)
        self._staged = {}
        self.decoder.staging = self.stats.staging_model = model
        self.stats.staged = 0
        log.info("staging the vectors of model %s (serving %s)", model, self.holder.model)
        return {"model": model, "serving": self.holder.model, "offsets": self.offsets.next_offsets()}

    def _swap(self, model: str, after: dict[int, int], deadline: float) -> SwapReport:
        if self.stats.staging_model != model:
            raise ValueError(f"model {model} is not being staged (staging: {self.stats.staging_model})")
        read = self.offsets.next_offsets()
        behind = {p: o for p, o in after.items() if read.get(p, 0) < o}
        if behind:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the feed has not read up to {behind} (read: {read})")
            raise _NotYet
        if not self._staged:
            raise ValueError(f"no vectors of model {model} are staged: nothing to swap to")
        started = time.monotonic()
        ids = list(self._staged)
        built = ScannIndex.build(ids, np.stack([self._staged[v] for v in ids]), params=self.config.params)
        build_s = time.monotonic() - started
        previous, previous_size = self.holder.model, len(self.holder.index)
        swap_started = time.perf_counter()
        self.holder.swap(built, model=model)
        swap_ms = (time.perf_counter() - swap_started) * 1000
        self._staged = {}
        self.decoder.staging = self.stats.staging_model = None
        self.stats.staged = 0
        self._serve_model(model)
        report = SwapReport(model=model, previous=previous, size=len(built), previous_size=previous_size,
                            build_s=round(build_s, 3), swap_ms=round(swap_ms, 3))
        log.info("swapped model %s (%d vectors) for %s (%d): built in %.2f s, lock held %.3f ms",
                 model, len(built), previous, previous_size, build_s, swap_ms)
        if self.snapshots is not None:  # a restart must not restore the old model's index
            try:
                report = replace(report, snapshot=self.snapshot().prefix)
            except Exception as exc:
                log.exception("snapshot after the swap failed")
                report = replace(report, snapshot_error=f"{type(exc).__name__}: {exc}")
        self.stats.swaps += 1
        self.stats.last_swap = asdict(report)
        return report

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

        if self.snapshots is None:
            raise RuntimeError("snapshots are not configured for this service")
        started = time.monotonic()
        index = self.holder.index  # this thread is the only writer: nothing changes while we save
        offsets = self.offsets.next_offsets()
        with tempfile.TemporaryDirectory(prefix="fyp-index-save-") as tmp:
            index.save(Path(tmp))
            manifest = self.snapshots.save_directory(
                Path(tmp), topic=self.config.topic, offsets=offsets, kind=index.kind, dim=index.dim, size=len(index),
                model=self.holder.model,
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

    def _take_requests(self) -> Iterator[tuple[Future[Any], Callable[[], Any]]]:
        """The requests waiting now (those that waited for more records first), each marked running (a cancelled
        one is dropped)."""
        waiting, self._waiting = self._waiting, []
        yield from waiting
        while True:
            try:
                future, work = self._requests.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                yield future, work

    def _serve_requests(self) -> None:
        for future, work in self._take_requests():
            try:
                future.set_result(work())
            except _NotYet:
                self._waiting.append((future, work))
            except Exception as exc:
                future.set_exception(exc)

    def _fail_requests(self) -> None:
        for future, _ in self._take_requests():
            future.set_exception(RuntimeError(f"the feed stopped ({self.stats.phase})"))
