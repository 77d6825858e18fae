"""The worker runtime's consumer loop (workers/runtime.py) on the real broker, with a scripted handler on topics of
its own: outputs produced and offsets committed, poison records dead-lettered while the next ones flow, a
transient failure retried without a duplicate output, a handler slower than `max.poll.interval.ms` keeping its
partition, and SIGTERM finishing the record in flight."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fyp.config import Settings
from fyp.deadletters import read_dead_letters
from schemas.topics import UPLOADS_DLQ, Topic
from workers.runtime import Backoff, ConsumerConfig, LoopStats, Output, Poison, run_consumer


@dataclass(frozen=True)
class Topics:
    source: str
    output: str
    dead_letters: str


@pytest.fixture
def topics(settings: Settings) -> Iterator[Topics]:
    run = uuid.uuid4().hex[:8]
    declared = [Topic(name=f"fyp.it-runtime-{run}.v1", key_field="id", partitions=1),
                Topic(name=f"fyp.it-runtime-out-{run}.v1", key_field="id", partitions=1),
                Topic(name=f"fyp.it-runtime-dlq-{run}.v1", key_field="id", partitions=1, record_names=("DeadLetter",),
                      max_message_bytes=UPLOADS_DLQ.max_message_bytes)]
    admin = AdminClient(settings.kafka_client_config())
    created = admin.create_topics([NewTopic(t.name, num_partitions=t.partitions, replication_factor=1,
                                            config=t.config()) for t in declared])
    for future in created.values():
        future.result(timeout=30)
    yield Topics(*(t.name for t in declared))
    for future in admin.delete_topics([t.name for t in declared]).values():
        future.result(timeout=30)


class Script:
    """The test handler: a record `kind:name` decides what happens; each call is counted.

    good -> one output `out:name`; skip -> nothing; poison -> Poison; malformed -> KeyError (a poison type);
    flaky -> ConnectionError on the first call only; slow -> sleeps `slow_s`, then one output.
    """

    def __init__(self, output: str, *, slow_s: float = 0.0) -> None:
        self.output = output
        self.slow_s = slow_s
        self.calls: Counter[str] = Counter()
        self.slow_started = threading.Event()

    def __call__(self, message) -> list[Output]:
        value = message.value().decode()
        kind, _, name = value.partition(":")
        self.calls[value] += 1
        if kind == "poison":
            raise Poison("test:poison")
        if kind == "malformed":
            raise KeyError("field")
        if kind == "flaky" and self.calls[value] == 1:
            raise ConnectionError("the store is restarting")
        if kind == "skip":
            return []
        if kind == "slow":
            self.slow_started.set()
            time.sleep(self.slow_s)
        return [Output(topic=self.output, key=message.key(), value=f"out:{name}".encode())]


def _send(settings: Settings, topic: str, values: list[str]) -> None:
    producer = Producer(settings.kafka_producer_config())
    for value in values:
        name = value.partition(":")[2]
        producer.produce(topic, key=f"k-{name}".encode(), value=value.encode(), headers=[("trace", f"t-{name}")])
    assert producer.flush(10) == 0


def _config(topics: Topics, **overrides) -> ConsumerConfig:
    return ConsumerConfig(topics=(topics.source,), group_id=f"it-runtime-{uuid.uuid4().hex[:8]}",
                          dead_letters=topics.dead_letters, poison=(LookupError,),
                          backoff=Backoff(initial_s=0.2, max_s=1), poll_s=0.2, **overrides)


def _reader(settings: Settings, group: str) -> Consumer:
    """A consumer that never joins `group` (no subscribe): it reads committed offsets, or assigned partitions."""
    return Consumer({**settings.kafka_client_config(), "group.id": group, "enable.auto.commit": False})


def _committed(settings: Settings, group: str, topic: str) -> int:
    consumer = _reader(settings, group)
    try:
        return consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        consumer.close()


def _outputs(settings: Settings, topic: str) -> list[tuple[bytes, bytes]]:
    """Every record of `topic` (one partition), as (key, value)."""
    consumer = _reader(settings, "it-runtime-reader")
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, low)])
        out = []
        deadline = time.monotonic() + 15
        while len(out) < high - low and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                out.append((message.key(), message.value()))
        return out
    finally:
        consumer.close()


def _run_until_committed(settings: Settings, handler: Script, config: ConsumerConfig, offset: int) -> LoopStats:
    """Run the consumer loop in a thread until the group has committed `offset` (30 s at most), then stop it."""
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(run_consumer(handler, config, settings, stop=stop)))
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while (committed := _committed(settings, config.group_id, config.topics[0])) < offset:
            assert time.monotonic() < deadline, f"committed offset {committed}, wanted {offset}"
            time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result, "the loop did not return"
    return result[0]


def test_outputs_commits_dead_letters_and_retries(settings: Settings, topics: Topics) -> None:
    _send(settings, topics.source, ["good:a", "poison:b", "malformed:c", "flaky:d", "skip:e", "good:f"])
    handler, config = Script(topics.output), _config(topics)
    stats = _run_until_committed(settings, handler, config, 6)
    assert _outputs(settings, topics.output) == [(b"k-a", b"out:a"), (b"k-d", b"out:d"), (b"k-f", b"out:f")]
    assert handler.calls["flaky:d"] == 2 and handler.calls["good:f"] == 1
    assert stats == LoopStats(handled=4, produced=3, dead_lettered=2, retried=1, revoked=0)
    letters = list(read_dead_letters(settings, topic=topics.dead_letters))
    assert [(d.reason, d.key, d.offset, d.payload) for d in letters] == [
        ("test:poison", b"k-b", 1, b"poison:b"), ("malformed:KeyError", b"k-c", 2, b"malformed:c")]
    assert letters[0].headers[0] == ("trace", b"t-b")
    assert letters[0].consumer == config.group_id


def test_a_handler_slower_than_max_poll_interval_keeps_its_partition(settings: Settings, topics: Topics) -> None:
    # The broker's smallest session timeout (group.min.session.timeout.ms) is 6 s; the handler takes longer.
    _send(settings, topics.source, ["slow:a", "good:b"])
    handler = Script(topics.output, slow_s=8)
    config = _config(topics, consumer_overrides={"max.poll.interval.ms": 6000, "session.timeout.ms": 6000})
    stats = _run_until_committed(settings, handler, config, 2)
    assert _outputs(settings, topics.output) == [(b"k-a", b"out:a"), (b"k-b", b"out:b")]
    assert handler.calls == {"slow:a": 1, "good:b": 1}
    assert stats == LoopStats(handled=2, produced=2, revoked=0)


def test_sigterm_finishes_the_record_in_flight_and_commits_it(settings: Settings, topics: Topics) -> None:
    _send(settings, topics.source, ["slow:a", "good:b"])
    handler, config = Script(topics.output, slow_s=1.5), _config(topics)
    previous = signal.getsignal(signal.SIGTERM)

    def terminate_once_in_flight() -> None:
        if handler.slow_started.wait(timeout=30):
            os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_in_flight)
    killer.start()
    stats = run_consumer(handler, config, settings)  # on the main thread: it installs the SIGTERM handler
    killer.join()
    assert stats == LoopStats(handled=1, produced=1)
    assert _outputs(settings, topics.output) == [(b"k-a", b"out:a")]
    assert _committed(settings, config.group_id, topics.source) == 1
    assert "good:b" not in handler.calls
    assert signal.getsignal(signal.SIGTERM) is previous
