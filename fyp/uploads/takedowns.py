"""Takedown and counter-notice intake without HTTP: `POST /v1/takedowns` (fyp.uploads.api) and `fyp takedown`
(fyp.commands.takedown) both call `TakedownService.file`.

One call, in this order (docs/MODERATION.md, "Takedowns"):
1. the published media moves: to quarantine for a takedown (after writing the takedown marker that stops the
   transcoder from publishing again), back for a restore (`fyp.media.takedown`); a read of a published key of
   a taken-down video fails from here on;
2. a `Takedown` record (version 2: action, claimant, objects moved) goes to fyp.uploads.v1; the orchestration
   job makes the video `removed`, or puts back the status it had (`udfs.upload_lifecycle`), and the embedding
   job drops it from, or returns it to, the index;
3. an audit row goes to the Iceberg table `moderation.takedowns` (`udfs.takedown_audit`).

Every step is safe to repeat, so a client retries a failed call as it is: the move finds only what is left, the
record's event_id is derived from (action, video, notice, the video's change number) and consumers deduplicate on
it (a retry after the first record was applied is ignored as `already_removed`), and the audit gets one row per
call with what that call moved (none, on a retry after success).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fyp.media.keys import video_root
from fyp.media.takedown import QUARANTINE_ROOT, MovableStore, Moved, block_video, restore_video
from fyp.uploads.service import ApiError, Emit
from udfs.limits import MAX_ID_BYTES
from udfs.takedown_audit import Audit, TakedownAudit
from udfs.upload_lifecycle import RESTORABLE

__all__ = [
    "MAX_CLAIMANT_CHARS",
    "MAX_NOTICE_ID_CHARS",
    "MAX_REASON_CHARS",
    "LookupVideo",
    "TakedownRequest",
    "TakedownService",
    "takedown_event_id",
    "takedown_record",
]

MAX_REASON_CHARS = 500  # a category and a sentence; the notice itself stays with legal, under its id
MAX_NOTICE_ID_CHARS = 128
MAX_CLAIMANT_CHARS = 200
# Printable text only: these fields reach logs, Redis and the audit table, where a control character could forge
# a line. `\P{Cc}` is "not a control character" in pydantic-core's (non-backtracking) regex engine.
_PRINTABLE = r"^\P{Cc}+$"

LookupVideo = Callable[[str], Mapping[str, str] | None]


class TakedownRequest(BaseModel):
    """Body of POST /v1/takedowns. Unknown fields are refused; every field has a limit.

    action: "takedown" (default) blocks the video; "restore" is a counter-notice and unblocks it.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    video_id: str = Field(min_length=1, max_length=MAX_ID_BYTES, pattern=r"^[A-Za-z0-9_-]+$")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, pattern=_PRINTABLE,
                        description="why, e.g. 'copyright: full song'")
    notice_id: str = Field(min_length=1, max_length=MAX_NOTICE_ID_CHARS, pattern=r"^[A-Za-z0-9._-]+$",
                           description="id of the legal notice (DMCA) or counter-notice")
    claimant: str | None = Field(default=None, min_length=1, max_length=MAX_CLAIMANT_CHARS, pattern=_PRINTABLE,
                                 description="who filed the notice")
    action: Literal["takedown", "restore"] = "takedown"


def takedown_event_id(action: str, video_id: str, notice_id: str, seq: str | None) -> str:
    """The Takedown record's event_id, from the request and the video's change number (`seq` of its Redis hash,
    None when unknown).

    A retry before the orchestration applied the first record has the same id, so it is applied once; the same
    notice filed again after a restore has a new `seq`, hence a new id, and is not taken for a redelivery.

    >>> takedown_event_id("takedown", "v1", "N-1", "7") == takedown_event_id("takedown", "v1", "N-1", "7")
    True
    >>> takedown_event_id("takedown", "v1", "N-1", "7") == takedown_event_id("takedown", "v1", "N-1", "9")
    False
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:Takedown:{action}:{video_id}:{notice_id}:{seq or ''}"))


def takedown_record(body: TakedownRequest, *, author_id: str, seq: str | None, moved: int,
                    now_ms: int) -> dict[str, Any]:
    """The Takedown record (schemas/avro/Takedown.avsc, version 2) for a request."""
    return {
        "event_id": takedown_event_id(body.action, body.video_id, body.notice_id, seq),
        "event_time": now_ms,
        "video_id": body.video_id,
        "author_id": author_id,
        "reason": body.reason,
        "notice_id": body.notice_id,
        "action": body.action,
        "claimant": body.claimant,
        "objects_moved": moved,
    }


class TakedownService:
    """File takedowns and restores (see the module docstring for the steps).

    store: the media bucket (`fyp.media.publish.S3ObjectStore`). lookup: the video's Redis hash by id (None when
    unknown), for its author and status. emit: `emit(record_name, record)` to Kafka. audit: appends a
    `TakedownAudit` (`connectors.iceberg_takedown_sink.IcebergTakedownAudit`). Errors are `ApiError`.
    """

    def __init__(self, *, store: MovableStore, lookup: LookupVideo, emit: Emit, audit: Audit,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.lookup, self.emit, self.audit, self.clock = store, lookup, emit, audit, clock

    def file(self, body: TakedownRequest, *, filed_by: str) -> dict[str, Any]:
        """Move the media, emit the record, write the audit; return what was done.

        filed_by: which door the request came through, for the audit ("api:<host>", "cli:<user>").
        """
        started = time.monotonic()
        video = _attempt(503, "lookup_failed", "could not read the video's record", self.lookup, body.video_id)
        moved = _attempt(503, "media_move_failed", "the media was not (fully) moved", self._move, body, video)
        moved_at = time.monotonic()
        now_ms = int(self.clock() * 1000)
        known = video or {}
        record = takedown_record(body, author_id=known.get("author_id", ""), seq=known.get("seq"),
                                 moved=moved.count, now_ms=now_ms)
        _attempt(503, "emit_failed", "could not announce the takedown", self.emit, "Takedown", record)
        emitted_at = time.monotonic()
        _attempt(503, "audit_failed", "the takedown took effect but its audit row was not written", self.audit,
                 TakedownAudit(event_id=record["event_id"], action=body.action, video_id=body.video_id,
                               notice_id=body.notice_id, claimant=body.claimant, reason=body.reason,
                               filed_by=filed_by, filed_at_ms=now_ms, objects_moved=moved.keys))
        return {"video_id": body.video_id, "action": body.action, "notice_id": body.notice_id,
                "event_id": record["event_id"], "objects_moved": moved.count,
                "previous_status": known.get("status"),
                "timings_ms": {"move": _ms(moved_at - started), "emit": _ms(emitted_at - moved_at),
                               "audit": _ms(time.monotonic() - emitted_at)}}

    def _move(self, body: TakedownRequest, video: Mapping[str, str] | None) -> Moved:
        if body.action == "restore":
            quarantined = QUARANTINE_ROOT + video_root(body.video_id)
            # Without a record (a removed video's hash expires after 30 days), quarantined media is proof enough.
            if video is None and next(iter(self.store.list_objects(quarantined)), None) is None:
                raise ApiError(404, "video_not_found", f"no video {body.video_id!r} to restore")
            if video is not None and video.get("status") != "removed":
                raise ApiError(409, "not_removed", f"video {body.video_id!r} is {video.get('status')}, not removed")
            removed_from = (video or {}).get("removed_from")
            if removed_from is not None and removed_from not in RESTORABLE:
                # The orchestration ignores this restore (not_restorable): moving the media back would make a
                # removed video's files readable again.
                raise ApiError(409, "not_restorable", f"video {body.video_id!r} was taken down while "
                               f"{removed_from}; only a video taken down while {', '.join(RESTORABLE)} is "
                               "restored (the creator uploads it again)")
            return restore_video(self.store, body.video_id)
        if video is None and next(iter(self.store.list_objects(video_root(body.video_id))), None) is None:
            # Neither a record nor media: most likely a mistyped id. Nothing is written or emitted.
            raise ApiError(404, "video_not_found", f"no video {body.video_id!r}: no record and no published media")
        marker = {"notice_id": body.notice_id, "reason": body.reason, "claimant": body.claimant}
        return block_video(self.store, body.video_id, marker=json.dumps(marker).encode())


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _attempt(status: int, code: str, message: str, call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`, with any failure but an `ApiError` answered as `status` / `code`."""
    try:
        return call(*args)
    except ApiError:
        raise
    except Exception as exc:  # Redis, S3, Kafka and Iceberg fail in many ways; the client retries the whole call
        raise ApiError(status, code, f"{message}: {exc}; retry the request") from exc
