"""Render a `ViewBlock` as (record name, record dict) pairs: the readable path, and the reference the
fast encoder is tested against byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fyp.traffic.catalog import Catalog, Video
from fyp.traffic.ids import RunIds
from fyp.traffic.model import (
    BYTE_FAULTS,
    COMMENT,
    FAULT_MISSING_ID,
    FAULT_NEGATIVE_DURATION,
    FOLLOW,
    IMPRESSION,
    KIND_RECORDS,
    LIKE,
    LOOP,
    MAX_LOOPS,
    NOT_INTERESTED,
    SHARE,
    SKIP,
    SOUND,
    UNLIKE,
    WATCH,
    ViewBlock,
)
from fyp.traffic.vocab import (
    COMMENTS,
    FOLLOW_ACTIONS,
    LOCALES,
    NOT_INTERESTED_REASONS,
    SHARE_CHANNELS,
    SOUND_ACTIONS,
    SURFACES,
)
from schemas.registry import SchemaRegistry

__all__ = ["MISSING_ID_FIELDS", "RecordRenderer"]

# A missing-id fault blanks one of these, picked by event number.
MISSING_ID_FIELDS = ("event_id", "user_id", "video_id")
# A negative-duration fault negates this field.
_NEGATED = {
    WATCH: "watch_ms",
    SKIP: "dwell_ms",
    **dict.fromkeys(range(LOOP, LOOP + MAX_LOOPS), "video_duration_ms"),
}


class RecordRenderer:
    """Turns block events into records; caches video lookups."""

    def __init__(self, catalog: Catalog, ids: RunIds, registry: SchemaRegistry) -> None:
        self._catalog = catalog
        self._ids = ids
        self._versions = {name: registry.latest(name).version for name in set(KIND_RECORDS)}
        self._videos: dict[int, Video] = {}

    def render(self, block: ViewBlock) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every event of the block except the byte-level faults, which have no record form."""
        for i, fault in enumerate(block.event_fault):
            if fault not in BYTE_FAULTS:
                yield self.record(block, i)

    def record(self, block: ViewBlock, i: int) -> tuple[str, dict[str, Any]]:
        """Event `i` of the block, with its field-level fault (missing id, negative duration) applied."""
        v, kind, n = block.event_view[i], block.event_kind[i], block.first_event + i
        name = KIND_RECORDS[kind]
        video = self._videos.get(block.video[v]) or self._videos.setdefault(
            block.video[v], self._catalog.video(block.video[v])
        )
        region, language, _ = LOCALES[block.locale[v]]
        record: dict[str, Any] = {
            "event_id": self._ids.event_id(n),
            "event_time": block.event_time[i],
            "schema_version": self._versions[name],
            "user_id": f"u{block.user[v]}",
            "video_id": video.video_id,
            "author_id": video.author_id,
            "sound_id": video.sound_id,
            "region": region,
            "language": language,
            "session_id": self._ids.session_id(block.session[v]),
            "hashtags": list(video.hashtags),
        }
        record.update(self._details(block, v, kind, n, video))
        fault = block.event_fault[i]
        if fault == FAULT_MISSING_ID:
            record[MISSING_ID_FIELDS[n % 3]] = ""
        elif fault == FAULT_NEGATIVE_DURATION:
            field = _NEGATED[kind]
            record[field] = -max(record[field], 1)
        return name, record

    def _details(self, block: ViewBlock, v: int, kind: int, n: int, video: Video) -> dict[str, Any]:
        duration = video.duration_ms
        if kind == IMPRESSION:
            return {"position": block.position[v], "surface": SURFACES[block.surface[v]][0],
                    "arms": list(block.arms[v]) if block.arms else []}
        if kind == SKIP:
            return {"dwell_ms": block.dwell_ms[v], "video_duration_ms": duration}
        if kind == NOT_INTERESTED:
            return {"reason": NOT_INTERESTED_REASONS[block.reason[v]][0]}
        if kind == WATCH:
            return {"watch_ms": block.watch_ms[v], "video_duration_ms": duration}
        if LOOP <= kind < LOOP + MAX_LOOPS:
            return {"loop_count": kind - LOOP + 1, "video_duration_ms": duration}
        if kind in (LIKE, UNLIKE):
            return {"action": "LIKE" if kind == LIKE else "UNLIKE"}
        if kind == SHARE:
            return {"channel": SHARE_CHANNELS[block.channel[v]][0]}
        if kind == COMMENT:
            return {"comment_id": self._ids.comment_id(n), "text": COMMENTS[block.comment[v]][0]}
        if kind == FOLLOW:
            return {"action": FOLLOW_ACTIONS[block.follow_action[v]][0]}
        if kind == SOUND:
            return {"action": SOUND_ACTIONS[block.sound_action[v]][0]}
        return {}  # save
