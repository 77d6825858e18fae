"""What synthetic traffic to generate: one frozen, validated `TrafficConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["TrafficConfig"]


def _ms(value: timedelta) -> int:
    return round(value.total_seconds() * 1000)


@dataclass(frozen=True, kw_only=True)
class TrafficConfig:
    """Population and behaviour knobs of the generator.

    users: number of viewers (ids u0..u<users-1>).
    videos: initial catalog size (v0..); new uploads extend it. Popularity is Zipf by id: v0 is the hit.
    authors: creators (default videos // 10); videos per author is Zipf.
    sounds: sounds (default videos // 20); 70% of videos use one, Zipf-distributed (trending sounds).
    zipf_exponent: exponent of video popularity (default 1.1).
    concurrent_sessions: sessions scrolling at the same time; their events interleave.
    mean_session_views: videos seen per session on average (geometric).
    new_video_fraction: new uploads per view (default 0.002: one per 500 views).
    interest_traffic_fraction: share of views drawn from one of the viewer's interest topics (Zipf within
        the topic) instead of global popularity; the rest is global Zipf (or fresh, below).
    fresh_traffic_fraction: share of views that go to the `fresh_window` newest videos (exploration).
    jitter: event_time is up to this much before the moment it is generated (default 250 ms).
    late_fraction: share of views whose events carry old timestamps, 1 minute to `late_by` old.
    malformed_fraction: share of events made bad (garbage bytes, unknown fingerprint, truncated body,
        missing id, negative duration) to exercise the dead-letter path.

    >>> TrafficConfig(users=100, videos=1000).author_count
    100
    """

    users: int = 10_000
    videos: int = 50_000
    authors: int | None = None
    sounds: int | None = None
    zipf_exponent: float = 1.1
    concurrent_sessions: int = 1_000
    mean_session_views: float = 30.0
    new_video_fraction: float = 0.002
    interest_traffic_fraction: float = 0.85
    fresh_traffic_fraction: float = 0.03
    fresh_window: int = 500
    jitter: timedelta = timedelta(milliseconds=250)
    late_fraction: float = 0.0
    late_by: timedelta = timedelta(minutes=30)
    malformed_fraction: float = 0.0

    def __post_init__(self) -> None:
        for name in ("users", "videos", "concurrent_sessions", "fresh_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("authors", "sounds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        fractions = ("new_video_fraction", "interest_traffic_fraction", "fresh_traffic_fraction")
        for name in (*fractions, "late_fraction", "malformed_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.zipf_exponent <= 0:
            raise ValueError(f"zipf_exponent must be > 0, got {self.zipf_exponent}")
        if self.mean_session_views < 1:
            raise ValueError(f"mean_session_views must be >= 1, got {self.mean_session_views}")
        if self.jitter < timedelta(0) or self.late_by <= timedelta(0):
            raise ValueError(f"jitter must be >= 0 and late_by > 0, got {self.jitter}, {self.late_by}")

    @property
    def author_count(self) -> int:
        return self.authors if self.authors is not None else max(1, self.videos // 10)

    @property
    def sound_count(self) -> int:
        return self.sounds if self.sounds is not None else max(1, self.videos // 20)

    @property
    def session_slots(self) -> int:
        return min(self.concurrent_sessions, self.users)

    @property
    def jitter_ms(self) -> int:
        return _ms(self.jitter)

    @property
    def late_by_ms(self) -> int:
        return _ms(self.late_by)
