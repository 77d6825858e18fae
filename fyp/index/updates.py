"""Records of fyp.video-embeddings.v1 to index changes: decode one record, then collapse a batch to its net effect.

A `VideoEmbedding` with `deleted=false` upserts the video's (normalised) vector; `deleted=true`, or a tombstone
(null value), removes it. A record the index cannot use becomes the reason it is skipped, which the feed counts.

Every vector says which model made it (`VideoEmbedding.model`). The decoder keeps the vectors of the model the
index serves, marks those of the model being staged for a swap (`fyp index reembed`), and refuses the rest
(`other_model`). A delete carries no vector and applies whatever its model: a takedown removes the video from
the live index and from the staged one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from fyp.index.ann import normalize

__all__ = ["Batch", "EmbeddingDecoder", "Update", "collapse"]


class Update(NamedTuple):
    """One change to the index: a new vector for a video, or (vector None) its removal. staged: the vector is
    of the model being staged, for the index that will replace the live one (a removal applies to both)."""

    video_id: str
    vector: np.ndarray | None
    staged: bool = False


class EmbeddingDecoder:
    """Kafka (key, value) of fyp.video-embeddings.v1 -> `Update`, or the reason it is skipped.

    dim: the width vectors must have (the feed sets it to a restored snapshot's). model: the embedding model
    the index serves; None only while the feed has not resolved it, and then every vector is refused. staging:
    a second model whose vectors are kept aside (`Update.staged`) for a swap; None when nothing is staged.
    registry: the Avro registry (default: schemas/avro).
    """

    def __init__(self, *, dim: int, model: str | None, staging: str | None = None, registry: Any = None) -> None:
        from schemas.registry import default_registry

        self.dim = dim
        self.model = model
        self.staging = staging
        self._registry = registry or default_registry()
        self.last_model = ""  # the model of the last record `parse` refused as other_model (for the log)

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
        staged = self.staging is not None and record["model"] == self.staging
        if record["model"] != self.model and not staged:
            self.last_model = record["model"]
            return "other_model"
        try:
            vector = normalize(record["vector"], self.dim)[0]
        except ValueError:
            return "bad_vector"
        return Update(record["video_id"], vector, staged)


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
