"""The engines `fyp bench index` compares: how each is built, which search-knob settings it tries (each series
ascending in cost), how a setting is applied, and how it is held to one thread for timing."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fyp.index.ann import AnnIndex
from fyp.index.bench_data import BenchConfig, Dataset
from fyp.index.exact import ExactIndex
from fyp.index.peers import FaissHnswIndex, FaissIvfIndex, HnswlibIndex
from fyp.index.scann_index import ScannIndex, ScannParams

__all__ = ["ENGINE_SPECS", "Engine", "build_params"]

# Steps of about 1.2x from 64 up: at 1M, 128 -> 192 was too coarse (ScaNN reaches 0.95 at 160 on some builds).
_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 512, 768, 1024)
_EF_LADDER = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


@dataclass(frozen=True)
class Engine:
    """How to build one engine, the knob settings to try (each series ascending in cost), and how to apply
    a setting."""

    build: Callable[[Dataset, BenchConfig], AnnIndex]
    series: Callable[[AnnIndex], list[list[dict[str, int]]]]
    apply: Callable[[AnnIndex, dict[str, int]], None]
    single_thread: Callable[[AnnIndex], None]


def _faiss_threads(threads: int) -> None:
    import faiss

    faiss.omp_set_num_threads(threads)


def _scann_engine(soar_lambda: float | None = None) -> Engine:
    """ScaNN as the service runs it; with `soar_lambda`, the spilled variant (build-once: see ScannParams)."""

    def build(ds: Dataset, cfg: BenchConfig) -> AnnIndex:
        params = ScannParams(num_leaves=cfg.num_leaves, soar_lambda=soar_lambda)
        return ScannIndex.build(ds.ids, ds.base, params=params)

    def series(index: Any) -> list[list[dict[str, int]]]:
        leaves = [x for x in _LADDER if x <= index.num_leaves]
        return [[{"leaves_to_search": x, "reorder": r} for x in leaves] for r in (50, 100, 200)]

    return Engine(build, series, lambda i, kn: i.configure_search(**kn), lambda i: i.set_num_threads(1))


def _ivf_engine(pq: bool) -> Engine:
    def build(ds: Dataset, cfg: BenchConfig) -> AnnIndex:
        _faiss_threads(os.cpu_count() or 1)
        return FaissIvfIndex.build(ds.ids, ds.base, nlist=cfg.num_leaves, pq=pq, seed=cfg.seed,
                                   training_sample_size=ScannParams().training_sample_size)  # as ScaNN's k-means

    def series(index: Any) -> list[list[dict[str, int]]]:
        probes = [x for x in _LADDER if x <= index.nlist]
        factors = (5, 10, 20) if pq else (1,)  # 50, 100, 200 candidates rescored at k=10, as ScaNN's reorder
        return [[{"nprobe": x, "k_factor": f} for x in probes] for f in factors]

    def apply(index: Any, knob: dict[str, int]) -> None:
        index.nprobe, index.k_factor = knob["nprobe"], knob["k_factor"]

    return Engine(build, series, apply, lambda i: _faiss_threads(1))


def _faiss_hnsw_engine() -> Engine:
    def build(ds: Dataset, cfg: BenchConfig) -> AnnIndex:
        _faiss_threads(os.cpu_count() or 1)
        return FaissHnswIndex.build(ds.ids, ds.base, m=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction)

    def apply(index: Any, knob: dict[str, int]) -> None:
        index.ef_search = knob["ef_search"]

    return Engine(build, lambda i: [[{"ef_search": e} for e in _EF_LADDER]], apply, lambda i: _faiss_threads(1))


def _hnswlib_engine() -> Engine:
    def build(ds: Dataset, cfg: BenchConfig) -> AnnIndex:
        return HnswlibIndex.build(ds.ids, ds.base, m=cfg.hnsw_m, ef_construction=cfg.hnsw_ef_construction)

    def apply(index: Any, knob: dict[str, int]) -> None:
        index.ef_search = knob["ef_search"]

    return Engine(build, lambda i: [[{"ef_search": e} for e in _EF_LADDER]], apply, lambda i: i.set_num_threads(1))


def _exact_engine() -> Engine:
    return Engine(
        lambda ds, cfg: ExactIndex.build(ds.ids, ds.base), lambda i: [[{}]], lambda i, k: None, lambda i: None
    )


# One spec per name in `ENGINES` (tests/unit/fyp/index/test_index_bench.py checks that they match).
ENGINE_SPECS: dict[str, Callable[[], Engine]] = {
    "scann": _scann_engine,
    "scann-soar": lambda: _scann_engine(soar_lambda=1.5),
    "faiss-ivf": lambda: _ivf_engine(pq=False),
    "faiss-ivfpq": lambda: _ivf_engine(pq=True),
    "faiss-hnsw": _faiss_hnsw_engine,
    "hnswlib": _hnswlib_engine,
    "exact": _exact_engine,
}

def build_params(name: str, index: Any, cfg: BenchConfig) -> dict[str, Any]:
    """The build-time settings of a built engine, for the report."""
    if name.startswith("scann"):
        return {"num_leaves": index.num_leaves, "mode": index.mode, "soar_lambda": index.params.soar_lambda}
    if name.startswith("faiss-ivf"):
        return {"nlist": index.nlist}
    if name in ("faiss-hnsw", "hnswlib"):
        return {"m": cfg.hnsw_m, "ef_construction": cfg.hnsw_ef_construction}
    return {}
