"""Publish a transcode to object storage so that readers only ever see complete outputs.

S3 has no rename, so atomicity comes from a pointer written last. Layout, for one video and attempt:

    videos/{video_id}/v{attempt}/_manifest.json      the pointer: written last, never overwritten
    videos/{video_id}/v{attempt}/{run_id}/...        one run's files (stream/, cover.jpg, posters/, audio.m4a)

A run uploads every file under its own fresh `run_id` prefix (a temporary prefix: nothing refers to it), then
creates `_manifest.json` with a conditional put (If-None-Match: *) naming that run. Consequences:
- readers (TranscodeCompleted, Redis) get keys from a manifest only, so they never see a partial run;
- a redelivered request finds the manifest and does nothing (`find_published`), so there is no second copy;
- two workers racing on the same request both upload, one manifest wins, the loser deletes its own run;
- a crash mid-upload leaves an unreferenced run prefix, which `clean_stale_runs` deletes once it is old.
HLS and DASH playlists use relative URIs, so a run's files work under any prefix.

Two stages (docs/UPLOADS.md, "Two stages"): the playable set (H.264, audio, pictures) is published as above
under `_manifest.json`; the full ladder later adds a second run with the H.265/AV1 rungs and manifests that
list every rendition (`fyp.media.manifests`: they reach the first run's files by relative URIs), and its own
pointer `_manifest.full.json`, created the same way. The first run is never touched, so a reader holding
its keys keeps playing, and each stage is idempotent on its own pointer.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

from fyp.config import Settings
from fyp.media.keys import validate_key, video_prefix, video_root
from fyp.media.manifests import compose_dash, compose_hls_master, relative_prefix
from fyp.media.transcode import AUDIO_BITRATE_KBPS, TranscodeResult

__all__ = [
    "FULL_MANIFEST_NAME",
    "MANIFEST_NAME",
    "ObjectStore",
    "PublishedRendition",
    "PublishedVideo",
    "S3ObjectStore",
    "StoredObject",
    "clean_stale_runs",
    "compose_manifests",
    "find_published",
    "make_s3_client",
    "manifest_key",
    "publish",
]

MANIFEST_NAME = "_manifest.json"
FULL_MANIFEST_NAME = "_manifest.full.json"
_POINTERS = {"playable": MANIFEST_NAME, "full": FULL_MANIFEST_NAME}
_IMMUTABLE = "public, max-age=31536000, immutable"
_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".m4a": "audio/mp4",
    ".jpg": "image/jpeg",
    ".json": "application/json",
}


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


class ObjectStore(Protocol):
    """The few object-storage operations publishing needs (S3 in production)."""

    def put_file(self, key: str, path: Path, *, content_type: str, cache_control: str) -> None: ...

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool:
        """Write `data` only if `key` does not exist; True if written, False if it already existed."""
        ...

    def get_bytes(self, key: str) -> bytes | None: ...

    def list_objects(self, prefix: str) -> Iterator[StoredObject]: ...

    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PublishedRendition:
    codec: str
    width: int
    height: int
    bitrate_kbps: int
    playlist_key: str


@dataclass(frozen=True, kw_only=True)
class PublishedVideo:
    """The content of `_manifest.json`: every key a reader may use, plus facts about the video."""

    video_id: str
    attempt: int
    run_id: str
    prefix: str
    published_at: str
    renditions: tuple[PublishedRendition, ...]
    hls_master_key: str
    dash_manifest_key: str
    cover_key: str
    poster_keys: tuple[str, ...]
    audio_key: str | None
    duration_ms: int
    elapsed_ms: int
    files: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    stage: str = "playable"  # "playable" or "full"; manifests written before the two stages are "playable"

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PublishedVideo:
        data = json.loads(raw)
        if data.pop("version", None) != 1:
            raise ValueError("unsupported manifest version")
        data["renditions"] = tuple(PublishedRendition(**r) for r in data["renditions"])
        data["poster_keys"] = tuple(data["poster_keys"])
        return cls(**data)


def manifest_key(video_id: str, attempt: int, stage: str = "playable") -> str:
    """`videos/{video_id}/v{attempt}/_manifest.json` (`_manifest.full.json` for stage "full")."""
    if stage not in _POINTERS:
        raise ValueError(f"unknown stage {stage!r}")
    return video_prefix(video_id, f"v{attempt}") + _POINTERS[stage]


def find_published(store: ObjectStore, video_id: str, attempt: int, stage: str = "playable") -> PublishedVideo | None:
    """The published manifest of this video, attempt and stage, if any (check before transcoding a redelivery)."""
    raw = store.get_bytes(manifest_key(video_id, attempt, stage))
    return PublishedVideo.from_json(raw) if raw is not None else None


def publish(
    result: TranscodeResult | None,
    *,
    store: ObjectStore,
    video_id: str,
    attempt: int,
    extra: Mapping[str, Any] | None = None,
    elapsed_ms: int | None = None,
    max_workers: int = 8,
    now: datetime | None = None,
    base: PublishedVideo | None = None,
) -> PublishedVideo:
    """Upload a transcode under a fresh run prefix, then create the manifest; return the manifest that won.

    extra: JSON-able facts to keep in the manifest (fingerprint, music match). elapsed_ms: processing time to
    record (default: the transcode's own). When a manifest already exists, nothing is uploaded and the
    existing one is returned.
    base: the published playable set, for the "full" stage: `result` then holds the extra rungs and the
    composed manifests (or is None when there are no extra rungs: the full pointer then repeats `base`); the
    cover, posters and audio stay `base`'s.
    """
    stage = "playable" if base is None else "full"
    existing = find_published(store, video_id, attempt, stage)
    if existing is not None:
        return existing
    key = manifest_key(video_id, attempt, stage)
    if result is None:
        if base is None:
            raise ValueError("nothing to publish: no result and no base")
        video = replace(base, stage="full", published_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
                        elapsed_ms=elapsed_ms or 0, extra={**base.extra, **(extra or {})})
        if store.create_bytes(key, video.to_json(), content_type="application/json"):
            return video
        return find_published(store, video_id, attempt, stage) or video
    run_id = uuid4().hex[:16]
    prefix = f"{video_prefix(video_id, f'v{attempt}')}{run_id}/"
    files = result.files()
    uploads = [(validate_key(prefix + p.relative_to(result.out_dir).as_posix()), p) for p in files]
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        # list() re-raises the first upload error, so a failed upload never reaches the manifest step.
        list(pool.map(lambda item: store.put_file(item[0], item[1], content_type=_content_type(item[1]),
                                                  cache_control=_IMMUTABLE), uploads))
    video = PublishedVideo(
        video_id=video_id,
        attempt=attempt,
        run_id=run_id,
        prefix=prefix,
        published_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        renditions=(base.renditions if base else ()) + tuple(
            PublishedRendition(
                codec=r.rung.codec,
                width=r.rung.width,
                height=r.rung.height,
                bitrate_kbps=r.rung.bitrate_kbps,
                playlist_key=prefix + r.playlist,
            )
            for r in result.renditions
        ),
        hls_master_key=prefix + result.hls_master,
        dash_manifest_key=prefix + result.dash_manifest,
        cover_key=base.cover_key if base else prefix + (result.cover or ""),
        poster_keys=base.poster_keys if base else tuple(prefix + p for p in result.posters),
        audio_key=base.audio_key if base else (prefix + result.audio if result.audio else None),
        duration_ms=result.duration_ms,
        elapsed_ms=result.elapsed_ms if elapsed_ms is None else elapsed_ms,
        files=len(uploads) + (base.files if base else 0),
        extra={**(base.extra if base else {}), **(extra or {})},
        stage=stage,
    )
    if store.create_bytes(key, video.to_json(), content_type="application/json"):
        return video
    # Another worker published this attempt first: its run is the published one; ours is garbage now.
    store.delete([k for k, _ in uploads])
    winner = find_published(store, video_id, attempt, stage)
    if winner is None:
        raise RuntimeError(f"{key} was reported to exist but cannot be read")
    return winner


def _content_type(path: Path) -> str:
    return _CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def clean_stale_runs(
    store: ObjectStore,
    *,
    video_id: str | None = None,
    older_than: timedelta = timedelta(hours=6),
    now: datetime | None = None,
) -> list[str]:
    """Delete run prefixes that no manifest names and whose newest object is older than `older_than`.

    video_id: sweep one video (cheap; the worker does this after publishing) or, when None, all of `videos/`.
    older_than (default 6 h) must exceed the longest transcode + upload, so a run still uploading is spared.
    Returns the deleted run prefixes.
    """
    cutoff = (now or datetime.now(UTC)) - older_than
    root = video_root(video_id) if video_id else "videos/"
    runs: dict[str, list[StoredObject]] = {}
    manifests: dict[str, str] = {}
    for obj in store.list_objects(root):
        parts = obj.key.split("/")
        if len(parts) < 4 or parts[0] != "videos":
            continue
        version_prefix = "/".join(parts[:3]) + "/"
        if parts[3] in _POINTERS.values() and len(parts) == 4:
            manifests[obj.key] = obj.key
        elif len(parts) > 4:
            runs.setdefault(version_prefix + parts[3] + "/", []).append(obj)
    adopted = set()
    for key in manifests.values():
        raw = store.get_bytes(key)
        if raw is not None:
            adopted.add(PublishedVideo.from_json(raw).prefix)
    deleted = []
    for run_prefix, objects in sorted(runs.items()):
        if run_prefix in adopted or max(o.last_modified for o in objects) > cutoff:
            continue
        store.delete([o.key for o in objects])
        deleted.append(run_prefix)
    return deleted


class S3ObjectStore:
    """`ObjectStore` over a boto3 S3 client and one bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self._conditional_puts = True

    def put_file(self, key: str, path: Path, *, content_type: str, cache_control: str) -> None:
        extra = {"ContentType": content_type, "CacheControl": cache_control}
        self._client.upload_file(str(path), self._bucket, key, ExtraArgs=extra)

    def create_bytes(self, key: str, data: bytes, *, content_type: str) -> bool:
        from botocore.exceptions import ClientError

        if self._conditional_puts:
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    CacheControl="no-cache",
                    IfNoneMatch="*",
                )
                return True
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    return False
                if code not in ("NotImplemented", "501"):
                    raise
                # A store without conditional writes: check, then put. Two racing workers can then both
                # "win"; each emits its own complete run, and the later manifest is the one that stays.
                self._conditional_puts = False
        if self.get_bytes(key) is not None:
            return False
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, CacheControl="no-cache"
        )
        return True

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def size_of(self, key: str) -> int | None:
        """Content length of `key`, or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def download(self, key: str, path: Path) -> None:
        self._client.download_file(self._bucket, key, str(path))

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield StoredObject(key=item["Key"], size=item["Size"], last_modified=item["LastModified"])

    def copy(self, source: str, destination: str) -> None:
        """Server-side copy of `source` to `destination`, keeping its content type and Cache-Control."""
        self._client.copy_object(Bucket=self._bucket, Key=destination, MetadataDirective="COPY",
                                 CopySource={"Bucket": self._bucket, "Key": source})

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})


def make_s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for `fyp.config.Settings`: SigV4, path-style addressing (SeaweedFS serves no
    virtual-host buckets)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"}
        ),
    )


def compose_manifests(result: TranscodeResult, base: PublishedVideo, store: ObjectStore) -> None:
    """Overwrite the extra run's own manifests (its rungs only) with ones listing every rendition: the base's
    (fetched from the store, reached by relative URIs) and the extra run's."""
    texts = {}
    for name, key in (("hls", base.hls_master_key), ("dash", base.dash_manifest_key)):
        raw = store.get_bytes(key)
        if raw is None:
            raise FileNotFoundError(f"published manifest {key} is missing")
        texts[name] = raw.decode()
    prefix = relative_prefix(base.run_id)
    hls, dash = result.out_dir / result.hls_master, result.out_dir / result.dash_manifest
    audio_bandwidth = AUDIO_BITRATE_KBPS * 1000 if base.audio_key else 0
    hls.write_text(compose_hls_master(texts["hls"], hls.read_text(), base_prefix=prefix,
                                      audio_bandwidth=audio_bandwidth))
    dash.write_text(compose_dash(texts["dash"], dash.read_text(), base_prefix=prefix))
