"""A video's upload lifecycle as a pure state machine: (state, event) -> (new state, records to emit).

No Kafka, Flink or Redis here: `jobs/upload_orchestration.py` keys the upload topic by video_id, keeps one
`VideoState` per video (as JSON, `VideoState.to_json`), calls `apply` per event and `on_timer` when the stage
deadline passes, emits `Step.outputs` and writes `udfs.video_record.video_fields(state)` to Redis. The records
this module passes around (`LifecycleConfig`, `VideoState`, `Step`, `Output`) are in `udfs/upload_state.py`;
this module is the transitions only.

Statuses, in order (docs/UPLOADS.md draws the diagram):

    uploaded -> transcoding -> moderating -> ready | rejected
        any stage can end in failed (a content error, or a stage out of attempts); anything -> removed (Takedown)

- Every record is checked first (`udfs.upload_limits.upload_record_error`: ids, sizes, formats). A bad
  UploadCompleted ends `failed` with `invalid_upload:<field>` (`validate_upload`); any other bad record is ignored
  (`invalid_record:<reason>`) and changes nothing, so a rogue producer cannot put an oversized or key-breaking
  value into the state, Redis or the status topic. A Takedown is the exception: it needs only a usable video_id
  (a removal must not be lost to a malformed author or event id). A bad event_id is never remembered.
- UploadCompleted: if the
  caller found another video with the same sha256 (`content_claim` says when to look), the video ends
  `rejected` with `duplicate_of:<video_id>` and is never transcoded. Otherwise TranscodeRequested(attempt 1).
- TranscodeFailed of the current attempt: a content reason (`corrupt`, `too_long:…`, see `PERMANENT_REASONS`)
  fails the video at once; any other reason retries with attempt + 1 until `max_attempts`, then fails.
- TranscodeCompleted (stage "playable": the H.264 set, the first playable rendition) -> moderating. The
  moderator consumes the same event by itself; nothing is requested.
- ModerationResult: REJECT (the verdict, or among the actions) -> rejected; APPROVE, AGE_RESTRICT, MUTE_AUDIO
  -> ready (the verdict and its actions are kept, `moderation_actions`), and the second stage is requested:
  TranscodeRequested(stage "full", same attempt) for the H.265/AV1 rungs. Ready means servable with the H.264
  set; the full ladder comes later (docs/UPLOADS.md, "Two stages"). A MUTE_AUDIO action on a transcode whose
  audio was published unmuted (an `audio_key`, no `audio_muted`) is rejected instead, `mute_not_applied`: the
  audio it must not carry would otherwise become viewable.
- TranscodeCompleted (stage "full"): the full ladder is kept (`ladder`); the status does not change. Redis then
  shows every rendition and the republished manifests. TranscodeFailed (stage "full") is kept as
  `ladder_error`: the video stays ready with its H.264 set (no retry; a crash is redelivered by Kafka).
- Takedown: -> removed, from any status, including before the upload is known; the status it replaced is kept
  (`removed_from`). Takedown with action "restore" (a counter-notice, version 2): a removed video goes back to
  that status when it is one of `RESTORABLE` (ready, rejected, failed); a video taken down mid-pipeline, or
  before it was known, stays removed (`not_restorable:<status>`). Any action other than "restore" is a takedown.
- A stage that has not finished by its deadline (`stage_timeout`, default 10 min) is retried: transcoding
  with a new TranscodeRequested, moderation by re-emitting the stored TranscodeCompleted (same event_id, so the
  moderator's result keeps its id); after `max_attempts` (default 3) the video fails with
  `stage_timeout:<stage>`. Results that arrive after that are stale: rejected, failed and removed are final
  (only a restore undoes removed), and ready changes only by Takedown.
- Every consumed event_id is remembered (the last `remember_events`), so a redelivered event changes nothing.
  Emitted event_ids are derived from (video_id, status sequence number or attempt): a replay emits the same.

Example:

>>> config = LifecycleConfig()
>>> upload = {"event_id": "e1", "event_time": 1, "upload_id": "u" * 32, "video_id": "v1", "author_id": "a1",
...     "object_key": "uploads/2026/11/24/" + "0" * 32, "size_bytes": 10, "content_type": "video/mp4",
...     "sha256": "ab" * 32, "caption": "hi", "hashtags": [], "sound_id": None, "region": "US", "language": "en"}
>>> step = apply(None, "UploadCompleted", upload, now_ms=1_000, config=config)
>>> step.state.status, [o.record_name for o in step.outputs]
('transcoding', ['VideoStatusChanged', 'TranscodeRequested', 'VideoStatusChanged'])
>>> step.state.deadline_ms
601000
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from udfs.upload_limits import id_error, upload_record_error
from udfs.upload_state import LifecycleConfig, LifecycleEvent, Output, Status, Step, VideoState

__all__ = [
    "PERMANENT_REASONS",
    "RESTORABLE",
    "apply",
    "content_claim",
    "decode_event",
    "moderation_actions",
    "on_timer",
    "validate_upload",
]


# TranscodeFailed reasons caused by the file itself (docs/UPLOADS.md, "Limits and refusal reasons"): a retry
# cannot help. A reason with a detail (`too_long:312s`) is matched by its part before the colon.
PERMANENT_REASONS = frozenset({
    "zero_bytes", "too_large", "not_a_video", "audio_only", "corrupt", "too_long", "resolution_too_high",
    "source_missing", "invalid_request",
})



def decode_event(payload: bytes) -> LifecycleEvent | None:
    """A single-object Avro payload of fyp.uploads.v1 as a `LifecycleEvent`; None if it is not one.

    >>> from schemas.registry import default_registry
    >>> payload = default_registry().encode("Takedown", {"event_id": "e1", "event_time": 1, "video_id": "v1",
    ...     "author_id": "a1", "reason": "dmca", "notice_id": "n1"})
    >>> decode_event(payload).record_name, decode_event(b"junk")
    ('Takedown', None)
    """
    from schemas.registry import UndecodableEvent, default_registry

    try:
        event = default_registry().decode(payload)
    except UndecodableEvent:
        return None
    video_id = event.record.get("video_id")
    if event.record_name not in _HANDLERS or not isinstance(video_id, str) or not video_id:
        return None
    return LifecycleEvent(video_id=video_id, record_name=event.record_name, record=event.record)


def validate_upload(record: Mapping[str, Any]) -> str | None:
    """None if an UploadCompleted record is usable, else `invalid_upload:<field>` for the first bad field
    (`udfs.upload_limits.upload_record_error` says which and why; docs/UPLOADS.md "Field limits").

    >>> validate_upload({"video_id": "v1", "sha256": "nope"})
    'invalid_upload:author_id'
    >>> validate_upload({"video_id": "v1", "author_id": "a1", "upload_id": "u1", "event_id": "e1",
    ...     "caption": "x" * 2_201})
    'invalid_upload:object_key'
    """
    error = upload_record_error("UploadCompleted", record)
    return None if error is None else f"invalid_upload:{error.partition(':')[2]}"


def moderation_actions(record: Mapping[str, Any]) -> tuple[str, ...]:
    """A ModerationResult's actions: its `actions` (version 2), or, for a record written before them (decoded
    with `actions` = []), the verdict unless APPROVE, plus MUTE_AUDIO for a `music_muted:` reason.

    >>> moderation_actions({"verdict": "AGE_RESTRICT", "reasons": ["nsfw_age_restrict", "music_muted:m1"]})
    ('AGE_RESTRICT', 'MUTE_AUDIO')
    >>> moderation_actions({"verdict": "AGE_RESTRICT", "actions": ["AGE_RESTRICT"], "reasons": ["music_muted:m1"]})
    ('AGE_RESTRICT',)
    """
    actions = [a for a in record.get("actions") or () if isinstance(a, str)]
    if actions:
        return tuple(dict.fromkeys(actions))
    verdict = _text(record.get("verdict"))
    derived = [verdict] if verdict and verdict != "APPROVE" else []
    if any(_text(r).startswith("music_muted:") for r in record.get("reasons") or ()):
        derived.append("MUTE_AUDIO")
    return tuple(dict.fromkeys(derived))


def content_claim(state: VideoState | None, record_name: str, record: Mapping[str, Any]) -> str | None:
    """The sha256 the caller must claim (and whose earlier owner it must pass to `apply` as `duplicate_of`)
    before applying this event, or None when the event needs no duplicate check."""
    if record_name != "UploadCompleted" or state is not None or validate_upload(record) is not None:
        return None
    return record["sha256"]


def apply(
    state: VideoState | None, record_name: str, record: Mapping[str, Any], *, now_ms: int,
    config: LifecycleConfig, duplicate_of: str | None = None,
) -> Step:
    """The step for one event of a video. now_ms: processing time, epoch ms. duplicate_of: another video that
    already holds this UploadCompleted's sha256 (see `content_claim`); ignored for other events."""
    event_id = record.get("event_id")
    if state is not None and event_id in state.seen:
        return Step(state=state, ignored="duplicate_event")
    handler = _HANDLERS.get(record_name)
    if handler is None:
        return Step(state=state, ignored=f"unhandled_record:{record_name}")
    # A bad UploadCompleted fails its video instead (`validate_upload`). A Takedown is applied whatever its author or
    # event id: a removal must not be lost to a malformed field; its handler needs only a usable video_id.
    if record_name not in ("UploadCompleted", "Takedown"):
        invalid = upload_record_error(record_name, record)
        if invalid is not None:
            return Step(state=state, ignored=f"invalid_record:{invalid}")
    step = handler(state, record, now_ms, config, duplicate_of)
    # Only a valid event_id is remembered: the seen list is bounded in count, and so in bytes.
    if step.changed and step.state is not None and id_error("event_id", event_id, required=True) is None:
        seen = (*step.state.seen, event_id)[-config.remember_events:]
        step = replace(step, state=replace(step.state, seen=seen))
    return step


def on_timer(state: VideoState | None, *, now_ms: int, config: LifecycleConfig) -> Step:
    """The step when processing time reaches `state.deadline_ms`: retry the stage, or fail it when out of tries."""
    if state is None or state.deadline_ms is None or now_ms < state.deadline_ms or state.stage is None:
        return Step(state=state, ignored="no_deadline")
    if state.attempt >= config.max_attempts:
        failed = _change(state, "failed", now_ms, reason=f"stage_timeout:{state.stage}", stage=None,
                         deadline_ms=None)
        return Step(state=failed, outputs=(_status(failed, now_ms),), release_content=state.sha256)
    attempt = state.attempt + 1
    retried = replace(state, attempt=attempt, deadline_ms=now_ms + config.stage_timeout_ms, updated_ms=now_ms,
                      seq=state.seq + 1)
    if state.stage == "transcode":
        return Step(state=retried, outputs=(_transcode_request(retried, now_ms),))
    # Moderation has no request record: the moderator consumes TranscodeCompleted, so send it that again.
    return Step(state=retried, outputs=(Output(destination="uploads", record_name="TranscodeCompleted",
                                               record=dict(state.transcode or {})),))


# --- handlers: (state, record, now_ms, config, duplicate_of) -> Step -------------------------------------


def _upload_completed(state, record, now_ms, config, duplicate_of) -> Step:
    if state is not None:
        return Step(state=state, ignored="already_uploaded")
    invalid = validate_upload(record)
    if invalid is not None:
        video_id = record.get("video_id")
        if id_error("video_id", video_id, required=True, plain=True) is not None:
            return Step(state=None, ignored="invalid_video_id")
        # The author is kept only when it is a valid id: the failed video's hash and status name it.
        author_id = record.get("author_id")
        author_id = author_id if id_error("author_id", author_id, required=True, plain=True) is None else ""
        failed = VideoState(video_id=video_id, status="failed", reason=invalid, created_ms=now_ms,
                            updated_ms=now_ms, seq=1, author_id=author_id)
        return Step(state=failed, outputs=(_status(failed, now_ms),))
    uploaded = VideoState(
        video_id=record["video_id"], status="uploaded", author_id=record["author_id"],
        upload_id=record["upload_id"], caption=record.get("caption") or "",
        hashtags=tuple(record.get("hashtags") or ()), sound_id=record.get("sound_id"), region=record["region"],
        language=record["language"], sha256=record["sha256"], source_key=record["object_key"],
        size_bytes=record["size_bytes"], content_type=record.get("content_type"), created_ms=now_ms,
        updated_ms=now_ms, seq=1,
    )
    if duplicate_of is not None and duplicate_of != uploaded.video_id:
        rejected = _change(uploaded, "rejected", now_ms, reason=f"duplicate_of:{duplicate_of}",
                           duplicate_of=duplicate_of)
        return Step(state=rejected, outputs=(_status(uploaded, now_ms), _status(rejected, now_ms)))
    transcoding = _change(uploaded, "transcoding", now_ms, stage="transcode", attempt=1,
                          deadline_ms=now_ms + config.stage_timeout_ms)
    return Step(state=transcoding, outputs=(
        _status(uploaded, now_ms), _transcode_request(transcoding, now_ms), _status(transcoding, now_ms)))


def _transcode_requested(state, record, now_ms, config, duplicate_of) -> Step:
    # Our own requests come back on the topic we read; the transcoder acts on them, we have nothing to do.
    return Step(state=state, ignored="own_request")


def _transcode_completed(state, record, now_ms, config, duplicate_of) -> Step:
    if state is None:
        return Step(state=None, ignored="orphan")
    if record.get("stage") == "full":
        return _ladder_completed(state, record, now_ms)
    if state.status != "transcoding":
        return Step(state=state, ignored="stale")
    moderating = _change(state, "moderating", now_ms, reason=None, stage="moderate", attempt=1,
                         deadline_ms=now_ms + config.stage_timeout_ms, transcode=dict(record))
    return Step(state=moderating, outputs=(_status(moderating, now_ms),))


def _ladder_completed(state: VideoState, record: Mapping[str, Any], now_ms: int) -> Step:
    if state.transcode is None or state.status in ("failed", "removed") or state.ladder is not None:
        return Step(state=state, ignored="stale")
    if _transcode_attempt(state) != record.get("attempt"):
        return Step(state=state, ignored="stale")  # the full ladder of a transcode attempt we did not keep
    kept = replace(state, ladder=dict(record), ladder_error=None, updated_ms=now_ms, seq=state.seq + 1)
    return Step(state=kept)


def _ladder_failed(state: VideoState, record: Mapping[str, Any], now_ms: int) -> Step:
    if state.transcode is None or state.ladder is not None or _transcode_attempt(state) != record.get("attempt"):
        return Step(state=state, ignored="stale")
    reason = _text(record.get("reason")) or "transcode_failed"
    return Step(state=replace(state, ladder_error=reason, updated_ms=now_ms, seq=state.seq + 1))


def _transcode_attempt(state: VideoState) -> int | None:
    """The attempt whose playable set was accepted: the record says (version 2), else the key does
    (`videos/{video_id}/v{attempt}/...`)."""
    transcode = state.transcode or {}
    if isinstance(transcode.get("attempt"), int):
        return transcode["attempt"]
    found = re.match(r"videos/[^/]+/v(\d+)/", _text(transcode.get("hls_master_key")))
    return int(found.group(1)) if found else None


def _transcode_failed(state, record, now_ms, config, duplicate_of) -> Step:
    if state is None:
        return Step(state=None, ignored="orphan")
    if record.get("stage") == "full":
        return _ladder_failed(state, record, now_ms)
    if state.status != "transcoding" or record.get("attempt") != state.attempt:
        return Step(state=state, ignored="stale")
    reason = _text(record.get("reason")) or "transcode_failed"
    if reason.partition(":")[0] in PERMANENT_REASONS or state.attempt >= config.max_attempts:
        failed = _change(state, "failed", now_ms, reason=reason, stage=None, deadline_ms=None)
        return Step(state=failed, outputs=(_status(failed, now_ms),), release_content=state.sha256)
    retried = replace(state, attempt=state.attempt + 1, deadline_ms=now_ms + config.stage_timeout_ms,
                      reason=reason, updated_ms=now_ms, seq=state.seq + 1)
    return Step(state=retried, outputs=(_transcode_request(retried, now_ms),))


def _moderation_result(state, record, now_ms, config, duplicate_of) -> Step:
    if state is None:
        return Step(state=None, ignored="orphan")
    if state.status != "moderating":
        return Step(state=state, ignored="stale")
    verdict = _text(record.get("verdict"))
    reasons = tuple(record.get("reasons") or ())
    actions = moderation_actions(record)
    if "MUTE_AUDIO" in actions and _audio_unmuted(state):
        # Defence in depth (the moderator already rejects this, `music_unmuted`): never make audible a video
        # whose music must be muted.
        verdict, actions, reasons = "REJECT", ("REJECT", *actions), ("mute_not_applied", *reasons)
    status: Status = "rejected" if verdict == "REJECT" or "REJECT" in actions else "ready"
    reason = ",".join(reasons) or None
    decided = _change(state, status, now_ms, reason=reason, stage=None, deadline_ms=None, verdict=verdict,
                      reasons=reasons, actions=actions, ocr_text=record.get("ocr_text") or None)
    outputs = [_status(decided, now_ms)]
    attempt = _transcode_attempt(decided)
    if status == "ready" and attempt is not None and decided.ladder is None:
        # Second stage only for a servable video: no H.265/AV1 CPU on rejected ones, and it does not compete
        # with moderation for the cores while the verdict is pending.
        outputs.append(_transcode_request(replace(decided, attempt=attempt), now_ms, stage="full"))
    return Step(state=decided, outputs=tuple(outputs))


def _audio_unmuted(state: VideoState) -> bool:
    """Whether the accepted playable set published the upload's audio (an audio track, not silenced)."""
    transcode = state.transcode or {}
    return bool(transcode.get("audio_key")) and not transcode.get("audio_muted")


# A restore puts back a status that needs nothing more from the pipeline; a video taken down mid-pipeline
# (its stage and deadline were dropped) would be stuck, so it stays removed and must be uploaded again.
RESTORABLE = ("ready", "rejected", "failed")


def _takedown(state, record, now_ms, config, duplicate_of) -> Step:
    # Only an exact "restore" restores: any other action (a typo, a future one) blocks, so a bad field can never
    # bring a video back.
    if record.get("action") == "restore":
        return _restore(state, record, now_ms)
    if state is not None and state.status == "removed":
        return Step(state=state, ignored="already_removed")
    if state is None:
        video_id = record.get("video_id")
        if id_error("video_id", video_id, required=True, plain=True) is not None:
            return Step(state=None, ignored="invalid_video_id")
        # A takedown may name a video this job never saw (uploaded before it ran): remember the removal anyway,
        # so that a late UploadCompleted cannot bring the video back. Its author only if a valid id.
        author_id = record.get("author_id")
        author_id = author_id if id_error("author_id", author_id) is None and isinstance(author_id, str) else ""
        state = VideoState(video_id=video_id, status="uploaded", author_id=author_id, created_ms=now_ms)
    removed = _change(state, "removed", now_ms, reason=_text(record.get("reason")) or "takedown", stage=None,
                      deadline_ms=None, takedown_notice_id=record.get("notice_id"), removed_from=state.status,
                      removed_from_reason=state.reason)
    return Step(state=removed, outputs=(_status(removed, now_ms),))


def _restore(state, record, now_ms) -> Step:
    if state is None or state.status != "removed":
        return Step(state=state, ignored="not_removed")
    if state.removed_from not in RESTORABLE:
        return Step(state=state, ignored=f"not_restorable:{state.removed_from or 'unknown'}")
    restored = _change(state, state.removed_from, now_ms, reason=state.removed_from_reason,
                       takedown_notice_id=None, removed_from=None, removed_from_reason=None)
    return Step(state=restored, outputs=(_status(restored, now_ms),))


_HANDLERS = {
    "UploadCompleted": _upload_completed,
    "TranscodeRequested": _transcode_requested,
    "TranscodeCompleted": _transcode_completed,
    "TranscodeFailed": _transcode_failed,
    "ModerationResult": _moderation_result,
    "Takedown": _takedown,
}


def _change(state: VideoState, status: Status, now_ms: int, **changes: Any) -> VideoState:
    return replace(state, status=status, updated_ms=now_ms, seq=state.seq + 1, **changes)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _event_id(kind: str, video_id: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:{kind}:{video_id}:{n}"))


def _status(state: VideoState, now_ms: int) -> Output:
    return Output(destination="status", record_name="VideoStatusChanged", record={
        "event_id": _event_id("VideoStatusChanged", state.video_id, state.seq),
        "event_time": now_ms,
        "video_id": state.video_id,
        "author_id": state.author_id,
        "status": state.status,
        "reason": state.reason,
    })


def _transcode_request(state: VideoState, now_ms: int, stage: str = "playable") -> Output:
    kind = "TranscodeRequested" if stage == "playable" else f"TranscodeRequested:{stage}"
    return Output(destination="uploads", record_name="TranscodeRequested", record={
        "event_id": _event_id(kind, state.video_id, state.attempt),
        "event_time": now_ms,
        "video_id": state.video_id,
        "author_id": state.author_id,
        "attempt": state.attempt,
        "source_key": state.source_key,
        "stage": stage,
    })
