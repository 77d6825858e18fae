"""The two towers (torch): user and item, each ending in an L2-normalised `output_dim` vector.

Item tower: hashed-id embeddings of the video, its author and its sound, and the mean of its hashtags'
embeddings (`ItemTower.embed`), through an MLP: the content fields a freshly uploaded video has
(fyp.embeddings.inputs.item_inputs). An id embedding is used only if its bucket was trained (`seen` buffers,
saved with the model); a new upload's unseen id contributes zeros, so its vector comes from its author, sound
and hashtags. Training also drops the video id at random (`id_dropout`) so the tower learns to do without it.

User tower: the user's recent positives (newest first), each read through the item tower's own embedding
tables: its id, and the author, sound and hashtags training saw it with (`ItemTower.known`, a table from video
bucket to content buckets saved with the model, so serving needs the ids only); a recency-weighted mean of
those (one learned weight per position) and the real-time user features (user_engagement.v1), each
layer-normalised, through an MLP. Sharing the tables is what lets a few positives name a user's tastes: a
history video's hashtags and author place it among the videos of its topic, as the item side learns them.

Score = user . item / temperature (both unit length), as the index's dot-product search expects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from fyp.embeddings.inputs import (
    HISTORY_SET,
    USER_FEATURE_COLUMNS,
    VIDEO_FEATURE_COLUMNS,
    ItemInputs,
    UserInputs,
)

__all__ = ["HISTORY_POOLS", "ItemTower", "TowerConfig", "TwoTower", "UserTower"]

HISTORY_POOLS = ("recency", "attention")


@dataclass(frozen=True, kw_only=True)
class TowerConfig:
    """Sizes of the towers. Defaults are small on purpose: training runs on 2 CPU cores in minutes.

    output_dim: embedding width (the index service's `dim`, 64). hidden_dim: MLP width. id_dim: width of each
    hashed-id embedding; video/author/sound/hashtag_buckets: table sizes (collisions share rows).
    max_hashtags: hashtags of a video read. history_len: recent positives the user tower reads (at most the
    serving set's size). user_feature_columns: the user_engagement.v1 columns read, in order.
    temperature: softmax temperature of the scores. id_dropout: share of training rows whose video id is hidden.
    tag_weights: pool a video's hashtags with a learned weight per hashtag bucket instead of an even mean.
    history_pool: "recency" weighs a history video by its position only; "attention" adds a learned score of
    the video's own embedding (a way to weigh a history by topic). Both off by default: measured no better
    (docs/EMBEDDINGS.md), and models saved without them load as they were.
    video_feature_columns: the video_engagement.v1 columns the item tower's head reads besides the ids (a
    popularity signal that needs no memorised id); () reads none, as models saved before it.
    video_ids: read video ids (the item's own and the history's); False embeds a video by its author, sound and
    hashtags only, everywhere (nothing per video to memorise). Off only with video features in the measured
    round that gained (docs/EMBEDDINGS.md): without them the item tower has no popularity signal.
    """

    output_dim: int = 64
    hidden_dim: int = 128
    id_dim: int = 32
    video_buckets: int = 1 << 15
    author_buckets: int = 1 << 13
    sound_buckets: int = 1 << 11
    hashtag_buckets: int = 1 << 12
    max_hashtags: int = 10
    history_len: int = HISTORY_SET.max_size
    user_feature_columns: tuple[str, ...] = USER_FEATURE_COLUMNS
    temperature: float = 0.03
    id_dropout: float = 0.1
    tag_weights: bool = False
    history_pool: str = "recency"
    video_feature_columns: tuple[str, ...] = ()
    video_ids: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "user_feature_columns", tuple(self.user_feature_columns))  # a list when loaded
        object.__setattr__(self, "video_feature_columns", tuple(self.video_feature_columns))
        for name in ("output_dim", "hidden_dim", "id_dim", "max_hashtags", "history_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.history_len > HISTORY_SET.max_size:
            raise ValueError(f"history_len must be <= {HISTORY_SET.max_size} (what {HISTORY_SET.name} keeps), "
                             f"got {self.history_len}")
        for name in ("video_buckets", "author_buckets", "sound_buckets", "hashtag_buckets"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if unknown := set(self.user_feature_columns) - set(USER_FEATURE_COLUMNS):
            raise ValueError(f"unknown user feature columns {sorted(unknown)}")
        if unknown := set(self.video_feature_columns) - set(VIDEO_FEATURE_COLUMNS):
            raise ValueError(f"unknown video feature columns {sorted(unknown)}")
        if not 0 < self.temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {self.temperature}")
        if not 0 <= self.id_dropout < 1:
            raise ValueError(f"id_dropout must be in [0, 1), got {self.id_dropout}")
        if self.history_pool not in HISTORY_POOLS:
            raise ValueError(f"history_pool must be one of {HISTORY_POOLS}, got {self.history_pool!r}")

    @property
    def user_feature_dim(self) -> int:
        return len(self.user_feature_columns) + 1  # + the "no value" flag (fyp.embeddings.inputs)

    @property
    def video_feature_dim(self) -> int:
        return len(self.video_feature_columns) + 1 if self.video_feature_columns else 0

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


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


def _masked_mean(vectors: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of (..., k, d) vectors over the k slots whose id is not 0 (optionally weighted per slot)."""
    mask = (ids > 0).to(vectors.dtype)
    if weights is not None:
        mask = mask * weights
    return (vectors * mask.unsqueeze(-1)).sum(dim=-2) / mask.sum(dim=-1, keepdim=True).clamp(min=1e-6)


class ItemTower(nn.Module):
    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = config
        self.video = _SeenEmbedding(config.video_buckets, config.id_dim)
        self.author = _SeenEmbedding(config.author_buckets, config.id_dim)
        self.sound = _SeenEmbedding(config.sound_buckets, config.id_dim)
        self.hashtag = _SeenEmbedding(config.hashtag_buckets, config.id_dim)
        if config.tag_weights:  # log-weight of each hashtag in its video's pool: topical tags over generic ones
            self.tag_weight = nn.Embedding(config.hashtag_buckets, 1)
            nn.init.zeros_(self.tag_weight.weight)
        # Per video bucket: the author, sound and hashtag buckets training saw it with (0: not known).
        self.register_buffer("content", torch.zeros(config.video_buckets, 2 + config.max_hashtags,
                                                    dtype=torch.int64))
        self.head = nn.Sequential(
            nn.Linear(4 * config.id_dim + config.video_feature_dim, config.hidden_dim), nn.ReLU(),
            nn.Linear(config.hidden_dim, config.output_dim))

    def remember(self, inputs: ItemInputs) -> None:
        """Record the content buckets of these videos (training's catalogue) for `known`."""
        video = torch.from_numpy(inputs.video)
        self.content[video] = torch.cat([torch.from_numpy(inputs.author)[:, None],
                                         torch.from_numpy(inputs.sound)[:, None],
                                         torch.from_numpy(inputs.hashtags)], dim=1)
        self.content[0] = 0

    def known(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The author, sound and hashtag buckets training saw each video bucket with (zeros if none)."""
        content = self.content[video]
        return content[..., 0], content[..., 1], content[..., 2:]

    def embed(self, video: torch.Tensor, author: torch.Tensor, sound: torch.Tensor,
              hashtags: torch.Tensor) -> torch.Tensor:
        """(n,) x3 and (n, max_hashtags) buckets -> (n, 4 * id_dim): the id vectors the head reads."""
        weights = torch.exp(self.tag_weight(hashtags).squeeze(-1)) if self.config.tag_weights else None
        tags = _masked_mean(self.hashtag(hashtags), hashtags, weights)
        ids = self.video(video) if self.config.video_ids else torch.zeros(*video.shape, self.config.id_dim)
        return torch.cat([ids, self.author(author), self.sound(sound), tags], dim=-1)

    def forward(self, video: torch.Tensor, author: torch.Tensor, sound: torch.Tensor,
                hashtags: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """Three (n,) and one (n, max_hashtags) int64 bucket tensors, and (n, video_feature_dim) float features
        when the tower reads them -> (n, output_dim) unit rows."""
        x = self.embed(video, author, sound, hashtags)
        if self.training and self.config.id_dropout > 0:
            keep = torch.rand(video.shape[0], 1, device=x.device) >= self.config.id_dropout
            x = torch.cat([x[:, :self.config.id_dim] * keep, x[:, self.config.id_dim:]], dim=1)
        if self.config.video_feature_dim:
            if features is None or features.shape != (video.shape[0], self.config.video_feature_dim):
                raise ValueError(f"the item tower reads ({video.shape[0]}, {self.config.video_feature_dim}) video "
                                 f"features, got {None if features is None else tuple(features.shape)}")
            # Not layer-normalised: that would take away each row's level, and the level (how many plays) is
            # the signal. The transformed values are of order 0..10 (log counts, ratios in [0, 1]).
            x = torch.cat([x, features], dim=1)
        return F.normalize(self.head(x), dim=1)

    def encode(self, inputs: ItemInputs) -> torch.Tensor:
        return self(*(torch.from_numpy(getattr(inputs, f))
                      for f in ("video", "author", "sound", "hashtags", "features")))


class UserTower(nn.Module):
    def __init__(self, config: TowerConfig, item: ItemTower) -> None:
        super().__init__()
        self.config = config
        self._item = (item,)  # read, not owned: its tables are TwoTower's (a tuple keeps it out of submodules)
        self.recency = nn.Parameter(torch.zeros(config.history_len))  # log-weight of each history position
        if config.history_pool == "attention":  # log-weight of each history video from its own embedding
            self.attention = nn.Linear(4 * config.id_dim, 1)
            nn.init.zeros_(self.attention.weight)
            nn.init.zeros_(self.attention.bias)
        self.mlp = nn.Sequential(
            nn.Linear(4 * config.id_dim + config.user_feature_dim, config.hidden_dim), nn.ReLU(),
            nn.Linear(config.hidden_dim, config.output_dim))
        # Each input block normalised on its own: the features' log counts (up to ~10) would otherwise drown the
        # pooled history (embeddings of ~0.05) and the tower would learn who a user is rather than what they like.
        self.history_norm = nn.LayerNorm(4 * config.id_dim)
        self.feature_norm = nn.LayerNorm(config.user_feature_dim)

    def forward(self, history: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(n, history_len) int64 buckets, newest first (0 pads), (n, user_feature_dim) float -> (n, output_dim)
        unit rows."""
        item = self._item[0]
        unique, inverse = torch.unique(history, return_inverse=True)  # each history video embedded once
        vectors = item.embed(unique, *item.known(unique))[inverse]
        log_weight = self.recency.unsqueeze(0)
        if self.config.history_pool == "attention":
            log_weight = log_weight + self.attention(vectors).squeeze(-1)
        pooled = _masked_mean(vectors, history, torch.exp(log_weight))
        x = torch.cat([self.history_norm(pooled), self.feature_norm(features)], dim=1)
        return F.normalize(self.mlp(x), dim=1)

    def encode(self, inputs: UserInputs) -> torch.Tensor:
        return self(torch.from_numpy(inputs.history), torch.from_numpy(inputs.features))


class TwoTower(nn.Module):
    """Both towers; `config` is saved beside the weights so a loaded model rebuilds itself."""

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = config
        self.item = ItemTower(config)
        self.user = UserTower(config, self.item)
