"""Build the dead-letter record for a Kafka record that could not be processed.

The features job writes them for engagement events (fyp.engagement.dlq.v1), the transcoder and moderator workers
for upload records (fyp.uploads.dlq.v1, workers/dead_letters.py). Both put the original key on the dead letter's
record key and copy the original record's headers onto it; the workers add CONSUMER_HEADER, because two consumer
groups read the uploads topic and each parks what it could not process.
"""

from __future__ import annotations

import time
import uuid

from schemas.registry import default_registry

__all__ = ["CONSUMER_HEADER", "dead_letter_payload"]

CONSUMER_HEADER = "fyp-dlq-consumer"  # on a worker's dead letter: the consumer group that could not process it


def dead_letter_payload(
    topic: str, partition: int, offset: int, reason: str, payload: bytes | None, *, key: bytes | None = None,
    failed_at_ms: int | None = None,
) -> bytes:
    """A single-object-encoded `DeadLetter` carrying the original bytes and why they were rejected.

    failed_at_ms: epoch milliseconds; defaults to now.
    """
    return default_registry().encode("DeadLetter", {
        "event_id": str(uuid.uuid4()),
        "topic": topic,
        "partition": int(partition),
        "offset": int(offset),
        "key": key,
        "reason": reason,
        "payload": payload or b"",
        "failed_at": failed_at_ms if failed_at_ms is not None else int(time.time() * 1000),
    })
