"""The worker runtime, written once: a Kafka consumer loop that drives a handler, and a periodic loop.

Why our own loop on confluent-kafka, not Quix Streams' `Application` (3.28.1, read against its source):
- Quix calls a record's functions on the polling thread (`Application._process_message`), so a transcode of
  minutes would have to fit in `max.poll.interval.ms`; it pauses partitions only for sink backpressure and state
  recovery. Ours runs the handler in a thread and keeps polling with the partitions paused.
- Its error hook (`on_processing_error`) can only suppress an error (the record counts as processed and is
  committed) or re-raise it (the app stops). It has no retry with back-off of a transient failure, and no dead
  letter acknowledged before the commit that carries the original key and headers.
- It manages topics itself (`auto_create_topics`, changelog topics, a state dir). Ours are declared in
  schemas.topics and created by `fyp up`, and the broker does not auto-create topics.
- Three of the five workers are not consumers at all: they run a pass over Redis or the Iceberg tables every N s.
Our loop is about 150 lines over confluent-kafka, which the project already uses, and it is tested against the
broker (tests/integration/test_worker_runtime.py).

`run_consumer(handler, config, settings)`: one record at a time. For each record:
- The handler runs in a thread. Meanwhile the loop pauses the assigned partitions and keeps polling, so a handler
  may run for minutes without the group taking the partition away (one `max.poll.interval.ms` for every worker).
- It returns the `Output`s to produce. An empty list means the record is not for this worker, or needed nothing.
  The outputs are produced and flushed, and then the record's offset is committed: at-least-once. A handler
  makes its outputs idempotent (event ids derived from the input), so a redelivery yields the same events.
- It raises `Poison(reason)`, or an exception of one of `config.poison` types: the record itself is at fault,
  so it becomes a dead letter (`workers.dead_letters.DeadLetterSink`: reason, original key, payload and headers).
  The record is committed once the broker has acknowledged the dead letter, and the next records flow.
- It raises anything else: a transient failure (S3, Redis, a model). The loop backs off (`Backoff`: 1 s,
  doubling, at most 60 s) and hands the same record to the handler again. Nothing was produced for it.
- SIGTERM/SIGINT (or the `stop` event): the record in flight finishes, its outputs are produced and committed,
  and then the loop returns.
- With `FYP_METRICS_PORT` set, its counts (`LoopStats`) are served to Prometheus meanwhile (workers/metrics.py).

`run_periodic(step, every_s=...)`: the step now and then every `every_s` seconds, until SIGTERM/SIGINT or
`stop`. A failing pass is logged and the next pass retries; with `once`, one pass whose error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from schemas.topics import UPLOADS_DLQ
from workers.dead_letters import DeadLetterSink, Poison, handling_failure, producer_config
from workers.metrics import serve_loop_metrics

__all__ = [
    "Backoff",
    "ConsumerConfig",
    "Handler",
    "LoopStats",
    "Output",
    "Poison",
    "classify",
    "run_consumer",
    "run_periodic",
    "stop_on_signals",
]

log = logging.getLogger("fyp.worker")


@dataclass(frozen=True, kw_only=True)
class Output:
    """One record a handler wants produced: topic, value (encoded), key and headers."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


Handler = Callable[[Any], Sequence[Output]]  # a confluent_kafka Message in, the outputs to produce out


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Waits before handling a record again after a transient failure: `initial_s` (default 1 s), then doubling
    up to `max_s` (default 60 s); a success starts over.

    >>> policy = Backoff(initial_s=1, max_s=5)
    >>> [policy.next(d) for d in (None, 1, 2, 4)]
    [1, 2, 4, 5]
    """

    initial_s: float = 1.0
    max_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"need 0 < initial_s <= max_s, got {self.initial_s} and {self.max_s}")

    def next(self, previous_s: float | None) -> float:
        """The wait after `previous_s` (None: the first failure in a row)."""
        return self.initial_s if previous_s is None else min(self.max_s, previous_s * 2)


def classify(exc: BaseException, poison: tuple[type[BaseException], ...] = ()) -> str | None:
    """The dead-letter reason when `exc` is the record's own fault, else None (transient: retry).

    >>> classify(Poison("undecodable:bad_marker")), classify(KeyError("x"), (LookupError,)), classify(OSError())
    ('undecodable:bad_marker', 'malformed:KeyError', None)
    """
    if isinstance(exc, Poison):
        return exc.reason
    if isinstance(exc, poison):
        return handling_failure(exc)
    return None


@dataclass(frozen=True, kw_only=True)
class ConsumerConfig:
    """What `run_consumer` reads and where it parks records.

    topics: read as consumer group `group_id`. dead_letters: the DLQ topic (default `UPLOADS_DLQ`).
    poison: exception types the handler's records cause by themselves (dead-lettered, never retried).
    poll_s: seconds of one poll (1). flush_timeout_s: seconds to wait for outputs' acknowledgements (30).
    consumer_overrides: librdkafka settings over ours (a test lowers `max.poll.interval.ms`).
    """

    topics: tuple[str, ...]
    group_id: str
    dead_letters: str = UPLOADS_DLQ.name
    poison: tuple[type[BaseException], ...] = ()
    backoff: Backoff = field(default_factory=Backoff)
    poll_s: float = 1.0
    flush_timeout_s: float = 30.0
    consumer_overrides: Mapping[str, Any] = field(default_factory=dict)

    def consumer_settings(self, client: Mapping[str, Any]) -> dict[str, Any]:
        """`client` (Settings.kafka_client_config()) plus the group, manual commits and reading from the start
        of a topic the group never committed on."""
        return {**client, "group.id": self.group_id, "enable.auto.commit": False,
                "auto.offset.reset": "earliest", **self.consumer_overrides}


@dataclass
class LoopStats:
    """What one `run_consumer` did: records committed after handling (`handled`, with `produced` outputs),
    `dead_lettered`, `retried` (transient failures) and partitions `revoked` or lost while running."""

    handled: int = 0
    produced: int = 0
    dead_lettered: int = 0
    retried: int = 0
    revoked: int = 0


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """Set `stop` on SIGTERM or SIGINT while inside, then restore the previous handlers. Off the main thread
    (where Python cannot install handlers) `stop` is the only way to end the loop."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    names = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.getsignal(signum) for signum in names}

    def handle(signum: int, _frame: object) -> None:
        log.info("%s: finishing the work in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    for signum in names:
        signal.signal(signum, handle)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_periodic(step: Callable[[], object], *, every_s: float, once: bool = False,
                 stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], object] | None = None) -> int:
    """Call `step` now and then every `every_s` seconds, counted from the start of a pass (a pass longer than
    that is followed at once); returns the number of passes.

    once: one pass, whose exception propagates (a failed one-off run must fail). Otherwise a failing pass is
    logged and the next one retries. stop: ends the loop, as SIGTERM/SIGINT do (between passes; a pass in hand
    finishes). clock, wait: `time.monotonic` and `stop.wait` unless a test injects its own.

    >>> run_periodic(lambda: None, every_s=10, once=True)
    1
    """
    if every_s <= 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    stop = stop or threading.Event()
    wait = wait or stop.wait
    passes = 0
    with stop_on_signals(stop):
        while not stop.is_set():
            started = clock()
            try:
                step()
            except Exception:
                if once:
                    raise
                log.exception("pass failed; the next one retries")  # Redis restarting, say
            passes += 1
            if once:
                break
            remaining = every_s - (clock() - started)
            if remaining > 0 and not stop.is_set():
                wait(remaining)
    return passes


def run_consumer(handler: Handler, config: ConsumerConfig, settings: Any, *,
                 stop: threading.Event | None = None) -> LoopStats:
    """Consume `config.topics` with `handler` until SIGTERM/SIGINT or `stop` (module docstring); returns counts.

    settings: `fyp.config.Settings` (its Kafka client and producer settings).
    """
    from confluent_kafka import Consumer, Producer

    stop = stop or threading.Event()
    producer = Producer(producer_config(settings))
    consumer = Consumer(config.consumer_settings(settings.kafka_client_config()))
    loop = _ConsumerLoop(handler, config, consumer, producer, stop)

    def revoked(_consumer: Any, partitions: list) -> None:
        if not stop.is_set():  # closing the consumer revokes everything; that is no loss
            loop.stats.revoked += len(partitions)

    consumer.subscribe(list(config.topics), on_revoke=revoked, on_lost=revoked)
    metrics = serve_loop_metrics(config.group_id, loop.stats)  # on FYP_METRICS_PORT, when set (workers/metrics.py)
    with stop_on_signals(stop), ThreadPoolExecutor(max_workers=1, thread_name_prefix="handler") as pool:
        try:
            while not stop.is_set():
                message = consumer.poll(config.poll_s)
                if message is None:
                    continue
                if message.error():
                    log.error("kafka: %s", message.error())
                    continue
                loop.handle(message, pool)
        finally:
            consumer.close()
            if metrics is not None:
                metrics.close()
    return loop.stats


class _ConsumerLoop:
    """One record at a time: run the handler with the partitions paused, then produce, park or retry."""

    def __init__(self, handler: Handler, config: ConsumerConfig, consumer: Any, producer: Any,
                 stop: threading.Event) -> None:
        self.handler = handler
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.dead_letters = DeadLetterSink(producer, config.group_id, topic=config.dead_letters,
                                           timeout_s=config.flush_timeout_s)
        self.stats = LoopStats()
        self.delay_s: float | None = None  # the back-off in force, None after a success

    def handle(self, message: Any, pool: ThreadPoolExecutor) -> None:
        where = (message.topic(), message.partition(), message.offset())
        job = self._paused(pool.submit(self.handler, message))
        try:
            outputs = job.result()
        except Exception as exc:
            reason = classify(exc, self.config.poison)
            if reason is None:
                log.exception("%s[%d]@%d failed; retrying", *where)
                self._retry(message)
            else:
                log.error("dead-lettering %s[%d]@%d: %s", *where, reason, exc_info=not isinstance(exc, Poison))
                self._park(message, reason)
            return
        if outputs and not self._produce(outputs):
            log.error("outputs of %s[%d]@%d not acknowledged; retrying", *where)
            self._retry(message)
            return
        self.delay_s = None
        self.stats.handled += 1
        self.stats.produced += len(outputs)
        # Nothing produced: no need to wait for the commit, and a lifecycle topic has many records to skip.
        self._commit(message, asynchronous=not outputs)

    def _paused(self, job: Future) -> Future:
        """Poll with the partitions paused until `job` is done: polling keeps the group membership, and paused
        partitions deliver nothing. A partition assigned by a rebalance meanwhile is not paused: put back anything
        it delivers, for later."""
        from confluent_kafka import TopicPartition

        self.consumer.pause(self.consumer.assignment())
        while not job.done():
            early = self.consumer.poll(0.2)
            if early is not None and not early.error():
                back = TopicPartition(early.topic(), early.partition(), early.offset())
                self.consumer.seek(back)
                self.consumer.pause([back])
        self.consumer.resume(self.consumer.assignment())
        return job

    def _produce(self, outputs: Sequence[Output]) -> bool:
        """Produce `outputs` and wait for the broker; True when every one is acknowledged."""
        failures: list[Any] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                failures.append(error)

        for output in outputs:
            self.producer.produce(output.topic, key=output.key, value=output.value, headers=list(output.headers),
                                  on_delivery=delivered)
        return self.producer.flush(self.config.flush_timeout_s) == 0 and not failures

    def _park(self, message: Any, reason: str) -> None:
        from confluent_kafka import KafkaException

        try:
            self.dead_letters.send(message, reason)
        except KafkaException:
            log.exception("dead letter for %s[%d]@%d not stored", message.topic(), message.partition(),
                          message.offset())
            self._retry(message)  # read again, never committed unrecorded
            return
        self.delay_s = None
        self.stats.dead_lettered += 1
        self._commit(message, asynchronous=False)

    def _retry(self, message: Any) -> None:
        """Back off (a stop cuts the wait short), then read `message` again."""
        from confluent_kafka import KafkaException, TopicPartition

        self.stats.retried += 1
        self.delay_s = self.config.backoff.next(self.delay_s)
        self.stop.wait(self.delay_s)
        try:
            self.consumer.seek(TopicPartition(message.topic(), message.partition(), message.offset()))
        except KafkaException as exc:  # the partition went to another member, which reads it from the commit
            log.warning("cannot seek back to %s[%d]@%d: %s", message.topic(), message.partition(),
                        message.offset(), exc)

    def _commit(self, message: Any, *, asynchronous: bool) -> None:
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(message=message, asynchronous=asynchronous)
        except KafkaException as exc:
            # The partition was reassigned mid-record: its new owner handles the record again, and the
            # handler's idempotent outputs make that a repeat of the same events.
            log.warning("commit of %s[%d]@%d failed: %s", message.topic(), message.partition(), message.offset(),
                        exc)
