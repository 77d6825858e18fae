"""Upload a file through the upload API: create, PUT the bytes to the presigned S3 URL, complete.

`HttpUploads` talks to a running API (`fyp serve upload`); `LocalUploads` runs the same `UploadService` in this
process with the same wiring (`fyp.uploads.wiring`), so no server is needed. Either way the bytes go straight
to S3.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from fyp.config import Settings

__all__ = ["HttpUploads", "LocalUploads", "UploadFailed", "Uploads", "content_type_for", "upload_file"]

_CHUNK = 1 << 20


class UploadFailed(RuntimeError):
    """The upload API refused a step; `code` is its error code (e.g. `not_a_video:text`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Uploads(Protocol):
    """The upload API's two calls, over HTTP or in-process."""

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def complete(self, upload_id: str) -> dict[str, Any]: ...


def _field_errors(errors: list[dict[str, Any]], message_key: str) -> str:
    """`region: String should match pattern '^[A-Z]{2}$'; size_bytes: …` from pydantic's (or the API's) errors."""
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get(message_key, '')}"
                     for e in errors)


class HttpUploads:
    """The API at `base_url` (e.g. http://127.0.0.1:8000)."""

    def __init__(self, base_url: str, *, timeout_s: float = 120.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def _call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        is_json = response.headers.get("content-type", "").startswith("application/json")
        if response.status_code >= 400:
            error = response.json().get("error", {}) if is_json else {}
            message = error.get("message", response.text[:200])
            if error.get("fields"):
                message = _field_errors(error["fields"], "message")
            raise UploadFailed(error.get("code", f"http_{response.status_code}"), message)
        if not is_json:
            raise UploadFailed("bad_response", f"{response.url} answered HTTP {response.status_code} without JSON: "
                                               "is --api the upload API (`fyp serve upload`)?")
        return response.json()

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("/v1/uploads", body)

    def complete(self, upload_id: str) -> dict[str, Any]:
        return self._call(f"/v1/uploads/{upload_id}/complete")


class LocalUploads:
    """`fyp.uploads.service.UploadService` in this process, wired like `fyp serve upload`."""

    def __init__(self, settings: Settings) -> None:
        from fyp.uploads.wiring import upload_service

        self._service = upload_service(settings)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        from fyp.uploads.request import UploadRequest
        from fyp.uploads.service import ApiError

        try:
            return self._service.create(UploadRequest(**body))
        except ValidationError as exc:
            raise UploadFailed("invalid_request", _field_errors(exc.errors(), "msg")) from None
        except ApiError as exc:
            raise UploadFailed(exc.code, exc.message) from None

    def complete(self, upload_id: str) -> dict[str, Any]:
        from fyp.uploads.service import ApiError

        try:
            return self._service.complete(upload_id)
        except ApiError as exc:
            raise UploadFailed(exc.code, exc.message) from None


def content_type_for(path: Path) -> str:
    """The MIME type the file's first bytes prove, else a video type guessed from its name, else video/mp4: the
    API sniffs the stored bytes at completion and answers `not_a_video:<kind>` for anything else."""
    from fyp.media.probe import sniff
    from fyp.uploads.service import content_type_of

    with path.open("rb") as handle:
        head = handle.read(64)
    guessed = mimetypes.guess_type(path.name)[0] or ""
    return content_type_of(sniff(head), head) or (guessed if guessed.startswith("video/") else "video/mp4")


def _chunks(path: Path, on_bytes: Callable[[int], None]) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            on_bytes(len(chunk))
            yield chunk


def upload_file(
    path: Path, metadata: Mapping[str, Any], uploads: Uploads, *, on_bytes: Callable[[int], None] = lambda _: None,
) -> dict[str, Any]:
    """Create an upload, PUT `path` to its presigned URL, complete it; return the completion answer plus
    `video_id` and `timings_ms` ({create, put, complete}). metadata: the UploadRequest fields except
    content_type and size_bytes. Raises UploadFailed when the API refuses a step."""
    size = path.stat().st_size
    started = time.monotonic()
    created = uploads.create({**metadata, "content_type": content_type_for(path), "size_bytes": size})
    t_created = time.monotonic()
    headers = {**created["headers"], "Content-Length": str(size)}
    response = httpx.put(created["put_url"], content=_chunks(path, on_bytes), headers=headers, timeout=300)
    if response.status_code >= 300:
        raise UploadFailed(f"put_{response.status_code}", response.text[:500])
    t_put = time.monotonic()
    done = uploads.complete(created["upload_id"])
    t_done = time.monotonic()
    timings = {"create": t_created - started, "put": t_put - t_created, "complete": t_done - t_put}
    return {**done, "video_id": created["video_id"], "timings_ms": {k: round(v * 1000) for k, v in timings.items()}}
