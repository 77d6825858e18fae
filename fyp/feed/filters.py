"""The feed's filters: what a user must not be shown, decided before any ranking is spent on it.

Pure: a `UserFilters` (what Redis holds for the user) and `VideoRecord`s (the candidates' catalogue records) in,
kept ids and per-filter counts out. `fyp.feed.reads.read_filter_state` reads both in one round trip.

A candidate is dropped when:
- **recent-seen**: it is in the user's recent-seen set (features/serving_sets.py RECENT_SEEN: impressions,
  watches and skips of the last 7 days, newest 500);
- **status**: its catalogue record (`fyp:video:v1:{id}`) has a status other than `ready` (removed, rejected,
  failed and in-progress videos are never shown). A video with no record at all passes: the generated traffic's
  catalogue has none, and candidate generation lets such videos through for the same reason;
- **not interested, video**: the user marked it not interested (NOT_INTERESTED_VIDEOS);
- **not interested, author**: the user marked at least `AUTHOR_NOT_INTERESTED_THRESHOLD` of the author's videos
  not interested (NOT_INTERESTED_AUTHORS counts them, per user and author, for 30 days after the last one). One
  signal may be about the video; repeated ones are about the author.

>>> state = UserFilters(recent_seen=frozenset({"v1"}), not_interested_videos=frozenset({"v2"}),
...                     not_interested_authors={"a9": 2.0})
>>> records = {"v3": VideoRecord(video_id="v3", status="removed"), "v4": VideoRecord(video_id="v4", author_id="a9")}
>>> result = apply_filters(["v1", "v2", "v3", "v4", "v5"], state, records)
>>> result.kept, result.dropped
(['v5'], {'recent_seen': 1, 'not_interested_video': 1, 'status': 1, 'not_interested_author': 1})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["AUTHOR_NOT_INTERESTED_THRESHOLD", "SHOWABLE_STATUSES", "FilterResult", "UserFilters", "VideoRecord",
           "apply_filters", "blocked_authors"]

# Two "not interested" signals on one author's videos within 30 days (the sets' TTL) hide the author: one may be
# about the video alone.
AUTHOR_NOT_INTERESTED_THRESHOLD = 2
SHOWABLE_STATUSES = frozenset({"ready"})


class VideoRecord(NamedTuple):
    """What the feed needs from a video's catalogue hash (`fyp:video:v1:{id}`, udfs/video_record.py).
    exists: False when Redis holds no hash for the video (then the other fields are their defaults);
    age_restricted: moderation's actions include AGE_RESTRICT. A NamedTuple, not a frozen dataclass: ~500 are
    built per feed request, and a frozen dataclass's `__init__` costs several times as much."""

    video_id: str
    exists: bool = True
    status: str = "ready"
    author_id: str | None = None
    sound_id: str | None = None
    hashtags: tuple[str, ...] = ()
    audio_muted: bool = False
    age_restricted: bool = False


@dataclass(frozen=True, kw_only=True)
class UserFilters:
    """A user's filter state: the recent-seen set, the videos marked not interested, and author -> how many of
    their videos were marked not interested."""

    recent_seen: frozenset[str] = frozenset()
    not_interested_videos: frozenset[str] = frozenset()
    not_interested_authors: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FilterResult:
    """kept: the ids that passed, in input order; dropped: filter name -> how many it dropped (the first filter
    that applies to a video counts it, in the order recent_seen, not_interested_video, status,
    not_interested_author)."""

    kept: list[str]
    dropped: dict[str, int]
    reasons: dict[str, str] = field(default_factory=dict)  # dropped video -> the filter that dropped it


def blocked_authors(counts: Mapping[str, float], threshold: int = AUTHOR_NOT_INTERESTED_THRESHOLD) -> set[str]:
    """The authors whose count reaches `threshold`.

    >>> sorted(blocked_authors({"a": 1.0, "b": 2.0, "c": 5.0}))
    ['b', 'c']
    """
    return {author for author, count in counts.items() if count >= threshold}


def apply_filters(video_ids: Iterable[str], state: UserFilters, records: Mapping[str, VideoRecord], *,
                  threshold: int = AUTHOR_NOT_INTERESTED_THRESHOLD) -> FilterResult:
    """The candidates the user may be shown (see the module docstring); a repeated id is kept once."""
    authors = blocked_authors(state.not_interested_authors, threshold)
    dropped = {"recent_seen": 0, "not_interested_video": 0, "status": 0, "not_interested_author": 0}
    reasons: dict[str, str] = {}
    kept: list[str] = []
    seen: set[str] = set()
    for video_id in video_ids:
        if video_id in seen:
            continue
        seen.add(video_id)
        reason = _reason(video_id, state, records.get(video_id), authors)
        if reason is None:
            kept.append(video_id)
        else:
            dropped[reason] += 1
            reasons[video_id] = reason
    return FilterResult(kept=kept, dropped=dropped, reasons=reasons)


def _reason(video_id: str, state: UserFilters, record: VideoRecord | None, authors: set[str]) -> str | None:
    if video_id in state.recent_seen:
        return "recent_seen"
    if video_id in state.not_interested_videos:
        return "not_interested_video"
    if record is not None and record.exists and record.status not in SHOWABLE_STATUSES:
        return "status"
    if record is not None and record.author_id is not None and record.author_id in authors:
        return "not_interested_author"
    return None
