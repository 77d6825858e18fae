"""Sampling-bias correction for in-batch softmax (Yi et al., "Sampling-Bias-Corrected Neural Modeling for
Large Corpus Item Recommendations", RecSys 2019).

In-batch negatives are other rows' positives, so a popular item is a negative far more often than a rare
one and the model learns to push popular items down. The fix subtracts log q_j, the log probability that
item j is in a batch, from every logit s(x_i, y_j) before the softmax.

q_j comes from the paper's streaming frequency estimator (its Algorithm 2): per hash bucket, A = the last step
the item was seen, B = a moving average of the steps between sightings; q = 1 / B. It needs no vocabulary
and follows drifting popularity.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["StreamingFrequency", "in_batch_softmax_loss"]


class StreamingFrequency:
    """Streaming estimate of each item's per-step sampling probability (Yi et al. 2019, Algorithm 2).

    n_buckets: size of the A and B arrays (items are bucket ids; collisions share an estimate).
    alpha: learning rate of the moving average (the paper uses 0.01..0.1; larger adapts faster).

    >>> f = StreamingFrequency(n_buckets=8, alpha=0.5)
    >>> for step in range(1, 5):
    ...     f.update(np.array([1, 1, 2] if step % 2 else [1]), step)
    >>> round(float(f.probability(np.array([1]))[0]), 3) > round(float(f.probability(np.array([2]))[0]), 3)
    True
    """

    def __init__(self, *, n_buckets: int, alpha: float = 0.05) -> None:
        if n_buckets < 1:
            raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.last_step = np.full(n_buckets, -1, dtype=np.int64)  # A; -1: never seen
        self.interval = np.ones(n_buckets, dtype=np.float64)  # B: steps between sightings

    def update(self, items: np.ndarray, step: int) -> None:
        """Record one batch (step >= 1). An item seen c times in the step counts as interval / c."""
        ids, counts = np.unique(np.asarray(items, dtype=np.int64), return_counts=True)
        seen = self.last_step[ids] >= 0
        # First sighting: as if last seen at step 0, i.e. once in `step` steps.
        gap = np.where(seen, step - self.last_step[ids], step).astype(np.float64) / counts
        self.interval[ids] = np.where(seen, (1 - self.alpha) * self.interval[ids] + self.alpha * gap, gap)
        self.last_step[ids] = step

    def probability(self, items: np.ndarray) -> np.ndarray:
        """Estimated probability per step that each item is sampled (1 / B), in (0, inf); 0 for an item never
        seen (never a positive yet: it can only be a candidate by another route, such as uniform sampling)."""
        items = np.asarray(items, dtype=np.int64)
        return np.where(self.last_step[items] >= 0, 1.0 / np.maximum(self.interval[items], 1e-9), 0.0)


def in_batch_softmax_loss(user: torch.Tensor, item: torch.Tensor, *, temperature: float,
                          log_q: torch.Tensor | None = None, item_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of each row's own item against every item of the batch (and any extra negatives).

    user: (n, d); item: (m, d), m >= n: rows 0..n-1 are the users' positives, rows n.. extra negatives (mixed
    negative sampling: items drawn uniformly from the catalogue). logits[i, j] = user_i . item_j / temperature
    - log_q[j]. log_q: (m,) log sampling probabilities of the items (None: no correction).
    item_ids: (m,) ids; a column whose item equals row i's positive (a duplicate) is masked out of row i's
    negatives, so the model is not told to rank an item below itself.
    """
    n = user.shape[0]
    if item.shape[0] < n:
        raise ValueError(f"need at least one item per user, got {item.shape[0]} items for {n} users")
    logits = user @ item.T / temperature
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    if item_ids is not None:
        same = item_ids.unsqueeze(0) == item_ids[:n].unsqueeze(1)
        same[torch.arange(n), torch.arange(n)] = False
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(n, device=user.device)
    return F.cross_entropy(logits, labels)
