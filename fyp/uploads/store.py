"""Pending uploads, from creation to completion: the record and its stores (in memory, on Redis)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

__all__ = ["MemoryUploadStore", "PendingUpload", "RedisUploadStore", "Status", "UploadStore"]

Status = Literal["pending", "completed", "rejected"]


@dataclass(frozen=True, kw_only=True)
class PendingUpload:
    """An upload from creation to completion (or rejection), as the store keeps it."""

    upload_id: str
    video_id: str
    object_key: str
    author_id: str
    caption: str
    hashtags: tuple[str, ...]
    sound_id: str | None
    region: str
    language: str
    content_type: str
    declared_size: int
    created_ms: int
    status: Status = "pending"
    reason: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None

    def response(self) -> dict[str, Any]:
        body = {"upload_id": self.upload_id, "video_id": self.video_id, "status": self.status}
        if self.status == "completed":
            body |= {"object_key": self.object_key, "size_bytes": self.size_bytes, "sha256": self.sha256,
                     "content_type": self.content_type}
        if self.reason:
            body["reason"] = self.reason
        return body


class UploadStore(Protocol):
    """Pending uploads by id. `claim` makes completion single-flight: one caller gets True until `release`
    or until the claim lapses (so a crashed API process does not leave an upload stuck)."""

    def put(self, upload: PendingUpload) -> None: ...

    def get(self, upload_id: str) -> PendingUpload | None: ...

    def claim(self, upload_id: str) -> bool: ...

    def release(self, upload_id: str) -> None: ...


class MemoryUploadStore:
    """In-process `UploadStore` (one API process, tests). Claims lapse after `claim_ttl_s` (default 300)."""

    def __init__(self, *, claim_ttl_s: float = 300.0) -> None:
        self._uploads: dict[str, PendingUpload] = {}
        self._claims: dict[str, float] = {}
        self._claim_ttl_s = claim_ttl_s
        self._lock = threading.Lock()

    def put(self, upload: PendingUpload) -> None:
        with self._lock:
            self._uploads[upload.upload_id] = upload

    def get(self, upload_id: str) -> PendingUpload | None:
        with self._lock:
            return self._uploads.get(upload_id)

    def claim(self, upload_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._claims.get(upload_id, 0.0) > now:
                return False
            self._claims[upload_id] = now + self._claim_ttl_s
            return True

    def release(self, upload_id: str) -> None:
        with self._lock:
            self._claims.pop(upload_id, None)


class RedisUploadStore:
    """`UploadStore` on Redis: a hash per upload, `upload:{id}`, expiring after `ttl_s` (default 1 day).

    The hash holds the record as JSON in field `data` (one field: the record is read and written whole).
    The completion claim is its own key, `upload:{id}:claim`, set with NX and a `claim_ttl_s` expiry (default
    300 s), since Redis 7.0 cannot expire a single hash field.
    """

    def __init__(self, client: Any, *, ttl_s: int = 86_400, claim_ttl_s: int = 300, prefix: str = "upload:"):
        self._redis = client
        self._ttl_s = ttl_s
        self._claim_ttl_s = claim_ttl_s
        self._prefix = prefix

    def _key(self, upload_id: str) -> str:
        return f"{self._prefix}{upload_id}"

    def put(self, upload: PendingUpload) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self._key(upload.upload_id), "data", json.dumps(asdict(upload)))
        pipe.expire(self._key(upload.upload_id), self._ttl_s)
        pipe.execute()

    def get(self, upload_id: str) -> PendingUpload | None:
        raw = self._redis.hget(self._key(upload_id), "data")
        if raw is None:
            return None
        data = json.loads(raw)
        data["hashtags"] = tuple(data["hashtags"])
        return PendingUpload(**data)

    def claim(self, upload_id: str) -> bool:
        return bool(self._redis.set(f"{self._key(upload_id)}:claim", "1", nx=True, ex=self._claim_ttl_s))

    def release(self, upload_id: str) -> None:
        self._redis.delete(f"{self._key(upload_id)}:claim")

