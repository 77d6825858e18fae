"""The music catalogue in S3 on the real stack: `fyp music add|list|remove` edit one object, and running
transcoder and moderator workers follow each edit without a restart.

The workers run as subprocesses (fyp/stack/upload_workers.py) with FYP_MUSIC_RELOAD_S=1, started before the
track is catalogued. The test writes TranscodeRequested records to the uploads topic itself (no Flink job is
needed: the transcoder answers on the same topic and the moderator reads that answer) and reads the
TranscodeCompleted and ModerationResult records of each video back:
- after `fyp music add --policy mute`, a video carrying 6 s of the track is published with silent audio
  (`audio_muted`) and moderated MUTE_AUDIO with its `music_id`;
- after `fyp music remove`, the next video with the same audio is neither muted nor matched;
- a duplicate add and an unknown remove are refused with a clear error; `fyp music list --json` shows the track;
- an edit racing another keeps both (the conditional put), and a put with a stale ETag is refused by SeaweedFS.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from fyp.bench.music_synth import synth_track, write_wav
from fyp.cli import app
from fyp.config import Settings
from fyp.media.fingerprint import CatalogueEntry, Fingerprint
from fyp.media.keys import new_upload_key
from fyp.media.music_catalogue import S3CatalogueStore, add_track, remove_track
from fyp.media.publish import make_s3_client
from fyp.stack.upload_workers import UploadWorkers
from schemas.registry import default_registry
from schemas.topics import UPLOADS

pytestmark = pytest.mark.integration

# The moderator loads its models before it polls: on a loaded machine that alone can take a minute.
RESULT_TIMEOUT_S = 150
runner = CliRunner()


@pytest.fixture(scope="module")
def catalogue(settings: Settings) -> S3CatalogueStore:
    return S3CatalogueStore(make_s3_client(settings), settings.media_bucket)


@pytest.fixture(scope="module")
def music_id(catalogue: S3CatalogueStore) -> Iterator[str]:
    """A fresh id, removed from the catalogue afterwards (whatever the test left)."""
    music_id = f"it-music-{uuid.uuid4().hex[:8]}"
    yield music_id
    if catalogue.read().find(music_id):
        catalogue.edit(lambda c: remove_track(c, music_id))


@pytest.fixture(scope="module")
def workers(settings: Settings, tmp_path_factory) -> Iterator[UploadWorkers]:
    started = UploadWorkers(tmp_path_factory.mktemp("music-catalogue-logs"), {"FYP_MUSIC_RELOAD_S": "1"})
    try:
        started.start_workers()
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A 40 s generated song, and a 6 s video whose audio is 6 s of it from 12.3 s in (AAC, as uploaded)."""
    d = tmp_path_factory.mktemp("music")
    song = synth_track(2026, 40)
    write_wav(d / "song.wav", song)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=30,trim=duration=6",
                    "-ss", "12.3", "-t", "6", "-i", str(d / "song.wav"),
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(d / "video.mp4")], check=True, timeout=60)
    return {"song": d / "song.wav", "video": d / "video.mp4"}


def _music(*args: str) -> Any:
    return runner.invoke(app, ["music", *args])


def _transcode_and_moderate(settings: Settings, workers: UploadWorkers, source: Path) -> dict[str, dict]:
    """Upload `source`, request its transcode on the uploads topic, and return the video's TranscodeCompleted
    (playable) and ModerationResult records."""
    video_id = f"it-music-{uuid.uuid4().hex[:12]}"
    key = new_upload_key()
    make_s3_client(settings).upload_file(str(source), settings.media_bucket, key)
    registry = default_registry()
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    # From the current end of each partition: only what follows our request.
    ends = [TopicPartition(UPLOADS.name, p, consumer.get_watermark_offsets(TopicPartition(UPLOADS.name, p))[1])
            for p in range(UPLOADS.partitions)]
    consumer.assign(ends)
    producer = Producer(settings.kafka_producer_config())
    producer.produce(UPLOADS.name, key=video_id.encode(), value=registry.encode("TranscodeRequested", {
        "event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": video_id,
        "author_id": "it_author", "attempt": 1, "source_key": key, "stage": "playable"}))
    assert producer.flush(30) == 0
    found: dict[str, dict] = {}
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    try:
        while time.monotonic() < deadline and len(found) < 2:
            workers.check_alive()
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() != video_id.encode():
                continue
            event = registry.decode(msg.value())
            if event.record_name in ("TranscodeCompleted", "TranscodeFailed", "ModerationResult"):
                found[event.record_name] = event.record
    finally:
        consumer.close()
    assert "TranscodeFailed" not in found, found
    assert set(found) == {"TranscodeCompleted", "ModerationResult"}, (
        f"{video_id}: {found}\ntranscoder:\n{workers.tail('transcoder')}\nmoderator:\n{workers.tail('moderator')}")
    return found


def _loads(workers: UploadWorkers, name: str) -> int:
    """How many times the worker has (re)loaded the catalogue: `SharedCatalogue.load` logs each."""
    return workers.log_path(name).read_text().count("music catalogue revision")


def test_add_mutes_and_remove_unmutes_without_restarting_the_workers(settings, workers, media, music_id) -> None:
    # Both workers hold the catalogue without the track before it is added, so what follows is a reload.
    deadline = time.monotonic() + RESULT_TIMEOUT_S
    while min(_loads(workers, "transcoder"), _loads(workers, "moderator")) < 1 and time.monotonic() < deadline:
        workers.check_alive()
        time.sleep(0.5)
    added = _music("add", str(media["song"]), "--id", music_id, "--title", "Integration Song", "--policy", "mute",
                   "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["policy"] == "mute"
    again = _music("add", str(media["song"]), "--id", music_id, "--title", "again", "--policy", "block")
    assert again.exit_code == 1 and "already in the catalogue" in " ".join(again.stderr.split())
    listed = json.loads(_music("list", "--json").stdout)
    assert {"music_id": music_id, "title": "Integration Song", "policy": "mute"}.items() <= next(
        t for t in listed["tracks"] if t["music_id"] == music_id).items()

    time.sleep(2)  # > FYP_MUSIC_RELOAD_S: the next event makes each worker look at the object's ETag
    muted = _transcode_and_moderate(settings, workers, media["video"])
    assert muted["TranscodeCompleted"]["audio_muted"] == music_id
    assert muted["ModerationResult"]["music_id"] == music_id
    assert "MUTE_AUDIO" in muted["ModerationResult"]["actions"]
    assert f"music_muted:{music_id}" in muted["ModerationResult"]["reasons"]

    removed = _music("remove", music_id, "--json")
    assert removed.exit_code == 0, removed.output
    unknown = _music("remove", music_id)
    assert unknown.exit_code == 1 and "not in the catalogue" in " ".join(unknown.stderr.split())
    time.sleep(2)
    plain = _transcode_and_moderate(settings, workers, media["video"])
    assert plain["TranscodeCompleted"]["audio_muted"] is None
    assert plain["ModerationResult"]["music_id"] is None
    assert "MUTE_AUDIO" not in plain["ModerationResult"]["actions"]
    # Both workers said they reloaded twice, without a restart (each log is one process's).
    for name in ("transcoder", "moderator"):
        assert _loads(workers, name) >= 3, workers.tail(name)


def test_a_concurrent_edit_is_refused_not_lost(settings, catalogue: S3CatalogueStore) -> None:
    ids = [f"it-race-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    entries = [CatalogueEntry(music_id=i, title="race", decision="allow",
                              fingerprint=Fingerprint(duration_s=1, values=(1, 2, 3))) for i in ids]
    calls = []

    def first(current):
        calls.append(current.revision)
        if len(calls) == 1:  # another writer lands between our read and our put
            catalogue.edit(lambda c: add_track(c, entries[1]))
        return add_track(current, entries[0])

    try:
        stale = catalogue.read()
        written = catalogue.edit(first)
        assert len(calls) == 2 and calls[1] == calls[0] + 1  # the first put was refused, the retry re-read
        assert {e.music_id for e in written.tracks} >= set(ids)
        with pytest.raises(ClientError) as refused:
            make_s3_client(settings).put_object(Bucket=settings.media_bucket, Key="music/catalogue.json",
                                                Body=b"{}", IfMatch=stale.etag or '"none"')
        assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    finally:
        for music_id in ids:
            if catalogue.read().find(music_id):
                catalogue.edit(lambda c, m=music_id: remove_track(c, m))
