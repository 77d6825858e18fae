"""The transcoder worker's handling of one TranscodeRequested, minus Kafka. A local-directory object store
stands in for S3 (this shows the worker's logic, not S3 behaviour); results must fit the Avro schemas."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fyp.media.bench import synthesize
from fyp.media.fingerprint import decode_fingerprint
from fyp.media.ladder import LadderPolicy
from fyp.media.publish import StoredObject
from schemas.registry import default_registry
from workers.transcoder import Transcoder


class DirStore:
    """Objects as files under a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts = 0

    def _path(self, key: str) -> Path:
        return self.root / key

    def put_file(self, key: str, path: Path, *, content_type: str, cache_control: str) -> None:
        self.puts += 1
        self._path(key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, self._path(key))

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool:
        if self._path(key).exists():
            return False
        self._path(key).parent.mkdir(parents=True, exist_ok=True)
        self._path(key).write_bytes(data)
        return True

    def get_bytes(self, key: str) -> bytes | None:
        return self._path(key).read_bytes() if self._path(key).is_file() else None

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix):
                when = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield StoredObject(key=key, size=path.stat().st_size, last_modified=when)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def size_of(self, key: str) -> int | None:
        return self._path(key).stat().st_size if self._path(key).is_file() else None

    def download(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)


def request(source_key: str, attempt: int = 1) -> dict[str, object]:
    return {"event_id": "e1", "event_time": 1, "video_id": "vid1", "author_id": "a1", "attempt": attempt,
            "source_key": source_key}


@pytest.fixture
def worker(tmp_path: Path) -> tuple[Transcoder, DirStore]:
    store = DirStore(tmp_path / "bucket")
    key = "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"
    (store.root / key).parent.mkdir(parents=True)
    synthesize(tmp_path / "clip.mp4", seconds=3, width=160, height=120).rename(store.root / key)
    # H.264 only and tiny: this tests the wiring; test_media_transcode covers the encoders.
    return Transcoder(store=store, policy=LadderPolicy(extra_codecs={}), work_root=tmp_path), store


def test_success_publishes_and_emits_a_valid_completed_event(worker: tuple[Transcoder, DirStore]) -> None:
    transcoder, store = worker
    name, record = transcoder.handle(request("uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"))
    assert name == "TranscodeCompleted"
    default_registry().encode(name, record)  # fits schemas/avro/TranscodeCompleted.avsc
    (rendition,) = record["renditions"]
    assert (rendition["codec"], rendition["width"], rendition["height"]) == ("h264", 160, 120)
    assert rendition["playlist_key"].endswith("/stream/media_0.m3u8")
    keys = ("hls_master_key", "dash_manifest_key", "cover_key", "audio_key")
    for key in (record[k] for k in keys):
        assert key.startswith("videos/vid1/v1/") and store.get_bytes(key)
    assert decode_fingerprint(record["audio_fingerprint"]).values
    assert 2900 <= record["duration_ms"] <= 3100 and record["elapsed_ms"] > 0
    # A redelivery: nothing transcoded or uploaded again, the same event comes out.
    puts = store.puts
    again_name, again = transcoder.handle(request("uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"))
    assert store.puts == puts and again_name == name
    assert {k: v for k, v in again.items() if k != "event_time"} == {
        k: v for k, v in record.items() if k != "event_time"
    }


def test_missing_source_fails(worker: tuple[Transcoder, DirStore]) -> None:
    transcoder, _ = worker
    name, record = transcoder.handle(request("uploads/2026/11/24/ffffffffffffffffffffffffffffffff"))
    assert (name, record["reason"]) == ("TranscodeFailed", "source_missing")
    default_registry().encode(name, record)


def test_bad_source_fails_with_its_reason(worker: tuple[Transcoder, DirStore]) -> None:
    transcoder, store = worker
    key = "uploads/2026/11/24/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
    (store.root / key).write_text("not a video")
    name, record = transcoder.handle(request(key, attempt=2))
    assert (name, record["reason"], record["attempt"]) == ("TranscodeFailed", "not_a_video:text", 2)
    assert not list(store.list_objects("videos/"))


@pytest.mark.parametrize("key", ["../../etc/passwd", "videos/other/v1/x", "uploads/../videos/x"])
def test_source_key_outside_uploads_is_refused(worker: tuple[Transcoder, DirStore], key: str) -> None:
    transcoder, store = worker
    name, record = transcoder.handle(request(key))
    assert (name, record["reason"]) == ("TranscodeFailed", "invalid_request")
    assert not list(store.list_objects("videos/"))
