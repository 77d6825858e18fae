"""The upload pipeline on the real stack: upload API, upload_orchestration job, transcoder and moderator workers.

One module-scoped pipeline (the Flink job, both workers and the upload API as subprocesses) serves every test;
the tests run in file order: a video becomes ready and plays, a corrupt file fails, the same bytes again are a
duplicate, and a takedown removes the first video.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer
from typer import Typer
from typer.testing import CliRunner

from connectors.kafka_emitter import KafkaEmitter
from connectors.redis_video_store import RedisVideoStore
from fyp.commands import uploads
from fyp.config import REPO_ROOT, Settings
from fyp.media.publish import make_s3_client
from schemas.registry import default_registry
from schemas.topics import UPLOADS, VIDEO_STATUS

pytestmark = pytest.mark.integration

JOB = "upload_orchestration"
PIPELINE_NAME = "fyp-upload-orchestration"
VERDICT_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Workers:
    """Worker and API subprocesses with their logs; `stop` sends SIGTERM, then kills after 30 s."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        return "\n".join((self.logs / f"{name}.log").read_text().splitlines()[-lines:])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def pipeline(settings: Settings, running_job, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Submit the orchestration job and start the workers and the upload API; yields {api, workers}."""
    running_job(JOB, PIPELINE_NAME)
    workers = Workers(tmp_path_factory.mktemp("upload-pipeline-logs"))
    port = _free_port()
    try:
        workers.start("transcoder", [sys.executable, "-m", "workers.transcoder"])
        workers.start("moderator", [sys.executable, "-m", "workers.moderator"])
        workers.start("upload-api", [sys.executable, "-m", "uvicorn", "--factory",
                                     "fyp.commands.uploads:build_upload_app", "--host", "127.0.0.1",
                                     "--port", str(port)])
        api = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            workers.check_alive()
            try:
                httpx.get(f"{api}/docs", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"upload API not answering on {api}:\n{workers.tail('upload-api')}")
                time.sleep(0.3)
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
        video = uploads.wait_for_video(store.read, video_id, timeout_s=2)
        if video is not None:
            return video
    workers = pipeline["workers"]
    pytest.fail(f"video {video_id} not final within {VERDICT_TIMEOUT_S} s: {store.read(video_id)}\n"
                f"transcoder:\n{workers.tail('transcoder')}\nmoderator:\n{workers.tail('moderator')}")


def _events(settings: Settings, video_id: str, until: set[str], timeout_s: float = 30) -> list[tuple[str, int, dict]]:
    """(record name, Kafka timestamp ms, record) of one video on the uploads and status topics, read from the
    start until every name in `until` was seen."""
    registry = default_registry()
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"it-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([UPLOADS.name, VIDEO_STATUS.name])
    found: list[tuple[str, int, dict]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until <= {name for name, _, _ in found}:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() != video_id.encode():
                continue
            event = registry.decode(msg.value())
            name = event.record_name
            if name == "VideoStatusChanged":
                name = f"status:{event.record['status']}"
            found.append((name, msg.timestamp()[1], event.record))
    finally:
        consumer.close()
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
    uploads.register(app)
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

    # Download the published run (relative URIs) and let ffprobe read both manifests.
    s3 = make_s3_client(settings)
    run_prefix = video["hls_master_key"].rsplit("/stream/", 1)[0] + "/"
    listed = s3.list_objects_v2(Bucket=settings.media_bucket, Prefix=run_prefix)["Contents"]
    for obj in listed:
        local = tmp_path / obj["Key"][len(run_prefix):]
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(settings.media_bucket, obj["Key"], str(local))
    stream_dir = tmp_path / "stream"
    for manifest in ("master.m3u8", "manifest.mpd"):
        streams = _probe(stream_dir / manifest)["streams"]
        videos = [s for s in streams if s["codec_type"] == "video"]
        audio = [s for s in streams if s["codec_type"] == "audio"]
        assert {(s["width"], s["height"]) for s in videos} == {(320, 240)}, manifest
        assert audio, f"{manifest} has no audio stream"
    assert video["dash_manifest_key"].endswith("/stream/manifest.mpd")

    # Lifecycle on Kafka, and the latencies (Kafka timestamps: producer clocks on this machine).
    events = _events(settings, ready_video["video_id"], {"UploadCompleted", "TranscodeRequested",
                                                         "TranscodeCompleted", "ModerationResult", "status:ready"})
    at = {name: ts for name, ts, _ in reversed(events)}  # the first occurrence of each
    assert [n for n, _, _ in events if n.startswith("status:")] == [
        "status:uploaded", "status:transcoding", "status:moderating", "status:ready"]
    completed = at["UploadCompleted"]
    # One ffmpeg process publishes the whole ladder atomically (manifest written last): the first playable
    # rendition and the full ladder appear at the same moment, TranscodeCompleted.
    print(f"\nupload pipeline latency from UploadCompleted: transcode requested +{at['TranscodeRequested'] - completed}"
          f" ms, first playable rendition = full ladder +{at['TranscodeCompleted'] - completed} ms, verdict "
          f"+{at['ModerationResult'] - completed} ms, ready +{at['status:ready'] - completed} ms; "
          f"upload steps {ready_video['answer']['upload']['timings_ms']}, "
          f"CLI wait {ready_video['answer']['wait_ms']} ms")


def test_corrupt_upload_fails_with_a_reason(settings, pipeline, store, tmp_path) -> None:
    # An MP4 signature followed by garbage: accepted by the API's sniffing, refused by the transcoder's probe.
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + os.urandom(64 * 1024))
    done = uploads.upload_file(corrupt, {"author_id": "it_author", "caption": "broken", "region": "US",
                                         "language": "en"}, uploads.LocalUploads(settings))
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "failed", video
    assert video["status_reason"] == "corrupt"


def test_same_bytes_twice_is_a_duplicate(settings, pipeline, store, ready_video) -> None:
    done = uploads.upload_file(ready_video["source"], {"author_id": "someone_else", "caption": "copy",
                                                       "region": "GB", "language": "en"},
                               uploads.HttpUploads(pipeline["api"]))
    assert done["sha256"] == ready_video["answer"]["upload"]["sha256"]
    video = _wait_final(store, pipeline, done["video_id"])
    assert video["status"] == "rejected", video
    assert video["duplicate_of"] == ready_video["video_id"]
    assert video["status_reason"] == f"duplicate_of:{ready_video['video_id']}"
    assert "renditions" not in video  # never transcoded


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
        video = uploads.decode_video(store.read(video_id))
    assert video["status"] == "removed", video
    assert (video["status_reason"], video["takedown_notice_id"]) == ("dmca", "IT-NOTICE-1")
    statuses = [n for n, _, _ in _events(settings, video_id, {"status:removed"}) if n.startswith("status:")]
    assert statuses[-1] == "status:removed"
