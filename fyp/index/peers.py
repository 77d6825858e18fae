"""The benchmark's peers of ScaNN behind the same `AnnIndex` protocol: FAISS (IVF-Flat, IVF-PQ + refine,
HNSW) and hnswlib. Exact search, the recall reference, is in `fyp.index.exact`.

All take the same normalised vectors and return cosine scores, like `fyp.index.scann_index.ScannIndex`.
Deletions: hnswlib marks the slot deleted and reuses it; FAISS ids are positions in insertion order, so a
deleted or replaced vector stays in the FAISS index and searches skip it with an id selector (its memory
comes back only on a rebuild). FAISS and hnswlib load on first use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fyp.index.ann import IDS_FILE, Neighbor, last_wins, normalize, read_meta, write_meta

__all__ = ["FaissHnswIndex", "FaissIvfIndex", "HnswlibIndex"]


class _LabelledIndex:
    """Shared by the peers whose library addresses vectors by an integer label we choose or receive."""

    kind: ClassVar[str] = ""
    dim: int

    def __init__(self, *, dim: int) -> None:
        self.dim = dim
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._label_of

    def _neighbors(self, labels: np.ndarray, scores: np.ndarray, k: int) -> list[list[Neighbor]]:
        id_of = self._id_of
        out = []
        for row_labels, row_scores in zip(labels.tolist(), scores.tolist(), strict=True):
            found = [
                Neighbor(id_of[lab], float(s)) for lab, s in zip(row_labels, row_scores, strict=True) if lab in id_of
            ]
            out.append(found[:k])
        return out

    def search(self, query: np.ndarray, k: int) -> list[Neighbor]:
        return self.search_batch(query, k)[0]

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]:
        raise NotImplementedError

    def _save_labels(self, directory: Path, meta: dict[str, Any]) -> None:
        labels = sorted(self._id_of.items())
        (Path(directory) / IDS_FILE).write_text(json.dumps([[lab, vid] for lab, vid in labels]))
        write_meta(directory, {"kind": self.kind, "dim": self.dim, "size": len(self), **meta})

    def _load_labels(self, directory: Path) -> None:
        for label, video_id in json.loads((Path(directory) / IDS_FILE).read_text()):
            self._label_of[video_id] = int(label)
            self._id_of[int(label)] = video_id


class _FaissIndex(_LabelledIndex):
    """FAISS ids are insertion positions; a replaced or deleted vector becomes a tombstone that a search's
    id selector skips."""

    def __init__(self, *, dim: int, index: Any) -> None:
        super().__init__(dim=dim)
        self._index = index
        self._dead: set[int] = set()
        self._selector: Any = None
        self._cached_params: tuple[Any, Any] | None = None

    def _train(self, sample: np.ndarray) -> None:
        if not self._index.is_trained:
            self._index.train(sample)

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids, vectors = last_wins(list(ids), normalize(vectors, self.dim))
        if not ids:
            return
        self._train(vectors)
        old = [self._label_of[v] for v in ids if v in self._label_of]
        self._kill(old)
        first = self._index.ntotal
        self._index.add(vectors)
        for offset, video_id in enumerate(ids):
            self._label_of[video_id] = first + offset
            self._id_of[first + offset] = video_id

    def delete(self, ids: Sequence[str]) -> int:
        labels = [self._label_of.pop(v) for v in dict.fromkeys(ids) if v in self._label_of]
        self._kill(labels)
        return len(labels)

    def _kill(self, labels: list[int]) -> None:
        if not labels:
            return
        import faiss

        for label in labels:
            self._id_of.pop(label, None)
        self._dead.update(labels)
        batch = faiss.IDSelectorBatch(np.fromiter(self._dead, np.int64, len(self._dead)))
        self._selector = (batch, faiss.IDSelectorNot(batch))  # keep the inner selector alive

    def _skip_dead(self) -> dict[str, Any]:
        """Search-parameter keyword for the id selector that hides tombstones (none while there are none)."""
        return {"sel": self._selector[1]} if self._selector else {}

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]:
        queries = normalize(queries, self.dim)
        if not len(self):
            return [[] for _ in queries]
        key = (self._knobs_key(), len(self._dead))
        if self._cached_params is None or self._cached_params[0] != key:  # building them costs ~10 us a query
            self._cached_params = (key, self._search_parameters())
        scores, labels = self._index.search(queries, k, params=self._cached_params[1])
        return self._neighbors(labels, scores, k)

    def _search_parameters(self) -> Any:
        raise NotImplementedError

    def _knobs_key(self) -> tuple[int, ...]:
        return tuple(self._knobs().values())

    def vector(self, video_id: str) -> np.ndarray | None:
        label = self._label_of.get(video_id)
        return None if label is None else self._index.reconstruct(label)

    def save(self, directory: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(Path(directory) / "faiss.index"))
        self._save_labels(directory, {"dead": sorted(self._dead), **self._knobs()})

    def _knobs(self) -> dict[str, Any]:
        return {}

    def _restore(self, directory: Path, meta: dict[str, Any]) -> None:
        import faiss

        self._index = faiss.read_index(str(Path(directory) / "faiss.index"))
        self._load_labels(directory)
        self._kill([int(x) for x in meta.get("dead", [])])


class FaissIvfIndex(_FaissIndex):
    """FAISS inverted file: k-means partitions scanned `nprobe` at a time, exact (IVF-Flat) or with 4-bit PQ
    fast-scan codes whose top `k * k_factor` are rescored exactly (IVF-PQ + refine, ScaNN's recipe)."""

    def __init__(self, *, dim: int, nlist: int, pq: bool = False, nprobe: int = 16, k_factor: int = 4) -> None:
        import faiss

        if pq:
            m = dim // 2 if dim % 2 == 0 else dim
            base = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x4fs", faiss.METRIC_INNER_PRODUCT)
            index = faiss.IndexRefineFlat(base)
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.make_direct_map()  # position -> list entry, for `vector`; 8 bytes a vector
        super().__init__(dim=dim, index=index)
        self.kind = "faiss-ivfpq" if pq else "faiss-ivf"
        self.nlist, self.pq, self.nprobe, self.k_factor = nlist, pq, nprobe, k_factor

    @classmethod
    def build(
        cls,
        ids: Sequence[str],
        vectors: np.ndarray,
        *,
        nlist: int,
        pq: bool = False,
        training_sample_size: int = 250_000,
        seed: int = 0,
    ) -> FaissIvfIndex:
        vectors = normalize(vectors, np.asarray(vectors).shape[1])
        index = cls(dim=vectors.shape[1], nlist=nlist, pq=pq)
        sample = vectors
        if len(vectors) > training_sample_size:
            pick = np.random.default_rng(seed).choice(len(vectors), training_sample_size, replace=False)
            sample = vectors[np.sort(pick)]
        index._index.train(sample)
        index.upsert(ids, vectors)
        return index

    def _search_parameters(self) -> Any:
        import faiss

        ivf = faiss.SearchParametersIVF(nprobe=self.nprobe, **self._skip_dead())
        if not self.pq:
            return ivf
        return faiss.IndexRefineSearchParameters(k_factor=self.k_factor, base_index_params=ivf)

    def _knobs(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "pq": self.pq, "nprobe": self.nprobe, "k_factor": self.k_factor}

    @classmethod
    def load(cls, directory: Path) -> FaissIvfIndex:
        meta = read_meta(directory)
        if meta["kind"] not in ("faiss-ivf", "faiss-ivfpq"):
            raise ValueError(f"{directory}: holds a {meta['kind']!r} index")
        index = cls(
            dim=int(meta["dim"]),
            nlist=int(meta["nlist"]),
            pq=bool(meta["pq"]),
            nprobe=int(meta["nprobe"]),
            k_factor=int(meta["k_factor"]),
        )
        index._restore(directory, meta)
        return index


class FaissHnswIndex(_FaissIndex):
    """FAISS HNSW graph over the exact vectors; `ef_search` trades speed for recall."""

    kind: ClassVar[str] = "faiss-hnsw"

    def __init__(self, *, dim: int, m: int = 16, ef_construction: int = 200, ef_search: int = 64) -> None:
        import faiss

        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        super().__init__(dim=dim, index=index)
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, **kwargs: Any) -> FaissHnswIndex:
        index = cls(dim=np.asarray(vectors).shape[1], **kwargs)
        index.upsert(ids, vectors)
        return index

    def _search_parameters(self) -> Any:
        import faiss

        return faiss.SearchParametersHNSW(efSearch=self.ef_search, **self._skip_dead())

    def _knobs(self) -> dict[str, Any]:
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}

    @classmethod
    def load(cls, directory: Path) -> FaissHnswIndex:
        meta = read_meta(directory, cls.kind)
        index = cls(
            dim=int(meta["dim"]),
            m=int(meta["m"]),
            ef_construction=int(meta["ef_construction"]),
            ef_search=int(meta["ef_search"]),
        )
        index._restore(directory, meta)
        return index


class HnswlibIndex(_LabelledIndex):
    """hnswlib HNSW graph; deleted slots are marked and reused by later inserts."""

    kind: ClassVar[str] = "hnswlib"

    def __init__(
        self,
        *,
        dim: int,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        capacity: int = 1024,
        threads: int = -1,
    ) -> None:
        import hnswlib

        super().__init__(dim=dim)
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=capacity, ef_construction=ef_construction, M=m, allow_replace_deleted=True)
        self._index.set_ef(ef_search)
        self._next_label = 0
        self.m, self.ef_construction, self.threads = m, ef_construction, threads
        self._ef_search = ef_search

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = value
        self._index.set_ef(value)

    def set_num_threads(self, threads: int) -> None:
        self.threads = threads
        self._index.set_num_threads(threads)

    @classmethod
    def build(cls, ids: Sequence[str], vectors: np.ndarray, **kwargs: Any) -> HnswlibIndex:
        index = cls(dim=np.asarray(vectors).shape[1], capacity=max(len(ids), 1), **kwargs)
        index.upsert(ids, vectors)
        return index

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        ids, vectors = last_wins(list(ids), normalize(vectors, self.dim))
        if not ids:
            return
        labels = []
        for video_id in ids:
            label = self._label_of.get(video_id)
            if label is None:
                label = self._next_label
                self._next_label += 1
                self._label_of[video_id] = label
                self._id_of[label] = video_id
            labels.append(label)
        needed = self._index.get_current_count() + len(ids)
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, np.asarray(labels, np.int64), num_threads=self.threads, replace_deleted=True)

    def delete(self, ids: Sequence[str]) -> int:
        count = 0
        for video_id in dict.fromkeys(ids):
            label = self._label_of.pop(video_id, None)
            if label is not None:
                self._id_of.pop(label)
                self._index.mark_deleted(label)
                count += 1
        return count

    def search_batch(self, queries: np.ndarray, k: int) -> list[list[Neighbor]]:
        queries = normalize(queries, self.dim)
        if not len(self):
            return [[] for _ in queries]
        k_eff = min(k, len(self))
        labels, distances = self._index.knn_query(queries, k=k_eff, num_threads=self.threads)
        return self._neighbors(labels, 1.0 - distances, k)  # "ip" distance is 1 - dot

    def vector(self, video_id: str) -> np.ndarray | None:
        label = self._label_of.get(video_id)
        return None if label is None else np.asarray(self._index.get_items([label])[0], np.float32)

    def save(self, directory: Path) -> None:
        self._index.save_index(str(Path(directory) / "hnswlib.bin"))
        self._save_labels(
            directory,
            {
                "m": self.m,
                "ef_construction": self.ef_construction,
                "ef_search": self.ef_search,
                "next_label": self._next_label,
            },
        )

    @classmethod
    def load(cls, directory: Path) -> HnswlibIndex:
        meta = read_meta(directory, cls.kind)
        index = cls(
            dim=int(meta["dim"]),
            m=int(meta["m"]),
            ef_construction=int(meta["ef_construction"]),
            ef_search=int(meta["ef_search"]),
        )
        index._index.load_index(str(Path(directory) / "hnswlib.bin"), allow_replace_deleted=True)
        index._index.set_ef(index.ef_search)
        index._load_labels(directory)
        index._next_label = int(meta["next_label"])
        return index
