"""The closed loop's reaction logic on plain data: which videos of a feed page a simulated viewer reacts to, where
their session ends, and the events' times. No HTTP and no Kafka here (fyp/traffic/feed_loop.py does those).

A page is the feed service's `items`, in order. The viewer scrolls it top to bottom; each video it knows (an id
`v<N>` of the generator's catalogue) is one view, drawn by `TrafficModel.react`, i.e. by the same probability
functions as the open-loop generator (fyp/traffic/behaviour.py: interest match, latent quality, length). An id
the generator's world does not hold (a real upload, another test's video) is scrolled past without events and
counted as unknown.

Fatigue, and nothing else, ends a session: after each view the viewer leaves with probability
1 / `mean_session_views` (as the open-loop model's sessions end), and always after `FATIGUE_SKIPS` skips in a row
(counted across pages), or when a page is empty. So a feed that shows what the viewer skips gets shorter sessions,
hence fewer impressions per user, as well as a higher skip rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from fyp.traffic.model import KIND_TYPES, SKIP, ViewBlock

__all__ = [
    "FATIGUE_SKIPS",
    "MAX_VIDEO_INDEX",
    "VIEW_SPACING_MS",
    "SessionState",
    "head_views",
    "percentile",
    "session_cut",
    "skipped_views",
    "space_views",
    "video_indices",
]

FATIGUE_SKIPS = 3  # skips in a row after which a simulated viewer closes the app
VIEW_SPACING_MS = 16  # event-time gap between consecutive views of a page: more than a view's events (<= 15)
MAX_VIDEO_INDEX = 100_000_000  # an id beyond this is not the generator's: the catalogue is never that large
_VIDEO_ID = re.compile(r"^v(0|[1-9][0-9]{0,8})$")


@dataclass(frozen=True, kw_only=True)
class SessionState:
    """One simulated session: its user (index), session number, the position of its next view, and the skips in a
    row so far."""

    user: int
    session: int
    position: int = 0
    skip_run: int = 0


def video_indices(items: Iterable[Mapping[str, object]]) -> tuple[list[int], int]:
    """The catalogue indices of a page's videos that the generator knows, in page order, and how many it does not.

    >>> video_indices([{"video_id": "v3"}, {"video_id": "feed-x"}, {"video_id": "v03"}, {"video_id": "v0"}])
    ([3, 0], 2)
    """
    known: list[int] = []
    unknown = 0
    for item in items:
        video_id = item.get("video_id")
        match = _VIDEO_ID.match(video_id) if isinstance(video_id, str) else None
        if match and int(match.group(1)) < MAX_VIDEO_INDEX:
            known.append(int(match.group(1)))
        else:
            unknown += 1
    return known, unknown


def skipped_views(block: ViewBlock) -> list[bool]:
    """Per view of `block`: whether the viewer skipped it."""
    skipped = [False] * len(block.video)
    for view, kind in zip(block.event_view, block.event_kind, strict=True):
        if kind == SKIP:
            skipped[view] = True
    return skipped


def session_cut(state: SessionState, skipped: Sequence[bool], leaves: Sequence[bool]) -> tuple[int, bool, SessionState]:
    """How many of a page's views happen, whether the session ends with them, and the session's state after.

    skipped: per view, the viewer skipped it; leaves: per view, the viewer's draw to leave after it (probability
    1 / mean_session_views). The page ends at the first view after which the viewer leaves or has skipped
    FATIGUE_SKIPS in a row; an empty page ends the session.

    >>> session_cut(SessionState(user=0, session=0, skip_run=1), [False, True, True, False], [False] * 4)
    (3, True, SessionState(user=0, session=0, position=3, skip_run=3))
    """
    if len(skipped) != len(leaves):
        raise ValueError(f"{len(skipped)} skip flags for {len(leaves)} leave draws")
    run = state.skip_run
    for i, (skip, leave) in enumerate(zip(skipped, leaves, strict=True)):
        run = run + 1 if skip else 0
        if leave or run >= FATIGUE_SKIPS:
            return i + 1, True, replace(state, position=state.position + i + 1, skip_run=run)
    return len(skipped), not skipped, replace(state, position=state.position + len(skipped), skip_run=run)


def head_views(block: ViewBlock, views: int) -> ViewBlock:
    """The first `views` views of `block` and their events, recounted (event numbers keep their gaps: the ids
    stay unique)."""
    if views >= len(block.video):
        return block
    keep = [i for i, v in enumerate(block.event_view) if v < views]
    kinds = [block.event_kind[i] for i in keep]
    faults = [block.event_fault[i] for i in keep]
    counts: dict[str, int] = {}
    for kind, fault in zip(kinds, faults, strict=True):
        name = "malformed" if fault else KIND_TYPES[kind]
        counts[name] = counts.get(name, 0) + 1
    per_view = ("user", "locale", "session", "position", "video", "surface", "dwell_ms", "watch_ms", "channel",
                "sound_action", "follow_action", "reason", "comment")
    if block.arms:
        per_view += ("arms",)
    return replace(block, **{name: getattr(block, name)[:views] for name in per_view},
                   event_view=[block.event_view[i] for i in keep], event_kind=kinds,
                   event_time=[block.event_time[i] for i in keep], event_fault=faults, counts=counts)


def space_views(block: ViewBlock) -> ViewBlock:
    """Event times in page order: view i's events move VIEW_SPACING_MS * i later, so a page's views follow one
    another (TrafficModel.react stamps every view of a call near the same instant)."""
    times = [t + VIEW_SPACING_MS * v for t, v in zip(block.event_time, block.event_view, strict=True)]
    return replace(block, event_time=times)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0..100) by the nearest-rank method; None for no values.

    >>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50), percentile([1.0, 2.0], 99), percentile([], 50)
    (3.0, 2.0, None)
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
