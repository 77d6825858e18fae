"""Recall@K of a retrieval model against a popularity baseline, on held-out positives.

For each held-out positive (user, video, t): rank every catalogue video by the model's score (user vector .
item vector), and separately by its number of training positives (popularity); the user's earlier positives
are left out of both rankings (a feed does not recommend them again). Recall@K is the share of held-out
positives whose video is in the top K. Ties in popularity break by catalogue order, deterministically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RecallReport", "recall_at_k", "top_k"]

_CHUNK = 1024


@dataclass(frozen=True, kw_only=True)
class RecallReport:
    """Recall per K for the model and the baseline, and their ratio (model / popularity; inf if it is 0)."""

    queries: int
    model: dict[int, float]
    popularity: dict[int, float]

    @property
    def ratio(self) -> dict[int, float]:
        return {k: (self.model[k] / p if (p := self.popularity[k]) > 0 else float("inf")) for k in self.model}

    def to_dict(self) -> dict[str, object]:
        return {"queries": self.queries, "model": {str(k): v for k, v in self.model.items()},
                "popularity": {str(k): v for k, v in self.popularity.items()},
                "ratio": {str(k): v for k, v in self.ratio.items()}}


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
    rows = np.repeat(np.arange(len(targets)), exclude.shape[1])
    cols = exclude.ravel()
    keep = cols >= 0
    scores[rows[keep], cols[keep]] = -np.inf
    ranked = top_k(scores, max(ks))
    found = ranked == targets[:, None]
    return np.array([found[:, :k].any(axis=1).sum() for k in ks])


def recall_at_k(users: np.ndarray, items: np.ndarray, targets: np.ndarray, exclude: np.ndarray,
                popularity: np.ndarray, ks: Sequence[int] = (10, 50, 100)) -> RecallReport:
    """users (n, d) query vectors; items (N, d); targets (n,) catalogue indices; exclude (n, h), -1 pads;
    popularity (N,) training positive counts."""
    ks = tuple(sorted(ks))
    model_hits = np.zeros(len(ks), dtype=np.int64)
    pop_hits = np.zeros(len(ks), dtype=np.int64)
    # Popularity scores: counts, ties broken towards the lower index, same for every row.
    pop_scores = popularity.astype(np.float64) - np.arange(len(popularity)) / (len(popularity) + 1.0)
    for s in range(0, len(targets), _CHUNK):
        e = s + _CHUNK
        model_hits += _hits(users[s:e] @ items.T, targets[s:e], exclude[s:e], ks)
        pop_hits += _hits(np.tile(pop_scores, (len(targets[s:e]), 1)), targets[s:e], exclude[s:e], ks)
    n = max(len(targets), 1)
    return RecallReport(queries=len(targets), model={k: float(h) / n for k, h in zip(ks, model_hits, strict=True)},
                        popularity={k: float(h) / n for k, h in zip(ks, pop_hits, strict=True)})
