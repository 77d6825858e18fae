"""The fine ranker's network: a shared trunk over the inputs and one logistic output per head (multi-task).

A shared trunk lets the rare heads (share, follow: under 1 % of impressions) learn from the representation the
frequent ones (completion, skip) shape; each head is one linear layer on it (Caruana, "Multitask Learning", 1997).
The forward pass returns probabilities, so the exported model is what serving calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fyp.ranking.inputs import HEADS

__all__ = ["MultiTaskRanker"]


class MultiTaskRanker(nn.Module):
    """inputs -> ReLU layers of `hidden` widths -> one sigmoid per head (HEADS order)."""

    def __init__(self, inputs: int, hidden: Sequence[int] = (128, 64), heads: int = len(HEADS)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(width, heads)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))
