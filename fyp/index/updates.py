"""Records of fyp.video-embeddings.v1 to index changes: decode one record, then collapse a batch to its net effect.

A `VideoEmbedding` with `deleted=false` upserts the video's (normalised) vector; `deleted=true`, or a tombstone
(null value), removes it. A record the index cannot use becomes the reason it is skipped, which the feed counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from fyp.index.ann import normalize

__all__ = ["Batch", "EmbeddingDecoder", "Update", "collapse"]


class Update(NamedTuple):
    """One change to the index: a new vector for a video, or (vector None) its removal."""

    video_id: str
    vector: np.ndarray | None


class EmbeddingDecoder:
    """Kafka (key, value) of fyp.video-embeddings.v1 -> `Update`, or the reason it is skipped.

    dim: the width vectors must have (the feed sets it to a restored snapshot's); model: only
    records of this embedding model (None: any); registry: the Avro registry (default: schemas/avro).
    """

    def __init__(self, *, dim: int, model: str | None = None, registry: Any = None) -> None:
        from schemas.registry import default_registry

        self.dim = dim
        self.model = model
        self._registry = registry or default_registry()

    def parse(self, key: bytes | None, value: bytes | None) -> Update | str:
        if value is None:  # tombstone: compaction's way of saying the key is gone
            if not key:
                return "tombstone_without_key"
            return Update(key.decode("utf-8", "replace"), None)
        from schemas.registry import UndecodableEvent

        try:
            event = self._registry.decode(value)
        except UndecodableEvent:
            return "undecodable"
        if event.record_name != "VideoEmbedding":
            return "not_a_video_embedding"
        record = event.record
        if record["deleted"]:
            return Update(record["video_id"], None)
        if self.model is not None and record["model"] != self.model:
            return "other_model"
        try:
            vector = normalize(record["vector"], self.dim)[0]
        except ValueError:
            return "bad_vector"
        return Update(record["video_id"], vector)


class Batch(NamedTuple):
    """What one write to the index does: upsert these rows of vectors, delete these videos."""

    upsert_ids: list[str]
    upsert_vectors: np.ndarray  # (len(upsert_ids), dim)
    delete_ids: list[str]


def collapse(updates: Sequence[Update], dim: int) -> Batch:
    """The net effect of updates in order: per video only the last one counts.

    >>> v = np.ones(2, np.float32)
    >>> b = collapse([Update("a", v), Update("b", v), Update("a", None), Update("c", None), Update("c", v)], 2)
    >>> b.upsert_ids, b.delete_ids
    (['b', 'c'], ['a'])
    """
    last: dict[str, np.ndarray | None] = {}
    for update in updates:
        last.pop(update.video_id, None)  # re-insert, so the order is that of the last update
        last[update.video_id] = update.vector
    upserts = [(video_id, v) for video_id, v in last.items() if v is not None]
    vectors = np.stack([v for _, v in upserts]) if upserts else np.zeros((0, dim), np.float32)
    return Batch([video_id for video_id, _ in upserts], vectors, [vid for vid, v in last.items() if v is None])
