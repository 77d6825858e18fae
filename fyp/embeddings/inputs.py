"""The two towers' inputs from raw values: one function per tower, called by training and by serving alike.

    user_inputs(recent_positives, user_features, config)   the user's RECENT_POSITIVES members (newest first)
                                                            and its user_engagement.v1 values, as serving decodes
                                                            them -> UserInputs
    item_inputs(video_ids, author_ids, sound_ids, hashtags, config)   a video's content fields -> ItemInputs

Training reads these raw values from the training table (`training.watch_outcomes`: the `recent_positives`
column and the `user_engagement__*` columns, each as of the row's time; the spine's `video_id`, `author_id`,
`sound_id`, `hashtags`), serving from Redis (the recent-positives sorted set, `FeatureClient.get("user", id)`,
the video hash). Both go through the same function, so the towers see the same transformation of the same
definitions on both sides: the definitions themselves are one declaration each (features/serving_sets.py
RECENT_POSITIVES, features/engagement/user_engagement.py).

Ids become buckets by a stable hash (fyp.embeddings.hashing); bucket 0 means none, so a padded history slot,
a video without a sound or a missing hashtag all read as zeros in the towers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from features.engagement.user_engagement import v1 as USER_FEATURE_SET
from features.engagement.video_engagement import v1 as VIDEO_FEATURE_SET
from features.serving_sets import RECENT_POSITIVES
from fyp.embeddings.hashing import buckets
from fyp.serving.layout import ReadPlan

if TYPE_CHECKING:
    from fyp.embeddings.towers import TowerConfig

__all__ = [
    "HISTORY_SET",
    "USER_FEATURE_COLUMNS",
    "USER_FEATURE_SET",
    "VIDEO_FEATURE_COLUMNS",
    "VIDEO_FEATURE_SET",
    "ItemInputs",
    "UserInputs",
    "item_inputs",
    "user_feature_matrix",
    "user_inputs",
    "video_feature_inputs",
]

HISTORY_SET = RECENT_POSITIVES  # the user tower's history, newest first, at most max_size members


def _read_columns(feature_set) -> tuple[str, ...]:
    """The names the serving decode returns for a set: its columns, then its ratios (fyp.serving.layout)."""
    plan = ReadPlan.of(feature_set)
    return (*plan.columns, *(name for name, _, _ in plan.ratios))


USER_FEATURE_COLUMNS: tuple[str, ...] = _read_columns(USER_FEATURE_SET)
VIDEO_FEATURE_COLUMNS: tuple[str, ...] = _read_columns(VIDEO_FEATURE_SET)
_RATIO_NAMES = frozenset(name for fs in (USER_FEATURE_SET, VIDEO_FEATURE_SET)
                         for name, _, _ in ReadPlan.of(fs).ratios)


@dataclass(frozen=True, kw_only=True)
class UserInputs:
    """history: (n, history_len) int64 video buckets, newest first, 0 pads. features: (n, user_feature_dim)
    float32, each of order 0..10."""

    history: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.history)


@dataclass(frozen=True, kw_only=True)
class ItemInputs:
    """video, author, sound: (n,) int64 buckets (0: none). hashtags: (n, max_hashtags) int64 buckets, 0 pads.
    features: (n, len(config.video_feature_columns) + 1) float32, the video's engagement as serving reads it
    (transformed like the user's, with a "no value" flag); (n, 0) when the tower reads none."""

    video: np.ndarray
    author: np.ndarray
    sound: np.ndarray
    hashtags: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.video)


def user_feature_matrix(rows: Sequence[Mapping[str, float | None] | None],
                        columns: Sequence[str] = USER_FEATURE_COLUMNS) -> np.ndarray:
    """(n, len(columns)) float64 raw values from per-user {column: value} mappings; NaN where absent.

    A mapping is what `FeatureClient.get("user", id).values` holds (None: Redis has nothing on the user).

    >>> user_feature_matrix([{"impressions_24h": 3.0}, None], ("impressions_24h", "plays_24h")).tolist()
    [[3.0, nan], [nan, nan]]
    """
    out = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        if row:
            out[i] = [np.nan if (v := row.get(c)) is None else v for c in columns]
    return out


def _feature_transform(raw: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """Raw feature values -> the user tower's features: signed log1p of counts and sums (watch time in
    seconds), ratios clipped to [0, 1], NaN as 0, and a last column that is 1 when the user had no value."""
    raw = np.asarray(raw, dtype=np.float64)
    missing = np.isnan(raw).all(axis=1, keepdims=True) if raw.shape[1] else np.ones((len(raw), 1), dtype=bool)
    values = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
    scale = np.array([1000.0 if c.startswith("watch_ms") else 1.0 for c in columns])
    ratio = np.array([c in _RATIO_NAMES for c in columns], dtype=bool)
    counts = values / scale
    transformed = np.where(ratio, np.clip(values, 0.0, 1.0), np.sign(counts) * np.log1p(np.abs(counts)))
    return np.hstack([transformed, missing]).astype(np.float32)


def user_inputs(recent_positives: Sequence[Sequence[str] | None], user_features: np.ndarray,
                config: TowerConfig) -> UserInputs:
    """The user tower's inputs of n users.

    recent_positives: per user, the members of RECENT_POSITIVES newest first (None or empty: no history); the
        first `config.history_len` are read. user_features: (n, len(config.user_feature_columns)) raw values of
        user_engagement.v1 as the serving decode returns them (`user_feature_matrix`; in training the
        `user_engagement__<column>` table columns), NaN where absent.

    >>> from fyp.embeddings.towers import TowerConfig
    >>> x = user_inputs([["v9", "v4"], None], np.full((2, len(USER_FEATURE_COLUMNS)), np.nan),
    ...                 TowerConfig(history_len=3, video_buckets=64))
    >>> x.history.shape, int((x.history[0] > 0).sum()), x.features[:, -1].tolist()
    ((2, 3), 2, [1.0, 1.0])
    """
    history_len, columns = config.history_len, config.user_feature_columns
    user_features = np.asarray(user_features, dtype=np.float64)
    if user_features.shape != (len(recent_positives), len(columns)):
        raise ValueError(f"user_features must be ({len(recent_positives)}, {len(columns)}), "
                         f"got {user_features.shape}")
    lengths = np.array([min(len(h or ()), history_len) for h in recent_positives], dtype=np.int64)
    flat = [v for h in recent_positives for v in (h or ())[:history_len]]
    history = np.zeros((len(recent_positives), history_len), dtype=np.int64)
    slots = np.arange(history_len) < lengths[:, None]
    history[slots] = buckets(flat, config.video_buckets, field="video")
    return UserInputs(history=history, features=_feature_transform(user_features, columns))


def video_feature_inputs(video_features: np.ndarray | None, n: int, config: TowerConfig) -> np.ndarray:
    """(n, len(config.video_feature_columns) raw video_engagement.v1 values (NaN: none) -> the item tower's
    feature block; (n, 0) when the tower reads no video features (then video_features must be None)."""
    columns = config.video_feature_columns
    if not columns:
        if video_features is not None:
            raise ValueError("video_features given, but the tower reads no video feature columns")
        return np.zeros((n, 0), dtype=np.float32)
    if video_features is None:
        raise ValueError(f"the tower reads {len(columns)} video_engagement columns: video_features is required")
    raw = np.asarray(video_features, dtype=np.float64)
    if raw.shape != (n, len(columns)):
        raise ValueError(f"video_features must be ({n}, {len(columns)}), got {raw.shape}")
    return _feature_transform(raw, columns)


def item_inputs(video_ids: Sequence[str], author_ids: Sequence[str | None], sound_ids: Sequence[str | None],
                hashtags: Sequence[Sequence[str] | None], config: TowerConfig,
                video_features: np.ndarray | None = None) -> ItemInputs:
    """The item tower's inputs of n videos: the content fields a fresh upload has (the video hash) and every
    training row has (the spine): ids of the video, its author and its sound, and its first
    `config.max_hashtags` distinct hashtags (without '#', case-folded); and, when the tower reads them
    (`config.video_feature_columns`), the video's video_engagement.v1 values as serving decodes them
    (`user_feature_matrix(rows, config.video_feature_columns)`; in training the `video_engagement__<column>`
    table columns as of the row), NaN where absent.

    >>> from fyp.embeddings.towers import TowerConfig
    >>> x = item_inputs(["v1"], ["a1"], [None], [["Cats", "#cats", "dogs"]], TowerConfig(max_hashtags=4))
    >>> int(x.sound[0]), int((x.hashtags[0] > 0).sum())
    (0, 2)
    """
    n, max_hashtags = len(video_ids), config.max_hashtags
    if not len(author_ids) == len(sound_ids) == len(hashtags) == n:
        raise ValueError("video_ids, author_ids, sound_ids and hashtags must have the same length")
    tags = [list(dict.fromkeys(t for t in (str(x).lstrip("#").lower() for x in (row or ())) if t))[:max_hashtags]
            for row in hashtags]
    matrix = np.zeros((n, max_hashtags), dtype=np.int64)
    lengths = np.array([len(t) for t in tags], dtype=np.int64)
    matrix[np.arange(max_hashtags) < lengths[:, None]] = buckets([t for row in tags for t in row],
                                                                 config.hashtag_buckets, field="hashtag")
    return ItemInputs(video=buckets(video_ids, config.video_buckets, field="video"),
                      author=buckets(author_ids, config.author_buckets, field="author"),
                      sound=buckets(sound_ids, config.sound_buckets, field="sound"), hashtags=matrix,
                      features=video_feature_inputs(video_features, n, config))
