"""Recall@K of rankers (the model, popularity, the generator's oracle) on held-out positives.

For each held-out positive (user, video, t): every ranker scores the whole catalogue for that query, the
user's recent positives as of t are left out (a feed does not recommend them again), and the query is a hit
at K when its video is in the top K. Recall@K is the share of hits. Ties break towards the lower catalogue
index, deterministically.

The headline figures: the model against popularity (`ratio`, model / popularity), and, when the oracle
ranked too, the share of the oracle's lift over popularity the model reaches (`lift`,
(model - popularity) / (oracle - popularity): 1 means as good as knowing the world's truth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RecallReport", "Scorer", "popularity_scorer", "recall_at_k", "top_k"]

_CHUNK = 512

Scorer = Callable[[np.ndarray], np.ndarray]  # query row indices (m,) -> (m, catalogue) scores, higher is better


@dataclass(frozen=True, kw_only=True)
class RecallReport:
    """Recall per ranker and K (`recall["model"][50]`), over `queries` held-out positives."""

    queries: int
    recall: dict[str, dict[int, float]]

    @property
    def model(self) -> dict[int, float]:
        return self.recall["model"]

    @property
    def popularity(self) -> dict[int, float]:
        return self.recall["popularity"]

    @property
    def ratio(self) -> dict[int, float]:
        """model / popularity per K (inf when popularity is 0)."""
        return {k: (self.model[k] / p if (p := self.popularity[k]) > 0 else float("inf")) for k in self.model}

    @property
    def lift(self) -> dict[int, float] | None:
        """(model - popularity) / (oracle - popularity) per K; None without an oracle (nan if it ties)."""
        if "oracle" not in self.recall:
            return None
        return {k: ((self.model[k] - self.popularity[k]) / gap if (gap := o - self.popularity[k]) > 0
                    else float("nan")) for k, o in self.recall["oracle"].items()}

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"queries": self.queries}
        for name, by_k in self.recall.items():
            out[name] = {str(k): v for k, v in by_k.items()}
        out["ratio"] = {str(k): v for k, v in self.ratio.items()}
        if (lift := self.lift) is not None:
            out["oracle_lift"] = {str(k): v for k, v in lift.items()}
        return out


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first (ties: lower index first).

    >>> top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 2).tolist()
    [[1, 3]]
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def _hits(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """(len(ks),) hit counts. exclude: (n, h) catalogue indices to leave out, -1 pads."""
    scores = np.array(scores, dtype=np.float64)  # a copy: the exclusions are written into it
    rows = np.repeat(np.arange(len(targets)), exclude.shape[1])
    cols = exclude.ravel()
    keep = cols >= 0
    scores[rows[keep], cols[keep]] = -np.inf
    ranked = top_k(scores, max(ks))
    found = ranked == targets[:, None]
    return np.array([found[:, :k].any(axis=1).sum() for k in ks])


def recall_at_k(rankers: Mapping[str, Scorer], targets: np.ndarray, exclude: np.ndarray,
                ks: Sequence[int] = (10, 50, 100)) -> RecallReport:
    """Recall@K of each ranker. targets: (n,) catalogue indices of the held-out positives; exclude: (n, h)
    catalogue indices left out of each query's ranking, -1 pads. Rankers must include "model" and
    "popularity"; "oracle" is optional.

    >>> pop = lambda rows: np.tile([3.0, 2.0, 1.0], (len(rows), 1))
    >>> mine = lambda rows: np.array([[0.0, 0.0, 1.0]] * len(rows))
    >>> r = recall_at_k({"model": mine, "popularity": pop}, np.array([2, 0]), np.full((2, 1), -1), ks=(1,))
    >>> r.model, r.popularity
    ({1: 0.5}, {1: 0.5})
    """
    if not {"model", "popularity"} <= set(rankers):
        raise ValueError(f"rankers must include model and popularity, got {sorted(rankers)}")
    ks = tuple(sorted(ks))
    hits = {name: np.zeros(len(ks), dtype=np.int64) for name in rankers}
    for s in range(0, len(targets), _CHUNK):
        rows = np.arange(s, min(s + _CHUNK, len(targets)))
        for name, scorer in rankers.items():
            hits[name] += _hits(scorer(rows), targets[rows], exclude[rows], ks)
    n = max(len(targets), 1)
    return RecallReport(queries=len(targets), recall={
        name: {k: float(h) / n for k, h in zip(ks, found, strict=True)} for name, found in hits.items()})


def popularity_scorer(counts: np.ndarray) -> Scorer:
    """Scores by training positives per video, ties towards the lower index, the same for every query."""
    scores = counts.astype(np.float64) - np.arange(len(counts)) / (len(counts) + 1.0)
    return lambda rows: np.broadcast_to(scores, (len(rows), len(scores)))

