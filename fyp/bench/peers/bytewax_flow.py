"""The Bytewax peer: video_engagement features as a Bytewax dataflow, written to Redis as the job does.

The flow, in Bytewax's operators: `input` (Bytewax's `KafkaSource`, every partition from the earliest offset)
-> `filter_map` (decode with udfs.envelope, drop and count bad and keyless records, key by video) ->
`stateful_map` (fold each row into the video's state) -> `output` (a sink that writes the absolute packed value
of every video in each batch it is handed, in one Redis pipeline, with the job's stale-write script).
The fold goes through the evaluator's `key`, `new_state`, `update` and `pack` only, so any evaluator with that
API drops in.

How it runs, and why:
- One worker in this process: `cli_main(flow, workers_per_process=1)`, what `python -m bytewax.run` runs with
  no scaling flags. Extra worker threads (`-w`) share one GIL, so the Python steps (decode, fold, pack) would
  not run in parallel; worker processes (`-i/-a`) would, but add a TCP exchange of every row keyed by video
  (the topic is keyed by user), and the other peers are one process each. No child process is started, so
  `cpu_seconds` (process_time: all threads of this process, librdkafka's included) is all the peer's CPU.
- Recovery off (no RecoveryConfig): state lives in this process only and a restart starts empty; this is a
  benchmark peer, not a replacement for the job. Epochs are 10 s, `bytewax.run`'s default without recovery.
  Even so, Bytewax snapshots (copy.deepcopy) the state of every video touched in an epoch when it closes;
  that is part of running Bytewax, so it is in the figures.
- Offsets: Bytewax's Kafka source assigns partitions itself and keeps offsets only in its recovery store, so
  nothing is committed to Kafka and `group_id` only names the client (`client.id`).
- Exactly `events` records: the source is wrapped (`BoundedSource`) so that all its partitions end once that
  many came through (or at the deadline); the flow then drains and `cli_main` returns.

The sink gets each video's live state, not a copy, so a write carries the state as of when the sink runs, never
older than the records of its batch; every video's last write is its final state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bytewax import operators as op
from bytewax.connectors.kafka import KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.run import cli_main
from confluent_kafka.admin import AdminClient

from features.engagement.video_engagement import v1
from featurespec import FeatureSet
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.redis_writer import PackedFeatureWriter, redis_client
from fyp.bench.peers.result import PeerRun
from fyp.config import Settings
from schemas.topics import ENGAGEMENT
from udfs.envelope import to_engagement_row

__all__ = ["EPOCH_INTERVAL", "BoundedSource", "FlowCounts", "PackedWriter", "RedisFeatureSink", "build_flow",
           "kafka_source", "run_bytewax", "run_flow"]

EPOCH_INTERVAL = timedelta(seconds=10)  # `python -m bytewax.run`'s default when recovery is off


class PackedWriter(Protocol):
    """What the sink writes through: PackedFeatureWriter, or a collecting writer in unit tests."""

    written: int

    def write(self, values: Mapping[str, bytes]) -> int: ...


@dataclass
class FlowCounts:
    """Counts and timestamps of one run; the flow's steps update them (one worker, so no locking).

    events: records the source let through (at most `limit`); bad: records that failed to decode (the job
    dead-letters them); keyless: decoded records that are not the set's (no video, or the set's `where`);
    folded: records folded into a video's state. first/first_cpu: perf_counter()/process_time() when the first
    record came through. deadline: a time.monotonic() after which the source ends (None: no deadline).
    """

    limit: int
    deadline: float | None = None
    events: int = 0
    bad: int = 0
    keyless: int = 0
    folded: int = 0
    timed_out: bool = False
    first: float | None = None
    first_cpu: float = 0.0

    def take(self, batch: list) -> list:
        """The part of a source batch still within `limit`; stamps the first record's time."""
        batch = batch[: self.limit - self.events]
        if batch and self.first is None:
            self.first, self.first_cpu = time.perf_counter(), time.process_time()
        self.events += len(batch)
        return batch

    @property
    def exhausted(self) -> bool:
        """All `limit` records came through, or the deadline passed first (then `timed_out` is set)."""
        if self.events >= self.limit:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out


class _BoundedPartition(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition, counts: FlowCounts) -> None:
        self.inner = inner
        self.counts = counts

    def next_batch(self) -> list:
        if self.counts.exhausted:
            raise StopIteration  # Bytewax's signal that this partition has ended
        return self.counts.take(list(self.inner.next_batch()))

    def next_awake(self) -> datetime | None:
        return self.inner.next_awake()

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class BoundedSource(FixedPartitionedSource):
    """Another fixed-partitioned source whose partitions all end once `counts.limit` records came through in
    total, or when `counts.deadline` passes."""

    def __init__(self, inner: FixedPartitionedSource, counts: FlowCounts) -> None:
        self.inner = inner
        self.counts = counts

    def list_parts(self) -> list[str]:
        return self.inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _BoundedPartition:
        return _BoundedPartition(self.inner.build_part(step_id, for_part, resume_state), self.counts)


class _RedisFeaturePartition(StatelessSinkPartition):
    def __init__(self, sink: RedisFeatureSink) -> None:
        self.sink = sink

    def write_batch(self, items: list[tuple[str, Any]]) -> None:
        sink = self.sink
        newest = dict(items)  # in stream order, so each video's last state stays
        sink.keys.update(newest)
        pack = sink.evaluator.pack
        sink.writer.write({video: pack(state) for video, state in newest.items()})
        sink.last_write, sink.last_write_cpu = time.perf_counter(), time.process_time()


class RedisFeatureSink(DynamicSink):
    """(video, state) items -> packed values, one write per batch: the newest state of each video wins."""

    def __init__(self, writer: PackedWriter, evaluator: FeatureEvaluator | FastFold) -> None:
        self.writer = writer
        self.evaluator = evaluator
        self.keys: set[str] = set()  # every video written
        self.last_write: float | None = None  # perf_counter() after the last write
        self.last_write_cpu = 0.0  # process_time() then

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RedisFeaturePartition:
        return _RedisFeaturePartition(self)


def build_flow(source: FixedPartitionedSource, sink: RedisFeatureSink, counts: FlowCounts) -> Dataflow:
    """The peer's dataflow over any source of Kafka messages (KafkaSource, or TestingSource in tests)."""
    evaluator = sink.evaluator
    key, new_state, update = evaluator.key, evaluator.new_state, evaluator.update
    flow = Dataflow("video_engagement_peer")

    # Source: Kafka messages, at most `counts.limit` of them.
    messages = op.input("kafka", flow, BoundedSource(source, counts))

    # Transforms: decode, drop bad and keyless rows, key by video, fold each row into the video's state.
    def decode(message: KafkaSourceMessage) -> tuple[str, tuple] | None:
        row = to_engagement_row(message.value, int(time.time() * 1000))
        if row[-1] is not None:
            counts.bad += 1  # the job sends it to the dead-letter topic
            return None
        video = key(row)
        if video is None:
            counts.keyless += 1
            return None
        return video, row

    def fold(state: Any, row: tuple) -> tuple[Any, Any]:
        if state is None:
            state = new_state()
        update(state, row)
        counts.folded += 1
        return state, state

    keyed = op.filter_map("decode", messages, decode)
    states = op.stateful_map("fold", keyed, fold)

    # Sink: packed values to Redis, once per batch.
    op.output("redis", states, sink)
    return flow


def run_flow(flow: Dataflow) -> None:
    """Run `flow` to its end on one worker in this thread, recovery off (see the module docstring)."""
    cli_main(flow, workers_per_process=1, epoch_interval=EPOCH_INTERVAL, recovery_config=None)


def kafka_source(settings: Settings, topic: str, group_id: str) -> KafkaSource:
    """Bytewax's Kafka source on every partition of `topic` from the earliest offset, over the stack's
    SASL/PLAIN listener (fyp.config), waiting for more records at the end of a partition."""
    client = settings.kafka_client_config()
    brokers = client.pop("bootstrap.servers").split(",")
    return KafkaSource(brokers, [topic], tail=True, add_config={**client, "client.id": group_id})


def run_bytewax(
    settings: Settings, *, events: int, group_id: str, timeout_s: float, topic: str = ENGAGEMENT.name,
    feature_set: FeatureSet = v1,
) -> PeerRun:
    """Run the flow over `topic` from the earliest offset until `events` records were processed and written;
    raises TimeoutError after `timeout_s` seconds (from the call) if they were not, ValueError if `topic` does
    not exist (Bytewax's own lookup would wait for it, or create it where the broker auto-creates topics)."""
    deadline = time.monotonic() + timeout_s
    if topic not in AdminClient(settings.kafka_client_config()).list_topics(timeout=10).topics:
        raise ValueError(f"bytewax peer: no topic {topic!r}")
    # The naive peer's fold (fyp/bench/peers/fast_fold.py): the peers differ in their framework, not their Python.
    evaluator = FastFold.of(feature_set)
    sink = RedisFeatureSink(PackedFeatureWriter(redis_client(settings), feature_set), evaluator)
    counts = FlowCounts(limit=events, deadline=deadline)
    run_flow(build_flow(kafka_source(settings, topic, group_id), sink, counts))
    if counts.events < events:
        raise TimeoutError(f"bytewax peer: {counts.events} of {events} events after {timeout_s} s")
    first = counts.first or 0.0
    return PeerRun(events=counts.events, good_events=counts.folded, seconds=(sink.last_write or first) - first,
                   cpu_seconds=max(sink.last_write_cpu - counts.first_cpu, 0.0), redis_writes=sink.writer.written,
                   entities=len(sink.keys))
