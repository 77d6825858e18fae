"""Exact search: every vector scored for every query. The recall reference of the benchmark and its tests.

Rows stay dense, like ScaNN's (a delete moves the last row into the hole), through the shared `RowStore`.

>>> import numpy as np
>>> exact = ExactIndex.build(["a", "b"], np.eye(2, dtype=np.float32))
>>> [n.video_id for n in exact.search(np.array([1.0, 0.2]), k=1)]
['a']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from fyp.index.ann import IDS_FILE, VECTORS_FILE, Neighbor, RowStore, last_wins, normalize, read_meta, write_meta

__all__ = ["ExactIndex", "exact_top_k"]


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int, *, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by dot product: (rows (q, k) int64, scores (q, k) float32), best first.

    Works through the queries `chunk` at a time so that 1000 queries over 1M vectors need 1 GiB, not 4.
    """
    k = min(k, len(base))
    rows = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), chunk):
        sims = queries[start : start + chunk] @ base.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < len(base) else np.argsort(-sims, axis=1)
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        rows[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        scores[start : start + chunk] = np.take_along_axis(top_scores, order, axis=1)
    return rows, scores


class ExactIndex:
    """Every vector scored for every query (numpy matrix product): slow, exact, the recall reference."""

    kind: ClassVar[str] = "exact"

    def __init__(self, *, dim: int) -> None:
        self.dim = dim
        self._rows = RowStore(dim=dim)

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray) -> ExactIndex:
        vectors = np.asarray(vectors, np.float32)
        index = cls(dim=vectors.shape[1])
        index.upsert(ids, vectors)
        return index

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._rows

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids, vectors = last_wins(list(ids), normalize(vectors, self.dim))
        new = []
        for i, video_id in enumerate(ids):
            row = self._rows.row_of(video_id)
            if row is None:
                new.append(i)
            else:
                self._rows.replace(row, vectors[i])
        self._rows.append([ids[i] for i in new], vectors[new])

    def delete(self, ids: Sequence[str]) -> int:
        return len([self._rows.remove(v) for v in dict.fromkeys(ids) if v in self._rows])

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        return self.search_batch(query, k)[0]

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]:
        queries = normalize(queries, self.dim)
        if not len(self):
            return [[] for _ in queries]
        rows, scores = exact_top_k(self._rows.vectors, queries, k)
        ids = self._rows.ids
        return [
            [Neighbor(ids[r], float(s)) for r, s in zip(rr, ss, strict=True)]
            for rr, ss in zip(rows.tolist(), scores.tolist(), strict=True)
        ]

    def vector(self, video_id: str) -> np.ndarray | None:
        row = self._rows.row_of(video_id)
        return None if row is None else self._rows.vectors[row].copy()

    def save(self, directory: Path) -> None:
        np.save(Path(directory) / VECTORS_FILE, self._rows.vectors, allow_pickle=False)
        (Path(directory) / IDS_FILE).write_text(json.dumps(self._rows.ids))
        write_meta(directory, {"kind": self.kind, "dim": self.dim, "size": len(self)})

    @classmethod
    def load(cls, directory: Path) -> ExactIndex:
        meta = read_meta(directory, cls.kind)
        index = cls(dim=int(meta["dim"]))
        ids = json.loads((Path(directory) / IDS_FILE).read_text())
        index._rows = RowStore(dim=index.dim, ids=ids, vectors=np.load(Path(directory) / VECTORS_FILE))
        return index
