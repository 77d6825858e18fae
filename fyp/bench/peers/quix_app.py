"""The Quix Streams peer: video_engagement features as a Quix `Application`, written to Redis as the job does.

Quix keeps state per message key, and fyp.engagement.v1 is keyed by user, so the idiomatic route is
`group_by` (Quix re-keys through an internal `repartition__…` topic, as Flink shuffles on a keyBy), then a
stateful `apply` that folds each row into the video's state with the same tile ring and decayed sums as the
job (featurespec.reference.evaluate). Quix's own windows (`sliding_window`, `hopping_window`) do not fit: they emit
per window instance rather than one absolute value per key, a 24 h window sliding by 2 h would be 12
overlapping windows updated per event, and there is no decayed aggregate. State is one float64 array per video,
stored with `set_bytes` (no JSON per event); its name carries the layout's digest.

The sink is a `BatchingSink`: Quix hands it each processed record and calls `write` per partition at every
checkpoint (commit_interval, 5 s by default), before committing offsets. It keeps the newest state per video
and writes every touched video's packed value in one Redis pipeline.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models.serializers import Deserializer, SerializationContext
from quixstreams.sinks import BatchingSink, SinkBatch
from quixstreams.state import State

from features.engagement.video_engagement import v1
from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.bench.peers.redis_writer import PackedFeatureWriter, redis_client
from fyp.bench.peers.result import PeerRun
from fyp.config import Settings
from schemas.topics import ENGAGEMENT
from udfs.envelope import to_engagement_row

__all__ = ["EngagementRowDeserializer", "RedisFeatureSink", "RunProgress", "build_quix_app", "run_quix"]


def connection_config(settings: Settings) -> ConnectionConfig:
    """Quix's connection settings for the stack's SASL/PLAIN listener (fyp.config)."""
    client = settings.kafka_client_config()
    return ConnectionConfig(
        bootstrap_servers=client["bootstrap.servers"], security_protocol=client["security.protocol"],
        sasl_mechanism=client["sasl.mechanisms"], sasl_username=client["sasl.username"],
        sasl_password=client["sasl.password"],
    )


class EngagementRowDeserializer(Deserializer):
    """Kafka value (single-object Avro) -> engagement row (udfs.envelope: a tuple, `error` last, never raises)."""

    def __call__(self, value: bytes, ctx: SerializationContext) -> tuple:
        return to_engagement_row(value, int(time.time() * 1000))


class RedisFeatureSink(BatchingSink):
    """Packed feature values to Redis, one pipeline per partition batch: the newest state of each key wins."""

    def __init__(self, writer: PackedFeatureWriter, evaluator: FeatureEvaluator) -> None:
        super().__init__()
        self.writer = writer
        self.evaluator = evaluator
        self.last_write: float | None = None  # perf_counter() after the last pipeline
        self.last_write_cpu = 0.0  # process_time() then
        self.last_write_at: float | None = None  # time.time() then
        self.keys: set[str] = set()  # every key written

    def write(self, batch: SinkBatch) -> None:
        newest = {item.key: item.value for item in batch}  # in offset order, so the last state per key stays
        self.keys.update(newest)
        evaluator = self.evaluator
        self.writer.write({key: evaluator.pack(evaluator.state_from_bytes(state)) for key, state in newest.items()})
        self.last_write, self.last_write_cpu = time.perf_counter(), time.process_time()
        self.last_write_at = time.time()


class RunProgress:
    """Counts records through the app and stops it once `events` source records were fully processed."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.admitted = self.dropped = self.folded = 0
        self.first: float | None = None
        self.first_cpu = 0.0
        self.app: Application | None = None

    def admit(self, _row) -> bool:
        if self.admitted >= self.events:
            return False  # past the benchmark's events: consumed, not processed
        if self.first is None:
            self.first, self.first_cpu = time.perf_counter(), time.process_time()
        self.admitted += 1
        return True

    def drop(self) -> None:
        self.dropped += 1
        self._check()

    def fold(self) -> None:
        self.folded += 1
        self._check()

    @property
    def done(self) -> bool:
        return self.dropped + self.folded >= self.events

    def _check(self) -> None:
        if self.done and self.app is not None:
            self.app.stop()  # the run loop ends after this record and commits the checkpoint (sink included)


def build_quix_app(
    settings: Settings, *, group_id: str, state_dir: Path, sink: RedisFeatureSink, progress: RunProgress,
    topic: str = ENGAGEMENT.name, use_changelog_topics: bool = True,
) -> Application:
    evaluator = sink.evaluator
    app = Application(
        broker_address=connection_config(settings), consumer_group=group_id, auto_offset_reset="earliest",
        state_dir=state_dir, use_changelog_topics=use_changelog_topics, loglevel="WARNING",
    )

    # Source: engagement rows, decoded once.
    sdf = app.dataframe(app.topic(topic, key_deserializer="bytes", value_deserializer=EngagementRowDeserializer()))

    # Transforms: drop bad and keyless rows, re-key by video, fold each row into the video's state.
    def keep(row: tuple) -> bool:
        if row[-1] is None and evaluator.key(row) is not None:
            return True
        progress.drop()
        return False

    def fold(row: list, state: State) -> bytes:
        stored = state.get_bytes(evaluator.state_name)
        entity = evaluator.new_state() if stored is None else evaluator.state_from_bytes(stored)
        evaluator.update(entity, row)
        packed_state = evaluator.state_to_bytes(entity)
        state.set_bytes(evaluator.state_name, packed_state)
        progress.fold()
        return packed_state

    sdf = sdf.filter(progress.admit).filter(keep)
    sdf = sdf.group_by(evaluator.key, name=evaluator.feature_set.entity.name)
    sdf = sdf.apply(fold, stateful=True)

    # Sink: packed values to Redis at each checkpoint.
    sdf.sink(sink)
    return app


def run_quix(
    settings: Settings, *, events: int, group_id: str, timeout_s: float, topic: str = ENGAGEMENT.name,
    feature_set: FeatureSet = v1, use_changelog_topics: bool = True,
) -> PeerRun:
    """Run the app from the earliest offset as consumer group `group_id` until `events` records were processed
    and written; raises TimeoutError after `timeout_s` seconds. Its local state and internal topics are removed
    afterwards."""
    evaluator = FeatureEvaluator.of(feature_set)
    sink = RedisFeatureSink(PackedFeatureWriter(redis_client(settings), feature_set), evaluator)
    progress = RunProgress(events)
    state_dir = settings.data_dir / "bench" / "quix" / group_id
    app = build_quix_app(settings, group_id=group_id, state_dir=state_dir, sink=sink, progress=progress,
                         topic=topic, use_changelog_topics=use_changelog_topics)
    progress.app = app
    watchdog = threading.Timer(timeout_s, app.stop)
    watchdog.start()
    try:
        app.run()
    finally:
        watchdog.cancel()
        shutil.rmtree(state_dir, ignore_errors=True)
        _delete_internal_topics(settings, group_id)
    if not progress.done:
        raise TimeoutError(f"quix peer: {progress.dropped + progress.folded} of {events} events after {timeout_s} s")
    return PeerRun(events=progress.admitted, good_events=progress.folded,
                   seconds=(sink.last_write or progress.first or 0.0) - (progress.first or 0.0),
                   cpu_seconds=max(sink.last_write_cpu - progress.first_cpu, 0.0),
                   redis_writes=sink.writer.written, entities=len(sink.keys), last_write_at=sink.last_write_at)


def _delete_internal_topics(settings: Settings, group_id: str) -> None:
    """Drop the repartition and changelog topics Quix created for `group_id` (names: <type>__<group>--...)."""
    admin = AdminClient(settings.kafka_client_config())
    names = [n for n in admin.list_topics(timeout=10).topics
             if n.startswith((f"repartition__{group_id}--", f"changelog__{group_id}--"))]
    for future in admin.delete_topics(names, operation_timeout=30).values() if names else ():
        future.result(30)
