"""The dead-letter topic as data: read it, select by reason and time, summarise, and replay to the original topic.

Two dead-letter topics: fyp.engagement.dlq.v1 (the features job's) and fyp.uploads.dlq.v1 (the transcoder's and
the moderator's, workers/dead_letters.py); `read_dead_letters(settings, topic=...)` reads either.

A dead letter (schemas/avro/DeadLetter.avsc) keeps the original payload, partition, offset and key; its writer also
copies the original headers onto the dead-letter record (jobs/engagement_features.py, workers/dead_letters.py), and
the workers add `fyp-dlq-consumer: <consumer group>`. A replay sends the payload back to the topic it came from
with that key and the original headers, plus `fyp-dlq-offset` naming the dead letter it came from, so the record
lands on the same partition as its user's (or video's) other records. Two consumer groups read the uploads topic,
so one unreadable upload record has a dead letter from each: a replay sends each original offset once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from fyp.config import Settings
from schemas.registry import UndecodableEvent, default_registry
from schemas.topics import ALL_TOPICS, ENGAGEMENT_DLQ
from udfs.dead_letter import CONSUMER_HEADER

__all__ = ["DLQ_TOPICS", "REPLAY_HEADER", "DeadLetter", "DeadLetterSummary", "distinct_originals", "read_dead_letters",
           "replay", "replay_headers", "select", "summarize"]

REPLAY_HEADER = "fyp-dlq-offset"  # on a replayed record: "<dlq partition>:<dlq offset>" it was replayed from
# The dead-letter topics (those that carry DeadLetter records), engagement first: what `fyp dlq --topic` accepts.
DLQ_TOPICS: tuple[str, ...] = tuple(t.name for t in ALL_TOPICS if t.record_names == ("DeadLetter",))


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic, decoded."""

    dlq_partition: int
    dlq_offset: int
    reason: str
    topic: str  # where the original was read
    partition: int
    offset: int
    key: bytes | None
    payload: bytes
    failed_at_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def consumer(self) -> str | None:
        """The consumer group that gave up on the record (a worker's dead letter), else None."""
        for name, value in self.headers:
            if name == CONSUMER_HEADER and value is not None:
                return _text(value)
        return None

    @property
    def origin(self) -> tuple[str, int, int]:
        """Where the original was read: (topic, partition, offset); one per original, however many dead letters."""
        return (self.topic, self.partition, self.offset)

    def summary(self) -> dict[str, object]:
        """A JSON-safe view: the key as text where it is UTF-8, the payload's size rather than its bytes."""
        return {"dlq_offset": self.dlq_offset, "reason": self.reason, "topic": self.topic,
                "partition": self.partition, "offset": self.offset, "key": _text(self.key),
                "failed_at_ms": self.failed_at_ms, "payload_bytes": len(self.payload),
                "headers": [name for name, _ in self.headers], "consumer": self.consumer}


@dataclass(frozen=True)
class DeadLetterSummary:
    total: int
    by_reason: dict[str, int]
    samples: dict[str, list[dict[str, object]]] = field(default_factory=dict)


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.hex()


def decode_dead_letter(partition: int, offset: int, value: bytes, headers: Iterable[tuple[str, bytes]] = ()
                       ) -> DeadLetter:
    """A DLQ record's value as a DeadLetter; an undecodable one (written by something else) gets reason
    `unreadable_dead_letter` and its raw bytes as the payload, so that it is counted, not hidden."""
    try:
        event = default_registry().decode(value)
    except UndecodableEvent:
        event = None
    if event is None or event.record_name != "DeadLetter":  # another record is as unreadable as garbage here
        return DeadLetter(partition, offset, "unreadable_dead_letter", "", -1, -1, None, value or b"", 0,
                          tuple(headers))
    record = event.record
    return DeadLetter(partition, offset, record["reason"], record["topic"], record["partition"], record["offset"],
                      record["key"], record["payload"], record["failed_at"], tuple(headers))


def select(letters: Iterable[DeadLetter], *, reasons: tuple[str, ...] = (), since_ms: int | None = None,
           until_ms: int | None = None) -> Iterator[DeadLetter]:
    """Dead letters whose reason is one of `reasons` or starts with one followed by `:` (`too_long` matches
    `too_long:comment_text`), failed within [since_ms, until_ms); no filter keeps everything."""
    for letter in letters:
        if reasons and not any(letter.reason == r or letter.reason.startswith(r + ":") for r in reasons):
            continue
        if since_ms is not None and letter.failed_at_ms < since_ms:
            continue
        if until_ms is not None and letter.failed_at_ms >= until_ms:
            continue
        yield letter


def summarize(letters: Iterable[DeadLetter], *, samples_per_reason: int = 3) -> DeadLetterSummary:
    """Counts by reason, most frequent first, with the first few of each as samples."""
    counts: Counter[str] = Counter()
    samples: dict[str, list[dict[str, object]]] = {}
    for letter in letters:
        counts[letter.reason] += 1
        kept = samples.setdefault(letter.reason, [])
        if len(kept) < samples_per_reason:
            kept.append(letter.summary())
    return DeadLetterSummary(total=sum(counts.values()), by_reason=dict(counts.most_common()), samples=samples)


def read_dead_letters(settings: Settings, *, topic: str = ENGAGEMENT_DLQ.name,
                      progress: Callable[[int, int], None] | None = None) -> Iterator[DeadLetter]:
    """Every dead letter on `topic` up to its end when called, in offset order per partition. Reads without a
    consumer group, so nothing is committed and two readers never share the work.

    progress: called with (records read, records in all) as it goes.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({**settings.kafka_client_config(), "group.id": "fyp-dlq-reader", "enable.auto.commit": False,
                         "log_level": 0})
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        ends: dict[int, tuple[int, int]] = {}
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = (low, high)
        total = sum(high - low for low, high in ends.values())
        consumer.assign([TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        remaining = {p: high for p, (_, high) in ends.items()}
        read = 0
        while remaining:
            message = consumer.poll(5.0)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            partition, offset = message.partition(), message.offset()
            if partition not in remaining:
                continue
            yield decode_dead_letter(partition, offset, message.value() or b"", message.headers() or ())
            read += 1
            if progress:
                progress(read, total)
            if offset + 1 >= remaining[partition]:
                del remaining[partition]
    finally:
        consumer.close()


def replay_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    """The original record's headers from a dead letter's: without `fyp-dlq-consumer`, which the worker added, nor
    the `fyp-dlq-offset` of an earlier replay (the new replay sets its own, so a record carries one).

    >>> replay_headers([("trace", b"t1"), ("fyp-dlq-consumer", b"fyp-transcoder"), ("fyp-dlq-offset", b"0:7")])
    [('trace', b't1')]
    """
    return [(name, value) for name, value in headers if name not in (CONSUMER_HEADER, REPLAY_HEADER)]


def distinct_originals(letters: Iterable[DeadLetter]) -> int:
    """How many originals `letters` stand for (a record parked by two consumer groups counts once)."""
    return len({letter.origin for letter in letters})


def replay(settings: Settings, letters: Iterable[DeadLetter]) -> int:
    """Produce each dead letter's payload to its original topic with its original key and headers (not the
    worker's `fyp-dlq-consumer`); returns how many Kafka acknowledged. An original parked twice (by two consumer
    groups) is sent once. Raises when any was refused, after waiting for the rest."""
    from confluent_kafka import Producer

    producer = Producer(settings.kafka_producer_config())
    failures: list[str] = []
    sent = 0

    def delivered(error, _message) -> None:
        nonlocal sent
        if error is not None:
            failures.append(str(error))
        else:
            sent += 1

    sent_origins: set[tuple[str, int, int]] = set()
    for letter in letters:
        if not letter.topic:
            failures.append(f"dead letter at offset {letter.dlq_offset} has no original topic")
            continue
        if letter.origin in sent_origins:  # the same original parked by a second consumer group
            continue
        sent_origins.add(letter.origin)
        headers = [*replay_headers(letter.headers),
                   (REPLAY_HEADER, f"{letter.dlq_partition}:{letter.dlq_offset}".encode())]
        producer.produce(letter.topic, value=letter.payload, key=letter.key, headers=headers, on_delivery=delivered)
        producer.poll(0)
    if producer.flush(60) != 0:
        failures.append("Kafka did not acknowledge every replayed record within 60 s")
    if failures:
        raise RuntimeError(f"{len(failures)} replays failed; first: {failures[0]}")
    return sent
