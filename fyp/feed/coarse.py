"""The coarse ranker: a cheap score for every filtered candidate (~500), so that the fine ranker runs on ~100.

score = the two-tower dot product of the user's and the video's embeddings (docs/EMBEDDINGS.md: both unit
length, so the cosine, in [-1, 1]), as the index service computes it for the candidates it returns
(`/v1/candidates?dots=true`). Where that is missing (the user has no embedding, or the video is not in the
index), the score is `POPULARITY_SCALE * popularity`, popularity being, from the video's `video_engagement` row:

    popularity = (completions_24h + 1) / (plays_24h + 2)  x  (1 - 2 ** (-plays_decay_24h / POPULARITY_HALF_PLAYS))

a completion rate smoothed towards 1/2, times a volume term that is 0 without plays and 1/2 at
`POPULARITY_HALF_PLAYS` decayed plays, so it lies in [0, 1); a video without features scores 0. With
`POPULARITY_SCALE` = 0.5 the best-known video without an embedding ties with a cosine of 0.5.

>>> scores = coarse_scores(np.array([0.9, np.nan]), np.array([0.0, 1.0]))
>>> scores.tolist()
[0.9, 0.5]
>>> top_k(scores, 1).tolist()
[0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["POPULARITY_COLUMNS", "POPULARITY_HALF_PLAYS", "POPULARITY_SCALE", "coarse_scores", "dot_scores",
           "popularity", "top_k"]

POPULARITY_COLUMNS = ("plays_24h", "completions_24h", "plays_decay_24h")  # video_engagement.v1 columns
POPULARITY_HALF_PLAYS = 20.0
POPULARITY_SCALE = 0.5


def popularity(video_columns: Sequence[str], video_features: np.ndarray) -> np.ndarray:
    """Each row's popularity (module docstring) from a `video_engagement` matrix (NaN rows: no features: 0)."""
    index = {c: i for i, c in enumerate(video_columns)}
    plays, completions, decayed = (np.nan_to_num(video_features[:, index[c]]) for c in POPULARITY_COLUMNS)
    rate = (completions + 1.0) / (np.maximum(plays, 0.0) + 2.0)
    volume = 1.0 - np.exp2(-np.maximum(decayed, 0.0) / POPULARITY_HALF_PLAYS)
    return np.clip(rate, 0.0, 1.0) * volume


def dot_scores(user: np.ndarray | None, videos: np.ndarray) -> np.ndarray:
    """user . video per row of `videos` (n x d, NaN rows: no embedding); all NaN without a user vector."""
    if user is None:
        return np.full(len(videos), np.nan)
    return videos @ user


def coarse_scores(dots: np.ndarray, popularity_scores: np.ndarray) -> np.ndarray:
    """The dot product where known, else `POPULARITY_SCALE * popularity`."""
    return np.where(np.isnan(dots), POPULARITY_SCALE * popularity_scores, dots)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the `k` best scores, best first (ties: the earlier index first)."""
    if k <= 0 or len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.lexsort((np.arange(len(scores)), -scores))[:k]  # a full sort: ~20 µs for 500, and ties exact
