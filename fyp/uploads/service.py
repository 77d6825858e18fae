"""The upload API's two operations without HTTP: create a pending upload (a presigned PUT URL), then complete it
(check the stored object and announce `UploadCompleted`). `fyp upload` calls them in-process, `fyp.uploads.api`
over HTTP.

The bytes never pass through this service: the client PUTs them to object storage with a SigV4 presigned URL
for a key the server chose (`uploads/{yyyy}/{mm}/{dd}/{uuid}`). Dependencies are injected: an S3 client, a store
of pending uploads (`fyp.uploads.store`) and `emit(record_name, record)`, which the caller wires to Kafka
(`fyp.uploads.wiring`: `connectors.kafka_emitter.KafkaEmitter` and `RedisUploadStore`).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fyp.media.keys import new_upload_key, validate_key
from fyp.media.probe import DEFAULT_LIMITS, Limits, Sniffed, sniff
from fyp.uploads.request import UploadRequest
from fyp.uploads.store import PendingUpload, UploadStore

__all__ = ["ApiError", "Emit", "UploadService", "content_type_of", "upload_completed_record"]

Emit = Callable[[str, Mapping[str, Any]], None]
_HASH_CHUNK = 1 << 20


class ApiError(Exception):
    """An error answered as `{"error": {"code": ..., "message": ...}}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def content_type_of(sniffed: Sniffed, head: bytes) -> str | None:
    """The MIME type the first bytes prove, or None when they are not an accepted video container.

    >>> content_type_of(sniff(b"\\x1a\\x45\\xdf\\xa3\\x01\\x00\\x00\\x00webm"), b"\\x1a\\x45\\xdf\\xa3webm")
    'video/webm'
    """
    if sniffed.kind != "video":
        return None
    if sniffed.container == "mov":
        return "video/quicktime" if sniffed.detail in ("qt", "quicktime") else "video/mp4"
    if sniffed.container == "matroska":
        # The EBML header's DocType ("webm" or "matroska") sits in the first few dozen bytes.
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if sniffed.container == "avi":
        return "video/x-msvideo"
    return None


class UploadService:
    """The two operations of the API, without HTTP: `fyp upload` calls them in-process, the app over HTTP.

    s3: a boto3 S3 client configured for SigV4 (`fyp.media.publish.make_s3_client`); presigning needs no
    network. expires_in: life of a PUT URL, seconds (default 900). Errors are `ApiError`.
    """

    def __init__(
        self, *, s3: Any, bucket: str, store: UploadStore, emit: Emit, limits: Limits = DEFAULT_LIMITS,
        expires_in: int = 900, clock: Callable[[], float] = time.time,
    ) -> None:
        if getattr(s3.meta.config, "signature_version", None) != "s3v4":
            raise ValueError("the S3 client must sign with SigV4 (Config(signature_version='s3v4'))")
        self.s3, self.bucket, self.store, self.emit = s3, bucket, store, emit
        self.limits, self.expires_in, self.clock = limits, expires_in, clock

    def create(self, body: UploadRequest) -> dict[str, Any]:
        """Register a pending upload; return {upload_id, video_id, put_url, object_key, expires_in, headers}."""
        if body.size_bytes > self.limits.max_size_bytes:
            raise ApiError(413, "too_large", f"at most {self.limits.max_size_bytes} bytes")
        upload_id, video_id = uuid.uuid4().hex, uuid.uuid4().hex
        key = new_upload_key(upload_id=upload_id)
        self.store.put(
            PendingUpload(
                upload_id=upload_id,
                video_id=video_id,
                object_key=key,
                author_id=body.author_id,
                caption=body.caption,
                hashtags=tuple(body.hashtags),
                sound_id=body.sound_id,
                region=body.region,
                language=body.language,
                content_type=body.content_type,
                declared_size=body.size_bytes,
                created_ms=int(self.clock() * 1000),
            )
        )
        params = {"Bucket": self.bucket, "Key": key, "ContentType": body.content_type}
        url = self.s3.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=self.expires_in, HttpMethod="PUT"
        )
        return {
            "upload_id": upload_id,
            "video_id": video_id,
            "put_url": url,
            "object_key": key,
            "expires_in": self.expires_in,
            # Content-Type is signed: the PUT must send exactly this header.
            "headers": {"Content-Type": body.content_type},
        }

    def complete(self, upload_id: str) -> dict[str, Any]:
        """Check the stored object and emit UploadCompleted (once); return the upload's status."""
        pending = self.store.get(upload_id) if _valid_upload_id(upload_id) else None
        if pending is None:
            raise ApiError(404, "upload_not_found", "no such upload, or it expired")
        if pending.status != "pending":
            return _finished(pending)
        if not self.store.claim(upload_id):
            raise ApiError(409, "completion_in_progress", "this upload is being completed; retry shortly")
        try:
            done = _complete(pending, s3=self.s3, bucket=self.bucket, limits=self.limits, emit=self.emit,
                             clock=self.clock)
        except ApiError:
            self.store.release(upload_id)
            raise
        self.store.put(done)
        return _finished(done)


def _valid_upload_id(upload_id: str) -> bool:
    return len(upload_id) == 32 and all(ch in "0123456789abcdef" for ch in upload_id)


def _finished(upload: PendingUpload) -> dict[str, Any]:
    if upload.status == "rejected":
        status = 413 if (upload.reason or "").startswith("too_large") else 422
        raise ApiError(status, upload.reason or "rejected", f"upload rejected: {upload.reason}")
    return upload.response()


def _complete(
    pending: PendingUpload, *, s3: Any, bucket: str, limits: Limits, emit: Emit, clock: Callable[[], float]
) -> PendingUpload:
    """Check the stored object and emit UploadCompleted; a refused file comes back `rejected`."""
    from botocore.exceptions import ClientError

    key = validate_key(pending.object_key, prefix="uploads/")
    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ApiError(409, "object_missing", "PUT the file to put_url before completing") from None
        raise
    reason = None
    if size == 0:
        reason = "zero_bytes"
    elif size > limits.max_size_bytes:
        reason = f"too_large:{-(-size // 1_000_000)}MB"
    head = b"" if reason else s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-63")["Body"].read()
    proven = None if reason else content_type_of(sniff(head), head)
    if reason is None and proven is None:
        reason = f"not_a_video:{sniff(head).kind}"
    if reason is not None:
        # The bytes are of no use to anyone; deleting them keeps refused uploads from piling up.
        s3.delete_object(Bucket=bucket, Key=key)
        return replace(pending, status="rejected", reason=reason, size_bytes=size)
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(_HASH_CHUNK):
        digest.update(chunk)
    sha256 = digest.hexdigest()
    done = replace(pending, status="completed", size_bytes=size, sha256=sha256, content_type=proven)
    try:
        emit("UploadCompleted", upload_completed_record(done, now_ms=int(clock() * 1000)))
    except Exception as exc:  # the producer's failure modes are many; the client may simply retry
        raise ApiError(503, "emit_failed", f"could not announce the upload: {exc}") from exc
    return done


def upload_completed_record(upload: PendingUpload, *, now_ms: int) -> dict[str, Any]:
    """The UploadCompleted record (schemas/avro/UploadCompleted.avsc) of a completed upload."""
    return {
        # Derived from the upload id: a completion retried after a lost response emits the same event_id, and
        # consumers deduplicate on it.
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fyp:UploadCompleted:{upload.upload_id}")),
        "event_time": now_ms,
        "upload_id": upload.upload_id,
        "video_id": upload.video_id,
        "author_id": upload.author_id,
        "object_key": upload.object_key,
        "size_bytes": upload.size_bytes,
        "content_type": upload.content_type,
        "sha256": upload.sha256,
        "caption": upload.caption,
        "hashtags": list(upload.hashtags),
        "sound_id": upload.sound_id,
        "region": upload.region,
        "language": upload.language,
    }
