"""Kafka producer for upload lifecycle records: `emit(record_name, record)`, keyed by the record's video_id.

The topic follows from the record name (`schemas.topics`: UploadCompleted, Takedown, ... on fyp.uploads.v1,
VideoStatusChanged on fyp.video-status.v1); the value is single-object Avro (`schemas.registry`); the Kafka
timestamp is the record's event_time. `emit` waits for the broker's acknowledgement (idempotent producer,
acks=all), so a caller that got no exception knows the record is stored: the upload API answers 503 otherwise.

>>> emitter = KafkaEmitter(settings)                                   # doctest: +SKIP
>>> emitter.emit("Takedown", {"event_id": "...", "event_time": 1, "video_id": "v1", "author_id": "a1",
...     "reason": "dmca", "notice_id": "n1"})                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fyp.config import Settings
from schemas.registry import SchemaRegistry, default_registry
from schemas.topics import UPLOADS, VIDEO_STATUS, Topic

__all__ = ["EmitFailed", "KafkaEmitter", "topic_for"]

_LIFECYCLE_TOPICS: tuple[Topic, ...] = (UPLOADS, VIDEO_STATUS)


class EmitFailed(RuntimeError):
    """The broker did not acknowledge a record in time, or refused it."""


def topic_for(record_name: str) -> Topic:
    """The topic that carries `record_name`.

    >>> topic_for("VideoStatusChanged").name
    'fyp.video-status.v1'
    """
    for topic in _LIFECYCLE_TOPICS:
        if record_name in topic.record_names:
            return topic
    raise KeyError(f"{record_name} is not an upload lifecycle record")


class KafkaEmitter:
    """`emit(record_name, record)` onto the record's topic; `timeout_s` bounds the wait for the ack (default 10)."""

    def __init__(self, settings: Settings, *, registry: SchemaRegistry | None = None, timeout_s: float = 10.0):
        from confluent_kafka import Producer

        self._registry = registry or default_registry()
        self._timeout_s = timeout_s
        self._producer = Producer({**settings.kafka_producer_config(), "linger.ms": 0})

    def emit(self, record_name: str, record: Mapping[str, Any]) -> None:
        topic = topic_for(record_name)
        key = record[topic.key_field]
        payload = self._registry.encode(record_name, record)
        errors: list[Any] = []

        def delivered(error: Any, _message: Any) -> None:
            if error is not None:
                errors.append(error)

        self._producer.produce(topic.name, key=str(key).encode(), value=payload,
                               timestamp=int(record["event_time"]), on_delivery=delivered)
        if self._producer.flush(self._timeout_s) != 0:
            raise EmitFailed(f"{record_name} for {key} not acknowledged within {self._timeout_s:.0f} s")
        if errors:
            raise EmitFailed(f"{record_name} for {key}: {errors[0]}")

    __call__ = emit

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
