"""What the encoders read: a video's metadata, a user's recent history and real-time features.

Named records cross the module boundary (never tuples); each has a constructor from where serving finds it:
`VideoMeta.from_video_hash` reads the Redis hash `fyp:video:v1:{id}` (its codec: udfs.video_record),
`UserFeatures.from_entity` reads `fyp.serving.FeatureClient.get("user", id)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from udfs.video_record import decode_video

__all__ = [
    "PDQ_BYTES",
    "USER_FEATURE_DIM",
    "USER_FEATURE_NAMES",
    "UserFeatures",
    "UserHistory",
    "VideoMeta",
    "user_feature_vector",
]

PDQ_BYTES = 32  # one PDQ hash: 256 bits, packed (fyp.moderation.phash.HASH_BYTES)


@dataclass(frozen=True, kw_only=True)
class VideoMeta:
    """One video as the item tower sees it. Everything but `video_id` is optional; absent means unknown.

    caption, hashtags (without '#'), ocr_text: text read by the sentence model (fyp.embeddings.content).
    duration_ms: length; width/height: pixels of the top rendition; has_audio: None when unknown.
    sound_id: the creator's chosen sound; music_id: the copyrighted track moderation matched.
    pdq_hash: 32 bytes, a representative frame's PDQ hash (fyp.moderation.phash), for visual likeness.
    """

    video_id: str
    author_id: str | None = None
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    ocr_text: str = ""
    sound_id: str | None = None
    music_id: str | None = None
    duration_ms: int = 0
    width: int = 0
    height: int = 0
    has_audio: bool | None = None
    pdq_hash: bytes | None = None

    def __post_init__(self) -> None:
        if not self.video_id:
            raise ValueError("video_id must not be empty")
        if self.duration_ms < 0 or self.width < 0 or self.height < 0:
            raise ValueError(f"negative duration or size for {self.video_id}")
        if self.pdq_hash is not None and len(self.pdq_hash) != PDQ_BYTES:
            raise ValueError(f"pdq_hash must be {PDQ_BYTES} bytes, got {len(self.pdq_hash)}")
        if isinstance(self.hashtags, list):
            object.__setattr__(self, "hashtags", tuple(self.hashtags))

    @classmethod
    def from_video_hash(cls, values: Mapping[Any, Any], **extra: Any) -> VideoMeta:
        """From the Redis hash `fyp:video:v1:{video_id}` (bytes or str keys/values).

        The hash has no OCR text, music id or PDQ hash (those are in ModerationResult and the moderation PDQ
        list); pass them as keyword arguments when known.
        """
        v = decode_video(values)
        renditions = v.get("renditions") or []
        top = max(renditions, key=lambda r: int(r.get("width", 0)) * int(r.get("height", 0)), default={})
        known = {
            "video_id": v["video_id"],
            "author_id": v.get("author_id") or None,
            "caption": v.get("caption", ""),
            "hashtags": tuple(v.get("hashtags") or ()),
            "sound_id": v.get("sound_id") or None,
            "duration_ms": int(float(v.get("duration_ms") or 0)),
            "width": int(top.get("width", 0)),
            "height": int(top.get("height", 0)),
            "has_audio": bool(v.get("audio_key")) if renditions else None,
        }
        return cls(**{**known, **extra})


@dataclass(frozen=True, kw_only=True)
class UserHistory:
    """A user's recent positive engagements, oldest first (the user tower keeps the last `history_len`).

    video_ids: what the trained model reads. videos: their metadata, optional; the content-projection
    fallback (no trained model) needs it, the trained model ignores it.
    """

    video_ids: tuple[str, ...] = ()
    videos: tuple[VideoMeta, ...] = ()

    def __post_init__(self) -> None:
        for name in ("video_ids", "videos"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True, kw_only=True)
class UserFeatures:
    """The user's real-time features the user tower reads: 24 h window counts of `user_engagement.v1`.

    The same definitions as features/engagement/common.py, so training (counted from the Iceberg history)
    and serving (read from Redis) agree: completions = plays watched >= 95 %, skips = dwell < 2 s,
    likes = likes - unlikes.
    """

    impressions: float = 0.0
    plays: float = 0.0
    watch_ms: float = 0.0
    completions: float = 0.0
    skips: float = 0.0
    likes: float = 0.0
    shares: float = 0.0
    not_interested: float = 0.0

    WINDOW: ClassVar[str] = "24h"

    @classmethod
    def from_entity(cls, entity: Any | None) -> UserFeatures:
        """From `FeatureClient.get("user", id)` (an EntityFeatures; None: a user Redis has nothing on)."""
        if entity is None:
            return cls()
        values = entity.values
        return cls(**{f.name: _finite(values.get(f"{f.name}_{cls.WINDOW}", 0.0)) for f in fields(cls)})

    def vector(self) -> np.ndarray:
        """USER_FEATURE_DIM float32: log1p of each count, then completion and skip rates."""
        counts = np.array([max(getattr(self, f.name), 0.0) for f in fields(self)], dtype=np.float64)
        return user_feature_vector(counts[None, :])[0]


USER_FEATURE_NAMES = ("impressions", "plays", "watch_ms", "completions", "skips", "likes", "shares",
                      "not_interested")
USER_FEATURE_DIM = len(USER_FEATURE_NAMES) + 2


def user_feature_vector(counts: np.ndarray) -> np.ndarray:
    """(n, 8) counts in USER_FEATURE_NAMES order -> (n, USER_FEATURE_DIM) float32.

    watch_ms is taken in seconds before log1p, so every column is of order 0..10.

    >>> user_feature_vector(np.array([[10, 4, 8000, 2, 6, 1, 0, 0]])).round(3).tolist()
    [[2.398, 1.609, 2.197, 1.099, 1.946, 0.693, 0.0, 0.0, 0.5, 0.6]]
    """
    counts = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    scaled = counts.copy()
    scaled[:, 2] = counts[:, 2] / 1000.0
    plays, impressions = counts[:, 1], counts[:, 0]
    completion_rate = np.divide(counts[:, 3], plays, out=np.zeros_like(plays), where=plays > 0)
    skip_rate = np.divide(counts[:, 4], impressions, out=np.zeros_like(plays), where=impressions > 0)
    return np.column_stack([np.log1p(scaled), np.clip(completion_rate, 0, 1), np.clip(skip_rate, 0, 1)]).astype(
        np.float32)


def _finite(value: Any) -> float:
    x = float(value)
    return x if np.isfinite(x) else 0.0
