"""Transcoder worker: TranscodeRequested in, TranscodeCompleted or TranscodeFailed out; a consumer group.

Wiring only; the work lives in `fyp.media`. A request names a stage (docs/UPLOADS.md, "Two stages"):
- "playable": one decode -> the H.264 ladder, audio, cover and posters, plus the audio fingerprint; audio that
  matches a catalogue track whose decision mutes is encoded again as silence before publishing
  (`audio_muted`, docs/MODERATION.md "Mute");
- "full": one decode -> the H.265/AV1 top rungs, then manifests listing every rendition
  (`fyp.media.manifests`), published next to the playable set, which it needs (`playable_missing` if absent).
For each request: if this (video_id, attempt, stage) is already published, re-emit its result (a redelivery);
else download the source from S3 into a temp dir, run `process_source` for the stage, publish atomically
(`fyp.media.publish`) and emit. Result event_ids are derived from (video_id, attempt, stage), so a redelivery
yields the same event and consumers deduplicate. A taken-down video (its marker, `fyp.media.takedown.is_blocked`) is
never published: checked before the work, and again after publishing, when what was just published is moved to
quarantine (a takedown that raced the transcode); both answer TranscodeFailed `taken_down`. Both stages are
ordinary requests of the same consumer group, so more processes share them: a "full" stage of one video runs
while another process makes another video playable.

`handler` is all this module adds to the worker runtime (`workers.runtime.run_consumer`), which owns the rest:
the offset is committed only after the result is acknowledged (at-least-once); a transcode can take minutes,
longer than Kafka lets a consumer go without polling, so the handler runs in a thread while the runtime keeps
polling with the partitions paused; S3 or disk trouble is retried with back-off. A record this worker cannot
process (undecodable; a TranscodeRequested that breaks its field contract, or that turns out malformed while
handled: `POISON`) becomes a dead letter on fyp.uploads.dlq.v1 (`workers.dead_letters`), and is committed once
the dead letter is acknowledged. Other records of the topic are skipped.

Run: `python -m workers.transcoder` (settings from `fyp.config`, topics from `schemas.topics`, see `Topics`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fyp.media.fingerprint import encode_fingerprint
from fyp.media.keys import InvalidKey, validate_key, video_prefix
from fyp.media.ladder import DEFAULT_POLICY, LadderPolicy
from fyp.media.music_catalogue import CatalogueSource, tracks_of
from fyp.media.pipeline import Processed, process_source
from fyp.media.probe import DEFAULT_LIMITS, Limits
from fyp.media.publish import (
    ObjectStore,
    PublishedVideo,
    clean_stale_runs,
    compose_manifests,
    find_published,
    publish,
)
from fyp.media.takedown import block_video, is_blocked
from workers.runtime import ConsumerConfig, Handler, Output, run_consumer

__all__ = ["POISON", "SourceStore", "Topics", "Transcoder", "completed_record", "failed_record", "handler", "main",
           "run"]

log = logging.getLogger("fyp.transcoder")


def _topic(variable: str) -> str:
    from schemas.topics import UPLOADS

    return os.environ.get(variable) or UPLOADS.name


def _dead_letter_topic(variable: str) -> str:
    from schemas.topics import UPLOADS_DLQ

    return os.environ.get(variable) or UPLOADS_DLQ.name


@dataclass(frozen=True, kw_only=True)
class Topics:
    """Topic names, default `schemas.topics.UPLOADS` (the whole upload lifecycle is one topic, keyed by
    video_id) and `UPLOADS_DLQ` for dead letters; FYP_TOPIC_TRANSCODE_REQUESTS, FYP_TOPIC_TRANSCODE_RESULTS,
    FYP_TOPIC_TRANSCODE_DEAD_LETTERS, FYP_TRANSCODER_GROUP override."""

    requests: str = field(default_factory=lambda: _topic("FYP_TOPIC_TRANSCODE_REQUESTS"))
    results: str = field(default_factory=lambda: _topic("FYP_TOPIC_TRANSCODE_RESULTS"))
    dead_letters: str = field(default_factory=lambda: _dead_letter_topic("FYP_TOPIC_TRANSCODE_DEAD_LETTERS"))
    group_id: str = field(default_factory=lambda: os.environ.get("FYP_TRANSCODER_GROUP", "fyp-transcoder"))


class SourceStore(ObjectStore, Protocol):
    """`ObjectStore` plus reading sources (`fyp.media.publish.S3ObjectStore` has all of it)."""

    def size_of(self, key: str) -> int | None: ...

    def download(self, key: str, path: Path) -> None: ...

    def copy(self, source: str, destination: str) -> None: ...


STAGES = ("playable", "full")


def _event_id(kind: str, video_id: str, attempt: int, stage: str = "playable") -> str:
    # The playable stage keeps the id it had before there were two stages.
    suffix = "" if stage == "playable" else f":{stage}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:{kind}:{video_id}:{attempt}{suffix}"))


def completed_record(request: Mapping[str, Any], video: PublishedVideo) -> dict[str, Any]:
    """The TranscodeCompleted record (schemas/avro/TranscodeCompleted.avsc) of a published video."""
    return {
        "event_id": _event_id("TranscodeCompleted", video.video_id, video.attempt, video.stage),
        "event_time": int(time.time() * 1000),
        "video_id": video.video_id,
        "author_id": request["author_id"],
        "renditions": [
            {"codec": r.codec, "width": r.width, "height": r.height, "bitrate_kbps": r.bitrate_kbps,
             "playlist_key": r.playlist_key}
            for r in video.renditions
        ],
        "hls_master_key": video.hls_master_key,
        "dash_manifest_key": video.dash_manifest_key,
        "cover_key": video.cover_key,
        "audio_key": video.audio_key,
        "audio_fingerprint": video.extra.get("audio_fingerprint"),
        # The full stage's manifest carries the playable stage's extra, so both events say the audio is silent.
        "audio_muted": video.extra.get("audio_muted"),
        "duration_ms": video.duration_ms,
        "elapsed_ms": video.elapsed_ms,
        "stage": video.stage,
        "attempt": video.attempt,
        "cpu_ms": video.extra.get(f"{video.stage}_cpu_ms"),
    }


def failed_record(request: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The TranscodeFailed record (schemas/avro/TranscodeFailed.avsc)."""
    stage = request.get("stage") or "playable"
    return {
        "event_id": _event_id("TranscodeFailed", request["video_id"], request["attempt"], stage),
        "event_time": int(time.time() * 1000),
        "video_id": request["video_id"],
        "author_id": request["author_id"],
        "attempt": request["attempt"],
        "reason": reason,
        "stage": stage,
    }


@dataclass(kw_only=True)
class Transcoder:
    """Everything one TranscodeRequested needs; `handle` returns (record name, record) to emit."""

    store: SourceStore
    limits: Limits = DEFAULT_LIMITS
    policy: LadderPolicy = DEFAULT_POLICY
    catalogue: CatalogueSource = ()  # a SharedCatalogue in the worker: reloaded when the S3 object changes
    work_root: Path | None = None

    def handle(self, request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        video_id, attempt = request["video_id"], int(request["attempt"])
        stage = request.get("stage") or "playable"
        try:
            source_key = validate_key(request["source_key"], prefix="uploads/")
            video_prefix(video_id, f"v{attempt}")
        except InvalidKey as exc:
            log.warning("video %r: refusing request: %s", video_id, exc)
            return "TranscodeFailed", failed_record(request, "invalid_request")
        if stage not in STAGES:
            return "TranscodeFailed", failed_record(request, "invalid_request")
        if is_blocked(self.store, video_id):
            log.info("video %s v%d %s: taken down, not transcoding", video_id, attempt, stage)
            return "TranscodeFailed", failed_record(request, "taken_down")
        published = find_published(self.store, video_id, attempt, stage)
        if published is not None:
            log.info("video %s v%d %s: already published, re-emitting", video_id, attempt, stage)
            return "TranscodeCompleted", completed_record(request, published)
        base = None
        if stage == "full":
            base = find_published(self.store, video_id, attempt, "playable")
            if base is None:
                return "TranscodeFailed", failed_record(request, "playable_missing")
        size = self.store.size_of(source_key)
        if size is None:
            return "TranscodeFailed", failed_record(request, "source_missing")
        if size > self.limits.max_size_bytes:
            return "TranscodeFailed", failed_record(request, f"too_large:{-(-size // 1_000_000)}MB")
        with tempfile.TemporaryDirectory(prefix="fyp-transcode-", dir=self.work_root) as tmp:
            work = Path(tmp)
            source = work / "source"
            self.store.download(source_key, source)
            outcome = process_source(
                source, work, limits=self.limits, policy=self.policy, catalogue=tracks_of(self.catalogue),
                stage="playable" if base is None else "extra",
            )
            if not isinstance(outcome, Processed):
                log.info("video %s v%d %s: failed: %s", video_id, attempt, stage, outcome.reason)
                return "TranscodeFailed", failed_record(request, outcome.reason)
            extra: dict[str, Any] = {f"{stage}_cpu_ms": outcome.cpu_ms}
            if base is None:
                extra |= {
                    "audio_fingerprint": encode_fingerprint(outcome.fingerprint) if outcome.fingerprint else None,
                    "music": vars(outcome.music) if outcome.music else None,
                    "audio_muted": outcome.muted,
                    "source_key": source_key,
                    "source_size_bytes": size,
                }
            elif outcome.result is not None:
                try:
                    compose_manifests(outcome.result, base, self.store)
                except (ValueError, FileNotFoundError) as exc:
                    # The published playable manifests are unreadable or gone: retrying cannot help, and the
                    # video stays playable with its H.264 set; say why instead of looping.
                    log.warning("video %s v%d: cannot compose the full manifests: %s", video_id, attempt, exc)
                    return "TranscodeFailed", failed_record(request, "manifest_compose_failed")
            video = publish(
                outcome.result,
                store=self.store,
                video_id=video_id,
                attempt=attempt,
                extra=extra,
                elapsed_ms=outcome.elapsed_ms,
                base=base,
            )
        if is_blocked(self.store, video_id):
            # The takedown came while we worked: its move may have listed the prefix before our files landed.
            moved = block_video(self.store, video_id)
            log.warning("video %s v%d %s: taken down during the transcode; moved %d objects to quarantine",
                        video_id, attempt, stage, moved.count)
            return "TranscodeFailed", failed_record(request, "taken_down")
        try:
            clean_stale_runs(self.store, video_id=video_id)
        except Exception:  # housekeeping must not fail a published video
            log.warning("video %s: stale-run cleanup failed", video_id, exc_info=True)
        log.info("video %s v%d %s: published %s in %d ms", video_id, attempt, stage, video.prefix,
                 video.elapsed_ms)
        return "TranscodeCompleted", completed_record(request, video)


# What a request can cause by itself (a missing or mistyped field), as opposed to S3 or disk trouble.
POISON = (LookupError, TypeError, ValueError)


def handler(transcoder: Transcoder, topics: Topics) -> Handler:
    """The runtime's handler: a TranscodeRequested becomes its TranscodeCompleted or TranscodeFailed on
    `topics.results`; other records of the topic are skipped; an unreadable or malformed one raises `Poison`."""
    from schemas.registry import default_registry
    from workers.dead_letters import accept

    registry = default_registry()

    def handle(message: Any) -> list[Output]:
        request = accept(message.value(), "TranscodeRequested")
        if request is None:
            return []  # the topic carries the whole lifecycle
        record_name, record = transcoder.handle(request)
        return [Output(topic=topics.results, key=record["video_id"].encode(),
                       value=registry.encode(record_name, record))]

    return handle


def run(topics: Topics | None = None) -> None:  # pragma: no cover - needs Kafka and S3
    """Consume until SIGTERM/SIGINT with the worker runtime (`workers.runtime.run_consumer`)."""
    from fyp.config import load_settings
    from fyp.media.music_catalogue import worker_catalogue
    from fyp.media.publish import S3ObjectStore, make_s3_client

    topics = topics or Topics()
    settings = load_settings()
    work_root = settings.data_dir / "transcode"
    work_root.mkdir(parents=True, exist_ok=True)
    transcoder = Transcoder(
        store=S3ObjectStore(make_s3_client(settings), settings.media_bucket),
        catalogue=worker_catalogue(settings),
        work_root=work_root,
        limits=Limits.from_env(),
    )
    # S3 or disk failing is not the request's fault: the runtime retries those, backing off to 60 s.
    config = ConsumerConfig(topics=(topics.requests,), group_id=topics.group_id, dead_letters=topics.dead_letters,
                            poison=POISON)
    run_consumer(handler(transcoder, topics), config, settings)


def main() -> None:  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run()


if __name__ == "__main__":  # pragma: no cover
    main()
