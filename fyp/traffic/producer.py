"""Send generated traffic to Kafka: an idempotent confluent-kafka producer, paced to a target rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from fyp.traffic.encoder import EncodedBatch
from fyp.traffic.stream import TrafficGenerator
from schemas.topics import ENGAGEMENT, Topic

__all__ = ["PRODUCER_SETTINGS", "BatchSender", "ProducePlan", "ProduceReport", "ProducerError", "produce"]

# Throughput settings; the connection settings come from fyp.config (kafka_client_config()).
PRODUCER_SETTINGS: dict[str, Any] = {
    "enable.idempotence": True,  # retries never duplicate or reorder a partition's events
    "acks": "all",
    "linger.ms": 20,  # wait up to 20 ms to fill batches: fewer, larger requests
    "batch.size": 1_000_000,  # bytes per partition batch (at most message.max.bytes)
    "batch.num.messages": 10_000,
    "compression.type": "lz4",  # cheap on CPU, ~3x smaller for these payloads
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "partitioner": "murmur2_random",  # same key -> partition mapping as the Java clients (Flink)
    "delivery.report.only.error": True,  # a callback per failure only: per-message callbacks cost ~1 µs
    # librdkafka's own log lines would flood the terminal; errors still reach error_cb and the report.
    "log_level": 0,
}
CONNECT_TIMEOUT_S = 10.0
STALL_TIMEOUT_S = 30.0  # the local queue stayed full this long: the broker is gone
FLUSH_TIMEOUT_S = 30.0


class ProducerError(RuntimeError):
    """Kafka is unreachable, the topic is missing, or the producer hit a fatal error."""


@dataclass(frozen=True, kw_only=True)
class ProducePlan:
    """How much to send and how fast.

    rate: events per second; 0 sends as fast as possible.
    duration: stop after this long (None: no time limit).
    max_events: stop after this many events (None: no count limit). One of the two limits is required.
    """

    rate: float = 0.0
    duration: timedelta | None = None
    max_events: int | None = None

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0 events/s, got {self.rate}")
        if self.duration is None and self.max_events is None:
            raise ValueError("give a duration, max_events or both")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events must be >= 0, got {self.max_events}")

    @property
    def views_per_batch(self) -> int:
        # About 10 ms of traffic per batch when paced (~2.3 events per view), so pacing stays smooth.
        return 1_000 if self.rate == 0 else max(1, min(1_000, round(self.rate / 230)))


@dataclass(frozen=True, kw_only=True)
class ProduceReport:
    """What a run sent. produced: acknowledged by Kafka; failed: given up on; seconds: wall time."""

    produced: int
    failed: int
    seconds: float
    by_type: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "by_type": dict(sorted(self.by_type.items())),
        }


class _Failures:
    """Collects delivery failures and client errors from librdkafka's callbacks."""

    def __init__(self) -> None:
        self.failed = 0
        self.last_error: str | None = None
        self.fatal: str | None = None

    def on_delivery(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.failed += 1
            self.last_error = str(err)

    def on_error(self, err: KafkaError) -> None:
        self.last_error = str(err)
        if err.fatal():
            self.fatal = str(err)


def _connect(
    client_config: Mapping[str, Any],
    failures: _Failures,
    topic: str,
    factory: Callable[[dict[str, Any]], Any],
) -> Producer:
    producer = factory(
        {
            **PRODUCER_SETTINGS,
            **client_config,
            "on_delivery": failures.on_delivery,
            "error_cb": failures.on_error,
        }
    )
    where = client_config.get("bootstrap.servers", "?")
    try:
        metadata = producer.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as exc:
        producer.poll(0)  # deliver the queued error_cb calls: they say why (refused, auth failed, ...)
        last = f" Last client error: {failures.last_error}" if failures.last_error else ""
        raise ProducerError(
            f"cannot reach Kafka at {where} within {CONNECT_TIMEOUT_S:.0f} s ({exc.args[0]}); "
            f"is the stack up (fyp up)?{last}"
        ) from None
    if topic not in metadata.topics:
        raise ProducerError(
            f"topic {topic} does not exist on {where}; `fyp up` creates the pipeline's topics"
        )
    return producer


def _send(producer: Producer, topic: str, batch: EncodedBatch, failures: _Failures) -> None:
    send = producer.produce
    times = batch.times or [0] * len(batch.pairs)  # 0: librdkafka stamps the send time
    for (key, value), timestamp in zip(batch.pairs, times, strict=True):
        try:
            send(topic, value, key, timestamp=timestamp)
        except BufferError:
            # The local queue is full: let librdkafka drain it, but do not wait forever on a dead broker.
            deadline = time.monotonic() + STALL_TIMEOUT_S
            while True:
                producer.poll(0.05)
                if failures.fatal:
                    raise ProducerError(f"fatal Kafka error: {failures.fatal}") from None
                try:
                    send(topic, value, key, timestamp=timestamp)
                    break
                except BufferError:
                    if time.monotonic() > deadline:
                        raise ProducerError(
                            f"Kafka accepted nothing for {STALL_TIMEOUT_S:.0f} s "
                            f"(last error: {failures.last_error})"
                        ) from None
    producer.poll(0)


class BatchSender:
    """Sends encoded batches as they come (the closed loop's pages), on the same producer settings and checks as
    `produce`; thread-safe (librdkafka's producer is). `close` flushes and says how many failed."""

    def __init__(self, client_config: Mapping[str, Any], *, topic: Topic = ENGAGEMENT,
                 producer_factory: Callable[[dict[str, Any]], Any] = Producer) -> None:
        self._failures = _Failures()
        self._topic = topic.name
        self._producer = _connect(client_config, self._failures, topic.name, producer_factory)

    def send(self, batch: EncodedBatch) -> None:
        """Queue `batch` (key = user id); ProducerError on a fatal Kafka error or a broker gone for
        STALL_TIMEOUT_S."""
        _send(self._producer, self._topic, batch, self._failures)
        if self._failures.fatal:
            raise ProducerError(f"fatal Kafka error: {self._failures.fatal}")

    def close(self) -> int:
        """Flush; the number of events Kafka did not acknowledge."""
        return self._failures.failed + self._producer.flush(FLUSH_TIMEOUT_S)


def produce(
    generator: TrafficGenerator,
    plan: ProducePlan,
    *,
    client_config: Mapping[str, Any],
    topic: Topic = ENGAGEMENT,
    on_progress: Callable[[int, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    producer_factory: Callable[[dict[str, Any]], Any] = Producer,
) -> ProduceReport:
    """Send `generator`'s events to `topic` (key = user id) following `plan`; Ctrl-C stops cleanly.

    client_config: librdkafka connection settings, e.g. load_settings().kafka_client_config().
    on_progress: called after each batch with (events sent so far, seconds elapsed).
    stop: polled before each batch; True ends the run early, as the limits do (e.g. a benchmark's schedule).
    producer_factory: builds the producer from its settings (tests pass a fake).
    Raises ProducerError when Kafka is unreachable (after CONNECT_TIMEOUT_S), the topic is missing, or
    the producer fails fatally.
    """
    failures = _Failures()
    producer = _connect(client_config, failures, topic.name, producer_factory)
    by_type: Counter[str] = Counter()
    sent, interrupted = 0, False
    limit_s = plan.duration.total_seconds() if plan.duration is not None else float("inf")
    limit_n = plan.max_events if plan.max_events is not None else float("inf")
    start = time.monotonic()
    try:
        while sent < limit_n and not (stop is not None and stop()):
            elapsed = time.monotonic() - start
            if elapsed >= limit_s:
                break
            if plan.rate > 0 and (ahead := sent / plan.rate - elapsed) > 0:
                producer.poll(min(ahead, limit_s - elapsed))  # serve callbacks while pacing
                continue
            batch = generator.next_batch(plan.views_per_batch)
            if sent + len(batch.pairs) > limit_n:
                batch = batch.head(int(limit_n - sent))
            _send(producer, topic.name, batch, failures)
            sent += len(batch.pairs)
            by_type.update(batch.counts)
            if failures.fatal:
                raise ProducerError(f"fatal Kafka error: {failures.fatal}")
            if on_progress is not None:
                on_progress(sent, time.monotonic() - start)
    except KeyboardInterrupt:
        interrupted = True
    unsent = producer.flush(FLUSH_TIMEOUT_S)
    seconds = time.monotonic() - start
    failed = failures.failed + unsent
    return ProduceReport(
        produced=sent - failed, failed=failed, seconds=seconds, by_type=dict(by_type), interrupted=interrupted
    )
