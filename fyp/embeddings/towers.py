"""The two towers (torch): user and item, each ending in an L2-normalised `output_dim` vector.

Item tower: content vector (fyp.embeddings.content) through an MLP, concatenated with hashed-id embeddings of
the video, its author and its sound, then a linear layer to `output_dim`. An id embedding is used only if
its bucket was trained (`*_seen` buffers, saved with the model); a new upload's unseen id contributes zeros,
so its vector comes from content, author and sound. Training also drops the video id at random
(`id_dropout`) so the tower learns to do without it.

User tower: mean of hashed-id embeddings of the last `history_len` positively engaged videos, plus the
real-time user features (fyp.embeddings.meta.UserFeatures.vector), through an MLP.

Score = user . item / temperature (both unit length), as the index's dot-product search expects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from fyp.embeddings.content import CONTENT_DIM
from fyp.embeddings.meta import USER_FEATURE_DIM

__all__ = ["ItemTower", "TowerConfig", "TwoTower", "UserTower"]


@dataclass(frozen=True, kw_only=True)
class TowerConfig:
    """Sizes of the towers. Defaults are small on purpose: training runs on 2 CPU cores in minutes.

    output_dim: embedding width (the index service's `dim`, 64). hidden_dim: MLP width. id_dim: width of each
    hashed-id embedding; video/author/sound_buckets: table sizes (collisions are shared rows). history_len:
    positives the user tower reads. temperature: softmax temperature of the scores. id_dropout: share of
    training rows whose video id is hidden.
    """

    content_dim: int = CONTENT_DIM
    user_feature_dim: int = USER_FEATURE_DIM
    output_dim: int = 64
    hidden_dim: int = 128
    id_dim: int = 32
    video_buckets: int = 1 << 15  # dense Adam updates every row each step: size drives CPU time and file size
    author_buckets: int = 1 << 13
    sound_buckets: int = 1 << 11
    history_len: int = 20
    temperature: float = 0.05
    id_dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("content_dim", "user_feature_dim", "output_dim", "hidden_dim", "id_dim", "history_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("video_buckets", "author_buckets", "sound_buckets"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if not 0 < self.temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {self.temperature}")
        if not 0 <= self.id_dropout < 1:
            raise ValueError(f"id_dropout must be in [0, 1), got {self.id_dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _SeenEmbedding(nn.Module):
    """A hashed-id embedding table that answers zeros for buckets never trained (and for bucket 0)."""

    def __init__(self, n_buckets: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(n_buckets, dim, padding_idx=0)
        nn.init.normal_(self.table.weight, std=0.05)
        with torch.no_grad():
            self.table.weight[0].zero_()
        self.register_buffer("seen", torch.zeros(n_buckets, dtype=torch.bool))

    def mark_seen(self, buckets: torch.Tensor) -> None:
        self.seen[buckets] = True
        self.seen[0] = False

    def forward(self, buckets: torch.Tensor) -> torch.Tensor:
        return self.table(buckets) * self.seen[buckets].unsqueeze(-1)


class ItemTower(nn.Module):
    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = config
        self.content = nn.Sequential(nn.Linear(config.content_dim, config.hidden_dim), nn.ReLU())
        self.video = _SeenEmbedding(config.video_buckets, config.id_dim)
        self.author = _SeenEmbedding(config.author_buckets, config.id_dim)
        self.sound = _SeenEmbedding(config.sound_buckets, config.id_dim)
        self.head = nn.Sequential(
            nn.Linear(config.hidden_dim + 3 * config.id_dim, config.hidden_dim), nn.ReLU(),
            nn.Linear(config.hidden_dim, config.output_dim))

    def forward(self, content: torch.Tensor, video: torch.Tensor, author: torch.Tensor,
                sound: torch.Tensor) -> torch.Tensor:
        """(n, content_dim) float, three (n,) int64 bucket tensors -> (n, output_dim) unit rows."""
        video_vec = self.video(video)
        if self.training and self.config.id_dropout > 0:
            keep = torch.rand(video.shape[0], 1, device=video_vec.device) >= self.config.id_dropout
            video_vec = video_vec * keep
        x = torch.cat([self.content(content), video_vec, self.author(author), self.sound(sound)], dim=1)
        return F.normalize(self.head(x), dim=1)


class UserTower(nn.Module):
    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = config
        self.history = _SeenEmbedding(config.video_buckets, config.id_dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.id_dim + config.user_feature_dim, config.hidden_dim), nn.ReLU(),
            nn.Linear(config.hidden_dim, config.output_dim))

    def forward(self, history: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(n, history_len) int64 buckets (0 pads), (n, user_feature_dim) float -> (n, output_dim) unit rows."""
        mask = (history > 0).unsqueeze(-1).float()
        pooled = (self.history(history) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return F.normalize(self.mlp(torch.cat([pooled, features], dim=1)), dim=1)


class TwoTower(nn.Module):
    """Both towers; `config` is saved beside the weights so a loaded model rebuilds itself."""

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = config
        self.user = UserTower(config)
        self.item = ItemTower(config)
