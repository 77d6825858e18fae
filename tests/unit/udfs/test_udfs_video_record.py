"""The video hash codec (udfs/video_record.py): what the orchestration job writes, every reader reads back."""

from __future__ import annotations

from typing import Any

import pytest

from udfs.upload_state import VideoState
from udfs.video_record import JSON_FIELDS, decode_video, encode_video, video_fields

RENDITIONS = [{"codec": "h264", "width": 320, "height": 240, "bitrate_kbps": 392,
               "playlist_key": "videos/v1/v1/r/stream/media_0.m3u8"}]


@pytest.mark.parametrize("values", [
    {"video_id": "v1", "status": "ready", "hashtags": ["cats", "ünï"], "renditions": RENDITIONS,
     "reasons": ["nudity", "violence"], "caption": 'a "quoted", caption: with [brackets]', "seq": "7"},
    {"video_id": "v2", "status": "uploaded", "hashtags": [], "seq": "1"},
    {"video_id": "v3", "status": "removed", "status_reason": "dmca"},
])
def test_decode_reverses_encode(values: dict[str, Any]) -> None:
    assert decode_video(encode_video(values)) == values


def test_encode_leaves_out_none_and_stringifies_scalars() -> None:
    assert encode_video({"video_id": "v1", "seq": 3, "verdict": None, "reasons": ("a",)}) == {
        "video_id": "v1", "seq": "3", "reasons": '["a"]'}


def test_decode_reads_bytes_as_redis_returns_them() -> None:
    assert decode_video({b"video_id": b"v1", b"hashtags": b'["cats"]', b"seq": b"2"}) == {
        "video_id": "v1", "hashtags": ["cats"], "seq": "2"}


def test_a_ready_state_round_trips_through_the_hash() -> None:
    transcode = {"renditions": RENDITIONS, "hls_master_key": "videos/v1/v1/r/stream/master.m3u8",
                 "duration_ms": 3000, "elapsed_ms": 1500}
    state = VideoState(video_id="v1", status="ready", author_id="alice", upload_id="u1", caption="hi",
                       hashtags=("cats",), transcode=transcode, verdict="APPROVE", reasons=(), created_ms=5,
                       updated_ms=9, seq=4)
    fields = video_fields(state)
    assert all(isinstance(v, str) for v in fields.values())
    video = decode_video(fields)
    assert video["hashtags"] == ["cats"] and video["renditions"] == RENDITIONS and video["reasons"] == []
    assert {k: video[k] for k in ("status", "seq", "updated_at", "duration_ms", "ladder")} == {
        "status": "ready", "seq": "4", "updated_at": "9", "duration_ms": "3000", "ladder": "playable"}
    assert set(JSON_FIELDS) <= set(video)
