"""Atomic publishing, on an in-memory object store (plain data, no S3): the manifest is written last and only
once, a redelivery uploads nothing, a lost race cleans up after itself, crashed runs are swept later.
These test the protocol's logic; they say nothing about a real S3 server."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber

from fyp.media.keys import InvalidKey
from fyp.media.ladder import Rung
from fyp.media.publish import (
    PublishedVideo,
    S3ObjectStore,
    StoredObject,
    clean_stale_runs,
    find_published,
    manifest_key,
    publish,
)
from fyp.media.transcode import RenditionOutput, TranscodeResult

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class MemoryStore:
    """ObjectStore in a dict; records the order of writes; can fail the n-th upload."""

    def __init__(self, *, fail_on_put: int | None = None) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.writes: list[str] = []
        self.fail_on_put = fail_on_put
        self.now = T0

    def put_file(self, key: str, path: Path, *, content_type: str, cache_control: str) -> None:
        if self.fail_on_put is not None and len(self.writes) + 1 == self.fail_on_put:
            raise ConnectionError("S3 went away")
        self.writes.append(key)
        self.objects[key] = (path.read_bytes(), self.now)

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool:
        if key in self.objects:
            return False
        self.writes.append(key)
        self.objects[key] = (data, self.now)
        return True

    def get_bytes(self, key: str) -> bytes | None:
        found = self.objects.get(key)
        return found[0] if found else None

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        for key, (data, when) in sorted(self.objects.items()):
            if key.startswith(prefix):
                yield StoredObject(key=key, size=len(data), last_modified=when)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


@pytest.fixture
def result(tmp_path: Path) -> TranscodeResult:
    return fake_result(tmp_path)


def fake_result(tmp_path: Path) -> TranscodeResult:
    """A transcode's files (named after themselves) under `tmp_path/out`: one H.264 rung, pictures, audio."""
    out = tmp_path / "out"
    names = ["stream/master.m3u8", "stream/manifest.mpd", "stream/media_0.m3u8", "stream/init_0.m4s",
             "stream/seg_0_00001.m4s", "cover.jpg", "posters/poster_01.jpg", "audio.m4a", "ffmpeg.log"]
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(name.encode())
    rung = Rung(codec="h264", encoder="libx264", preset="veryfast", width=720, height=1280,
                bitrate_kbps=3041, maxrate_kbps=5253)
    return TranscodeResult(
        out_dir=out,
        renditions=(RenditionOutput(rung=rung, stream_index=0, playlist="stream/media_0.m3u8"),),
        hls_master="stream/master.m3u8",
        dash_manifest="stream/manifest.mpd",
        cover="cover.jpg",
        posters=("posters/poster_01.jpg",),
        audio="audio.m4a",
        duration_ms=2000,
        elapsed_ms=900,
    )


def test_publish_writes_the_manifest_last(result: TranscodeResult) -> None:
    store = MemoryStore()
    extra = {"audio_fingerprint": "cp1:2:AA=="}
    video = publish(result, store=store, video_id="vid1", attempt=1, extra=extra)
    assert store.writes[-1] == manifest_key("vid1", 1) == "videos/vid1/v1/_manifest.json"
    assert len(store.writes) == 9  # 8 files (not the ffmpeg log) + the manifest
    assert all(k.startswith(video.prefix) for k in store.writes[:-1])
    assert video.prefix.startswith("videos/vid1/v1/") and video.prefix != "videos/vid1/v1/"
    assert video.hls_master_key == video.prefix + "stream/master.m3u8"
    assert video.renditions[0].playlist_key == video.prefix + "stream/media_0.m3u8"
    assert store.get_bytes(video.renditions[0].playlist_key) == b"stream/media_0.m3u8"
    assert find_published(store, "vid1", 1) == video
    assert video.extra["audio_fingerprint"] == "cp1:2:AA=="


def test_redelivery_is_a_no_op(result: TranscodeResult) -> None:
    store = MemoryStore()
    first = publish(result, store=store, video_id="vid1", attempt=1)
    writes = len(store.writes)
    again = publish(result, store=store, video_id="vid1", attempt=1)
    assert again == first and len(store.writes) == writes  # nothing uploaded twice


def test_losing_a_race_returns_the_winner_and_removes_our_copy(result: TranscodeResult) -> None:
    store = MemoryStore()
    winner = publish(result, store=store, video_id="vid1", attempt=1)
    original = store.get_bytes
    calls = iter([None])  # our first look finds no manifest; the winner appears before our create

    def racing_get(key: str) -> bytes | None:
        if key.endswith("_manifest.json"):
            return next(calls, original(key))
        return original(key)

    store.get_bytes = racing_get  # type: ignore[method-assign]
    got = publish(result, store=store, video_id="vid1", attempt=1)
    assert got == winner
    assert {k for k in store.objects if k != manifest_key("vid1", 1)} == {
        k for k in store.objects if k.startswith(winner.prefix)
    }


def test_crashed_upload_is_never_referenced_and_is_swept(result: TranscodeResult) -> None:
    store = MemoryStore(fail_on_put=4)
    with pytest.raises(ConnectionError):
        publish(result, store=store, video_id="vid1", attempt=1)
    assert find_published(store, "vid1", 1) is None
    orphans = set(store.objects)
    assert orphans  # some files went up before the crash
    store.fail_on_put = None
    store.now = T0 + timedelta(minutes=5)
    video = publish(result, store=store, video_id="vid1", attempt=1)
    # Too young to sweep: a run still uploading must survive.
    assert clean_stale_runs(store, video_id="vid1", now=T0 + timedelta(hours=1)) == []
    deleted = clean_stale_runs(store, now=T0 + timedelta(hours=7))
    assert len(deleted) == 1 and not video.prefix.startswith(deleted[0])
    assert not orphans & set(store.objects)
    assert all(store.get_bytes(k) is not None for k in (video.hls_master_key, video.cover_key))


def test_manifest_round_trips(result: TranscodeResult) -> None:
    video = publish(result, store=MemoryStore(), video_id="vid1", attempt=2)
    assert PublishedVideo.from_json(video.to_json()) == video


@pytest.mark.parametrize("video_id", ["../etc", "a/b", "", "x" * 129, "vid 1"])
def test_publish_refuses_unsafe_video_ids(result: TranscodeResult, video_id: str) -> None:
    with pytest.raises(InvalidKey):
        publish(result, store=MemoryStore(), video_id=video_id, attempt=1)


def _s3_store() -> tuple[S3ObjectStore, Stubber]:
    import boto3

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    return S3ObjectStore(client, "media"), Stubber(client)


def test_s3_manifest_create_is_conditional() -> None:
    store, stub = _s3_store()
    expected = {"Bucket": "media", "Key": "m.json", "Body": b"{}", "ContentType": "application/json",
                "CacheControl": "no-cache", "IfNoneMatch": "*"}
    stub.add_response("put_object", {}, expected)
    stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412, expected_params=expected)
    with stub:
        assert store.create_bytes("m.json", b"{}", content_type="application/json") is True
        assert store.create_bytes("m.json", b"{}", content_type="application/json") is False
    stub.assert_no_pending_responses()


def test_s3_without_conditional_writes_falls_back_to_check_then_put() -> None:
    store, stub = _s3_store()
    stub.add_client_error("put_object", "NotImplemented", http_status_code=501)
    stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
    stub.add_response("put_object", {})
    with stub:
        assert store.create_bytes("m.json", b"{}", content_type="application/json") is True
    stub.assert_no_pending_responses()
