"""The upload lifecycle's values: its config, one video's state, and what a step of the state machine returns.

`udfs/upload_lifecycle.py` holds the transitions (`apply`, `on_timer`) over these records; `udfs/video_record.py`
turns a `VideoState` into the video's Redis hash. Pure Python, no Flink or Redis: the orchestration job keeps a
`VideoState` as JSON in keyed state (`VideoState.to_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Literal

__all__ = [
    "STATUSES",
    "Destination",
    "LifecycleConfig",
    "LifecycleEvent",
    "Output",
    "Stage",
    "Status",
    "Step",
    "VideoState",
]

Status = Literal["uploaded", "transcoding", "moderating", "ready", "rejected", "failed", "removed"]
Stage = Literal["transcode", "moderate"]
Destination = Literal["uploads", "status"]  # schemas.topics.UPLOADS, schemas.topics.VIDEO_STATUS
STATUSES: tuple[Status, ...] = ("uploaded", "transcoding", "moderating", "ready", "rejected", "failed", "removed")


@dataclass(frozen=True, kw_only=True)
class LifecycleConfig:
    """Timeouts and retries of the lifecycle.

    stage_timeout: how long a transcode or a moderation may take before it is retried (default 10 min; a
    `timedelta`, held as milliseconds). max_attempts: tries per stage, first included (default 3).
    remember_events: how many consumed event_ids a video keeps for deduplication (default 64).

    >>> LifecycleConfig(stage_timeout=timedelta(seconds=30)).stage_timeout_ms
    30000
    >>> LifecycleConfig(max_attempts=0)
    Traceback (most recent call last):
    ...
    ValueError: max_attempts must be >= 1, got 0
    """

    stage_timeout: timedelta = timedelta(minutes=10)
    max_attempts: int = 3
    remember_events: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.stage_timeout, timedelta) or self.stage_timeout <= timedelta(0):
            raise ValueError(f"stage_timeout must be a positive timedelta, got {self.stage_timeout!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.remember_events < 1:
            raise ValueError(f"remember_events must be >= 1, got {self.remember_events}")

    @property
    def stage_timeout_ms(self) -> int:
        return int(self.stage_timeout.total_seconds() * 1000)


@dataclass(frozen=True, kw_only=True)
class VideoState:
    """Everything the orchestrator knows about one video. Serialised as JSON (`to_json`) in Flink state.

    stage/attempt/deadline_ms: the work in flight (None when nothing is), its try number and when it times
    out (epoch ms, processing time). seq: number of changes so far; it orders Redis writes and names events.
    transcode: the accepted TranscodeCompleted record of the playable stage (re-emitted to retry moderation).
    ladder: the TranscodeCompleted record of the full ladder, once it arrived; ladder_error: why it failed.
    """

    video_id: str
    status: Status
    author_id: str = ""
    upload_id: str | None = None
    caption: str = ""
    hashtags: tuple[str, ...] = ()
    sound_id: str | None = None
    region: str | None = None
    language: str | None = None
    sha256: str | None = None
    source_key: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    stage: Stage | None = None
    attempt: int = 0
    deadline_ms: int | None = None
    transcode: dict[str, Any] | None = None
    # Added with the two-stage ladder, with defaults: states written before read as "no full ladder yet", so
    # the state name (jobs/upload_orchestration.py STATE_NAME) stays.
    ladder: dict[str, Any] | None = None
    ladder_error: str | None = None
    verdict: str | None = None
    reasons: tuple[str, ...] = ()
    # Added with ModerationResult version 2, with a default: earlier states read as "no actions recorded".
    actions: tuple[str, ...] = ()
    ocr_text: str | None = None  # text moderation read from the frames; the embedding job embeds it
    reason: str | None = None  # why the current status, when it is not self-explanatory
    duplicate_of: str | None = None
    takedown_notice_id: str | None = None
    # Added with Takedown version 2 (restore), with defaults: a video removed before reads as "nothing to restore".
    removed_from: str | None = None  # the status a takedown replaced, which a restore puts back
    removed_from_reason: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    seq: int = 0
    seen: tuple[str, ...] = field(default=(), repr=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VideoState:
        data = json.loads(text)
        for name in ("hashtags", "reasons", "actions", "seen"):
            data[name] = tuple(data.get(name) or ())
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class Output:
    """A record to emit: `destination` "uploads" (fyp.uploads.v1) or "status" (fyp.video-status.v1)."""

    destination: Destination
    record_name: str
    record: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class Step:
    """The result of one event or timer.

    state: the new state (the same object when nothing changed). outputs: records to emit, in order.
    release_content: a sha256 whose duplicate claim the caller must give up (the video failed, so a re-upload
    of the same bytes deserves its own try). ignored: why the event changed nothing (for logs and metrics),
    e.g. "duplicate_event", "orphan", "stale".
    """

    state: VideoState | None
    outputs: tuple[Output, ...] = ()
    release_content: str | None = None
    ignored: str | None = None

    @property
    def changed(self) -> bool:
        return self.ignored is None


@dataclass(frozen=True, kw_only=True)
class LifecycleEvent:
    """A decoded record of the uploads topic: `record_name` (e.g. "UploadCompleted") and its fields."""

    video_id: str
    record_name: str
    record: dict[str, Any]

