"""What the encoders read: a video's metadata, a user's recent history and real-time features.

Named records cross the module boundary (never tuples); each has a constructor from where serving finds it:
`VideoMeta.from_video_hash` reads the Redis hash `fyp:video:v1:{id}` (its codec: udfs.video_record),
`UserFeatures.from_entity` reads `fyp.serving.FeatureClient.get("user", id)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from udfs.video_record import decode_video

__all__ = ["PDQ_BYTES", "UserFeatures", "UserHistory", "VideoMeta"]

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
    """A user's recent positives: the RECENT_POSITIVES serving set's members, **newest first** (as Redis
    `ZREVRANGE` returns them and as the training table's `recent_positives` column holds them); the user tower
    reads the first `TowerConfig.history_len`.

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
    """The user's real-time features the user tower reads: `user_engagement.v1` as the serving decode returns
    it ({column: value}, ratios included, e.g. `impressions_24h`, `completion_rate_decay_30m`).

    Serving: `UserFeatures.from_entity(FeatureClient.get("user", id))`. Training reads the same values from the
    training table's `user_engagement__<column>` columns, as of each row's time (point-in-time, fyp.training).
    Empty: Redis held nothing on the user.
    """

    values: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_entity(cls, entity: Any | None) -> UserFeatures:
        """From `FeatureClient.get("user", id)` (an EntityFeatures; None: a user Redis has nothing on)."""
        return cls() if entity is None else cls(values=dict(entity.values))
