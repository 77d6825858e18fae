"""udfs/upload_events.py: upload-lifecycle records as history rows, a video's state as a changelog row, and the
Iceberg schemas built from the same field lists."""

from __future__ import annotations

import doctest

import pytest

import udfs.upload_events as upload_events
from connectors.iceberg_tables import upload_events_schema, videos_changelog_schema
from schemas.registry import default_registry
from udfs.upload_events import (
    UPLOAD_EVENT_FIELD_NAMES,
    UPLOAD_EVENT_TYPES,
    VIDEO_FIELD_NAMES,
    to_upload_event_row,
    video_row,
)
from udfs.upload_state import VideoState

BASE = {"event_id": "e1", "event_time": 1_700_000_000_000, "video_id": "v1", "author_id": "a1"}
RENDITION = {"codec": "h264", "width": 640, "height": 360, "bitrate_kbps": 800, "playlist_key": "p/360.m3u8"}
RECORDS = {
    "UploadCompleted": {"upload_id": "u1", "object_key": "uploads/k", "size_bytes": 10, "content_type": "video/mp4",
                        "sha256": "ab" * 32, "caption": "hi", "hashtags": ["cats"], "sound_id": None,
                        "region": "US", "language": "en"},
    "TranscodeRequested": {"attempt": 1, "source_key": "uploads/k"},
    "TranscodeCompleted": {"renditions": [RENDITION, {**RENDITION, "width": 1280, "height": 720}],
                           "hls_master_key": "m.m3u8", "dash_manifest_key": "m.mpd", "cover_key": "c.jpg",
                           "duration_ms": 3000, "elapsed_ms": 900},
    "TranscodeFailed": {"attempt": 2, "reason": "corrupt"},
    "ModerationResult": {"verdict": "REJECT", "reasons": ["music_blocked:x"], "nsfw_score": 0.5},
    "Takedown": {"reason": "dmca", "notice_id": "N1"},
    "VideoStatusChanged": {"status": "ready", "reason": None},
}


def decode(record_name: str) -> dict:
    payload = default_registry().encode(record_name, {**BASE, **RECORDS[record_name]})
    return dict(zip(UPLOAD_EVENT_FIELD_NAMES, to_upload_event_row(payload), strict=True))


@pytest.mark.parametrize("record_name", sorted(RECORDS))
def test_every_lifecycle_record_decodes_with_its_own_fields(record_name: str) -> None:
    row = decode(record_name)
    assert row["error"] is None
    assert (row["event_id"], row["event_time"], row["video_id"], row["author_id"]) == ("e1", BASE["event_time"],
                                                                                       "v1", "a1")
    assert row["event_type"] in UPLOAD_EVENT_TYPES
    for name, value in RECORDS[record_name].items():
        expected = [tuple(r.values()) for r in value] if name == "renditions" else value
        assert row[name] == pytest.approx(expected) if name == "nsfw_score" else row[name] == expected, name


def test_fields_of_other_records_stay_null() -> None:
    row = decode("Takedown")
    assert row["event_type"] == "takedown"
    assert all(row[name] is None for name in ("status", "caption", "hashtags", "renditions", "verdict", "attempt"))


@pytest.mark.parametrize(("payload", "error"), [(b"", "too_short"), (None, "too_short"), (b"\x00" * 20, "bad_marker")])
def test_undecodable_payloads_get_only_an_error(payload, error: str) -> None:
    row = to_upload_event_row(payload)
    assert row[-1] == error and all(v is None for v in row[:-1])


def test_an_engagement_record_is_not_an_upload_event() -> None:
    payload = default_registry().encode("Save", {"event_id": "e", "event_time": 1, "user_id": "u", "video_id": "v",
                                                 "author_id": "a", "sound_id": None, "region": "US", "language": "en",
                                                 "session_id": "s", "hashtags": []})
    assert to_upload_event_row(payload)[-1] == "not_an_upload_event:Save"


def test_video_row_takes_metadata_renditions_and_the_largest_size() -> None:
    state = VideoState(video_id="v1", status="ready", author_id="a1", upload_id="u1", caption="hi",
                       hashtags=("cats",), region="US", language="en", verdict="MUTE_AUDIO", reasons=("music",),
                       transcode={**BASE, **RECORDS["TranscodeCompleted"]}, created_ms=5, updated_ms=9, seq=4)
    row = dict(zip(VIDEO_FIELD_NAMES, video_row(state), strict=True))
    assert (row["status"], row["seq"], row["verdict"], row["reasons"]) == ("ready", 4, "MUTE_AUDIO", ["music"])
    assert (row["caption"], row["hashtags"], row["duration_ms"]) == ("hi", ["cats"], 3000)
    assert (row["width"], row["height"], len(row["renditions"])) == (1280, 720, 2)
    assert (row["created_ms"], row["updated_ms"]) == (5, 9)


def test_iceberg_schemas_follow_the_field_lists() -> None:
    events = upload_events_schema()
    assert [f.name for f in events.fields] == [*UPLOAD_EVENT_FIELD_NAMES[:-1], "kafka_topic", "kafka_partition",
                                               "kafka_offset"]
    assert str(events.find_field("event_time").field_type) == "timestamptz"
    videos = videos_changelog_schema()
    assert [f.name for f in videos.fields][-2:] == ["created_at", "updated_at"]
    assert len(videos.fields) == len(VIDEO_FIELD_NAMES)
    ids = [f.field_id for f in events.fields]
    assert len(set(ids)) == len(ids)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(upload_events).failed == 0
