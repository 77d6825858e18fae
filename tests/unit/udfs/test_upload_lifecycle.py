"""The upload lifecycle state machine (udfs/upload_lifecycle.py): every status against every event and timer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from schemas.registry import default_registry
from udfs.upload_lifecycle import PERMANENT_REASONS, apply, content_claim, decode_event, on_timer, validate_upload
from udfs.upload_state import STATUSES, LifecycleConfig, Step, VideoState
from udfs.video_record import decode_video, video_fields

CONFIG = LifecycleConfig(stage_timeout=timedelta(seconds=60), max_attempts=3)
T0 = 1_800_000_000_000
VIDEO = "v1"
SHA = "ab" * 32


def upload_record(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "upload-1", "event_time": T0, "upload_id": "0f8fad5bd9cb469fa16570867728950e",
        "video_id": VIDEO, "author_id": "alice", "object_key": "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e",
        "size_bytes": 1234, "content_type": "video/mp4", "sha256": SHA, "caption": "hi", "hashtags": ["cats"],
        "sound_id": None, "region": "US", "language": "en", **changes,
    }


def transcode_completed(event_id: str = "tc-1") -> dict[str, Any]:
    return {
        "event_id": event_id, "event_time": T0, "video_id": VIDEO, "author_id": "alice",
        "renditions": [{"codec": "h264", "width": 320, "height": 240, "bitrate_kbps": 392,
                        "playlist_key": "videos/v1/v1/r/stream/media_0.m3u8"}],
        "hls_master_key": "videos/v1/v1/r/stream/master.m3u8",
        "dash_manifest_key": "videos/v1/v1/r/stream/manifest.mpd",
        "cover_key": "videos/v1/v1/r/cover.jpg", "audio_key": None, "audio_fingerprint": None,
        "duration_ms": 3000, "elapsed_ms": 1500,
    }


def transcode_failed(attempt: int, reason: str, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"tf-{attempt}", "event_time": T0, "video_id": VIDEO, "author_id": "alice",
            "attempt": attempt, "reason": reason}


def moderation(verdict: str, reasons: list[str] | None = None, event_id: str = "mr-1") -> dict[str, Any]:
    return {"event_id": event_id, "event_time": T0, "video_id": VIDEO, "author_id": "alice", "verdict": verdict,
            "reasons": reasons or [], "nsfw_score": 0.01, "ocr_text": None, "music_id": None,
            "near_duplicate_of": None}


def takedown(event_id: str = "td-1") -> dict[str, Any]:
    return {"event_id": event_id, "event_time": T0, "video_id": VIDEO, "author_id": "alice", "reason": "dmca",
            "notice_id": "N-1"}


def step(state: VideoState | None, record_name: str, record: dict[str, Any], *, now_ms: int = T0,
         duplicate_of: str | None = None) -> Step:
    return apply(state, record_name, record, now_ms=now_ms, config=CONFIG, duplicate_of=duplicate_of)


def names(result: Step) -> list[str]:
    return [o.record_name for o in result.outputs]


def statuses(result: Step) -> list[str]:
    return [o.record["status"] for o in result.outputs if o.record_name == "VideoStatusChanged"]


def state_in(status: str) -> VideoState:
    """A video that reached `status` through the normal path (removed: taken down while ready)."""
    transcoding = step(None, "UploadCompleted", upload_record()).state
    if status == "transcoding":
        return transcoding
    if status == "uploaded":
        return replace(transcoding, status="uploaded", stage=None, attempt=0, deadline_ms=None)
    if status == "failed":
        return step(transcoding, "TranscodeFailed", transcode_failed(1, "corrupt")).state
    moderating = step(transcoding, "TranscodeCompleted", transcode_completed()).state
    if status == "moderating":
        return moderating
    if status == "rejected":
        return step(moderating, "ModerationResult", moderation("REJECT", ["nsfw_reject"])).state
    ready = step(moderating, "ModerationResult", moderation("APPROVE")).state
    if status == "ready":
        return ready
    assert status == "removed"
    return step(ready, "Takedown", takedown()).state


# --- the happy path ---------------------------------------------------------------------------------------


def test_upload_requests_a_transcode_and_reports_two_statuses() -> None:
    result = step(None, "UploadCompleted", upload_record())
    assert result.state.status == "transcoding"
    assert names(result) == ["VideoStatusChanged", "TranscodeRequested", "VideoStatusChanged"]
    assert statuses(result) == ["uploaded", "transcoding"]
    request = result.outputs[1]
    assert request.destination == "uploads"
    assert request.record["attempt"] == 1
    assert request.record["source_key"] == upload_record()["object_key"]
    assert result.state.deadline_ms == T0 + 60_000
    assert {o.destination for o in result.outputs if o.record_name == "VideoStatusChanged"} == {"status"}


def test_full_lifecycle_to_ready_then_removed() -> None:
    transcoding = step(None, "UploadCompleted", upload_record()).state
    moderating = step(transcoding, "TranscodeCompleted", transcode_completed(), now_ms=T0 + 5_000)
    assert moderating.state.status == "moderating"
    assert statuses(moderating) == ["moderating"]
    assert moderating.state.stage == "moderate" and moderating.state.attempt == 1
    assert moderating.state.deadline_ms == T0 + 65_000
    ready = step(moderating.state, "ModerationResult", moderation("APPROVE"), now_ms=T0 + 6_000)
    assert (ready.state.status, ready.state.verdict, ready.state.deadline_ms) == ("ready", "APPROVE", None)
    removed = step(ready.state, "Takedown", takedown(), now_ms=T0 + 7_000)
    assert removed.state.status == "removed"
    assert removed.state.reason == "dmca"
    assert removed.state.takedown_notice_id == "N-1"
    assert statuses(removed) == ["removed"]
    assert removed.release_content is None  # re-uploads of taken-down bytes stay duplicates


@pytest.mark.parametrize(
    ("verdict", "reasons", "status"),
    [
        ("APPROVE", [], "ready"),
        ("AGE_RESTRICT", ["nsfw_age_restrict"], "ready"),
        ("MUTE_AUDIO", ["music_muted:m1"], "ready"),
        ("REJECT", ["nsfw_reject", "text_hate:x"], "rejected"),
    ],
)
def test_verdicts(verdict: str, reasons: list[str], status: str) -> None:
    result = step(state_in("moderating"), "ModerationResult", moderation(verdict, reasons))
    assert result.state.status == status
    assert result.state.verdict == verdict
    assert result.state.reasons == tuple(reasons)
    assert result.state.reason == (",".join(reasons) or None)
    assert result.outputs[0].record["reason"] == (",".join(reasons) or None)


def _moderating_with_audio(audio_muted: str | None) -> VideoState:
    moderating = state_in("moderating")
    transcode = {**moderating.transcode, "audio_key": "videos/v1/v1/r/audio.m4a", "audio_muted": audio_muted}
    return replace(moderating, transcode=transcode)


@pytest.mark.parametrize(
    ("record", "actions", "status"),
    [
        # version 2: the actions say it all, whatever the single verdict
        ({"verdict": "AGE_RESTRICT", "actions": ["AGE_RESTRICT", "MUTE_AUDIO"],
          "reasons": ["nsfw_age_restrict", "music_muted:m1"]}, ("AGE_RESTRICT", "MUTE_AUDIO"), "ready"),
        ({"verdict": "APPROVE", "actions": [], "reasons": []}, (), "ready"),
        # version 1 (decoded with actions = []): derived from the verdict and a music_muted reason
        ({"verdict": "AGE_RESTRICT", "reasons": ["nsfw_age_restrict", "music_muted:m1"]},
         ("AGE_RESTRICT", "MUTE_AUDIO"), "ready"),
        ({"verdict": "MUTE_AUDIO", "reasons": ["music_muted:m1"]}, ("MUTE_AUDIO",), "ready"),
        ({"verdict": "REJECT", "actions": ["REJECT", "MUTE_AUDIO"], "reasons": ["nsfw_reject", "music_muted:m1"]},
         ("REJECT", "MUTE_AUDIO"), "rejected"),
    ],
)
def test_the_actions_of_a_result_are_kept_and_shown(record: dict, actions: tuple, status: str) -> None:
    result = step(_moderating_with_audio("m1"), "ModerationResult", {**moderation("APPROVE"), **record})
    assert (result.state.status, result.state.actions) == (status, actions)
    fields = decode_video(video_fields(result.state))
    assert fields["actions"] == list(actions) and fields["audio_muted"] == "m1"


def test_a_mute_on_audio_published_unmuted_is_rejected_not_made_ready() -> None:
    result = step(_moderating_with_audio(None), "ModerationResult", moderation("MUTE_AUDIO", ["music_muted:m1"]))
    assert result.state.status == "rejected"
    assert result.state.reasons == ("mute_not_applied", "music_muted:m1")
    assert result.state.actions == ("REJECT", "MUTE_AUDIO")
    assert "TranscodeRequested" not in names(result)  # no second stage for a rejected video


def test_a_mute_on_a_video_without_audio_is_ready() -> None:
    result = step(state_in("moderating"), "ModerationResult", moderation("MUTE_AUDIO", ["music_muted:m1"]))
    assert result.state.status == "ready"


def test_a_state_written_before_actions_reads_with_none() -> None:
    old = json.loads(state_in("ready").to_json())
    del old["actions"]
    assert VideoState.from_json(json.dumps(old)).actions == ()


# --- duplicates and validation ----------------------------------------------------------------------------


def test_exact_duplicate_is_rejected_without_transcoding() -> None:
    result = step(None, "UploadCompleted", upload_record(), duplicate_of="v0")
    assert result.state.status == "rejected"
    assert result.state.reason == "duplicate_of:v0"
    assert result.state.duplicate_of == "v0"
    assert names(result) == ["VideoStatusChanged", "VideoStatusChanged"]
    assert statuses(result) == ["uploaded", "rejected"]
    assert result.state.deadline_ms is None


def test_own_claim_is_not_a_duplicate() -> None:
    assert step(None, "UploadCompleted", upload_record(), duplicate_of=VIDEO).state.status == "transcoding"


def test_content_claim_only_for_a_fresh_valid_upload() -> None:
    assert content_claim(None, "UploadCompleted", upload_record()) == SHA
    assert content_claim(None, "UploadCompleted", upload_record(sha256="zz")) is None
    assert content_claim(state_in("transcoding"), "UploadCompleted", upload_record()) is None
    assert content_claim(None, "Takedown", takedown()) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"author_id": ""}, "invalid_upload:author_id"),
        ({"author_id": "a b"}, "invalid_upload:author_id"),
        ({"upload_id": None}, "invalid_upload:upload_id"),
        ({"object_key": "videos/x"}, "invalid_upload:object_key"),
        ({"object_key": "uploads/2026/11/24/../../etc"}, "invalid_upload:object_key"),
        ({"sha256": "AB" * 32}, "invalid_upload:sha256"),
        ({"sha256": "ab"}, "invalid_upload:sha256"),
        ({"region": "usa"}, "invalid_upload:region"),
        ({"language": "EN"}, "invalid_upload:language"),
        ({"size_bytes": 0}, "invalid_upload:size_bytes"),
        ({"size_bytes": True}, "invalid_upload:size_bytes"),
    ],
)
def test_invalid_upload_fails_the_video(changes: dict[str, Any], reason: str) -> None:
    assert validate_upload(upload_record(**changes)) == reason
    result = step(None, "UploadCompleted", upload_record(**changes))
    assert (result.state.status, result.state.reason) == ("failed", reason)
    assert names(result) == ["VideoStatusChanged"]


@pytest.mark.parametrize("video_id", ["", "a/b", "x" * 129, None])
def test_upload_without_a_usable_video_id_is_ignored(video_id: Any) -> None:
    result = step(None, "UploadCompleted", upload_record(video_id=video_id))
    assert (result.state, result.ignored, result.outputs) == (None, "invalid_video_id", ())


# --- transcode failures and retries -----------------------------------------------------------------------


@pytest.mark.parametrize("reason", [*sorted(PERMANENT_REASONS), "too_long:312s", "resolution_too_high:7680x4320"])
def test_content_failures_fail_at_once(reason: str) -> None:
    result = step(state_in("transcoding"), "TranscodeFailed", transcode_failed(1, reason))
    assert (result.state.status, result.state.reason) == ("failed", reason)
    assert statuses(result) == ["failed"]
    assert result.release_content == SHA
    assert result.state.deadline_ms is None


@pytest.mark.parametrize("reason", ["transcode_failed", "transcode_timeout", "something_new"])
def test_other_failures_retry_until_max_attempts(reason: str) -> None:
    state = state_in("transcoding")
    for attempt in (1, 2):
        result = step(state, "TranscodeFailed", transcode_failed(attempt, reason), now_ms=T0 + attempt)
        assert result.state.status == "transcoding"
        assert names(result) == ["TranscodeRequested"]
        assert result.outputs[0].record["attempt"] == attempt + 1
        assert result.state.deadline_ms == T0 + attempt + 60_000
        state = result.state
    final = step(state, "TranscodeFailed", transcode_failed(3, reason))
    assert (final.state.status, final.state.reason) == ("failed", reason)
    assert final.release_content == SHA


def test_failure_of_an_older_attempt_is_stale() -> None:
    second = step(state_in("transcoding"), "TranscodeFailed", transcode_failed(1, "transcode_failed")).state
    result = step(second, "TranscodeFailed", transcode_failed(1, "corrupt", event_id="tf-late"))
    assert (result.ignored, result.state) == ("stale", second)


def test_a_retried_transcode_can_still_complete() -> None:
    second = step(state_in("transcoding"), "TranscodeFailed", transcode_failed(1, "transcode_failed")).state
    result = step(second, "TranscodeCompleted", transcode_completed())
    assert result.state.status == "moderating"
    assert result.state.reason is None


# --- timers ------------------------------------------------------------------------------------------------


def test_timer_before_the_deadline_does_nothing() -> None:
    state = state_in("transcoding")
    assert on_timer(state, now_ms=state.deadline_ms - 1, config=CONFIG).ignored == "no_deadline"
    assert on_timer(None, now_ms=T0, config=CONFIG).ignored == "no_deadline"
    assert on_timer(state_in("ready"), now_ms=T0 + 10**9, config=CONFIG).ignored == "no_deadline"


def test_transcode_timeout_retries_then_fails() -> None:
    state = state_in("transcoding")
    for attempt in (2, 3):
        result = on_timer(state, now_ms=state.deadline_ms, config=CONFIG)
        assert names(result) == ["TranscodeRequested"]
        assert result.outputs[0].record["attempt"] == attempt
        assert result.state.attempt == attempt
        assert result.state.deadline_ms == state.deadline_ms + 60_000
        state = result.state
    final = on_timer(state, now_ms=state.deadline_ms, config=CONFIG)
    assert (final.state.status, final.state.reason) == ("failed", "stage_timeout:transcode")
    assert statuses(final) == ["failed"]
    assert final.release_content == SHA
    assert final.state.deadline_ms is None


def test_moderation_timeout_re_emits_the_same_transcode_completed() -> None:
    state = state_in("moderating")
    result = on_timer(state, now_ms=state.deadline_ms, config=CONFIG)
    assert names(result) == ["TranscodeCompleted"]
    assert result.outputs[0].destination == "uploads"
    assert result.outputs[0].record == transcode_completed()  # same event_id: the moderator's result keeps its id
    # The re-emitted event comes back on the topic we read: already seen, nothing happens.
    echo = step(result.state, "TranscodeCompleted", dict(result.outputs[0].record))
    assert echo.ignored == "duplicate_event"
    assert step(result.state, "ModerationResult", moderation("APPROVE")).state.status == "ready"


def test_moderation_timeout_fails_after_max_attempts() -> None:
    state = replace(state_in("moderating"), attempt=CONFIG.max_attempts)
    final = on_timer(state, now_ms=state.deadline_ms, config=CONFIG)
    assert (final.state.status, final.state.reason) == ("failed", "stage_timeout:moderate")


def test_max_attempts_one_means_no_retry() -> None:
    config = LifecycleConfig(max_attempts=1)
    state = apply(None, "UploadCompleted", upload_record(), now_ms=T0, config=config).state
    assert on_timer(state, now_ms=state.deadline_ms, config=config).state.status == "failed"
    failed = apply(state, "TranscodeFailed", transcode_failed(1, "transcode_failed"), now_ms=T0, config=config)
    assert failed.state.status == "failed"


# --- the matrix: every status against every event ---------------------------------------------------------

EVENTS = {
    "UploadCompleted": lambda: upload_record(event_id="upload-2"),
    "TranscodeRequested": lambda: {"event_id": "tr-x", "event_time": T0, "video_id": VIDEO, "author_id": "alice",
                                   "attempt": 1, "source_key": "uploads/2026/11/24/" + "0" * 32},
    "TranscodeCompleted": lambda: transcode_completed("tc-2"),
    "TranscodeFailed": lambda: transcode_failed(1, "corrupt", event_id="tf-2"),
    "ModerationResult": lambda: moderation("REJECT", event_id="mr-2"),
    "Takedown": lambda: takedown("td-2"),
}
EXPECTED: dict[str, dict[str, str]] = {
    # status -> event -> new status, or "ignored:<why>"
    "transcoding": {"UploadCompleted": "ignored:already_uploaded", "TranscodeRequested": "ignored:own_request",
                    "TranscodeCompleted": "moderating", "TranscodeFailed": "failed",
                    "ModerationResult": "ignored:stale", "Takedown": "removed"},
    "moderating": {"UploadCompleted": "ignored:already_uploaded", "TranscodeRequested": "ignored:own_request",
                   "TranscodeCompleted": "ignored:stale", "TranscodeFailed": "ignored:stale",
                   "ModerationResult": "rejected", "Takedown": "removed"},
    **{final: {"UploadCompleted": "ignored:already_uploaded", "TranscodeRequested": "ignored:own_request",
               "TranscodeCompleted": "ignored:stale", "TranscodeFailed": "ignored:stale",
               "ModerationResult": "ignored:stale", "Takedown": "removed"}
       for final in ("ready", "rejected", "failed")},
    "removed": {"UploadCompleted": "ignored:already_uploaded", "TranscodeRequested": "ignored:own_request",
                "TranscodeCompleted": "ignored:stale", "TranscodeFailed": "ignored:stale",
                "ModerationResult": "ignored:stale", "Takedown": "ignored:already_removed"},
    "none": {"UploadCompleted": "transcoding", "TranscodeRequested": "ignored:own_request",
             "TranscodeCompleted": "ignored:orphan", "TranscodeFailed": "ignored:orphan",
             "ModerationResult": "ignored:orphan", "Takedown": "removed"},
}


@pytest.mark.parametrize(
    ("status", "event"), [(s, e) for s in EXPECTED for e in EVENTS], ids=lambda v: str(v),
)
def test_every_status_against_every_event(status: str, event: str) -> None:
    state = None if status == "none" else state_in(status)
    result = step(state, event, EVENTS[event]())
    expected = EXPECTED[status][event]
    if expected.startswith("ignored:"):
        assert result.ignored == expected.partition(":")[2]
        assert result.state is state
        assert result.outputs == ()
    else:
        assert result.ignored is None
        assert result.state.status == expected
        assert result.state.seq > (state.seq if state else 0)
        assert statuses(result)[-1] == expected


def test_statuses_are_all_covered() -> None:
    assert set(STATUSES) - set(EXPECTED) == {"uploaded"}  # transient: never the state between two events


def test_takedown_before_the_upload_keeps_the_video_removed() -> None:
    removed = step(None, "Takedown", takedown()).state
    assert removed.status == "removed"
    assert step(removed, "UploadCompleted", upload_record()).ignored == "already_uploaded"


def test_unknown_record_is_ignored() -> None:
    assert step(state_in("ready"), "Watch", {"event_id": "w1"}).ignored == "unhandled_record:Watch"


# --- redelivery and replay --------------------------------------------------------------------------------


def test_redelivered_events_change_nothing() -> None:
    transcoding = state_in("transcoding")
    assert step(transcoding, "UploadCompleted", upload_record()).ignored == "duplicate_event"
    moderating = step(transcoding, "TranscodeCompleted", transcode_completed()).state
    assert step(moderating, "TranscodeCompleted", transcode_completed()).ignored == "duplicate_event"


def test_seen_event_ids_are_bounded() -> None:
    config = LifecycleConfig(remember_events=2)
    state = apply(None, "Takedown", takedown("a"), now_ms=T0, config=config).state
    for event_id in ("b", "c", "d"):
        state = replace(state, status="ready")
        state = apply(state, "Takedown", takedown(event_id), now_ms=T0, config=config).state
    assert state.seen == ("c", "d")


def test_replay_emits_the_same_event_ids() -> None:
    first = step(None, "UploadCompleted", upload_record(), now_ms=T0)
    again = step(None, "UploadCompleted", upload_record(), now_ms=T0 + 999)
    assert [o.record["event_id"] for o in first.outputs] == [o.record["event_id"] for o in again.outputs]
    assert len({o.record["event_id"] for o in first.outputs}) == 3


def test_every_output_is_a_valid_record() -> None:
    registry = default_registry()
    outputs = []
    state = None
    for name, record in [("UploadCompleted", upload_record()),
                         ("TranscodeFailed", transcode_failed(1, "transcode_failed")),
                         ("TranscodeCompleted", transcode_completed()), ("ModerationResult", moderation("APPROVE")),
                         ("Takedown", takedown())]:
        result = step(state, name, record)
        outputs += result.outputs
        state = result.state
    outputs += on_timer(state_in("moderating"), now_ms=T0 + 10**6, config=CONFIG).outputs
    outputs += on_timer(state_in("transcoding"), now_ms=T0 + 10**6, config=CONFIG).outputs
    for out in outputs:
        decoded = registry.decode(registry.encode(out.record_name, out.record))
        assert decoded.record["video_id"] == VIDEO


# --- state and Redis fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["transcoding", "moderating", "ready", "rejected", "failed", "removed"])
def test_state_survives_json(status: str) -> None:
    state = state_in(status)
    assert VideoState.from_json(state.to_json()) == state


def test_video_fields_of_a_ready_video() -> None:
    fields = video_fields(state_in("ready"))
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["status"] == "ready"
    assert fields["verdict"] == "APPROVE"
    assert json.loads(fields["reasons"]) == []
    assert json.loads(fields["hashtags"]) == ["cats"]
    assert json.loads(fields["renditions"])[0]["width"] == 320
    assert fields["hls_master_key"].endswith("master.m3u8")
    assert fields["dash_manifest_key"].endswith("manifest.mpd")
    assert fields["author_id"] == "alice"
    assert int(fields["updated_at"]) >= int(fields["created_at"])
    assert "sound_id" not in fields and "stage" not in fields


def test_video_fields_of_a_rejected_duplicate() -> None:
    fields = video_fields(step(None, "UploadCompleted", upload_record(), duplicate_of="v0").state)
    assert (fields["status"], fields["status_reason"], fields["duplicate_of"]) == (
        "rejected", "duplicate_of:v0", "v0")
    assert "renditions" not in fields


# --- config and decoding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stage_timeout": timedelta(0)}, "stage_timeout must be a positive timedelta"),
        ({"stage_timeout": 600}, "stage_timeout must be a positive timedelta"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"remember_events": 0}, "remember_events must be >= 1"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LifecycleConfig(**kwargs)


def test_decode_event() -> None:
    registry = default_registry()
    event = decode_event(registry.encode("UploadCompleted", upload_record()))
    assert (event.video_id, event.record_name, event.record["sha256"]) == (VIDEO, "UploadCompleted", SHA)
    status = registry.encode("VideoStatusChanged", {"event_id": "s", "event_time": T0, "video_id": VIDEO,
                                                    "author_id": "a", "status": "ready"})
    assert decode_event(status) is None  # not a record of the uploads topic
    assert decode_event(b"\xc3\x01" + b"\x00" * 8) is None


# --- restore (a counter-notice: Takedown version 2, action "restore") ----------------------------------------


def restore(event_id: str = "rs-1") -> dict[str, Any]:
    return {**takedown(event_id), "action": "restore", "reason": "counter-notice", "notice_id": "CN-1"}


@pytest.mark.parametrize("status", ["ready", "rejected", "failed"])
def test_a_restore_puts_back_the_status_the_takedown_replaced(status: str) -> None:
    before = state_in(status)
    removed = step(before, "Takedown", takedown("td-9")).state
    assert (removed.status, removed.removed_from) == ("removed", status)
    restored = step(removed, "Takedown", restore(), now_ms=T0 + 9_000)
    assert statuses(restored) == [status]
    state = restored.state
    assert (state.status, state.reason, state.takedown_notice_id, state.removed_from) == (
        status, before.reason, None, None)
    assert (state.verdict, state.transcode, state.seq) == (before.verdict, before.transcode, removed.seq + 1)


def test_a_redelivered_restore_changes_nothing() -> None:
    restored = step(state_in("removed"), "Takedown", restore()).state
    assert step(restored, "Takedown", restore()).ignored == "duplicate_event"


@pytest.mark.parametrize("status", ["ready", "transcoding"])
def test_a_restore_of_a_video_that_is_not_removed_is_ignored(status: str) -> None:
    assert step(state_in(status), "Takedown", restore()).ignored == "not_removed"
    assert step(None, "Takedown", restore()).ignored == "not_removed"


@pytest.mark.parametrize("status", ["transcoding", "moderating", "uploaded"])
def test_a_video_taken_down_mid_pipeline_stays_removed(status: str) -> None:
    removed = step(state_in(status), "Takedown", takedown("td-9")).state
    assert step(removed, "Takedown", restore()).ignored == f"not_restorable:{status}"


def test_a_video_removed_before_it_was_known_stays_removed() -> None:
    removed = step(None, "Takedown", takedown()).state
    assert step(removed, "Takedown", restore()).ignored == "not_restorable:uploaded"


def test_a_state_written_before_restore_existed_stays_removed() -> None:
    old = VideoState.from_json(state_in("removed").to_json().replace('"removed_from":"ready"', '"removed_from":null'))
    assert step(old, "Takedown", restore()).ignored == "not_restorable:unknown"


@pytest.mark.parametrize("action", ["Restore", "restore ", "delete", None])
def test_any_action_but_restore_is_a_takedown(action: str | None) -> None:
    assert step(state_in("ready"), "Takedown", {**takedown(), "action": action}).state.status == "removed"


def test_a_takedown_after_a_restore_removes_again() -> None:
    restored = step(state_in("removed"), "Takedown", restore()).state
    again = step(restored, "Takedown", {**takedown("td-2"), "notice_id": "N-2"})
    assert (again.state.status, again.state.takedown_notice_id, again.state.removed_from) == ("removed", "N-2", "ready")


# --- the full ladder after ready (fyp/media's second stage) ---


def test_redis_shows_the_full_ladder_once_it_arrived() -> None:
    moderating = state_in("moderating")
    approved = step(moderating, "ModerationResult", moderation("APPROVE"))
    assert approved.state.status == "ready"
    request = next(o.record for o in approved.outputs if o.record_name == "TranscodeRequested")
    assert (request["stage"], request["attempt"]) == ("full", 1)
    assert video_fields(approved.state)["ladder"] == "playable"
    full = {**transcode_completed("tc-full"), "stage": "full", "attempt": 1,
            "hls_master_key": "videos/v1/v1/r2/stream/master.m3u8",
            "renditions": transcode_completed()["renditions"] + [
                {"codec": "av1", "width": 320, "height": 240, "bitrate_kbps": 196,
                 "playlist_key": "videos/v1/v1/r2/stream/media_1.m3u8"}]}
    done = step(approved.state, "TranscodeCompleted", full)
    assert done.changed and not done.outputs and done.state.status == "ready"
    fields = video_fields(done.state)
    assert fields["ladder"] == "full" and fields["hls_master_key"].startswith("videos/v1/v1/r2/")
    assert "av1" in fields["renditions"]
    assert step(done.state, "TranscodeCompleted", {**full, "event_id": "tc-full-2"}).ignored == "stale"
    assert step(moderating, "ModerationResult", moderation("REJECT")).outputs[-1].record_name == "VideoStatusChanged"


def test_a_failed_full_ladder_leaves_the_video_ready_with_its_h264_set() -> None:
    ready = step(state_in("moderating"), "ModerationResult", moderation("APPROVE")).state
    wrong_attempt = step(ready, "TranscodeFailed", {**transcode_failed(2, "corrupt"), "stage": "full"})
    assert wrong_attempt.ignored == "stale"
    failed = step(ready, "TranscodeFailed", {**transcode_failed(1, "transcode_timeout"), "stage": "full"})
    assert failed.changed and not failed.outputs and failed.state.status == "ready"
    fields = video_fields(failed.state)
    assert (fields["ladder"], fields["ladder_error"]) == ("playable", "transcode_timeout")
