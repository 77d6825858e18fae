"""What an upload worker does with each record of fyp.uploads.v1, and parking what it cannot process.

`triage` is the decision, pure (no Kafka): handle the record, skip it (not this worker's: the topic carries the
whole lifecycle), or make it a dead letter, with a reason:

    undecodable:<reason>                     not a record we can read (schemas.registry.UndecodableEvent's reason)
    missing_id / too_long / bad_id / too_many / invalid:<field>
                                             a record of this worker's kind that breaks its field contract
                                             (udfs/upload_limits.py)

and `handling_failure` names what a record broke while being handled (`malformed:<exception>`, `missing_object`,
`bad_key`): a field missing or mistyped, an object it names that is not there. Either way retrying cannot help.

`accept` turns the triage into what a handler of the worker runtime (`workers.runtime`) needs: the record to
handle, None to skip, or `Poison` raised with the reason. `DeadLetterSink` produces the `DeadLetter`
(udfs/dead_letter.py: original topic, partition, offset, key, payload and the reason) to fyp.uploads.dlq.v1, keyed
by the original key and carrying the original headers plus `fyp-dlq-consumer: <group>`, and waits for the broker's
acknowledgement: the runtime commits the original only after that, so a record is never dropped unrecorded.
Both upload workers read the whole topic in their own consumer groups, so a record neither can read (garbage, an
unknown schema) gets one dead letter from each; `fyp dlq replay` sends one copy back per original offset
(fyp/deadletters.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from schemas.registry import DecodedEvent, UndecodableEvent, default_registry
from schemas.topics import UPLOADS_DLQ
from udfs.dead_letter import CONSUMER_HEADER, dead_letter_payload
from udfs.upload_limits import upload_record_error

__all__ = ["DeadLetterSink", "Poison", "Triage", "accept", "dead_letter_headers", "handling_failure", "producer_config",
           "triage"]

Action = Literal["handle", "skip", "dead_letter"]


class Poison(Exception):
    """Raised by a handler for a record that is at fault itself: the runtime parks it with `reason`, never
    retries it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Triage:
    """The decision for one record: `action`, the decoded `event` (handle and skip), the `reason` (dead_letter)."""

    action: Action
    event: DecodedEvent | None = None
    reason: str | None = None


def triage(value: bytes | None, wanted: str, *, skip: Callable[[DecodedEvent], bool] | None = None) -> Triage:
    """What a worker that processes `wanted` records (e.g. "TranscodeRequested") does with a raw value.

    skip: further records of the wanted kind the worker leaves alone (the moderator: the full-ladder stage).

    >>> triage(b"junk", "TranscodeRequested").reason
    'undecodable:bad_marker'
    >>> from schemas.registry import default_registry
    >>> takedown = default_registry().encode("Takedown", {"event_id": "e1", "event_time": 1, "video_id": "v1",
    ...     "author_id": "a1", "reason": "dmca", "notice_id": "n1"})
    >>> triage(takedown, "TranscodeRequested").action
    'skip'
    """
    try:
        event = default_registry().decode(value or b"")  # a null value (tombstone) is as unreadable as garbage
    except UndecodableEvent as exc:
        return Triage("dead_letter", reason=f"undecodable:{exc.reason}")
    if event.record_name != wanted or (skip is not None and skip(event)):
        return Triage("skip", event)
    reason = upload_record_error(event.record_name, event.record)
    if reason is not None:
        return Triage("dead_letter", event, reason)
    return Triage("handle", event)


def accept(value: bytes | None, wanted: str, *, skip: Callable[[DecodedEvent], bool] | None = None
           ) -> Mapping[str, Any] | None:
    """`triage` for a handler: the record to handle, None to skip, or `Poison` raised with the reason.

    >>> accept(b"junk", "TranscodeRequested")
    Traceback (most recent call last):
    ...
    workers.dead_letters.Poison: undecodable:bad_marker
    """
    decision = triage(value, wanted, skip=skip)
    if decision.action == "dead_letter":
        raise Poison(decision.reason or "unknown")
    if decision.action == "skip" or decision.event is None:
        return None
    return decision.event.record


def handling_failure(exc: BaseException) -> str:
    """The dead-letter reason for an exception a record caused while being handled.

    >>> handling_failure(KeyError("source_key")), handling_failure(FileNotFoundError("gone"))
    ('malformed:KeyError', 'missing_object')
    """
    from fyp.media.keys import InvalidKey

    if isinstance(exc, InvalidKey):
        return "bad_key"  # a key we would never have made (fyp/media/keys.py)
    if isinstance(exc, FileNotFoundError):
        return "missing_object"  # an object the record names is not in S3
    # The type only: a reason is counted and grouped by `fyp dlq inspect`, so it must not carry the record's text.
    return f"malformed:{type(exc).__name__}"


def dead_letter_headers(headers: Iterable[tuple[str, bytes | None]] | None, group_id: str
                        ) -> list[tuple[str, bytes | None]]:
    """The original record's headers, then `fyp-dlq-consumer: <group_id>` (which consumer gave up on it).

    >>> dead_letter_headers([("trace", b"t1")], "fyp-transcoder")
    [('trace', b't1'), ('fyp-dlq-consumer', b'fyp-transcoder')]
    """
    return [*(headers or ()), (CONSUMER_HEADER, group_id.encode())]


def producer_config(settings: Any) -> dict[str, Any]:
    """A worker's producer settings: the project's (`Settings.kafka_producer_config`), with a request size that
    lets a dead letter of the largest record the broker accepts through (`UPLOADS_DLQ.max_message_bytes`);
    librdkafka's default, 1,000,000 bytes, is below the broker's 1 MiB record limit."""
    return {**settings.kafka_producer_config(), "message.max.bytes": UPLOADS_DLQ.max_message_bytes}


class DeadLetterSink:
    """Produces dead letters of one consumer group to the uploads DLQ and waits for each to be acknowledged.

    producer: a confluent_kafka Producer (see `producer_config`). topic: the DLQ (default `UPLOADS_DLQ`).
    """

    def __init__(self, producer: Any, group_id: str, *, topic: str = UPLOADS_DLQ.name,
                 timeout_s: float = 30.0) -> None:
        self.producer = producer
        self.group_id = group_id
        self.topic = topic
        self.timeout_s = timeout_s

    def send(self, message: Any, reason: str) -> None:
        """Park `message` (a confluent_kafka Message) with `reason`; raises KafkaException unless acknowledged,
        and then the caller must not commit the original (it is retried, not lost)."""
        from confluent_kafka import KafkaError, KafkaException

        failure: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failure.append(error)

        value = dead_letter_payload(message.topic(), message.partition(), message.offset(), reason,
                                    message.value(), key=message.key())
        self.producer.produce(self.topic, key=message.key(), value=value,
                              headers=dead_letter_headers(message.headers(), self.group_id), on_delivery=delivered)
        if self.producer.flush(self.timeout_s) != 0:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"dead letter not acknowledged within "
                                                                   f"{self.timeout_s:.0f} s"))
        if failure:
            raise KafkaException(failure[0])
