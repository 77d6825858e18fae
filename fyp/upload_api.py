"""Upload API: hand out presigned PUT URLs, then check the uploaded object and announce `UploadCompleted`.

    POST /v1/uploads               metadata -> {upload_id, video_id, put_url, object_key, expires_in, headers}
    POST /v1/uploads/{id}/complete head, sniff, sha256 the object; emit UploadCompleted; return the status

The bytes never pass through this service: the client PUTs them to object storage with a SigV4 presigned URL
for a key the server chose (`uploads/{yyyy}/{mm}/{dd}/{uuid}`). Dependencies are injected (`create_app`,
`UploadService`): an S3 client, a store of pending uploads and `emit(record_name, record)`, which the caller
wires to Kafka (`fyp serve upload`: `connectors.kafka_emitter.KafkaEmitter` and `RedisUploadStore`).
Errors are `{"error": {"code", "message"}}` with a 4xx status (503 when emitting fails).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Literal, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from fyp.media.keys import new_upload_key, validate_key
from fyp.media.probe import DEFAULT_LIMITS, Limits, Sniffed, sniff
from udfs.limits import MAX_CAPTION_CHARS, MAX_HASHTAG_BYTES, MAX_HASHTAGS, MAX_ID_BYTES, UPLOAD_CONTENT_TYPES

__all__ = [
    "MAX_REQUEST_BYTES",
    "ApiError",
    "BodyLimit",
    "MemoryUploadStore",
    "PendingUpload",
    "RedisUploadStore",
    "UploadRequest",
    "UploadService",
    "UploadStore",
    "content_type_of",
    "create_app",
    "upload_completed_record",
]

Emit = Callable[[str, Mapping[str, Any]], None]
ContentType = Literal[UPLOAD_CONTENT_TYPES]  # the five udfs/limits.py names: what `content_type_of` can prove
Status = Literal["pending", "completed", "rejected"]
_UPLOAD_ID = r"^[0-9a-f]{32}$"
_HASH_CHUNK = 1 << 20
# The largest body POST /v1/uploads needs: a caption of MAX_CAPTION_CHARS astral characters JSON-escaped as
# surrogate pairs (12 bytes each: 26,400), 30 hashtags of 100 bytes escaped (9,000), the ids and the rest (~1 KB).
# Anything larger is refused with 413 before it is parsed, so a request costs at most this much to read.
MAX_REQUEST_BYTES = 64 * 1024


def _hashtag_bytes(tag: str) -> str:
    # Pydantic's max_length counts characters; the hashtag limit (a key part, udfs/limits.py) counts bytes.
    if len(tag.encode("utf-8")) > MAX_HASHTAG_BYTES:
        raise ValueError(f"a hashtag is at most {MAX_HASHTAG_BYTES} bytes of UTF-8")
    return tag


# Ids: the upload side's plain identifiers (no ':', no control character: they become Redis and S3 key parts), at
# most MAX_ID_BYTES; ASCII, so characters are bytes. Hashtags: `\w` (Unicode letters, digits, underscore) has
# neither `:` nor control characters either. Patterns run in pydantic-core's Rust regex engine, which does not
# backtrack: linear in the input, and the input is already within its length limit.
_PLAIN_ID = r"^[A-Za-z0-9_-]+$"
Hashtag = Annotated[str, Field(min_length=1, max_length=MAX_HASHTAG_BYTES, pattern=r"^\w+$"),
                    AfterValidator(_hashtag_bytes)]


class UploadRequest(BaseModel):
    """Body of POST /v1/uploads. Unknown fields are refused, so a client cannot smuggle in a key.

    Every field has a limit (docs/UPLOADS.md, "Field limits"); the numbers come from udfs/limits.py, which the
    orchestration job and the workers check again on the records (udfs/upload_limits.py).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    author_id: str = Field(min_length=1, max_length=MAX_ID_BYTES, pattern=_PLAIN_ID)
    caption: str = Field(default="", max_length=MAX_CAPTION_CHARS, description="characters, as the app counts")
    hashtags: list[Hashtag] = Field(
        default_factory=list, max_length=MAX_HASHTAGS,
        description=f"without '#': letters, digits, underscores; each at most {MAX_HASHTAG_BYTES} bytes",
    )
    sound_id: str | None = Field(default=None, min_length=1, max_length=MAX_ID_BYTES, pattern=_PLAIN_ID)
    region: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    language: str = Field(pattern=r"^[a-z]{2}$", description="ISO 639-1")
    content_type: ContentType
    size_bytes: int = Field(gt=0, description="declared size; the stored object is measured at complete")


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


def create_app(
    *,
    s3: Any,
    bucket: str,
    store: UploadStore,
    emit: Emit,
    limits: Limits = DEFAULT_LIMITS,
    expires_in: int = 900,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The FastAPI app over an `UploadService` built from the same arguments (see `UploadService`)."""
    service = UploadService(s3=s3, bucket=bucket, store=store, emit=emit, limits=limits, expires_in=expires_in,
                            clock=clock)
    app = FastAPI(title="fyp upload API", version="1")
    app.add_middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code,
                                                                                             "http_error")
        body = {"code": code, "message": str(exc.detail)}
        return JSONResponse(status_code=exc.status_code, content={"error": body})

    @app.exception_handler(ApiError)
    def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        body = {"code": exc.code, "message": exc.message}
        return JSONResponse(status_code=exc.status, content={"error": body})

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"loc": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        message = "the request does not match the schema"
        body = {"code": "invalid_request", "message": message, "fields": fields}
        return JSONResponse(status_code=422, content={"error": body})

    @app.post("/v1/uploads", status_code=201)
    def create_upload(body: UploadRequest) -> dict[str, Any]:
        return service.create(body)

    @app.post("/v1/uploads/{upload_id}/complete")
    def complete_upload(upload_id: str) -> dict[str, Any]:
        return service.complete(upload_id)

    return app


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, so that FastAPI passes it through its body parsing (other errors there become a 400) to
    # the app's handler, which answers `request_too_large`.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is over {max_bytes} bytes")


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 `request_too_large` before any of it is
    parsed, whether the client declared its length (refused before reading) or streams it (refused once the
    count passes the limit). Uvicorn has no body limit of its own.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Callable[[Any], Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Callable[[Any], Any]) -> None:
        body = json.dumps({"error": {"code": "request_too_large",
                                     "message": f"the request body is over {self.max_bytes} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


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
