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
    """inputs -> ReLU layers of `hidden` widths -> one sigmoid per head (HEADS order).

    tied: indexes of heads that read one shared direction of the trunk, each with its own scale and offset
    (logit = scale * (w . h) + offset), instead of a direction of their own. Likes, shares and follows are
    all rarer readings of how much the viewer engaged; tied, the 150 training follows of the test's small world
    borrow the direction that 1,440 likes and 204 shares shape instead of fitting 64 weights alone (measured
    in tests/unit/fyp/ranking/test_ranker_world.py, figures in docs/FEED.md)."""

    def __init__(self, inputs: int, hidden: Sequence[int] = (128, 64), heads: int = len(HEADS),
                 tied: Sequence[int] = ()) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = inputs
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(width, heads)
        mask = torch.zeros(heads)
        mask[list(tied)] = 1.0
        self.register_buffer("tied", mask)
        self.engagement = nn.Linear(width, 1, bias=False)  # the tied heads' one direction
        self.scale = nn.Parameter(torch.ones(heads))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        tied = self.engagement(h) * self.scale + self.heads.bias  # per tied head: a scale and an offset
        return self.heads(h) * (1 - self.tied) + tied * self.tied

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))
