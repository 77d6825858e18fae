"""What the embedding job does with a video's status changes, as pure functions (no Flink, Kafka or Redis).

`jobs/video_embeddings.py` reads fyp.video-status.v1, buffers `StatusChange`s in keyed state and, when a batch
is full (`BatchPolicy.max_items`) or old enough (`BatchPolicy.max_wait`), reads the videos' Redis hashes
(`fyp:video:v1:{id}`) and calls `plan_batch`. Each `Planned` item is an upsert (embed the video, whose text
comes from the hash: caption, hashtags, OCR text) or a delete (`VideoEmbedding.deleted = true`).

Status -> action:

    ready                         -> upsert (APPROVE, AGE_RESTRICT and MUTE_AUDIO all end `ready`)
    rejected, failed, removed     -> delete (a takedown, a rejection, a failure)
    uploaded, transcoding, ...    -> nothing

The hash is read when the batch runs, not when the event arrived, and it wins: a video `ready` in the event
but `removed` in Redis by then is deleted, never embedded. Within a batch only the last change per video
counts, so a ready-then-removed pair in one batch emits one delete, and order per video is kept.

>>> changes = [StatusChange(video_id="v1", author_id="a1", status="ready", event_time_ms=1),
...            StatusChange(video_id="v2", author_id="a2", status="removed", event_time_ms=2)]
>>> [(p.video_id, p.action) for p in plan_batch(changes, {"v1": {"status": "ready", "caption": "hi"}})]
[('v1', 'upsert'), ('v2', 'delete')]
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

__all__ = [
    "DELETE_STATUSES",
    "UPSERT_STATUSES",
    "Action",
    "BatchPolicy",
    "Planned",
    "StatusChange",
    "action_for",
    "decode_status_change",
    "embedding_record",
    "plan_batch",
]

Action = Literal["upsert", "delete"]
UPSERT_STATUSES = frozenset({"ready"})
DELETE_STATUSES = frozenset({"rejected", "failed", "removed"})


@dataclass(frozen=True, kw_only=True)
class BatchPolicy:
    """How the embedding job batches model calls.

    max_items: videos per model call (default 32). Bounds one call's time (~0.1-0.5 s for MiniLM on 2 CPU
    cores), hence how long a checkpoint barrier can wait behind inference.
    max_wait: how long the first buffered change waits for company (default 200 ms); the freshness cost.

    >>> BatchPolicy(max_wait=timedelta(milliseconds=50)).max_wait_ms
    50
    >>> BatchPolicy(max_items=0)
    Traceback (most recent call last):
    ...
    ValueError: max_items must be between 1 and 1024, got 0
    """

    max_items: int = 32
    max_wait: timedelta = timedelta(milliseconds=200)

    def __post_init__(self) -> None:
        if not 1 <= self.max_items <= 1024:
            raise ValueError(f"max_items must be between 1 and 1024, got {self.max_items}")
        if not isinstance(self.max_wait, timedelta) or not timedelta(0) <= self.max_wait <= timedelta(seconds=10):
            raise ValueError(f"max_wait must be a timedelta between 0 and 10 s, got {self.max_wait!r}")

    @property
    def max_wait_ms(self) -> int:
        return int(self.max_wait.total_seconds() * 1000)


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """One VideoStatusChanged, reduced to what the job needs. event_time_ms: epoch ms."""

    video_id: str
    author_id: str
    status: str
    event_time_ms: int

    def to_row(self) -> tuple[str, str, str, int]:
        return (self.video_id, self.author_id, self.status, self.event_time_ms)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StatusChange:
        return cls(video_id=row[0], author_id=row[1], status=row[2], event_time_ms=int(row[3]))


@dataclass(frozen=True, kw_only=True)
class Planned:
    """What to emit for one video: `action`, and for an upsert the video's Redis hash (the encoder's input)."""

    video_id: str
    author_id: str
    action: Action
    event_time_ms: int
    fields: Mapping[str, str] = field(default_factory=dict)


def action_for(status: str) -> Action | None:
    """The index action a status asks for.

    >>> action_for("ready"), action_for("removed"), action_for("transcoding")
    ('upsert', 'delete', None)
    """
    if status in UPSERT_STATUSES:
        return "upsert"
    if status in DELETE_STATUSES:
        return "delete"
    return None


def decode_status_change(payload: bytes | None) -> StatusChange | None:
    """A payload of fyp.video-status.v1 as a `StatusChange` that asks for an action; None otherwise
    (undecodable, another record, a status with nothing to do, a tombstone).

    >>> from schemas.registry import default_registry
    >>> payload = default_registry().encode("VideoStatusChanged", {"event_id": "e1", "event_time": 5,
    ...     "video_id": "v1", "author_id": "a1", "status": "ready", "reason": None})
    >>> decode_status_change(payload).status, decode_status_change(b"junk")
    ('ready', None)
    """
    if not payload:
        return None
    from schemas.registry import UndecodableEvent, default_registry

    try:
        event = default_registry().decode(payload)
    except UndecodableEvent:
        return None
    record = event.record
    if event.record_name != "VideoStatusChanged" or not record.get("video_id") or action_for(record["status"]) is None:
        return None
    return StatusChange(video_id=record["video_id"], author_id=record.get("author_id") or "",
                        status=record["status"], event_time_ms=int(record["event_time"]))


def plan_batch(changes: Sequence[StatusChange], hashes: Mapping[str, Mapping[str, str] | None]) -> list[Planned]:
    """The actions for a batch, in the order of each video's last change.

    hashes: video_id -> the video's Redis hash now (None or absent: Redis has none). An upsert needs a hash
    whose status is still `ready`; a hash in a delete status turns it into a delete; without a hash the video
    is skipped (a `ready` hash never expires, so a missing one means the video is unknown here).
    """
    last: dict[str, StatusChange] = {}
    for change in changes:
        last.pop(change.video_id, None)
        last[change.video_id] = change
    planned = []
    for change in last.values():
        action = action_for(change.status)
        current = hashes.get(change.video_id)
        if action == "upsert":  # the hash is newer than the event: it decides
            action = action_for(current.get("status", "")) if current else None
            if action is None:
                continue
        author = change.author_id or (current or {}).get("author_id", "")
        planned.append(Planned(video_id=change.video_id, author_id=author, action=action or "delete",
                               event_time_ms=change.event_time_ms,
                               fields=dict(current) if action == "upsert" and current else {}))
    return planned


def embedding_record(item: Planned, *, model: str, vector: Sequence[float] | None) -> dict[str, Any]:
    """The VideoEmbedding record for a planned item; a delete carries an empty vector.

    The event_id is derived from (video, model, action, event time), so a replay emits the same ids.

    >>> p = Planned(video_id="v1", author_id="a1", action="delete", event_time_ms=7)
    >>> r = embedding_record(p, model="m", vector=None)
    >>> r["deleted"], r["vector"], r["event_time"]
    (True, [], 7)
    """
    if item.action == "upsert" and not vector:
        raise ValueError(f"an upsert of {item.video_id} needs a vector")
    return {
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:VideoEmbedding:{item.video_id}:{model}:"
                                                       f"{item.action}:{item.event_time_ms}")),
        "event_time": item.event_time_ms,
        "video_id": item.video_id,
        "author_id": item.author_id,
        "model": model,
        "vector": [float(x) for x in vector] if item.action == "upsert" and vector is not None else [],
        "deleted": item.action == "delete",
    }
