"""One score from the ranker's heads: a weighted sum of their probabilities.

score = sum over heads of weight[head] * P(head). The default weights value what a viewer gives the video, in
units of one completion: a like 2, a share or a follow 4 (rarer and stronger signals), and a skip -1 (it undoes
about one completion). They are configuration, not learned: an experiment arm can override them
(fyp/experiments, key `ranker.weights.<head>`).

>>> combined_score(np.array([[0.5, 0.1, 0.0, 0.0, 0.2]]), DEFAULT_HEAD_WEIGHTS).round(3).tolist()
[0.5]
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from fyp.ranking.inputs import HEADS

__all__ = ["DEFAULT_HEAD_WEIGHTS", "combined_score", "head_weights"]

DEFAULT_HEAD_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"completed": 1.0, "liked": 2.0, "shared": 4.0, "followed": 4.0, "skipped": -1.0})
MAX_ABS_WEIGHT = 1000.0


def head_weights(overrides: Mapping[str, object] | None = None) -> dict[str, float]:
    """The default weights with `overrides` ({"ranker.weights.liked": 3}, as experiment arms set them) applied;
    `ValueError` for an unknown head or a weight that is not a finite number within +-1000."""
    weights = dict(DEFAULT_HEAD_WEIGHTS)
    for key, value in (overrides or {}).items():
        if not key.startswith("ranker.weights."):
            continue
        head = key.removeprefix("ranker.weights.")
        if head not in weights:
            raise ValueError(f"{key}: no head {head!r}; the heads are {', '.join(HEADS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not abs(value) <= MAX_ABS_WEIGHT:
            raise ValueError(f"{key}: weight must be a number within +-{MAX_ABS_WEIGHT:g}, got {value!r}")
        weights[head] = float(value)
    return weights


def combined_score(probabilities: np.ndarray, weights: Mapping[str, float]) -> np.ndarray:
    """One score per row of `probabilities` (rows x heads, in HEADS order)."""
    return probabilities @ np.array([weights[head] for head in HEADS], dtype=probabilities.dtype)
