"""The live index behind one lock: the feed writes through it and the HTTP layer searches through it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from fyp.index.ann import Neighbor
from fyp.index.scann_index import ScannIndex

__all__ = ["IndexHolder"]


class IndexHolder:
    """The live index; `lock` serialises searches and writes (ScaNN is not safe to search while it changes).

    One thread writes (`apply`, `swap`); any thread searches.

    >>> holder = IndexHolder(ScannIndex.build(["a", "b", "c"], np.eye(3, dtype=np.float32) + 0.1))
    >>> [n.video_id for n in holder.similar("a", k=1)], holder.similar("zz", k=1)
    (['b'], None)
    """

    def __init__(self, index: ScannIndex) -> None:
        self.index = index
        self.lock = threading.Lock()
        self.searches = 0

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        with self.lock:
            self.searches += 1
            return self.index.search(query, k)

    def similar(self, video_id: str, k: int) -> list[Neighbor] | None:
        """Neighbours of a video already in the index, without itself; None when it is not there."""
        with self.lock:
            vector = self.index.vector(video_id)
            if vector is None:
                return None
            self.searches += 1
            found = self.index.search(vector, k + 1)
        return [n for n in found if n.video_id != video_id][:k]

    def apply(self, upsert_ids: Sequence[str], upsert_vectors: np.ndarray, delete_ids: Sequence[str]) -> None:
        with self.lock:
            if delete_ids:
                self.index.delete(delete_ids)
            if upsert_ids:
                self.index.upsert(upsert_ids, upsert_vectors)

    def swap(self, index: ScannIndex) -> None:
        with self.lock:
            self.index = index
