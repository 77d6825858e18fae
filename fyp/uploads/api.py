"""Upload API over HTTP: hand out presigned PUT URLs, then check the uploaded object and announce `UploadCompleted`.

    POST /v1/uploads               metadata -> {upload_id, video_id, put_url, object_key, expires_in, headers}
    POST /v1/uploads/{id}/complete head, sniff, sha256 the object; emit UploadCompleted; return the status
    POST /v1/takedowns             a notice (or counter-notice): block (or unblock) the media, emit Takedown,
                                   write the audit row (`fyp.uploads.takedowns`); 202 with what was done

The operations are `fyp.uploads.service.UploadService`'s; this module is their HTTP face. `fyp serve upload`
wires it to Kafka, Redis and S3 (`fyp.uploads.wiring.build_upload_app`). Errors are
`{"error": {"code", "message"}}` with a 4xx status (503 when emitting fails).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fyp.http_metrics import instrument
from fyp.media.probe import DEFAULT_LIMITS, Limits
from fyp.uploads.request import UploadRequest
from fyp.uploads.service import ApiError, Emit, UploadService
from fyp.uploads.store import UploadStore
from fyp.uploads.takedowns import TakedownRequest, TakedownService

__all__ = ["MAX_REQUEST_BYTES", "BodyLimit", "create_app"]

# The largest body POST /v1/uploads needs: a caption of MAX_CAPTION_CHARS astral characters JSON-escaped as
# surrogate pairs (12 bytes each: 26,400), 30 hashtags of 100 bytes escaped (9,000), the ids and the rest (~1 KB).
# Anything larger is refused with 413 before it is parsed, so a request costs at most this much to read.
MAX_REQUEST_BYTES = 64 * 1024


def create_app(
    *,
    s3: Any,
    bucket: str,
    store: UploadStore,
    emit: Emit,
    limits: Limits = DEFAULT_LIMITS,
    expires_in: int = 900,
    clock: Callable[[], float] = time.time,
    takedowns: TakedownService | None = None,
) -> FastAPI:
    """The FastAPI app over an `UploadService` built from the same arguments (see `UploadService`).

    takedowns: serves POST /v1/takedowns when given (`fyp serve upload` always wires one); without, that path is 404.
    """
    service = UploadService(s3=s3, bucket=bucket, store=store, emit=emit, limits=limits, expires_in=expires_in,
                            clock=clock)
    app = FastAPI(title="fyp upload API", version="1")
    app.add_middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)
    instrument(app, "upload")

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

    if takedowns is not None:
        @app.post("/v1/takedowns", status_code=202)
        def file_takedown(body: TakedownRequest, request: Request) -> dict[str, Any]:
            # 202: the media is blocked when this returns; the status change and the index follow in seconds.
            host = request.client.host if request.client else "unknown"
            return takedowns.file(body, filed_by=f"api:{host}")

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

