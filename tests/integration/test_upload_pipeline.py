"""The upload pipeline on the real stack: upload API, upload_orchestration job, transcoder and moderator workers.

One module-scoped pipeline (the Flink job, both workers and the upload API as subprocesses) serves every test;
the tests run in file order: a video becomes ready and plays (H.264 first, then the full ladder; a redelivered
second-stage request changes nothing), a corrupt file fails, the same bytes again are a duplicate, and a
takedown removes the first video.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from typer import Typer
from typer.testing import CliRunner

from connectors.kafka_emitter import KafkaEmitter
from connectors.redis_video_store import RedisVideoStore
from fyp.commands import uploads as upload_commands
from fyp.config import Settings
from fyp.media.playback import download_run, verify_playback
from fyp.media.publish import FULL_MANIFEST_NAME, make_s3_client
from fyp.moderation.phash import VideoSignature
from fyp.pipelines import UPLOAD_ORCHESTRATION_JOB
from fyp.stack.upload_workers import UploadWorkers, free_port
from fyp.uploads.client import HttpUploads, LocalUploads, UploadFailed, content_type_for, upload_file
from fyp.uploads.follow import wait_for_video
from schemas.registry import default_registry
from schemas.topics import UPLOADS, VIDEO_STATUS
from tests.integration.conftest import eventually
from udfs.video_record import decode_video

pytestmark = pytest.mark.integration

VERDICT_TIMEOUT_S = 120
# A small size limit for the API and the transcoder, so that "too large" takes a 4 MB file, not 500 MB.
MAX_UPLOAD_BYTES = 4_000_000
PIPELINE_ENV = {"FYP_UPLOAD_MAX_BYTES": str(MAX_UPLOAD_BYTES)}
# Iceberg commits follow checkpoints: short ones, so the lake test waits seconds, not a minute.
CHECKPOINTS = {"execution.checkpointing.interval": "2s"}


# Two sweeping tones: structured like music (a pure sine's fingerprint is nearly constant).
MELODY = "0.5*sin(2*PI*(300+200*sin(2*PI*0.3*t))*t)+0.3*sin(2*PI*(800+300*sin(2*PI*0.7*t))*t)"
BLOCKED_MUSIC_ID = "it-blocked-track"
# Another melody, unrelated to the first, that the catalogue mutes.
MUTED_MELODY = "0.5*sin(2*PI*(500+250*sin(2*PI*0.45*t))*t)+0.3*sin(2*PI*(1200+400*sin(2*PI*0.2*t))*t)"
MUTED_MUSIC_ID = "it-muted-track"


@pytest.fixture(scope="module")
def music(settings: Settings, tmp_path_factory) -> Iterator[dict[str, Path]]:
    """Two 12 s generated tracks, added to the S3 music catalogue with `fyp music add` (one blocked, one muted)
    before the workers start, and removed from it afterwards."""
    from fyp.cli import app as fyp_app
    from fyp.media.music_catalogue import S3CatalogueStore, remove_track

    catalogue = S3CatalogueStore(make_s3_client(settings), settings.media_bucket)
    d = tmp_path_factory.mktemp("music")
    tracks = {"track": (MELODY, BLOCKED_MUSIC_ID, "block"), "muted_track": (MUTED_MELODY, MUTED_MUSIC_ID, "mute")}

    def forget() -> None:  # an interrupted earlier run may have left them
        for _, music_id, _ in tracks.values():
            if catalogue.read().find(music_id):
                catalogue.edit(lambda c, m=music_id: remove_track(c, m))

    forget()
    for name, (melody, music_id, decision) in tracks.items():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"aevalsrc='{melody}':s=44100:d=12", str(d / f"{name}.wav")], check=True, timeout=60)
        added = CliRunner().invoke(fyp_app, ["music", "add", str(d / f"{name}.wav"), "--id", music_id,
                                             "--title", name, "--policy", decision])
        assert added.exit_code == 0, added.output
    try:
        yield {name: d / f"{name}.wav" for name in tracks}
    finally:
        forget()


@pytest.fixture(scope="module")
def pipeline(settings: Settings, running_job, music, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Submit the orchestration job and start the workers and the upload API; yields {api, workers}."""
    running_job(UPLOAD_ORCHESTRATION_JOB, **CHECKPOINTS)
    workers = UploadWorkers(tmp_path_factory.mktemp("upload-pipeline-logs"), PIPELINE_ENV)
    try:
        workers.start_workers()
        api = workers.start_api(timeout_s=30)
        yield {"api": api, "workers": workers}
    finally:
        workers.stop()


@pytest.fixture(scope="module")
def store(settings: Settings) -> RedisVideoStore:
    return RedisVideoStore.from_settings(settings)


def _make_video(path: Path) -> Path:
    """3 s, 320x240, 30 fps, with a 440 Hz tone; a random title makes its bytes (and sha256) unique per run."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:v", "libx264", "-preset", "veryfast",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-metadata", f"title={uuid.uuid4()}", str(path)],
        check=True, timeout=60,
    )
    return path


def _wait_final(store: RedisVideoStore, pipeline: dict[str, Any], video_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + VERDICT_TIMEOUT_S
    while time.monotonic() < deadline:
        pipeline["workers"].check_alive()
        video = wait_for_video(store.read, video_id, timeout_s=2)
        if video is not None:
            return video
    workers = pipeline["workers"]
    pytest.fail(f"video {video_id} not final within {VERDICT_TIMEOUT_S} s: {store.read(video_id)}\n"
                f"transcoder:\n{workers.tail('transcoder')}\nmoderator:\n{workers.tail('moderator')}")


def _read_video_events(
    settings: Settings, video_id: str, done: Callable[[list[tuple[str, int, dict]]], bool], timeout_s: float,
) -> tuple[list[tuple[str, int, dict]], bool]:
    """(record name, Kafka timestamp ms, record) of one video on the uploads and status topics, read from the
    start until `done(found)`; and whether it was. Partitions are assigned, not subscribed: no group join.
    Names: `status:<status>` for VideoStatusChanged, `<record>:full` for the second transcode stage."""
    registry = default_registry()
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(t.name, p, OFFSET_BEGINNING) for t in (UPLOADS, VIDEO_STATUS)
                     for p in range(t.partitions)])
    found: list[tuple[str, int, dict]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if done(found):
                return found, True
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() != video_id.encode():
                continue
            event = registry.decode(msg.value())
            name = event.record_name
            if name == "VideoStatusChanged":
                name = f"status:{event.record['status']}"
            elif event.record.get("stage") == "full":
                name = f"{name}:full"
            found.append((name, msg.timestamp()[1], event.record))
    finally:
        consumer.close()
    return found, done(found)


def _events(settings: Settings, video_id: str, until: set[str], timeout_s: float = 30) -> list[tuple[str, int, dict]]:
    """The video's events, read until every name in `until` was seen (what was found by the timeout otherwise)."""
    found, _ = _read_video_events(settings, video_id, lambda f: until <= {name for name, _, _ in f}, timeout_s)
    return found


def _probe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-protocol_whitelist", "file", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, f"ffprobe cannot read {path.name}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ready_video(settings: Settings, pipeline: dict[str, Any], store: RedisVideoStore, tmp_path_factory):
    """A video uploaded with `fyp upload --api` (CLI -> HTTP API -> S3), followed until final."""
    source = _make_video(tmp_path_factory.mktemp("upload") / "tiny.mp4")
    app = Typer()
    upload_commands.register(app, serve=Typer(), worker=Typer())
    app.command("noop")(lambda: None)  # a second command keeps typer from collapsing the app into `upload`
    result = CliRunner().invoke(app, [
        "upload", str(source), "--author", "it_author", "--caption", "integration test", "--hashtags", "it,cats",
        "--region", "US", "--language", "en", "--api", pipeline["api"], "--timeout", str(VERDICT_TIMEOUT_S),
        "--json",
    ])
    pipeline["workers"].check_alive()
    assert result.exit_code == 0, f"fyp upload failed ({result.exit_code}): {result.output}"
    answer = json.loads(result.stdout)
    return {"source": source, "answer": answer, "video": answer["video"], "video_id": answer["video_id"]}


def test_upload_becomes_ready_with_playable_hls_and_dash(settings, ready_video, tmp_path) -> None:
    video = ready_video["video"]
    assert video["status"] == "ready", video
    assert video["verdict"] == "APPROVE"
    assert video["author_id"] == "it_author"
    assert video["hashtags"] == ["it", "cats"]
    assert video["renditions"] and all(r["playlist_key"] for r in video["renditions"])

    # Download the published runs (relative URIs) and let ffprobe read both manifests.
    stream_dir = download_run(make_s3_client(settings), settings.media_bucket, video["hls_master_key"], tmp_path)
    for manifest in ("master.m3u8", "manifest.mpd"):
        streams = _probe(stream_dir / manifest)["streams"]
        videos = [s for s in streams if s["codec_type"] == "video"]
        audio = [s for s in streams if s["codec_type"] == "audio"]
        assert {(s["width"], s["height"]) for s in videos} == {(320, 240)}, manifest
        assert audio, f"{manifest} has no audio stream"
    assert video["dash_manifest_key"].endswith("/stream/manifest.mpd")

    # `fyp video ID --json`: status, renditions, verdict and reasons from Redis, and the index status (no index
    # service runs in this test: unknown, said so rather than failing).
    app = Typer()
    upload_commands.register(app, serve=Typer(), worker=Typer())
    shown = CliRunner().invoke(app, ["video", ready_video["video_id"], "--json",
                                     "--index-url", f"http://127.0.0.1:{free_port()}"])
    assert shown.exit_code == 0, shown.output
    shown = json.loads(shown.stdout)
    assert (shown["status"], shown["verdict"], shown["reasons"]) == ("ready", "APPROVE", video["reasons"])
    assert shown["renditions"] == video["renditions"]
    assert shown["index"]["state"] == "unknown" and "unreachable" in shown["index"]["detail"]

    # Lifecycle on Kafka, and the latencies (Kafka timestamps: producer clocks on this machine).
    events = _events(settings, ready_video["video_id"], {"UploadCompleted", "TranscodeRequested",
                                                         "TranscodeCompleted", "ModerationResult", "status:ready"})
    at = {name: ts for name, ts, _ in reversed(events)}  # the first occurrence of each
    assert [n for n, _, _ in events if n.startswith("status:")] == [
        "status:uploaded", "status:transcoding", "status:moderating", "status:ready"]
    completed = at["UploadCompleted"]
    # The first stage publishes the H.264 set atomically (manifest written last): the first playable rendition
    # is TranscodeCompleted (stage "playable"); the full ladder follows ready (next test).
    print(f"\nupload pipeline latency from UploadCompleted: transcode requested +{at['TranscodeRequested'] - completed}"
          f" ms, first playable rendition +{at['TranscodeCompleted'] - completed} ms, verdict "
          f"+{at['ModerationResult'] - completed} ms, ready +{at['status:ready'] - completed} ms; "
          f"upload steps {ready_video['answer']['upload']['timings_ms']}, "
          f"CLI wait {ready_video['answer']['wait_ms']} ms")


def _full_ladder_events(settings: Settings, video_id: str, count: int) -> list[tuple[str, int, dict]]:
    """The video's events on both topics once `count` TranscodeCompleted of the full ladder and the ready status
    were seen (fails after 90 s). The consumer reads the two topics' partitions in no set order, so the status
    topic is waited for too."""
    def complete(found: list[tuple[str, int, dict]]) -> bool:
        names = [name for name, _, _ in found]
        return ("TranscodeRequested:full" in names and "status:ready" in names
                and names.count("TranscodeCompleted:full") >= count)

    found, done = _read_video_events(settings, video_id, complete, 90)
    if not done:
        pytest.fail(f"video {video_id}: fewer than {count} full-ladder events within 90 s: {[n for n, _, _ in found]}")
    return found


def test_full_ladder_follows_and_a_redelivered_request_changes_nothing(settings, pipeline, store, ready_video) -> None:
    video_id = ready_video["video_id"]
    events = _full_ladder_events(settings, video_id, 1)
    at = {name: ts for name, ts, _ in reversed(events)}
    records = {name: record for name, _, record in reversed(events)}
    # Stage 1 (H.264, playable) -> verdict -> ready -> stage 2 requested -> full ladder.
    assert at["TranscodeCompleted"] <= at["ModerationResult"] <= at["TranscodeRequested:full"]
    assert at["status:ready"] <= at["TranscodeRequested:full"] <= at["TranscodeCompleted:full"]
    playable, full = records["TranscodeCompleted"], records["TranscodeCompleted:full"]
    assert [r["codec"] for r in playable["renditions"]] == ["h264"]
    assert [r["codec"] for r in full["renditions"]] == ["h264", "h265", "av1"]
    assert full["attempt"] == playable["attempt"] == 1 and full["cpu_ms"] > 0 and playable["cpu_ms"] > 0

    # Both stages' manifests play with ffprobe: HLS and DASH, every rendition each lists, and the audio.
    s3 = make_s3_client(settings)
    for record, codecs in ((playable, ["h264 320x240"]), (full, ["av1 320x240", "h264 320x240", "hevc 320x240"])):
        found = verify_playback(s3, settings.media_bucket, record)
        assert found["playable"] and found["hls"] == found["dash"] == ["audio", *codecs], found

    # Redis and `fyp video --json` show the full ladder; the status stays ready.
    deadline = time.monotonic() + 30
    while (video := decode_video(store.read(video_id)))["ladder"] != "full" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (video["status"], video["ladder"], video["renditions"]) == ("ready", "full", full["renditions"])
    app = Typer()
    upload_commands.register(app, serve=Typer(), worker=Typer())
    shown = CliRunner().invoke(app, ["video", video_id, "--json", "--index-url", f"http://127.0.0.1:{free_port()}"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["ladder"] == "full"

    # A redelivered stage-2 request: the worker finds the full pointer and re-emits the same event; no object
    # is written or replaced, and the orchestration ignores the repeated event.
    version = f"videos/{video_id}/v1/"

    def listing() -> dict[str, str]:
        listed = s3.list_objects_v2(Bucket=settings.media_bucket, Prefix=version)["Contents"]
        return {o["Key"]: o["ETag"] for o in listed}

    objects = listing()
    assert version + FULL_MANIFEST_NAME in objects
    KafkaEmitter(settings).emit("TranscodeRequested", records["TranscodeRequested:full"])
    again = [r for name, _, r in _full_ladder_events(settings, video_id, 2) if name == "TranscodeCompleted:full"]
    assert [{k: v for k, v in r.items() if k != "event_time"} for r in again] == [
        {k: v for k, v in full.items() if k != "event_time"}] * 2
    assert listing() == objects
    assert decode_video(store.read(video_id))["seq"] == video["seq"]


def test_corrupt_upload_fails_with_a_reason(settings, pipeline, store, tmp_path) -> None:
    # An MP4 signature followed by garbage: accepted by the API's sniffing, refused by the transcoder's probe.
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(64 * 1024))
    done = upload_file(corrupt, {"author_id": "it_author", "caption": "broken", "region": "US",
                                         "language": "en"}, LocalUploads(settings))
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "failed", video
    assert video["status_reason"] == "corrupt"


def test_same_bytes_twice_is_a_duplicate(settings, pipeline, store, ready_video) -> None:
    done = upload_file(ready_video["source"], {"author_id": "someone_else", "caption": "copy",
                                                       "region": "GB", "language": "en"},
                               HttpUploads(pipeline["api"]))
    assert done["sha256"] == ready_video["answer"]["upload"]["sha256"]
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "rejected", video
    assert video["duplicate_of"] == ready_video["video_id"]
    assert video["status_reason"] == f"duplicate_of:{ready_video['video_id']}"
    assert "renditions" not in video  # never transcoded


def test_blocked_music_is_rejected(settings, pipeline, store, music, tmp_path) -> None:
    # 7 s of the blocked track, from 3 s in, under a video: the transcoder fingerprints the audio (fpcalc), the
    # moderator matches it against the catalogue and rejects. The picture is not testsrc2 like the other tests'
    # videos: a rejected video's frames go into the near-duplicate index of rejected videos (Redis), and a
    # later run on the same stack would reject the others as re-uploads of this one.
    source = tmp_path / "with_music.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "mandelbrot=size=320x240:rate=30,trim=duration=7", "-ss", "3", "-t", "7", "-i", str(music["track"]),
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    "-metadata", f"title={uuid.uuid4()}", str(source)], check=True, timeout=60)
    done = upload_file(source, {"author_id": "it_author", "caption": "music", "region": "US",
                                        "language": "en"}, HttpUploads(pipeline["api"]))
    video = _wait_final(store, pipeline, done["video_id"])
    assert (video["status"], video["verdict"]) == ("rejected", "REJECT"), video
    assert f"music_blocked:{BLOCKED_MUSIC_ID}" in video["reasons"]
    assert f"music_blocked:{BLOCKED_MUSIC_ID}" in video["status_reason"]


def test_muted_music_is_published_silent_in_every_rendition(settings, pipeline, store, music, tmp_path) -> None:
    # 7 s of the muted track under a picture of its own (random Life: no earlier video's near-duplicate). The
    # transcoder matches it before publishing and encodes the audio again as silence; the moderator records the
    # mute; nothing audible is ever in the bucket, in the playable set or in the full ladder.
    from fyp.media.loudness import audio_levels

    source = tmp_path / "with_muted_music.mp4"
    _ffmpeg("-f", "lavfi", "-i", "life=size=320x240:rate=30:ratio=0.3:mold=10,trim=duration=7",
            "-ss", "3", "-t", "7", "-i", str(music["muted_track"]), "-c:v", "libx264", "-preset", "veryfast",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-metadata", f"title={uuid.uuid4()}", str(source))
    assert not audio_levels(source)[0].silent  # the upload itself is loud
    done = upload_file(source, {"author_id": "it_author", "caption": "muted music", "region": "US",
                                "language": "en"}, HttpUploads(pipeline["api"]))
    video_id = done["video_id"]
    video = _wait_final(store, pipeline, video_id)
    # The random picture is now and then read by OCR as text (once "xxx": text_sexual, so AGE_RESTRICT as well);
    # the mute must apply whatever else the video gets.
    also = set(video["actions"]) - {"MUTE_AUDIO"}
    assert video["status"] == "ready" and "MUTE_AUDIO" in video["actions"] and also <= {"AGE_RESTRICT"}, video
    assert video["verdict"] == ("AGE_RESTRICT" if also else "MUTE_AUDIO"), video
    assert f"music_muted:{MUTED_MUSIC_ID}" in video["reasons"] and video["audio_muted"] == MUTED_MUSIC_ID
    # `fyp video ID` shows which decision applied.
    app = Typer()
    upload_commands.register(app, serve=Typer(), worker=Typer())
    shown = CliRunner().invoke(app, ["video", video_id, "--json", "--index-url", f"http://127.0.0.1:{free_port()}"])
    assert shown.exit_code == 0, shown.output
    shown = json.loads(shown.stdout)
    assert (shown["verdict"], shown["actions"], shown["audio_muted"]) == (
        video["verdict"], video["actions"], MUTED_MUSIC_ID)

    # Both stages' events say the published audio is silent, and the result lists the action.
    events = _full_ladder_events(settings, video_id, 1)
    completed = [r for n, _, r in events if n.startswith("TranscodeCompleted")]
    assert {r["stage"] for r in completed} == {"playable", "full"}
    assert all(r["audio_muted"] == MUTED_MUSIC_ID and r["audio_fingerprint"] for r in completed)
    (result,) = {r["event_id"]: r for n, _, r in events if n == "ModerationResult"}.values()
    assert result["actions"] == video["actions"] and result["music_id"] == MUTED_MUSIC_ID

    # Every object under the published version (both stages' runs): every manifest with audio (HLS master, the
    # audio media playlist, DASH) and the audio file; all of it is silence.
    stream_dir = download_run(make_s3_client(settings), settings.media_bucket, video["hls_master_key"],
                              tmp_path / "out")
    root = stream_dir.parent.parent
    targets = sorted([*root.rglob("*.m3u8"), *root.rglob("*.mpd"), *root.rglob("*.m4a")])
    levels = {str(t.relative_to(root)): audio_levels(t) for t in targets}
    assert any(t.endswith("master.m3u8") for t in levels) and any(t.endswith(".mpd") for t in levels)
    for name in ("master.m3u8", "manifest.mpd"):  # same structure: the audio stream is still there
        assert all(levels[t] for t in levels if t.endswith(name)), levels
    loud = {t: [lv.max_volume_db for lv in found if not lv.silent] for t, found in levels.items()}
    assert not any(loud.values()), loud
    print(f"\nmuted video {video_id}: peak audio levels (dB) {[lv.max_volume_db for f in levels.values() for lv in f]}")


def test_a_clip_shorter_than_half_a_second_is_scored_and_signed(settings, pipeline, store, redis_client,
                                                                tmp_path) -> None:
    # 0.3 s: sampling at 1 fps used to find no frame, so no NSFW score (AGE_RESTRICT nsfw_unscored) and no PDQ.
    source = tmp_path / "short.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=0.3", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", "-metadata", f"title={uuid.uuid4()}", str(source))
    done = upload_file(source, {"author_id": "it_author", "caption": "short", "region": "US", "language": "en"},
                       HttpUploads(pipeline["api"]))
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "ready" and "nsfw_unscored" not in video.get("reasons", []), video
    result = next(r for n, _, r in _events(settings, done["video_id"], {"ModerationResult"})
                  if n == "ModerationResult")
    assert result["nsfw_score"] is not None and 0 <= result["nsfw_score"] < 0.2
    prefix = done["video_id"].encode() + b"\n"
    signatures = [r[len(prefix):] for r in redis_client.lrange("fyp:moderation:pdq:v2:seen", 0, -1)
                  if r.startswith(prefix)]
    assert signatures and len(VideoSignature.from_bytes(signatures[-1])) >= 1  # at least one frame


def test_takedown_removes_the_video(settings, pipeline, store, ready_video) -> None:
    video_id = ready_video["video_id"]
    KafkaEmitter(settings).emit("Takedown", {
        "event_id": str(uuid.uuid4()), "event_time": int(time.time() * 1000), "video_id": video_id,
        "author_id": "it_author", "reason": "dmca", "notice_id": "IT-NOTICE-1",
    })
    video = _wait_final(store, pipeline, video_id)  # ready is final too: poll until it changes
    deadline = time.monotonic() + 30
    while video["status"] == "ready" and time.monotonic() < deadline:
        time.sleep(0.3)
        video = decode_video(store.read(video_id))
    assert video["status"] == "removed", video
    assert (video["status_reason"], video["takedown_notice_id"]) == ("dmca", "IT-NOTICE-1")
    statuses = [n for n, _, _ in _events(settings, video_id, {"status:removed"}) if n.startswith("status:")]
    assert statuses[-1] == "status:removed"


def test_lifecycle_and_videos_row_land_in_iceberg(settings, pipeline, store, ready_video) -> None:
    """The first video's records in `history.upload_events` in order, its latest `history.videos` row (removed,
    with the verdict it had), and a redelivered Takedown landing nowhere twice."""
    from connectors.iceberg_tables import catalog
    from fyp.lake.sql import run_query

    video_id, lake = ready_video["video_id"], catalog(settings)
    takedown = next(r for n, _, r in _events(settings, video_id, {"Takedown"}) if n == "Takedown")
    KafkaEmitter(settings).emit("Takedown", takedown)  # a redelivery: same event_id

    def lake_rows(sql: str) -> list[dict[str, Any]]:
        return run_query(lake, sql).rows.to_pylist()

    def landed() -> list[dict[str, Any]]:
        rows = lake_rows(f"SELECT event_type, status, event_id, verdict, kafka_topic FROM history.upload_events "
                         f"WHERE video_id = '{video_id}' ORDER BY event_time, kafka_offset")
        videos = lake_rows(f"SELECT * FROM history.videos WHERE video_id = '{video_id}'")
        # Wait for the takedown's own rows, not a row count: the second ladder stage adds a variable number.
        done = {r["event_type"] for r in rows} >= {"takedown"} and any(r["status"] == "removed" for r in rows)
        return rows if videos and videos[0]["status"] == "removed" and done else []

    rows = eventually(landed, timeout_s=30, message="upload events and the removed videos row in Iceberg")
    types = [r["event_type"] if r["event_type"] != "video_status_changed" else f"status:{r['status']}"
             for r in rows]
    # Records of one step share a millisecond: compare the orders of records and of statuses, not across them.
    records = [t for t in types if not t.startswith("status:")]
    first = {t: records.index(t) for t in reversed(records)}  # a second ladder stage may repeat transcode_*
    assert sorted(first, key=first.get) == [
        "upload_completed", "transcode_requested", "transcode_completed", "moderation_result", "takedown"], types
    assert [t for t in types if t.startswith("status:")] == [
        "status:uploaded", "status:transcoding", "status:moderating", "status:ready", "status:removed"], types
    assert next(r["verdict"] for r in rows if r["event_type"] == "moderation_result") == "APPROVE"

    [video] = lake_rows(f"SELECT * FROM history.videos WHERE video_id = '{video_id}'")
    assert (video["status"], video["reason"], video["verdict"]) == ("removed", "dmca", "APPROVE"), video
    assert (video["author_id"], video["caption"], video["hashtags"]) == ("it_author", "integration test",
                                                                         ["it", "cats"])
    assert (video["width"], video["height"], video["takedown_notice_id"]) == (320, 240, "IT-NOTICE-1")
    assert 2_900 <= video["duration_ms"] <= 3_100 and video["renditions"] and video["created_at"]
    # Exactly once: one row per event_id (the redelivered Takedown too) and per change of a video, table-wide.
    for table, key in (("upload_events", "event_id"), ("videos_changelog", "video_id, seq")):
        repeated = lake_rows(f"SELECT {key}, count(*) AS n FROM history.{table} GROUP BY ALL HAVING n > 1")
        assert repeated == [], f"history.{table}: {key} repeated"

    # `fyp tables` lists both tables and the view.
    from fyp.commands import lake as lake_commands

    app = Typer()
    lake_commands.register(app)
    listed = json.loads(CliRunner().invoke(app, ["tables", "--json"]).stdout)
    assert {"history.upload_events", "history.videos_changelog"} <= {t["name"] for t in listed["tables"]}
    assert "history.videos" in [v["name"] for v in listed["views"]]  # graph.follows is test_follow_graph's


# --- bad and awkward input, through the API, S3, the job and the workers ------------------------------------


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def _make_refused(kind: str, d: Path) -> Path:
    """Files the API refuses at complete, made by ffmpeg (zero bytes: an empty file)."""
    path = d / {"zero_bytes": "empty.mp4", "image": "still.png", "audio": "song.wav", "too_large": "big.mp4"}[kind]
    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "image":
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(path))
    elif kind == "audio":
        _ffmpeg("-f", "lavfi", "-i", "sine=d=2", str(path))
    else:  # a real clip with junk after it: over the limit, whatever it holds
        _make_video(path)
        with path.open("ab") as handle:
            handle.write(os.urandom(MAX_UPLOAD_BYTES + 200_000 - path.stat().st_size))
    return path


def _create_and_put(api: str, path: Path, *, declared_size: int | None = None) -> tuple[HttpUploads, dict]:
    client = HttpUploads(api)
    created = client.create({"author_id": "it_author", "caption": path.name, "region": "US", "language": "en",
                             "content_type": content_type_for(path),
                             "size_bytes": declared_size or max(path.stat().st_size, 1)})
    response = httpx.put(created["put_url"], content=path.read_bytes(), headers=created["headers"], timeout=60)
    assert response.status_code < 300, response.text
    return client, created


@pytest.mark.parametrize(
    ("kind", "code"),
    [("zero_bytes", "zero_bytes"), ("image", "not_a_video:image"), ("audio", "not_a_video:audio"),
     ("too_large", "too_large:5MB")],
)
def test_refused_at_complete_with_a_reason(settings, pipeline, store, tmp_path, kind: str, code: str) -> None:
    path = _make_refused(kind, tmp_path)
    # The too-large client lies about its size at create; complete measures the stored object.
    client, created = _create_and_put(pipeline["api"], path, declared_size=1000 if kind == "too_large" else None)
    for _ in range(2):  # a retried complete gives the same answer
        with pytest.raises(UploadFailed) as refused:
            client.complete(created["upload_id"])
        assert refused.value.code == code
    s3 = make_s3_client(settings)
    with pytest.raises(s3.exceptions.ClientError):  # the refused bytes were deleted
        s3.head_object(Bucket=settings.media_bucket, Key=created["object_key"])
    assert store.read(created["video_id"]) is None  # nothing was announced: no video, no work downstream


def test_declared_size_over_the_limit_is_refused_at_create(pipeline) -> None:
    with pytest.raises(UploadFailed) as refused:
        HttpUploads(pipeline["api"]).create({
            "author_id": "it_author", "region": "US", "language": "en", "content_type": "video/mp4",
            "size_bytes": MAX_UPLOAD_BYTES + 1})
    assert refused.value.code == "too_large"


def test_a_malformed_request_names_each_field(pipeline) -> None:
    with pytest.raises(UploadFailed) as refused:
        HttpUploads(pipeline["api"]).create({
            "author_id": "it_author", "region": "us", "language": "en", "content_type": "video/mp4",
            "size_bytes": 0})
    assert refused.value.code == "invalid_request"
    fields = dict(part.split(": ", 1) for part in str(refused.value).removeprefix("invalid_request: ").split("; "))
    assert set(fields) == {"region", "size_bytes"}, fields


def test_complete_without_the_object_is_a_conflict_until_the_put(settings, pipeline, store, tmp_path) -> None:
    client = HttpUploads(pipeline["api"])
    created = client.create({"author_id": "it_author", "region": "US", "language": "en",
                             "content_type": "video/mp4", "size_bytes": 1000})
    with pytest.raises(UploadFailed) as refused:
        client.complete(created["upload_id"])
    assert refused.value.code == "object_missing"
    assert store.read(created["video_id"]) is None
    # The upload stays pending: the client may still PUT and complete. A PNG keeps this test free of transcoding.
    path = _make_refused("image", tmp_path)
    response = httpx.put(created["put_url"], content=path.read_bytes(), headers=created["headers"], timeout=60)
    assert response.status_code < 300
    with pytest.raises(UploadFailed) as refused:
        client.complete(created["upload_id"])
    assert refused.value.code == "not_a_video:image"


@pytest.mark.parametrize(("kind", "reason"), [("audio_only", "audio_only"), ("too_long", "too_long:181s")])
def test_worker_refusals_end_failed_with_a_reason(settings, pipeline, store, tmp_path, kind: str, reason: str) -> None:
    path = tmp_path / f"{kind}.m4a"
    if kind == "audio_only":  # an MP4 container (passes the API's sniffing) with no video stream
        _ffmpeg("-f", "lavfi", "-i", "sine=d=2", "-c:a", "aac", "-metadata", f"title={uuid.uuid4()}", str(path))
    else:  # 181 s, over the 180 s default; tiny and at 1 fps so that it is quick to make
        path = path.with_suffix(".mp4")
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=1:d=181", "-c:v", "libx264", "-preset", "ultrafast",
                "-pix_fmt", "yuv420p", "-metadata", f"title={uuid.uuid4()}", str(path))
    done = upload_file(path, {"author_id": "it_author", "caption": kind, "region": "US", "language": "en"},
                               HttpUploads(pipeline["api"]))
    video = _wait_final(store, pipeline, done["video_id"])
    assert (video["status"], video["status_reason"]) == ("failed", reason), video
    assert "renditions" not in video


def _awkward_phone_clip(d: Path) -> Path:
    """Coded 1921x1079, a 90 degree display rotation (so 1079x1921 upright), variable frame rate (1 s at 15 fps
    then 1 s at 30), no audio track."""
    coded = d / "coded.mp4"
    inputs = [arg for rate in (15, 30) for arg in ("-f", "lavfi", "-i", f"testsrc2=s=960x540:r={rate}:d=1")]
    graph = "[0:v][1:v]concat=n=2:v=1,scale=1921:1079,setsar=1[v]"  # testsrc2 makes even sizes only
    _ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv444p", "-fps_mode", "vfr",  # x264 4:4:4 takes odd sizes
            "-metadata", f"title={uuid.uuid4()}", str(coded))
    rotated = d / "phone.mp4"
    _ffmpeg("-i", str(coded), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    return rotated


def test_awkward_phone_video_is_processed_upright(settings, pipeline, store, tmp_path) -> None:
    from fyp.media.probe import probe

    source = _awkward_phone_clip(tmp_path)
    info = probe(source)
    assert (info.width, info.height, info.display_width, info.display_height) == (1921, 1079, 1079, 1921)
    assert info.variable_frame_rate and not info.has_audio
    done = upload_file(source, {"author_id": "it_author", "caption": "phone", "region": "US",
                                        "language": "en"}, HttpUploads(pipeline["api"]))
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "ready", video
    # No audio: no fingerprint, so no music match and no mute.
    assert video["verdict"] == "APPROVE" and not any("music" in r or "mute" in r for r in video.get("reasons", []))
    assert "audio_key" not in video
    completed = next(r for n, _, r in _events(settings, done["video_id"], {"TranscodeCompleted"})
                     if n == "TranscodeCompleted")
    assert completed["audio_fingerprint"] is None and completed["audio_key"] is None
    sizes = {(r["codec"], r["width"], r["height"]) for r in video["renditions"]}
    assert {(w, h) for c, w, h in sizes if c == "h264"} == {(720, 1282), (480, 854), (360, 640)}
    assert all(h > w for _, w, h in sizes)  # upright

    # Every rendition plays from both manifests, upright (no rotation left), at a constant 30 fps. (The
    # renditions and manifests are the playable set's or the full ladder's, whichever Redis holds now.)
    stream_dir = download_run(make_s3_client(settings), settings.media_bucket, video["hls_master_key"],
                              tmp_path / "out")
    for manifest in ("master.m3u8", "manifest.mpd"):
        streams = _probe(stream_dir / manifest)["streams"]
        videos = [s for s in streams if s["codec_type"] == "video"]
        assert {(s["width"], s["height"]) for s in videos} == {(w, h) for _, w, h in sizes}, manifest
        assert not [s for s in streams if s["codec_type"] == "audio"], manifest
        assert all(not s.get("side_data_list") and s["r_frame_rate"] == "30/1" for s in videos), manifest
