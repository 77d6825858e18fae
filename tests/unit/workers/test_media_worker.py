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
from fyp.media.keys import video_root
from fyp.media.ladder import LadderPolicy
from fyp.media.publish import StoredObject
from fyp.media.takedown import block_marker_key, block_video
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

    def copy(self, source: str, destination: str) -> None:
        self._path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(source), self._path(destination))


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


MELODY = "0.5*sin(2*PI*(300+200*sin(2*PI*0.3*t))*t)+0.3*sin(2*PI*(800+300*sin(2*PI*0.7*t))*t)"


def test_music_the_catalogue_mutes_is_published_silent_and_said_so(tmp_path: Path) -> None:
    import subprocess

    from fyp.media.fingerprint import build_entry
    from fyp.media.loudness import audio_levels

    track, clip = tmp_path / "track.wav", tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc='{MELODY}':s=44100:d=8", str(track)], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=15:d=6",
                    "-i", str(track), "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(clip)], check=True, timeout=60)
    store = DirStore(tmp_path / "bucket")
    key = "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"
    (store.root / key).parent.mkdir(parents=True)
    clip.rename(store.root / key)
    catalogue = [build_entry(track, music_id="song-1", title="Sweeps", decision="mute")]
    transcoder = Transcoder(store=store, policy=LadderPolicy(extra_codecs={}), work_root=tmp_path,
                            catalogue=catalogue)
    name, record = transcoder.handle(request(key))
    assert name == "TranscodeCompleted" and record["audio_muted"] == "song-1"
    decoded = default_registry().decode(default_registry().encode(name, record)).record
    assert decoded["audio_muted"] == "song-1" and decoded["audio_fingerprint"]  # the original audio's
    # Every published object with audio carries silence; there is no other copy of the audio in the bucket.
    published = store.root / record["hls_master_key"]
    for target in (published, published.with_name("manifest.mpd"), store.root / record["audio_key"]):
        levels = audio_levels(target)
        assert levels and all(level.silent for level in levels), (target, levels)
    # A redelivery re-emits the same fact from the manifest.
    assert transcoder.handle(request(key))[1]["audio_muted"] == "song-1"


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


def test_two_stages_publish_playable_then_full_ladder(tmp_path: Path) -> None:
    from fyp.media.playback import probe_manifest

    store = DirStore(tmp_path / "bucket")
    key = "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"
    (store.root / key).parent.mkdir(parents=True)
    synthesize(tmp_path / "clip.mp4", seconds=1, width=256, height=144).rename(store.root / key)
    transcoder = Transcoder(store=store, work_root=tmp_path)  # the default ladder: H.265 and AV1 on the top rung
    full_request = {**request(key), "event_id": "e2", "stage": "full"}
    name, refused = transcoder.handle(full_request)
    assert (name, refused["reason"], refused["stage"]) == ("TranscodeFailed", "playable_missing", "full")

    name, playable = transcoder.handle(request(key))
    assert (name, playable["stage"], playable["attempt"]) == ("TranscodeCompleted", "playable", 1)
    assert [r["codec"] for r in playable["renditions"]] == ["h264"] and playable["cpu_ms"] > 0
    name, full = transcoder.handle(full_request)
    assert name == "TranscodeCompleted" and full["stage"] == "full"
    for record in (playable, full):
        default_registry().encode("TranscodeCompleted", record)
    assert full["event_id"] != playable["event_id"]
    assert [r["codec"] for r in full["renditions"]] == ["h264", "h265", "av1"]
    assert full["renditions"][0] == playable["renditions"][0]  # the H.264 rung is not made again
    assert (full["cover_key"], full["audio_key"]) == (playable["cover_key"], playable["audio_key"])
    assert full["hls_master_key"] != playable["hls_master_key"]
    # Both stages' manifests play from the store's files; the full ones reach the H.264 run by relative URIs.
    expected = {"h264": {"h264"}, "full": {"h264", "hevc", "av1"}}
    for stage, record in (("h264", playable), ("full", full)):
        for manifest in (record["hls_master_key"], record["dash_manifest_key"]):
            streams = probe_manifest(store.root / manifest)
            assert {s["codec_name"] for s in streams if s["codec_type"] == "video"} == expected[stage], manifest
            assert any(s["codec_type"] == "audio" for s in streams), manifest
    # A redelivered full request: nothing made or uploaded, the same event.
    puts = store.puts
    _, again = transcoder.handle(full_request)
    assert store.puts == puts
    assert {k: v for k, v in again.items() if k != "event_time"} == {k: v for k, v in full.items() if k != "event_time"}


def test_full_stage_with_unreadable_playable_manifests_fails_with_a_reason(tmp_path: Path) -> None:
    store = DirStore(tmp_path / "bucket")
    key = "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"
    (store.root / key).parent.mkdir(parents=True)
    synthesize(tmp_path / "clip.mp4", seconds=1, width=256, height=144, audio=False).rename(store.root / key)
    transcoder = Transcoder(store=store, work_root=tmp_path, policy=LadderPolicy(extra_codecs={"av1": 1}))
    _, playable = transcoder.handle(request(key))
    (store.root / playable["hls_master_key"]).write_text("not a playlist")
    name, failed = transcoder.handle({**request(key), "stage": "full"})
    assert (name, failed["reason"], failed["stage"]) == ("TranscodeFailed", "manifest_compose_failed", "full")
    assert store.get_bytes("videos/vid1/v1/_manifest.full.json") is None


SOURCE = "uploads/2026/11/24/0f8fad5bd9cb469fa16570867728950e"


def test_a_taken_down_video_is_not_transcoded(worker: tuple[Transcoder, DirStore]) -> None:
    transcoder, store = worker
    block_video(store, "vid1")  # the takedown's marker, before any transcode
    name, record = transcoder.handle(request(SOURCE))
    assert (name, record["reason"]) == ("TranscodeFailed", "taken_down") and store.puts == 0
    default_registry().encode(name, record)


class TakedownMidPublish(DirStore):
    """A takedown lands while the worker publishes: its marker appears with the run's first file, after the
    takedown listed an empty prefix."""

    def put_file(self, key: str, path: Path, *, content_type: str, cache_control: str) -> None:
        super().put_file(key, path, content_type=content_type, cache_control=cache_control)
        self.create_bytes(block_marker_key("vid1"), b"{}", content_type="application/json")


def test_what_is_published_during_a_takedown_is_moved_to_quarantine(worker: tuple[Transcoder, DirStore]) -> None:
    transcoder, plain = worker
    store = TakedownMidPublish(plain.root)
    transcoder.store = store
    name, record = transcoder.handle(request(SOURCE))
    assert (name, record["reason"]) == ("TranscodeFailed", "taken_down")
    assert list(store.list_objects(video_root("vid1"))) == []  # not one published key readable
    assert list(store.list_objects("quarantine/" + video_root("vid1")))  # kept for a counter-notice
