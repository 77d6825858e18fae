"""Build the dead-letter record for a Kafka record that could not become an engagement row."""

from __future__ import annotations

import time
import uuid

from schemas.registry import default_registry

__all__ = ["dead_letter_payload"]


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
