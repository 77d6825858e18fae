"""The live index and the model it serves, behind one lock: the feed writes through it, the HTTP layer searches.

The index and its model change together (`swap`), so a query checked against the model is searched in that
model's index: the check and the search happen under the same lock.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence

import numpy as np

from fyp.index.ann import Neighbor
from fyp.index.scann_index import ScannIndex

__all__ = ["IndexHolder", "OtherModel", "RefusalLog"]

log = logging.getLogger("fyp.index.holder")


class OtherModel(ValueError):
    """A query vector made by another model than the one the index serves: refused, never searched."""

    def __init__(self, query_model: str, index_model: str | None) -> None:
        super().__init__(f"the query was made by model {query_model!r}, but this index serves {index_model!r}: "
                         "vectors of different models are not comparable")
        self.query_model = query_model
        self.index_model = index_model


class RefusalLog:
    """Counts refusals by (reason, model) and logs the 1st, 10th, 100th, ... of each, with the count so far:
    a whole catalogue of an old model is refused in a burst, and one line per record would drown the log.

    >>> refusals = RefusalLog("query")
    >>> [refusals.count("other_model", "m1") for _ in range(3)]
    [1, 2, 3]
    >>> refusals.by_model()
    {'other_model': {'m1': 3}}
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def count(self, reason: str, model: str, detail: str = "") -> int:
        with self._lock:
            self.counts[(reason, model)] += 1
            n = self.counts[(reason, model)]
        if n == 1 or str(n).rstrip("0") == "1":
            log.warning("refused %d %s(s) of model %r (%s)%s", n, self.what, model, reason,
                        f": {detail}" if detail else "")
        return n

    def by_model(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (reason, model), n in sorted(self.counts.items()):
                out.setdefault(reason, {})[model] = n
            return out


class IndexHolder:
    """The live index and its model; `lock` serialises searches and writes (ScaNN is not safe to search while
    it changes). One thread writes (`apply`, `swap`); any thread searches.

    model: the embedding model whose vectors the index holds (`VideoEmbedding.model`); None until the feed
    knows it (a service answers nothing before its feed is ready).

    >>> holder = IndexHolder(ScannIndex.build(["a", "b", "c"], np.eye(3, dtype=np.float32) + 0.1), model="m1")
    >>> [n.video_id for n in holder.similar("a", k=1)], holder.similar("zz", k=1)
    (['b'], None)
    >>> try:
    ...     holder.search(np.ones(3), k=1, model="m2")
    ... except OtherModel as refused:
    ...     print(refused.query_model, refused.index_model)
    m2 m1
    """

    def __init__(self, index: ScannIndex, *, model: str | None = None) -> None:
        self.index = index
        self.model = model
        self.lock = threading.Lock()
        self.searches = 0
        self.swaps = 0
        self.refused = RefusalLog("query")

    def search(self, query: np.ndarray, k: int, *, model: str | None = None) -> list[Neighbor]:
        """The k nearest videos; with `model`, only if the index serves that model (else `OtherModel`)."""
        with self.lock:
            if model is not None and model != self.model:
                error = OtherModel(model, self.model)
            else:
                self.searches += 1
                return self.index.search(query, k)
        self.refused.count("other_model", model, f"the index serves {self.model!r}")
        raise error

    def similar(self, video_id: str, k: int) -> list[Neighbor] | None:
        """Neighbours of a video already in the index, without itself; None when it is not there."""
        with self.lock:
            vector = self.index.vector(video_id)
            if vector is None:
                return None
            self.searches += 1
            found = self.index.search(vector, k + 1)
        return [n for n in found if n.video_id != video_id][:k]

    def dots(self, query: np.ndarray, video_ids: Sequence[str], *, model: str) -> list[float | None]:
        """query . vector for each video (None: not in the index); [None, ...] when the index serves another
        model (its vectors are not comparable with the query's). For the feed's coarse ranker."""
        with self.lock:
            if model != self.model:
                return [None] * len(video_ids)
            vectors = [self.index.vector(v) for v in video_ids]
        return [None if v is None else float(v @ query) for v in vectors]

    def vectors(self, video_ids: Sequence[str]) -> tuple[str | None, list[np.ndarray | None]]:
        """(the model served, each video's vector or None when it is not in the index), read under one lock so
        all come from one index. For the feed's reranker (MMR)."""
        with self.lock:
            return self.model, [self.index.vector(v) for v in video_ids]

    def apply(self, upsert_ids: Sequence[str], upsert_vectors: np.ndarray, delete_ids: Sequence[str]) -> None:
        with self.lock:
            if delete_ids:
                self.index.delete(delete_ids)
            if upsert_ids:
                self.index.upsert(upsert_ids, upsert_vectors)

    def swap(self, index: ScannIndex, *, model: str | None = None) -> None:
        """Replace the index (built off to the side: the lock is held for two assignments, so searches never
        wait for a build); with `model`, the index now serves that model."""
        with self.lock:
            self.index = index
            if model is not None:
                if model != self.model and self.model is not None:
                    self.swaps += 1
                self.model = model
