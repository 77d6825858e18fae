"""The upload orchestration job's stream on in-memory payloads of fyp.uploads.v1: decode, key by video, apply the
lifecycle, emit requests and status changes, write each video's hash and its changelog row. The Redis store is
a plain object that appends each write to a file (the real one runs in tests/integration/test_upload_pipeline.py).
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

from jobs.upload_orchestration import VIDEOS_TAG, lifecycle
from schemas.registry import default_registry
from schemas.topics import UPLOADS as UPLOADS_TOPIC
from schemas.topics import VIDEO_STATUS
from udfs.upload_events import VIDEO_FIELD_NAMES
from udfs.upload_state import LifecycleConfig
from udfs.video_record import decode_video

SHA = "ab" * 32
UPLOADS, STATUS = UPLOADS_TOPIC.name, VIDEO_STATUS.name
RENDITIONS = [{"codec": "h264", "width": 320, "height": 240, "bitrate_kbps": 392,
               "playlist_key": "videos/v1/v1/r/stream/media_0.m3u8"}]


class FileStore:
    """`RedisVideoStore`'s calls the job makes: sha256 claims in memory, each hash write appended to `path`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.claims: dict[str, str] = {}

    def claim_content(self, sha256: str, video_id: str) -> str | None:
        owner = self.claims.setdefault(sha256, video_id)
        return None if owner == video_id else owner

    def release_content(self, sha256: str, video_id: str) -> None:
        if self.claims.get(sha256) == video_id:
            del self.claims[sha256]

    def write(self, video_id: str, fields: dict[str, str]) -> bool:
        with open(self.path, "a") as out:
            out.write(json.dumps([video_id, fields]) + "\n")
        return True


def encode(record_name: str, video_id: str, event_id: str, **fields) -> bytes:
    record = {"event_id": event_id, "event_time": 1, "video_id": video_id, "author_id": "alice", **fields}
    return default_registry().encode(record_name, record)


def upload(video_id: str, event_id: str) -> bytes:
    return encode("UploadCompleted", video_id, event_id, upload_id="0" * 31 + video_id[-1],
                  object_key="uploads/2026/11/24/" + "0" * 32, size_bytes=1234, content_type="video/mp4",
                  sha256=SHA, caption="hi", hashtags=["cats"], sound_id=None, region="US", language="en")


PAYLOADS = [
    upload("v1", "u-1"),
    encode("TranscodeCompleted", "v1", "tc-1", renditions=RENDITIONS, stage="playable", attempt=1,
           hls_master_key="videos/v1/v1/r/stream/master.m3u8", dash_manifest_key="videos/v1/v1/r/stream/manifest.mpd",
           cover_key="videos/v1/v1/r/cover.jpg", duration_ms=3000, elapsed_ms=1500),
    encode("ModerationResult", "v1", "mr-1", verdict="APPROVE", reasons=[]),
    upload("v1", "u-1"),  # redelivered: changes nothing
    upload("v2", "u-2"),  # the same bytes as v1: a duplicate
    encode("Takedown", "v3", "td-1", reason="dmca", notice_id="n1"),  # a video this job never saw
    b"\x00not avro",
]


def run(tmp_path: Path, *, side_output: bool) -> list:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    env.set_python_executable(sys.executable)  # the mini cluster's Python workers: this environment's
    source = env.from_collection([(bytearray(p),) for p in PAYLOADS],
                                 type_info=Types.ROW([Types.PRIMITIVE_ARRAY(Types.BYTE())]))
    store_factory = partial(FileStore, str(tmp_path / "hashes.jsonl"))
    processed = lifecycle(source, config=LifecycleConfig(), store_factory=store_factory)
    videos = processed.get_side_output(VIDEOS_TAG)  # declared, as the job does: else its rows go to the main output
    stream = videos if side_output else processed
    return list(stream.execute_and_collect())


def test_events_become_requests_status_changes_and_video_hashes(tmp_path: Path) -> None:
    emitted = [(topic, unsigned(key).decode(), default_registry().decode(unsigned(payload)))
               for topic, key, payload in run(tmp_path, side_output=False)]
    steps = [(topic, key, e.record_name, e.record.get("status") or e.record.get("stage")) for topic, key, e in emitted]
    assert steps == [
        (STATUS, "v1", "VideoStatusChanged", "uploaded"),
        (UPLOADS, "v1", "TranscodeRequested", "playable"),
        (STATUS, "v1", "VideoStatusChanged", "transcoding"),
        (STATUS, "v1", "VideoStatusChanged", "moderating"),
        (STATUS, "v1", "VideoStatusChanged", "ready"),
        (UPLOADS, "v1", "TranscodeRequested", "full"),
        (STATUS, "v2", "VideoStatusChanged", "uploaded"),
        (STATUS, "v2", "VideoStatusChanged", "rejected"),
        (STATUS, "v3", "VideoStatusChanged", "removed"),
    ]
    assert emitted[7][2].record["reason"] == "duplicate_of:v1"

    # One hash write per accepted change, through the codec; the last of each video is what Redis holds.
    writes = [json.loads(line) for line in (tmp_path / "hashes.jsonl").read_text().splitlines()]
    assert [(v, f["status"]) for v, f in writes] == [
        ("v1", "transcoding"), ("v1", "moderating"), ("v1", "ready"), ("v2", "rejected"), ("v3", "removed")]
    last = {v: decode_video(f) for v, f in writes}
    assert last["v1"]["hashtags"] == ["cats"] and last["v1"]["renditions"] == RENDITIONS
    assert (last["v1"]["verdict"], last["v1"]["reasons"], last["v1"]["seq"]) == ("APPROVE", [], "4")
    assert (last["v2"]["duplicate_of"], last["v3"]["takedown_notice_id"]) == ("v1", "n1")


def test_each_accepted_change_is_a_changelog_row(tmp_path: Path) -> None:
    rows = [dict(zip(VIDEO_FIELD_NAMES, row, strict=True)) for row in run(tmp_path, side_output=True)]
    assert [(r["video_id"], r["status"]) for r in rows] == [
        ("v1", "transcoding"), ("v1", "moderating"), ("v1", "ready"), ("v2", "rejected"), ("v3", "removed")]
    assert rows[2]["hashtags"] == ["cats"] and [r[0] for r in rows[2]["renditions"]] == ["h264"]


def unsigned(java_bytes) -> bytes:
    """A collected BYTE array comes back as signed ints."""
    return bytes(b & 0xFF for b in java_bytes)
