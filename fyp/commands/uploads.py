"""`fyp upload`, `fyp video`, `fyp serve upload`, `fyp worker transcode|moderate`: the upload pipeline's CLI.

`fyp upload FILE` creates an upload, PUTs the bytes to the presigned S3 URL (progress bar), completes it, then
polls the video's Redis hash (`fyp:video:v1:{id}`, written by the upload_orchestration job) until it is ready,
rejected, failed or removed. With `--api URL` (or FYP_UPLOAD_API) it talks to a running `fyp serve upload`;
without, it runs the same `UploadService` in-process with the same wiring (Redis store, Kafka emitter), so no
server is needed. Either way the bytes go straight to S3. Exit status: 0 ready, 1 anything else. The work is
the library's (`fyp/uploads/`); these are its commands.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import Settings, load_settings
from fyp.uploads.client import HttpUploads, LocalUploads, UploadFailed, Uploads, upload_file
from fyp.uploads.follow import index_status, wait_for_video
from udfs.video_record import decode_video

__all__ = ["register"]


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
        from fyp.index.config import default_port

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

    from fyp.uploads.wiring import build_upload_app

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

def register(app: typer.Typer, *, serve: typer.Typer, worker: typer.Typer) -> None:
    """Add `upload` and `video` to the app, `upload` to the `serve` group, `transcode` and `moderate` to the
    `worker` group (both declared in fyp/cli.py)."""
    app.command()(upload)
    app.command()(video)
    serve.command("upload")(serve_upload)
    worker.command("transcode")(worker_transcode)
    worker.command("moderate")(worker_moderate)
