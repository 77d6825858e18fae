"""The `AnnIndex` the service runs: ScaNN (tree + asymmetric hashing + exact reordering; brute force while
small), with the parameters it is trained and searched with.

ScaNN addresses datapoints by a dense row number (0..n-1) and deletes by moving the last row into the freed
one, so a `RowStore` keeps ids, rows and a copy of the vectors in that same order. The copy serves
`vector(video_id)` (for "more like this") and rebuilds.

Not thread-safe: one writer, and no search during a write (the service holds a lock).

>>> import numpy as np
>>> index = ScannIndex.build(["a", "b", "c"], np.eye(3, dtype=np.float32))
>>> [n.video_id for n in index.search(np.array([0.1, 1.0, 0.0]), k=2)]
['b', 'a']
>>> index.delete(["b"])
1
>>> [n.video_id for n in index.search(np.array([0.1, 1.0, 0.0]), k=2)]
['a', 'c']
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from fyp.index.ann import (
    IDS_FILE,
    VECTORS_FILE,
    Neighbor,
    RowStore,
    last_wins,
    normalize,
    read_meta,
    write_meta,
)

__all__ = ["ScannIndex", "ScannParams"]


@dataclass(frozen=True, kw_only=True)
class ScannParams:
    """How a `ScannIndex` is trained and searched.

    num_leaves: partitions of the k-means tree; None = 2 * sqrt(n) at training time.
    leaves_to_search: partitions scanned per query; None = max(8, num_leaves / 20). More = better recall.
    reorder: candidates rescored exactly (float32) after the quantised pass; at least k is used.
    dims_per_block: dimensions per asymmetric-hashing (4-bit) code; 2 is ScaNN's recommendation.
    aq_threshold: anisotropic quantisation threshold (ScaNN's default for dot product is 0.2).
    brute_force_below: below this many vectors, score them all exactly (no tree to train).
    training_sample_size: vectors sampled to train the tree (k-means). 1M, i.e. all of a 1M index: at 1M x 64
      (bench data) builds on every vector needed 160-192 of 2000 leaves for recall@10 0.95, builds on 250k
      192-224 (a small gain, about k-means' build-to-build variation; docs/INDEX.md).
    spherical: unit-length centroids. ScaNN assigns datapoints to leaves by L2 distance but routes queries by
      dot product; with centroids of unequal length the two disagree, and an upserted vector unlike the
      training data can land in a leaf its own query never visits (seen: 1 in 6 random vectors missed at
      8 of 141 leaves). Unit centroids make both orders the same.
    soar_lambda: SOAR spilling (e.g. 1.5): each vector also goes into a second leaf, chosen so that its
      error there is orthogonal to the first. At 1M x 64 (bench data) it raised recall@10 at 48 of 2000
      leaves from 0.91 to 0.95. Off by default: scann 1.4.2 segfaults when a SOAR index deletes or replaces
      a vector, so such an index refuses both (new vectors are fine); fit for build-once indexes only.
    rebuild_growth: retrain when the size reaches this multiple of (or falls to its inverse of) the size
      the tree was trained at; a tree trained on 100k vectors holding 1M has leaves ten times too big.
    training_threads: 0 = all cores.
    """

    num_leaves: int | None = None
    leaves_to_search: int | None = None
    reorder: int = 100
    dims_per_block: int = 2
    aq_threshold: float = 0.2
    brute_force_below: int = 2_000
    training_sample_size: int = 1_000_000
    spherical: bool = True
    soar_lambda: float | None = None
    rebuild_growth: float = 2.0
    training_threads: int = 0

    def __post_init__(self) -> None:
        if self.num_leaves is not None and self.num_leaves < 2:
            raise ValueError(f"num_leaves must be >= 2, got {self.num_leaves}")
        if self.leaves_to_search is not None and self.leaves_to_search < 1:
            raise ValueError(f"leaves_to_search must be >= 1, got {self.leaves_to_search}")
        if self.reorder < 1:
            raise ValueError(f"reorder must be >= 1, got {self.reorder}")
        if self.rebuild_growth <= 1.0:
            raise ValueError(f"rebuild_growth must be > 1, got {self.rebuild_growth}")
        if self.brute_force_below < 1:
            raise ValueError(f"brute_force_below must be >= 1, got {self.brute_force_below}")

    def leaves_for(self, n: int) -> int:
        leaves = self.num_leaves or int(2 * math.sqrt(n))
        return max(2, min(leaves, n // 4))  # a leaf needs a few points to have a centroid worth the name

    def leaves_to_search_for(self, leaves: int) -> int:
        return min(leaves, self.leaves_to_search or max(8, leaves // 20))


Mode = Literal["brute_force", "tree"]


def _scann() -> tuple[Any, Any]:
    """Import ScaNN on first use: it loads a large shared library. Returns (the wrapper, the pybind module)."""
    from scann.scann_ops.py import scann_ops_pybind

    return scann_ops_pybind, scann_ops_pybind.scann_pybind


def _scann_config(db: np.ndarray, params: ScannParams, k: int) -> tuple[str, Mode, int, int]:
    """ScaNN text config for a searcher over `db`; returns (config, mode, leaves, leaves_to_search)."""
    scann_ops_pybind, _ = _scann()
    n = db.shape[0]
    builder = scann_ops_pybind.builder(db, k, "dot_product")
    if n < params.brute_force_below:
        return builder.score_brute_force().create_config(), "brute_force", 0, 0
    leaves = params.leaves_for(n)
    to_search = params.leaves_to_search_for(leaves)
    config = (
        builder.tree(
            num_leaves=leaves,
            num_leaves_to_search=to_search,
            training_sample_size=min(n, params.training_sample_size),
            spherical=params.spherical,
            soar_lambda=params.soar_lambda,
        )
        .score_ah(params.dims_per_block, anisotropic_quantization_threshold=params.aq_threshold)
        .reorder(params.reorder)
        .create_config()
    )
    return config, "tree", leaves, to_search


class ScannIndex:
    """`AnnIndex` on ScaNN (tree + asymmetric hashing + exact reordering; brute force while small).

    Build one with `ScannIndex.build(ids, vectors)` (or `ScannIndex(dim=...)` for an empty one that grows by
    `upsert`), search with `search` / `search_batch`, persist with `save` / `ScannIndex.load`.
    """

    kind: ClassVar[str] = "scann"
    _DEFAULT_K = 10  # ScaNN wants a default k in its config; every search passes its own

    def __init__(self, *, dim: int, params: ScannParams | None = None) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self.params = params or ScannParams()
        self._rows = RowStore(dim=dim)
        self._searcher, self.mode, self.num_leaves, self.leaves_to_search = self._make_searcher(
            np.zeros((0, dim), np.float32)
        )
        self.reorder = self.params.reorder
        self.trained_size = 0

    # -- building -------------------------------------------------------------------------------------------

    def _make_searcher(self, db: np.ndarray) -> tuple[Any, Mode, int, int]:
        scann_ops_pybind, _ = _scann()
        config, mode, leaves, to_search = _scann_config(db, self.params, self._DEFAULT_K)
        # create_searcher adds the "pure dynamic" stanza an empty database needs.
        wrapper = scann_ops_pybind.create_searcher(db, config, self.params.training_threads)
        return wrapper.searcher, mode, leaves, to_search

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, *, params: ScannParams | None = None) -> ScannIndex:
        """Train and fill an index in one go (much faster than upserting one by one).

        ids: unique video ids, one per row of `vectors` (n, dim); vectors are normalised here.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D (n, dim), got shape {vectors.shape}")
        index = cls(dim=vectors.shape[1], params=params)
        ids, vectors = last_wins(list(ids), vectors)
        if ids:
            index._train(ids, normalize(vectors, index.dim))
        return index

    def _train(self, ids: list[str], normalized: np.ndarray) -> None:
        self._searcher, self.mode, self.num_leaves, self.leaves_to_search = self._make_searcher(normalized)
        self._rows = RowStore(dim=self.dim, ids=ids, vectors=normalized)
        self.trained_size = len(ids)

    def needs_rebuild(self) -> bool:
        """Whether the size has moved far enough from the trained size that a retrain pays off."""
        n = len(self)
        if self.mode == "brute_force":
            return n >= self.params.brute_force_below
        growth = self.params.rebuild_growth
        return n >= self.trained_size * growth or n * growth <= self.trained_size

    def rebuilt(self) -> ScannIndex:
        """A freshly trained copy of this index (same ids, vectors and params); this one is untouched, so
        searches can go on against it while the copy trains."""
        copy = ScannIndex(dim=self.dim, params=self.params)
        if len(self):
            copy._train(list(self._rows.ids), self._rows.vectors.copy())
        return copy

    def configure_search(self, *, leaves_to_search: int | None = None, reorder: int | None = None) -> None:
        """Change the recall/speed trade-off of later searches (no retraining)."""
        if leaves_to_search is not None:
            if leaves_to_search < 1:
                raise ValueError(f"leaves_to_search must be >= 1, got {leaves_to_search}")
            self.leaves_to_search = min(leaves_to_search, max(self.num_leaves, 1))
        if reorder is not None:
            if reorder < 1:
                raise ValueError(f"reorder must be >= 1, got {reorder}")
            self.reorder = reorder

    def set_num_threads(self, threads: int) -> None:
        """Threads ScaNN may use for batched searches (single-query search always uses one)."""
        self._searcher.set_num_threads(threads)

    # -- the protocol ---------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._rows

    @property
    def _spilled(self) -> bool:
        return self.mode == "tree" and self.params.soar_lambda is not None

    def _refuse_if_spilled(self, what: str) -> None:
        if self._spilled:
            raise NotImplementedError(
                f"{what} in a SOAR index crashes scann 1.4.2; rebuild the index instead (or soar_lambda=None)"
            )

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids, vectors = last_wins(list(ids), normalize(vectors, self.dim))
        if not ids:
            return
        indices: list[int | None] = [self._rows.row_of(video_id) for video_id in ids]
        if any(row is not None for row in indices):
            self._refuse_if_spilled("replacing a vector")
        new = [i for i, row in enumerate(indices) if row is None]
        got = self._searcher.upsert(indices, vectors, 256)
        for i, row in enumerate(indices):
            if row is not None:
                self._rows.replace(row, vectors[i])
        expected = self._rows.append([ids[i] for i in new], vectors[new])
        assigned = [got[i] for i in new]
        if assigned != expected:  # ScaNN appends new datapoints in order; anything else would corrupt the map
            raise RuntimeError(f"ScaNN put new vectors at rows {assigned[:5]}..., expected {expected[:5]}...")

    def delete(self, ids: Sequence[str]) -> int:
        if any(video_id in self._rows for video_id in ids):
            self._refuse_if_spilled("deleting a vector")
        rows = [self._rows.remove(video_id) for video_id in dict.fromkeys(ids) if video_id in self._rows]
        if rows:
            # ScaNN applies the deletions one after another, each moving the last row into the hole,
            # exactly as RowStore.remove did: the row numbers line up.
            self._searcher.delete(rows)
        return len(rows)

    def _search_args(self, k: int) -> tuple[int, int]:
        if self.mode == "brute_force":
            return -1, -1
        return max(self.reorder, k), self.leaves_to_search

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not len(self):
            return []
        pre_reorder, leaves = self._search_args(k)
        rows, scores = self._searcher.search(normalize(query, self.dim)[0], k, pre_reorder, leaves)
        ids = self._rows.ids
        return [Neighbor(ids[row], float(score)) for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = normalize(queries, self.dim)
        if not len(self):
            return [[] for _ in range(len(queries))]
        pre_reorder, leaves = self._search_args(k)
        rows, scores = self._searcher.search_batched(queries, k, pre_reorder, leaves, False, 0)
        ids = self._rows.ids
        n = len(ids)
        return [
            [
                Neighbor(ids[r], float(s))
                for r, s in zip(row_list, score_list, strict=True)
                if r < n and not math.isnan(s)
            ]
            for row_list, score_list in zip(rows.tolist(), scores.tolist(), strict=True)
        ]

    def vector(self, video_id: str) -> np.ndarray | None:
        row = self._rows.row_of(video_id)
        return None if row is None else self._rows.vectors[row].copy()

    # -- persistence ----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "size": len(self),
            "mode": self.mode,
            "num_leaves": self.num_leaves,
            "leaves_to_search": self.leaves_to_search,
            "reorder": self.reorder,
            "trained_size": self.trained_size,
        }

    def save(self, directory: Path) -> None:
        """ScaNN's own artifacts (paths relative, so the folder can move), plus ids.json and index.json.

        The vectors come back from ScaNN's float32 dataset asset when it has one; else vectors.npy holds them.
        Nothing here is a pickle: a snapshot fetched from S3 is data, never code.
        """
        directory = Path(directory).resolve()
        self._searcher.serialize(str(directory), True)
        if _dataset_asset(directory) is None:
            np.save(directory / VECTORS_FILE, self._rows.vectors, allow_pickle=False)
        (directory / IDS_FILE).write_text(json.dumps(self._rows.ids))
        write_meta(directory, {**self.stats(), "params": asdict(self.params)})

    @classmethod
    def load(cls, directory: Path) -> ScannIndex:
        """An index written by `save`; raises ValueError when the files disagree with each other."""
        _, scann_pybind = _scann()
        directory = Path(directory).resolve()
        meta = read_meta(directory, cls.kind)
        ids = json.loads((directory / IDS_FILE).read_text())
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{directory / IDS_FILE}: expected a JSON list of strings")
        dataset = _dataset_asset(directory)
        vectors = np.load(dataset or directory / VECTORS_FILE, allow_pickle=False)
        index = cls(dim=int(meta["dim"]), params=ScannParams(**meta["params"]))
        assets = (directory / "scann_assets.pbtxt").read_text()
        index._searcher = scann_pybind.ScannNumpy(str(directory), assets)
        if index._searcher.size() != len(ids) or vectors.shape != (len(ids), index.dim):
            raise ValueError(
                f"{directory}: ScaNN holds {index._searcher.size()} vectors, ids.json {len(ids)}, "
                f"vectors {vectors.shape}"
            )
        index._rows = RowStore(dim=index.dim, ids=ids, vectors=vectors)
        index.mode = meta["mode"]
        index.num_leaves = int(meta["num_leaves"])
        index.leaves_to_search = int(meta["leaves_to_search"])
        index.reorder = int(meta["reorder"])
        index.trained_size = int(meta["trained_size"])
        return index


_ASSET = re.compile(r'asset_type:\s*DATASET_NPY\s+asset_path:\s*"([^"]+)"')


def _dataset_asset(directory: Path) -> Path | None:
    """ScaNN's float32 dataset file, as listed in scann_assets.pbtxt (row order = ScaNN's datapoint order)."""
    assets = directory / "scann_assets.pbtxt"
    if not assets.exists():
        return None
    found = _ASSET.search(assets.read_text())
    if found is None:
        return None
    path = (directory / found[1]).resolve()
    if path.parent != directory:
        raise ValueError(f"{assets}: dataset path {found[1]!r} points outside the snapshot")
    return path

