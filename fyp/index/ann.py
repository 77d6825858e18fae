"""The `AnnIndex` protocol and what every implementation shares: `Neighbor`, `normalize`, the `RowStore`
that maps video ids to dense rows, and the files a saved index starts with (index.json, ids.json).

Vectors are L2-normalised on the way in, so the dot product an index scores is the cosine similarity;
scores returned are cosines in [-1, 1]. Video ids are strings. The implementations: ScaNN in
`fyp.index.scann_index` (the one the service runs), exact search in `fyp.index.exact` (the recall
reference), FAISS and hnswlib in `fyp.index.peers` (benchmark peers).

>>> rows = RowStore(dim=2)
>>> rows.append(["a", "b"], normalize([[3.0, 4.0], [0.0, 2.0]], 2))
[0, 1]
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "IDS_FILE",
    "META_FILE",
    "VECTORS_FILE",
    "AnnIndex",
    "Neighbor",
    "RowStore",
    "last_wins",
    "normalize",
    "read_meta",
    "write_meta",
]

FORMAT_VERSION = 1  # of the files `save` writes; `load` refuses other versions
META_FILE = "index.json"
IDS_FILE = "ids.json"
VECTORS_FILE = "vectors.npy"


class Neighbor(NamedTuple):
    """One search result: a video and its cosine similarity to the query. (A NamedTuple: a search makes k of
    them, and a frozen dataclass costs about 1 us each to build, a fifth of a ScaNN query.)"""

    video_id: str
    score: float


@runtime_checkable
class AnnIndex(Protocol):
    """What the service and the benchmark need from an index (implementations: see the module docstring)."""

    kind: str  # e.g. "scann", "faiss-hnsw"
    dim: int

    def __len__(self) -> int: ...

    def __contains__(self, video_id: object) -> bool: ...

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Insert new videos, replace the vectors of known ones; the last of duplicate ids wins."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Remove videos; unknown ids are ignored. Returns how many were removed."""
        ...

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        """The k most similar videos, best first (fewer when the index holds fewer)."""
        ...

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]: ...

    def vector(self, video_id: str) -> np.ndarray | None:
        """The stored (normalised) vector of a video, or None."""
        ...

    def save(self, directory: Path) -> None:
        """Write everything `load` needs into an existing, empty directory."""
        ...


def normalize(vectors: np.ndarray | Sequence[Sequence[float]], dim: int) -> np.ndarray:
    """Float32, C-contiguous, each row scaled to unit length; shape (n, dim).

    vectors: one vector (dim,) or a batch (n, dim). Raises ValueError for another width, a NaN/inf, or an
    all-zero row (it has no direction, so no cosine).

    >>> normalize([3.0, 4.0], 2).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    array = np.asarray(vectors, dtype=np.float32)
    if array.shape == (dim,):
        # One query, the service's hot path: a dot product and a scale (einsum and two reductions over a
        # batch cost several microseconds a call, a few percent of a 1M-vector search).
        squares = float(np.dot(array, array))
        if not math.isfinite(squares):
            raise ValueError("vectors contain NaN or infinity (or values too large to square)")
        if squares == 0.0:
            raise ValueError("a vector is all zeros")
        return (array * np.float32(1.0 / math.sqrt(squares))).reshape(1, dim)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"expected vectors of dimension {dim}, got shape {array.shape}")
    squares = np.einsum("ij,ij->i", array, array)
    if not np.isfinite(squares).all():  # one NaN or infinity (or a value near float32's limit) poisons the sum
        raise ValueError("vectors contain NaN or infinity (or values too large to square)")
    if not squares.all():
        raise ValueError("a vector is all zeros")
    return array / np.sqrt(squares)[:, None]  # a new C-contiguous float32 array



def last_wins(ids: Sequence[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Drop earlier duplicates of an id within one batch."""
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
    last = {video_id: i for i, video_id in enumerate(ids)}
    if len(last) == len(ids):
        return list(ids), vectors
    keep = sorted(last.values())
    return [ids[i] for i in keep], vectors[keep]


class RowStore:
    """Ids and vectors by dense row, deleting by moving the last row into the hole (as ScaNN does).

    >>> rows = RowStore(dim=2)
    >>> rows.append(["a", "b", "c"], np.eye(3, 2, dtype=np.float32))
    [0, 1, 2]
    >>> rows.remove("a")  # row 0 freed; "c" moves from row 2 into it
    0
    >>> rows.ids, rows.row_of("c")
    (['c', 'b'], 0)
    """

    def __init__(self, *, dim: int, ids: Sequence[str] = (), vectors: np.ndarray | None = None) -> None:
        self.dim = dim
        self.ids: list[str] = list(ids)
        self._rows = {video_id: row for row, video_id in enumerate(self.ids)}
        if len(self._rows) != len(self.ids):
            raise ValueError("duplicate ids")
        data = np.zeros((0, dim), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        if data.shape != (len(self.ids), dim):
            raise ValueError(f"{len(self.ids)} ids but vectors of shape {data.shape}")
        self._data = np.array(data, dtype=np.float32, copy=True)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._rows

    def row_of(self, video_id: str) -> int | None:
        return self._rows.get(video_id)

    @property
    def vectors(self) -> np.ndarray:
        """Row-aligned view of the vectors (do not keep it across writes)."""
        return self._data[: len(self.ids)]

    def append(self, ids: Sequence[str], vectors: np.ndarray) -> list[int]:
        start = len(self.ids)
        end = start + len(ids)
        if end > len(self._data):
            grown = np.zeros((max(end, 2 * len(self._data), 1024), self.dim), np.float32)
            grown[:start] = self._data[:start]
            self._data = grown
        self._data[start:end] = vectors
        for offset, video_id in enumerate(ids):
            self._rows[video_id] = start + offset
        self.ids.extend(ids)
        return list(range(start, end))

    def replace(self, row: int, vector: np.ndarray) -> None:
        self._data[row] = vector

    def remove(self, video_id: str) -> int:
        """Forget a video; returns the row it had, now held by what was the last row."""
        row = self._rows.pop(video_id)
        last = len(self.ids) - 1
        if row != last:
            moved = self.ids[last]
            self.ids[row] = moved
            self._rows[moved] = row
            self._data[row] = self._data[last]
        self.ids.pop()
        return row


def read_meta(directory: Path, kind: str | None = None) -> dict[str, Any]:
    """index.json of a saved index; checks the format version and (when given) the kind."""
    meta = json.loads((Path(directory) / META_FILE).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: index format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    if kind is not None and meta.get("kind") != kind:
        raise ValueError(f"{directory}: holds a {meta.get('kind')!r} index, not {kind!r}")
    return meta


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    """index.json of a saved index: `meta` (kind, dim, size, the implementation's own knobs) and the format."""
    (Path(directory) / META_FILE).write_text(
        json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2, sort_keys=True)
    )
