"""`fyp upload`, `fyp video`, `fyp serve upload`, `fyp worker transcode|moderate`: the upload pipeline's CLI.

`fyp upload FILE` creates an upload, PUTs the bytes to the presigned S3 URL (progress bar), completes it, then
polls the video's Redis hash (`fyp:video:v1:{id}`, written by the upload_orchestration job) until it is ready,
rejected, failed or removed. With `--api URL` (or FYP_UPLOAD_API) it talks to a running `fyp serve upload`;
without, it runs the same `UploadService` in-process with the same wiring (Redis store, Kafka emitter), so no
server is needed. Either way the bytes go straight to S3. Exit status: 0 ready, 1 anything else.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import Settings, load_settings

__all__ = [
    "FINAL_STATUSES",
    "HttpUploads",
    "LocalUploads",
    "UploadFailed",
    "build_upload_app",
    "register",
    "upload_file",
    "wait_for_video",
]

FINAL_STATUSES = frozenset({"ready", "rejected", "failed", "removed"})
_CHUNK = 1 << 20
_JSON_FIELDS = ("hashtags", "renditions", "reasons")


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
    """`fyp.upload_api.UploadService` in this process, wired like `fyp serve upload`."""

    def __init__(self, settings: Settings) -> None:
        self._service = _upload_service(settings)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from pydantic import ValidationError

        from fyp.upload_api import ApiError, UploadRequest

        try:
            return self._service.create(UploadRequest(**body))
        except ValidationError as exc:
            raise UploadFailed("invalid_request", _field_errors(exc.errors(), "msg")) from None
        except ApiError as exc:
            raise UploadFailed(exc.code, exc.message) from None

    def complete(self, upload_id: str) -> dict[str, Any]:
        from fyp.upload_api import ApiError

        try:
            return self._service.complete(upload_id)
        except ApiError as exc:
            raise UploadFailed(exc.code, exc.message) from None


def _upload_service(settings: Settings):

    from connectors.kafka_emitter import KafkaEmitter
    from fyp.media.probe import Limits
    from fyp.media.publish import make_s3_client
    from fyp.upload_api import RedisUploadStore, UploadService

    client = settings.redis_client(socket_timeout=10)
    return UploadService(s3=make_s3_client(settings), bucket=settings.media_bucket, store=RedisUploadStore(client),
                         emit=KafkaEmitter(settings), limits=Limits.from_env())


def build_upload_app():
    """The upload API wired to this installation (uvicorn factory: `fyp.commands.uploads:build_upload_app`)."""
    from fyp.upload_api import create_app

    service = _upload_service(load_settings())
    return create_app(s3=service.s3, bucket=service.bucket, store=service.store, emit=service.emit,
                      limits=service.limits)


def content_type_for(path: Path) -> str:
    """The MIME type the file's first bytes prove, else a video type guessed from its name, else video/mp4: the
    API sniffs the stored bytes at completion and answers `not_a_video:<kind>` for anything else."""
    from fyp.media.probe import sniff
    from fyp.upload_api import content_type_of

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


def wait_for_video(
    read: Callable[[str], dict[str, str] | None], video_id: str, *, timeout_s: float, interval_s: float = 0.5,
    on_status: Callable[[str], None] = lambda _: None,
) -> dict[str, Any] | None:
    """Poll `read(video_id)` (e.g. `RedisVideoStore.read`) until the status is final; the decoded hash, or
    None on timeout (seconds)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        found = read(video_id)
        if found is not None:
            if found.get("status") != last:
                last = found.get("status")
                on_status(last or "")
            if last in FINAL_STATUSES:
                return decode_video(found)
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


def decode_video(fields: Mapping[str, str]) -> dict[str, Any]:
    """A video hash with its JSON fields (hashtags, renditions, reasons) decoded."""
    return {k: json.loads(v) if k in _JSON_FIELDS else v for k, v in fields.items()}


def _video_store(settings: Settings):
    from connectors.redis_video_store import RedisVideoStore

    return RedisVideoStore.from_settings(settings)


def _print_video(video: Mapping[str, Any]) -> None:
    table = Table("field", "value", show_header=False)
    for name, value in sorted(video.items()):
        if name == "renditions":
            value = ", ".join(f"{r['codec']} {r['width']}x{r['height']} {r['bitrate_kbps']}k" for r in value)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(name, str(value))
    console.print(table)


def upload(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Video file to upload."),
    author: str = typer.Option(..., "--author", help="Creator id."),
    caption: str = typer.Option("", "--caption", help="Caption text shown with the video."),
    hashtags: str = typer.Option("", "--hashtags", help="Comma-separated, without '#'."),
    sound: str = typer.Option(None, "--sound", help="Sound id, if any."),
    region: str = typer.Option("US", "--region", help="ISO 3166-1 alpha-2."),
    language: str = typer.Option("en", "--language", help="ISO 639-1."),
    api: str = typer.Option(None, "--api", envvar="FYP_UPLOAD_API",
                            help="Upload API base URL; default: run the API in-process."),
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds to wait for a final status."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for ready / rejected / failed."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Upload a video and follow it until it is ready, rejected or failed."""
    settings = load_settings()
    if file.stat().st_size == 0:
        err_console.print(f"[bold red]error:[/] {file} is empty")
        raise typer.Exit(1)
    metadata = {"author_id": author, "caption": caption, "region": region.upper(), "language": language.lower(),
                "hashtags": [h.strip().lstrip("#") for h in hashtags.split(",") if h.strip()], "sound_id": sound}
    uploads: Uploads = HttpUploads(api) if api else LocalUploads(settings)
    size = file.stat().st_size
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=err_console, disable=as_json)
    with fail_cleanly(UploadFailed, httpx.HTTPError), bar:
        task = bar.add_task(f"uploading {file.name}", total=size)
        done = upload_file(file, metadata, uploads, on_bytes=lambda n: bar.advance(task, n))
    video_id = done["video_id"]
    result: dict[str, Any] = {"upload": done, "video_id": video_id}
    if wait:
        completed_at = time.monotonic()
        store = _video_store(settings)
        spinner = nullcontext(None) if as_json else err_console.status(f"video {video_id}: waiting …")
        with spinner as status:

            def show(current: str) -> None:
                if status is not None:
                    status.update(f"video {video_id}: {current} …")

            video = wait_for_video(store.read, video_id, timeout_s=timeout, on_status=show)
        result["video"] = video
        result["wait_ms"] = round((time.monotonic() - completed_at) * 1000)
    if as_json:
        print_json(result)
    elif not wait:
        console.print(f"[green]✓[/] uploaded {file.name}: video {video_id} (not waiting)")
    elif result["video"] is None:
        err_console.print(f"[bold red]error:[/] video {video_id} not final within {timeout:.0f} s")
    else:
        _print_video(result["video"])
    final = result.get("video") or {}
    if wait and final.get("status") != "ready":
        raise typer.Exit(1)


def index_status(video_id: str, url: str, *, timeout_s: float = 2.0) -> dict[str, str]:
    """Whether the candidate index service at `url` holds the video: `{"state": "indexed" | "not_indexed" |
    "unknown", "url", "detail"?}`. Asks `GET /v1/similar/{id}?k=1` (the service has no membership call; k=1
    keeps it to one lookup). `unknown` when the service is not running or not ready: never an error here."""
    from urllib.parse import quote

    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/similar/{quote(video_id, safe='')}", params={"k": 1},
                             timeout=timeout_s)
    except httpx.HTTPError as exc:
        return {"state": "unknown", "url": url, "detail": f"index service unreachable: {type(exc).__name__}"}
    if response.status_code == 200:
        return {"state": "indexed", "url": url}
    if response.status_code == 404:
        return {"state": "not_indexed", "url": url}
    return {"state": "unknown", "url": url, "detail": f"HTTP {response.status_code}: {response.text[:200]}"}


def video(
    video_id: str = typer.Argument(..., help="Video id (printed by `fyp upload`)."),
    index_url: str = typer.Option(None, "--index-url",
                                  help="Index service for the index status (default FYP_INDEX_URL, else "
                                       "127.0.0.1:8090+offset)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show a video's status, renditions, moderation verdict and reasons (Redis) and its index status."""
    found = _video_store(load_settings()).read(video_id)
    if found is None:
        err_console.print(f"[bold red]error:[/] no video {video_id} in Redis")
        raise typer.Exit(1)
    if index_url is None:
        from fyp.index.service import default_port

        index_url = os.environ.get("FYP_INDEX_URL") or f"http://127.0.0.1:{default_port()}"
    shown = decode_video(found) | {"index": index_status(video_id, index_url)}
    if as_json:
        print_json(shown)
    else:
        _print_video(shown)


def serve_upload(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Run the upload API (uvicorn), wired to this stack's Kafka, Redis and S3."""
    import uvicorn

    uvicorn.run(build_upload_app(), host=host, port=port, log_level="info")


def _run_worker(run: Callable[[], None]) -> None:
    logging.basicConfig(level=os.environ.get("FYP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run()  # installs SIGINT/SIGTERM handlers: Ctrl-C finishes the current item, then stops


def worker_transcode() -> None:
    """Run the transcoder worker (consumer group fyp-transcoder) until Ctrl-C."""
    from workers.transcoder import run

    _run_worker(run)


def worker_moderate() -> None:
    """Run the moderation worker (consumer group fyp-moderator) until Ctrl-C."""
    from workers.moderator import run

    _run_worker(run)


def register(app: typer.Typer) -> None:
    app.command()(upload)
    app.command()(video)
    serve = typer.Typer(help="Run a service in the foreground.", no_args_is_help=True)
    serve.command("upload")(serve_upload)
    app.add_typer(serve, name="serve")
    worker = typer.Typer(help="Run a pipeline worker in the foreground.", no_args_is_help=True)
    worker.command("transcode")(worker_transcode)
    worker.command("moderate")(worker_moderate)
    app.add_typer(worker, name="worker")
