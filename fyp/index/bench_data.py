"""What `fyp bench index` runs on: its configuration, the engines it may compare, and the generated vectors.

The data: a seeded Gaussian mixture (unit-normalised), `n // 200` clusters with heavy-tailed (Pareto) sizes
and noise as large as the spread of the centres, so clusters overlap: nearest neighbours are neither trivial
(one tight blob per query) nor meaningless (uniform noise). Queries come from the same mixture and are not in
the index: 1000 measured queries, plus 500 tuning queries that choose each engine's search knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fyp.index.ann import normalize
from fyp.index.scann_index import ScannParams

__all__ = ["ENGINES", "BenchConfig", "Dataset", "engines_from", "make_dataset"]

ENGINES = ("scann", "scann-soar", "faiss-ivf", "faiss-ivfpq", "faiss-hnsw", "hnswlib", "exact")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """What to benchmark.

    n: vectors in the index (default 1M); dim: their dimension; queries: measured queries (not in the index);
    tuning_queries: separate queries that pick each engine's knob; upserts: new vectors for the upsert rate;
    k: neighbours per query (recall@k); target_recall: the recall each engine is tuned to reach;
    engines: a subset of ENGINES; exact_queries: the exact engine is slow, so it is timed on fewer queries;
    hnsw_m / hnsw_ef_construction: graph degree and build effort of both HNSW engines.
    """

    n: int = 1_000_000
    dim: int = 64
    queries: int = 1_000
    tuning_queries: int = 500
    upserts: int = 10_000
    k: int = 10
    target_recall: float = 0.95
    seed: int = 0
    engines: tuple[str, ...] = ENGINES
    exact_queries: int = 100
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200

    def __post_init__(self) -> None:
        if self.n < 1_000:
            raise ValueError(f"n must be >= 1000, got {self.n}")
        if self.dim < 2 or self.queries < 1 or self.tuning_queries < 1 or self.upserts < 1 or self.k < 1:
            raise ValueError("dim >= 2, and queries, tuning_queries, upserts, k >= 1")
        if not 0 < self.target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {self.target_recall}")
        unknown = sorted(set(self.engines) - set(ENGINES))
        if unknown:
            raise ValueError(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")

    @property
    def num_leaves(self) -> int:
        """Partitions for ScaNN and FAISS IVF alike: 2 * sqrt(n)."""
        return ScannParams().leaves_for(self.n)


@dataclass(frozen=True)
class Dataset:
    ids: list[str]
    base: np.ndarray  # (n, dim), unit rows
    queries: np.ndarray
    tuning: np.ndarray
    extra_ids: list[str]
    extra: np.ndarray  # vectors for the upsert measurement


def make_dataset(config: BenchConfig) -> Dataset:
    """Seeded clustered vectors; see the module docstring for the mixture."""
    rng = np.random.default_rng(config.seed)
    clusters = max(8, config.n // 200)
    centres = rng.standard_normal((clusters, config.dim), dtype=np.float32)
    weights = rng.pareto(1.5, clusters) + 1.0
    weights /= weights.sum()
    total = config.n + config.queries + config.tuning_queries + config.upserts
    out = np.empty((total, config.dim), np.float32)
    step = 200_000
    for start in range(0, total, step):  # in slices: the noise for 1M x 64 at once is another 256 MB
        stop = min(total, start + step)
        labels = rng.choice(clusters, stop - start, p=weights)
        out[start:stop] = centres[labels] + rng.standard_normal((stop - start, config.dim), dtype=np.float32)
    out = normalize(out, config.dim)
    n, q, t = config.n, config.queries, config.tuning_queries
    return Dataset(
        ids=[f"v{i:08d}" for i in range(n)],
        base=out[:n],
        queries=out[n : n + q],
        tuning=out[n + q : n + q + t],
        extra_ids=[f"new{i:08d}" for i in range(config.upserts)],
        extra=out[n + q + t :],
    )


def engines_from(text: str | None) -> tuple[str, ...]:
    """`--engines scann,hnswlib` -> ("scann", "hnswlib"); None or empty -> all."""
    if not text:
        return ENGINES
    return tuple(part.strip() for part in text.split(",") if part.strip())
