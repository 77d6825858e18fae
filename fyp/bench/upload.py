"""`fyp bench upload`: upload-to-verdict and upload-to-playable latency through the real pipeline.

Generated clips (lavfi testsrc2 + a sine, several durations and sizes, each with unique bytes so the exact-
duplicate check does not short-circuit them) are uploaded one at a time through the upload API (presigned PUT
to S3, then complete), and followed on Kafka: the upload_orchestration job, the transcoder and the moderator
workers run on the local stack as they do in production. Times are Kafka record timestamps, all taken on this
machine, measured from UploadCompleted (the API's complete):

- `first_playable`: TranscodeCompleted of stage "playable": the H.264 set, audio and pictures published, HLS
  and DASH playable (docs/UPLOADS.md, "Two stages");
- `verdict`: ModerationResult;
- `ready`: the status change viewers wait for (after the verdict);
- `full_ladder`: TranscodeCompleted of stage "full": the H.265/AV1 rungs added and the manifests republished.
  It is requested at ready, so it comes last; a video is followed until it arrives.

Each is reported per second of source video (`*_s_per_source_s`, p50/p95) and in ms. Uploads go one at a time,
so a figure is one video's path through an otherwise idle pipeline, not a queue. Wall times stretch with
whatever else shares the machine; the CPU seconds the transcoder and moderator processes spent per video
(`*_cpu_s_per_source_s`, from /proc, ffmpeg and fpcalc included) do not, and neither do the CPU seconds of each
transcode stage's own processes (`playable_stage_cpu_*`, `full_stage_cpu_*`, from the events' `cpu_ms`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from fyp.config import Settings
from fyp.pipelines import UPLOAD_ORCHESTRATION_JOB
from fyp.stack.upload_workers import UploadWorkers
from fyp.uploads.client import HttpUploads, upload_file
from fyp.uploads.follow import wait_for_video

__all__ = ["Clip", "LifecycleWatcher", "UploadPipeline", "make_clip", "parse_clips", "run_upload_bench",
           "summarize", "upload_and_play"]

# Lifecycle points, in the order they happen; `status:<s>` is a VideoStatusChanged.
POINTS = {"first_playable": "TranscodeCompleted:playable", "full_ladder": "TranscodeCompleted:full",
          "verdict": "ModerationResult", "ready": "status:ready"}
_STAGED = ("TranscodeRequested", "TranscodeCompleted", "TranscodeFailed")  # named `<record>:<stage>`


@dataclass(frozen=True)
class Clip:
    """A generated source: `seconds` long, `width`x`height` at 30 fps, H.264 + AAC."""

    seconds: float
    width: int
    height: int

    @property
    def label(self) -> str:
        return f"{self.seconds:g}s {self.width}x{self.height}"


DEFAULT_CLIPS = "4:640x360,4:1280x720,8:720x1280,8:1920x1080,15:854x480"


def parse_clips(text: str) -> list[Clip]:
    """`SECONDS:WxH,...` -> clips.

    >>> parse_clips("4:640x360, 10:1920x1080")
    [Clip(seconds=4.0, width=640, height=360), Clip(seconds=10.0, width=1920, height=1080)]
    """
    clips = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        seconds, _, size = item.partition(":")
        width, _, height = size.partition("x")
        try:
            clip = Clip(float(seconds), int(width), int(height))
        except ValueError:
            raise ValueError(f"bad clip {item!r}: expected SECONDS:WIDTHxHEIGHT, e.g. 8:1920x1080") from None
        if clip.seconds <= 0 or clip.width < 16 or clip.height < 16:
            raise ValueError(f"bad clip {item!r}: duration and size must be positive (at least 16 px)")
        clips.append(clip)
    if not clips:
        raise ValueError("no clips given")
    return clips


def make_clip(path: Path, clip: Clip) -> Path:
    """Write `clip` to `path` with a random title, so its sha256 is new and it is never an exact duplicate."""
    from fyp.media.bench import synthesize

    return synthesize(path, seconds=clip.seconds, width=clip.width, height=clip.height,
                      video_args=("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"),
                      extra_args=("-metadata", f"title=bench-{uuid.uuid4()}"))


class LifecycleWatcher:
    """Reads the uploads and status topics from their current end in a thread and records, per video id,
    the Kafka timestamp (ms) of the first record of each kind (`UploadCompleted`, `TranscodeCompleted:playable`,
    ..., `status:ready`)."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from schemas.registry import default_registry
        from schemas.topics import UPLOADS, VIDEO_STATUS

        self._registry = default_registry()
        self._consumer = Consumer({**settings.kafka_client_config(), "group.id": f"bench-upload-{uuid.uuid4().hex}",
                                   "enable.auto.commit": False})
        # Explicit offsets at today's high watermarks: records produced after this call are never missed.
        assignment = []
        for topic in (UPLOADS.name, VIDEO_STATUS.name):
            partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for p in partitions:
                _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                assignment.append(TopicPartition(topic, p, high))
        self._consumer.assign(assignment)
        self.seen: dict[str, dict[str, int]] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lifecycle-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, timeout=0.2):
                if msg.error() or msg.key() is None:
                    continue
                try:
                    event = self._registry.decode(msg.value())
                except Exception:  # a record we cannot read is not ours to time
                    continue
                name = event.record_name
                if name == "VideoStatusChanged":
                    name = f"status:{event.record['status']}"
                elif name in _STAGED:
                    name = f"{name}:{event.record.get('stage') or 'playable'}"
                with self._lock:
                    times = self.seen.setdefault(msg.key().decode(), {})
                    if name not in times:
                        times[name] = msg.timestamp()[1]
                        self.records.setdefault(msg.key().decode(), {})[name] = event.record

    def times(self, video_id: str) -> dict[str, int]:
        with self._lock:
            return dict(self.seen.get(video_id, {}))

    def record(self, video_id: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.records.get(video_id, {}).get(name)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()


@dataclass
class UploadPipeline:
    """The upload path on a running stack: the orchestration job (reused if running, else submitted and
    cancelled on exit), and, unless given, one transcoder, one moderator and an upload API as subprocesses
    (logs in `$FYP_HOME/logs/bench-*.log`). Use as a context manager; `api` is the API's base URL.
    keep_job: leave a job this object submitted running on exit (`fyp demo`: `fyp upload` works afterwards)."""

    settings: Settings
    api: str | None = None
    start_workers: bool = True
    keep_job: bool = False
    job_args: Sequence[str] = ()
    submitted_job: str | None = None
    processes: UploadWorkers | None = None

    def __enter__(self) -> UploadPipeline:
        from fyp.stack.submit import list_jobs, submit_job

        self.processes = UploadWorkers(self.settings.logs_dir, log_prefix="bench-")
        try:
            running = {j.name for j in list_jobs(self.settings) if j.state in ("RUNNING", "CREATED")}
            if UPLOAD_ORCHESTRATION_JOB.pipeline_name not in running:
                self.submitted_job = submit_job(self.settings, UPLOAD_ORCHESTRATION_JOB.job,
                                                job_args=list(self.job_args))
            if self.start_workers:
                self.processes.start_workers()
            if self.api is None:
                self.api = self.processes.start_api(log_level="warning")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def cpu_seconds(self) -> dict[str, float]:
        return self.processes.cpu_seconds() if self.processes else {}

    def check_alive(self) -> None:
        if self.processes:
            self.processes.check_alive()

    def __exit__(self, *_: object) -> None:
        if self.processes:
            self.processes.stop()
        if self.submitted_job and not self.keep_job:
            from fyp.stack.submit import cancel_job

            with contextlib.suppress(httpx.HTTPError):  # the cluster may be gone already
                cancel_job(self.settings, self.submitted_job)


def summarize(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 of each lifecycle point, in ms and in seconds per second of source, over finished samples.

    samples: {"duration_s", "<point>_ms", ...} per video.
    """
    out: dict[str, Any] = {}
    # CPU seconds per source second: steady under shared load. Per worker process, and per transcode stage.
    for worker in ("transcoder", "moderator", "playable_stage", "full_stage"):
        ratios = [s[f"{worker}_cpu_s"] / s["duration_s"] for s in samples if s.get(f"{worker}_cpu_s") is not None]
        if ratios:
            r50, r95 = np.percentile(ratios, [50, 95])
            out[f"{worker}_cpu_s_per_source_s_p50"] = round(float(r50), 3)
            out[f"{worker}_cpu_s_per_source_s_p95"] = round(float(r95), 3)
    for point in POINTS:
        values = [s[f"{point}_ms"] for s in samples if s.get(f"{point}_ms") is not None]
        ratios = [s[f"{point}_ms"] / 1000 / s["duration_s"] for s in samples if s.get(f"{point}_ms") is not None]
        if not values:
            continue
        p50, p95 = np.percentile(values, [50, 95])
        r50, r95 = np.percentile(ratios, [50, 95])
        out[f"{point}_p50_ms"], out[f"{point}_p95_ms"] = round(float(p50)), round(float(p95))
        out[f"{point}_s_per_source_s_p50"] = round(float(r50), 3)
        out[f"{point}_s_per_source_s_p95"] = round(float(r95), 3)
    return out


def _follow(watcher: LifecycleWatcher, pipeline: UploadPipeline, video_id: str, timeout_s: float) -> dict[str, int]:
    """Wait until the video reaches a final status on the status topic and, when ready, its full ladder (or
    that stage's failure); its event times."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        times = watcher.times(video_id)
        ladder_done = "TranscodeCompleted:full" in times or "TranscodeFailed:full" in times
        if any(f"status:{s}" in times for s in ("rejected", "failed", "removed")) or \
                ("status:ready" in times and ladder_done):
            time.sleep(0.2)  # the ModerationResult may be read a moment after the status it caused
            return watcher.times(video_id)
        pipeline.check_alive()
        time.sleep(0.1)
    return watcher.times(video_id)


def run_upload_bench(
    settings: Settings,
    clips: Sequence[Clip],
    *,
    repeat: int = 1,
    api: str | None = None,
    start_workers: bool = True,
    on_step: Callable[[str], None] = lambda _: None,
    on_video: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Upload every clip `repeat` times through the pipeline, one at a time; per-video samples and summary.

    on_step: told what is happening (for a spinner); on_video: called with each finished sample.
    """
    load_before = os.getloadavg()
    samples: list[dict[str, Any]] = []
    on_step("starting the orchestration job, workers and upload API …")
    with tempfile.TemporaryDirectory(prefix="fyp-bench-upload-") as tmp, \
            UploadPipeline(settings, api=api, start_workers=start_workers) as pipeline, \
            _watching(settings) as watcher:
        uploads = HttpUploads(pipeline.api or "")
        for round_ in range(repeat):
            for i, clip in enumerate(clips):
                on_step(f"generating {clip.label} …")
                source = make_clip(Path(tmp) / f"clip-{round_}-{i}.mp4", clip)
                on_step(f"uploading {clip.label} and waiting for its verdict …")
                cpu_before = pipeline.cpu_seconds()
                done = upload_file(source, {"author_id": "bench", "caption": f"bench {clip.label}",
                                            "region": "US", "language": "en"}, uploads)
                times = _follow(watcher, pipeline, done["video_id"], timeout_s=120 + 30 * clip.seconds)
                cpu_after = pipeline.cpu_seconds()
                source.unlink()
                samples.append(_sample(clip, done, times, watcher.record(done["video_id"], POINTS["first_playable"]),
                                       watcher.record(done["video_id"], POINTS["full_ladder"])))
                for name in ("transcoder", "moderator"):
                    if name in cpu_before and name in cpu_after:
                        samples[-1][f"{name}_cpu_s"] = round(cpu_after[name] - cpu_before[name], 2)
                on_video(samples[-1])
    finished = [s for s in samples if s["status"] == "ready"]
    return {
        "clips": [c.label for c in clips],
        "repeat": repeat,
        "videos": len(samples),
        "ready": len(finished),
        "not_ready": [{k: s[k] for k in ("clip", "video_id", "status")} for s in samples if s["status"] != "ready"],
        **summarize(finished),
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "samples": samples,
    }


def _sample(
    clip: Clip, done: dict[str, Any], times: dict[str, int], completed: dict[str, Any] | None,
    full: dict[str, Any] | None = None,
) -> dict[str, Any]:
    start = times.get("UploadCompleted")
    status = next((s for s in ("ready", "rejected", "failed", "removed") if f"status:{s}" in times), "timeout")
    sample: dict[str, Any] = {"clip": clip.label, "video_id": done["video_id"], "status": status,
                              "duration_s": clip.seconds, "size_bytes": done["size_bytes"],
                              "upload_ms": sum(done["timings_ms"].values())}
    for point, name in POINTS.items():
        sample[f"{point}_ms"] = times[name] - start if start is not None and name in times else None
    for stage, record in (("playable", completed), ("full", full)):
        if record:
            # The worker's own time: download, probe, the stage's one ffmpeg, fingerprint (publish not included).
            sample[f"{stage}_worker_ms"] = record["elapsed_ms"]
            if record.get("cpu_ms") is not None:
                sample[f"{stage}_stage_cpu_s"] = round(record["cpu_ms"] / 1000, 2)
            sample["renditions"] = [f"{r['codec']} {r['width']}x{r['height']}" for r in record["renditions"]]
            sample["duration_s"] = record["duration_ms"] / 1000 or clip.seconds
    if completed:
        sample["transcode_worker_ms"] = completed["elapsed_ms"]  # the name before there were two stages
    return sample


@contextmanager
def _watching(settings: Settings) -> Iterator[LifecycleWatcher]:
    watcher = LifecycleWatcher(settings)
    try:
        yield watcher
    finally:
        watcher.close()


def upload_and_play(settings: Settings, clip: Clip = Clip(4, 640, 360), *, timeout_s: float = 300) -> dict[str, Any]:
    """`fyp demo`'s upload: start the pipeline (the job stays running), upload a generated clip through the API,
    wait for a final status, and, once ready, check with ffprobe that its HLS and DASH manifests play."""
    from connectors.redis_video_store import RedisVideoStore
    from fyp.media.playback import verify_playback
    from fyp.media.publish import make_s3_client

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fyp-demo-upload-") as tmp, \
            UploadPipeline(settings, keep_job=True) as pipeline:
        source = make_clip(Path(tmp) / "demo.mp4", clip)
        done = upload_file(source, {"author_id": "demo", "caption": "fyp demo upload", "hashtags": ["demo"],
                                    "region": "US", "language": "en"}, HttpUploads(pipeline.api or ""))
        video = wait_for_video(RedisVideoStore.from_settings(settings).read, done["video_id"], timeout_s=timeout_s)
    result: dict[str, Any] = {"clip": clip.label, "video_id": done["video_id"],
                              "status": video["status"] if video else "timeout"}
    if video:
        result |= {k: video[k] for k in ("status_reason", "verdict", "reasons") if k in video}
        result["renditions"] = [f"{r['codec']} {r['width']}x{r['height']}" for r in video.get("renditions", [])]
    if video and video["status"] == "ready":
        result |= verify_playback(make_s3_client(settings), settings.media_bucket, video)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
