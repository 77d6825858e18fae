"""Served-feature logging: what `FeatureClient.for_request` served, sampled, to Kafka, without slowing the read.

The read path only decides (a hash of the request id against the sample rate) and hands the raw Redis values it
already holds to a bounded queue; a full queue drops the request and counts it. One background thread decodes
those values exactly as the read did (the same `fyp.serving.layout` functions with the same `now`, so the logged
numbers are the served ones), encodes a `ServedFeatures` record (schemas/avro/ServedFeatures.avsc) and produces it
to `fyp.served-features.v1`, keyed by user, with the Kafka timestamp set to the served time (the join job's
watermark follows it). jobs/served_training.py reads the records back with `ServedRows`.

>>> sampled("request-1", 1.0), sampled("request-1", 0.0)
(True, False)
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from featurespec import FeatureSet
from fyp.config import Settings
from fyp.serving.layout import ReadPlan, decode_matrix, decode_row
from schemas.registry import SchemaRegistry, UndecodableEvent, default_registry
from schemas.topics import SERVED_FEATURES
from udfs.limits import MAX_ID_BYTES

__all__ = [
    "MAX_CANDIDATES",
    "MAX_COLUMNS",
    "MAX_NAME_BYTES",
    "RECORD_NAME",
    "KafkaServedSink",
    "ServedLog",
    "ServedLogStats",
    "ServedRead",
    "ServedRows",
    "encode_served",
    "limit_error",
    "new_request_id",
    "sampled",
    "served_columns",
]

log = logging.getLogger(__name__)

RECORD_NAME = "ServedFeatures"

# Field limits of a ServedFeatures record, as udfs/limits.py sets them for engagement events: a record at every
# limit still fits the topic's max.message.bytes (tests/unit/fyp/serving/test_served_log.py checks it). A request
# over a limit is not logged (counted as failed, with the reason); nothing is truncated.
MAX_CANDIDATES = 1_000  # candidates of one request (a ranking request reads ~500)
MAX_COLUMNS = 256  # values per entity (the widest served set, video engagement with its ratios, has 132)
MAX_NAME_BYTES = 128  # a feature set's qualified name or a column name, UTF-8
# Ids (request, user, video) follow the pipeline's one id limit, MAX_ID_BYTES (udfs/limits.py).

DEFAULT_QUEUE_SIZE = 256  # requests waiting to be encoded; at ~250 KB of raw values each, ~64 MB at most
_SAMPLE_SPACE = 1 << 64


def sampled(request_id: str, rate: float) -> bool:
    """Whether `request_id` is logged at sample `rate` (0..1): the same answer for the same id in every process,
    so a request served by several replicas is logged by all or none.

    >>> sum(sampled(f"r{i}", 0.25) for i in range(10_000))
    2456
    """
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * _SAMPLE_SPACE


def new_request_id() -> str:
    """A random request id (32 hex digits) for a read whose caller gave none: ~1 µs, a quarter of uuid4()."""
    return os.urandom(16).hex()


def served_columns(plan: ReadPlan) -> tuple[str, ...]:
    """The names a served value carries, in order: the set's columns, then its ratios (`decode_row`'s names)."""
    return plan.columns + tuple(name for name, _, _ in plan.ratios)


@dataclass(frozen=True, kw_only=True, slots=True)
class ServedRead:
    """One sampled read as the read path hands it over: the raw Redis values, decoded later off the read path.

    served_time_ms: the read's `now` (epoch ms); the values are decoded as of it.
    user_value / video_values: the packed values Redis returned (None where it held none), in request order.
    """

    request_id: str
    served_time_ms: int
    user_id: str
    video_ids: tuple[str, ...]
    user_value: bytes | None
    video_values: list[bytes | None]
    user_plan: ReadPlan
    video_plan: ReadPlan


def limit_error(read: ServedRead) -> str | None:
    """The first field limit `read` breaks, as `too_long:<field>` / `too_many:<field>`, or None."""
    if len(read.video_ids) > MAX_CANDIDATES:
        return "too_many:candidates"
    for field, value in (("request_id", read.request_id), ("user_id", read.user_id)):
        if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
            return f"too_long:{field}"
    if any(len(v) * 4 > MAX_ID_BYTES and len(v.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES
           for v in read.video_ids):
        return "too_long:video_id"
    for entity, plan in (("user", read.user_plan), ("video", read.video_plan)):
        names = served_columns(plan)
        if len(names) > MAX_COLUMNS:
            return f"too_many:{entity}_columns"
        if any(len(n.encode()) > MAX_NAME_BYTES for n in (*names, plan.feature_set.qualified_name)):
            return f"too_long:{entity}_columns"
    return None


def _video_rows(read: ServedRead) -> tuple[list[bytes | None], np.ndarray]:
    """Each candidate's values as float32 bytes (None where Redis held none) and its event time (0 then):
    `decode_matrix`, as `for_request` ran it, then the ratios `decode_row` would add, computed the same way
    (numerator / denominator in float64, NaN unless the denominator is positive)."""
    plan = read.video_plan
    matrix, event_times = decode_matrix(plan, read.video_values, read.served_time_ms)
    if plan.ratios:
        ratios = np.full((len(matrix), len(plan.ratios)), np.nan)
        for i, (_, numerator, denominator) in enumerate(plan.ratios):
            np.divide(matrix[:, numerator], matrix[:, denominator], out=ratios[:, i],
                      where=matrix[:, denominator] > 0)
        matrix = np.hstack([matrix, ratios])
    packed = matrix.astype("<f4")
    expected = plan.packed_bytes  # decode_matrix's test for a stored value
    rows = [packed[i].tobytes() if value is not None and len(value) == expected else None
            for i, value in enumerate(read.video_values)]
    return rows, event_times


def encode_served(read: ServedRead, registry: SchemaRegistry | None = None) -> bytes:
    """The ServedFeatures payload (single-object Avro) of one read, its values decoded as the read decoded them.

    Raises ValueError naming the limit when `read` breaks one (`limit_error`)."""
    if error := limit_error(read):
        raise ValueError(error)
    user = decode_row(read.user_plan, read.user_value, read.served_time_ms)
    user_values = None
    if user is not None:
        user_values = np.fromiter(user[0].values(), dtype=np.float64).astype("<f4").tobytes()
    video_rows, event_times = _video_rows(read)
    record = {
        "request_id": read.request_id, "served_time": read.served_time_ms, "user_id": read.user_id,
        "user_set": read.user_plan.feature_set.qualified_name, "user_columns": list(served_columns(read.user_plan)),
        "user_event_time_ms": user[1] if user is not None else 0, "user_values": user_values,
        "video_set": read.video_plan.feature_set.qualified_name,
        "video_columns": list(served_columns(read.video_plan)),
        "candidates": [{"video_id": video_id, "event_time_ms": int(event_time), "values": values}
                       for video_id, event_time, values in zip(read.video_ids, event_times, video_rows, strict=True)],
    }
    return (registry or default_registry()).encode(RECORD_NAME, record)


class ServedRows:
    """ServedFeatures payload -> one row per candidate, with the columns a served training table declares.

    A row is `(request_id, served_time_ms, user_id, video_id, position, user_event_time_ms, video_event_time_ms,
    *user_values, *video_values)`, values in the order of `user_columns` / `video_columns` (None where the entity
    had no value, or the record lacks the name). A record of another set version than `user_set` / `video_set`
    gives no values for that entity (its columns may mean something else) and counts in `set_mismatches`.
    `__call__` raises schemas.registry.UndecodableEvent for a payload that is not a ServedFeatures record.
    """

    def __init__(self, user_set: FeatureSet, video_set: FeatureSet, *,
                 registry: SchemaRegistry | None = None) -> None:
        self.user_set, self.video_set = user_set.qualified_name, video_set.qualified_name
        self.user_columns = served_columns(ReadPlan.of(user_set))
        self.video_columns = served_columns(ReadPlan.of(video_set))
        self.registry = registry or default_registry()
        self.set_mismatches = 0
        self._pickers: dict[tuple[tuple[str, ...], tuple[str, ...]], Callable[[bytes | None], tuple]] = {}

    def __call__(self, payload: bytes) -> list[tuple[Any, ...]]:
        event = self.registry.decode(payload)
        if event.record_name != RECORD_NAME:
            raise UndecodableEvent("unknown_type", event.record_name)
        r = event.record
        user_pick = self._picker(self.user_columns, r["user_columns"], r["user_set"] == self.user_set)
        video_pick = self._picker(self.video_columns, r["video_columns"], r["video_set"] == self.video_set)
        self.set_mismatches += (r["user_set"] != self.user_set) + (r["video_set"] != self.video_set)
        head = (r["request_id"], r["served_time"], r["user_id"])
        user = (r["user_event_time_ms"],)
        user_values = user_pick(r["user_values"])
        return [(*head, c["video_id"], position, *user, c["event_time_ms"], *user_values, *video_pick(c["values"]))
                for position, c in enumerate(r["candidates"])]

    def _picker(self, wanted: tuple[str, ...], given: Sequence[str], same_set: bool) -> Callable[[bytes | None], tuple]:
        """values bytes -> the `wanted` columns' values (None for a name `given` lacks), cached per name list."""
        nothing = (None,) * len(wanted)
        if not same_set:
            return lambda values: nothing
        key = (wanted, tuple(given))
        if key not in self._pickers:
            unpack = struct.Struct(f"<{len(given)}f").unpack
            index = {name: i for i, name in enumerate(given)}
            if list(wanted) == list(given):
                self._pickers[key] = lambda values: nothing if values is None or len(values) != 4 * len(given) \
                    else unpack(values)
            else:
                slots = [index.get(name) for name in wanted]

                def pick(values: bytes | None) -> tuple:
                    if values is None or len(values) != 4 * len(given):
                        return nothing
                    found = unpack(values)
                    return tuple(None if i is None else found[i] for i in slots)

                self._pickers[key] = pick
        return self._pickers[key]


@dataclass(frozen=True, kw_only=True)
class ServedLogStats:
    """Counts since the logger started. sampled: reads the rate chose; logged: records Kafka acknowledged;
    dropped: sampled reads a full queue turned away (the read went on); failed: records over a field limit,
    or that Kafka refused; pending: sampled reads not yet acknowledged or failed."""

    sampled: int
    logged: int
    dropped: int
    failed: int
    last_error: str | None

    @property
    def pending(self) -> int:
        return self.sampled - self.dropped - self.logged - self.failed


class ServedSink(Protocol):
    """Where encoded records go: `KafkaServedSink`, or any object with these three methods."""

    def send(self, key: bytes, value: bytes, timestamp_ms: int, done: Callable[[str | None], None]) -> None:
        """Hand one record over without waiting; call `done(None)` once stored, `done(reason)` if it failed."""

    def poll(self) -> None:
        """Serve outstanding `done` callbacks."""

    def flush(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for everything sent; return how many records are still outstanding."""


class KafkaServedSink:
    """Produces ServedFeatures records to `fyp.served-features.v1` (idempotent, acks=all, lz4, keyed by user)."""

    def __init__(self, settings: Settings, *, topic: str = SERVED_FEATURES.name) -> None:
        from confluent_kafka import Producer  # the tools environment has it; the Flink one reads, never produces

        self.topic = topic
        self.producer = Producer({
            **settings.kafka_producer_config(),
            "linger.ms": 50, "compression.type": "lz4",
            # One record may be as large as the topic takes (2 MiB); librdkafka's default stops at 1 MB.
            "message.max.bytes": SERVED_FEATURES.max_message_bytes,
            "queue.buffering.max.kbytes": 262_144,  # at most 256 MB waiting in librdkafka: then a send fails
            "log_level": 0,
        })

    def send(self, key: bytes, value: bytes, timestamp_ms: int, done: Callable[[str | None], None]) -> None:
        def delivered(error: Any, _message: Any) -> None:
            done(None if error is None else str(error))

        try:
            self.producer.produce(self.topic, value=value, key=key, timestamp=timestamp_ms, on_delivery=delivered)
        except BufferError:
            done("local queue full")
        self.producer.poll(0)

    def poll(self) -> None:
        self.producer.poll(0)

    def flush(self, timeout_s: float) -> int:
        return self.producer.flush(timeout_s)


_STOP = object()


class ServedLog:
    """The sampled, never-blocking logger `FeatureClient(served_log=...)` hands reads to.

    sink: where encoded records go (`from_settings`: Kafka); None encodes them and keeps nothing (each counts as
        logged), to exercise the encoder alone.
    sample_rate: share of requests logged, 0..1, decided per request id (`sampled`); Settings default 0.01
        (FYP_SERVED_LOG_SAMPLE_RATE).
    queue_size: sampled reads that may wait for the encoder (default 256); more are dropped and counted.

    >>> served = ServedLog(sink=None, sample_rate=0.0, start=False)
    >>> served.wants("r1"), served.stats().sampled
    (False, 0)
    """

    def __init__(self, sink: ServedSink | None, *, sample_rate: float, queue_size: int = DEFAULT_QUEUE_SIZE,
                 start: bool = True) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sample_rate = sample_rate
        self.sink = sink
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()  # guards the counters the read path and the delivery callbacks change
        self._sampled = self._logged = self._dropped = self._failed = 0
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="served-log", daemon=True)
        if start:
            self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, *, sample_rate: float | None = None,
                      queue_size: int = DEFAULT_QUEUE_SIZE) -> ServedLog:
        """A logger producing to Kafka at `sample_rate` (default: `settings.served_log_sample_rate`)."""
        rate = settings.served_log_sample_rate if sample_rate is None else sample_rate
        return cls(KafkaServedSink(settings), sample_rate=rate, queue_size=queue_size)

    def wants(self, request_id: str) -> bool:
        """Whether this request is sampled: the read path's only question when logging is on."""
        return self.sample_rate > 0.0 and sampled(request_id, self.sample_rate)

    def offer(self, read: ServedRead) -> bool:
        """Queue a sampled read for encoding and return at once: False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(read)
        except queue.Full:
            with self._lock:
                self._sampled += 1
                self._dropped += 1
            return False
        with self._lock:
            self._sampled += 1
        return True

    def stats(self) -> ServedLogStats:
        with self._lock:
            return ServedLogStats(sampled=self._sampled, logged=self._logged, dropped=self._dropped,
                                  failed=self._failed, last_error=self._last_error)

    def close(self, timeout_s: float = 10.0) -> ServedLogStats:
        """Encode what is queued, wait up to `timeout_s` for Kafka to acknowledge it, stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP, timeout=timeout_s)
            self._thread.join(timeout_s)
        if self.sink is not None:
            self.sink.flush(timeout_s)
        return self.stats()

    def __enter__(self) -> ServedLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _done(self, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._logged += 1
            else:
                self._failed += 1
                self._last_error = error

    def _run(self) -> None:
        registry = default_registry()
        while True:
            try:
                read = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.sink is not None:
                    self.sink.poll()
                continue
            if read is _STOP:
                return
            try:
                payload = encode_served(read, registry)
            except Exception as exc:  # a bug or a limit must cost this record, never the thread
                log.warning("served read %s not logged: %s", read.request_id, exc)
                self._done(f"encode: {exc}")
                continue
            if self.sink is None:
                self._done(None)
                continue
            try:
                self.sink.send(read.user_id.encode(), payload, read.served_time_ms, self._done)
            except Exception as exc:  # e.g. a record Kafka refuses outright: count it, keep the thread
                log.warning("served read %s not logged: %s", read.request_id, exc)
                self._done(f"send: {exc}")
