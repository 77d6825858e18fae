"""`fyp demo`'s index part: an approved upload becomes searchable, shows up in `fyp similar`, and a takedown
removes it.

`ensure_embedding_job` submits jobs/video_embeddings.py early (its Python worker loads torch and the sentence
model, which takes a while on a busy machine). `index_service` starts an index service (unless one answers on
the default port; the demo's feed step uses it too). `index_demo` then uploads a second clip about the same
thing as the demo's first upload, waits until both are searchable, checks that each is in the other's
`/v1/similar` results, takes the first one down the way `fyp takedown` does (its media moves to quarantine:
every key it had published is read back and must fail) and waits until the index has dropped it. On the way,
`cold_start` asks the service for a brand-new user's candidates in the US:en market (the generated traffic's
largest), which come from that market's trending set.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from fyp.commands.demo_services import served, wait_for
from fyp.config import Settings

__all__ = ["cold_start", "ensure_embedding_job", "index_demo", "index_service", "takedown_and_probe"]

DEMO_CAPTION = "fyp demo upload"  # the first clip's caption (fyp.bench.upload.upload_and_play)


def ensure_embedding_job(settings: Settings) -> str:
    """The running embedding job's id, submitting it if needed (it stays running, like the demo's others)."""
    from fyp.pipelines import VIDEO_EMBEDDINGS_JOB
    from fyp.stack.submit import ensure_job

    return ensure_job(settings, VIDEO_EMBEDDINGS_JOB)


@contextmanager
def index_service(settings: Settings, timeout_s: float = 120) -> Iterator[str]:
    """The index service's URL: one already answering on the default port, else a subprocess for the demo."""
    from fyp.index.config import default_port

    url = os.environ.get("FYP_INDEX_URL") or f"http://127.0.0.1:{default_port()}"
    with served(settings, url, ["index", "--snapshot-every", "0"], log_name="demo-index.log",
                timeout_s=timeout_s) as running:
        yield running


def _similar(url: str, video_id: str, k: int = 20) -> list[str] | None:
    response = httpx.get(f"{url}/v1/similar/{video_id}", params={"k": k}, timeout=5)
    return [r["video_id"] for r in response.json()["results"]] if response.status_code == 200 else None


def cold_start(get: Callable[[str, dict[str, Any]], httpx.Response], *, region: str = "US", language: str = "en",
               k: int = 20) -> dict[str, Any]:
    """A brand-new user's candidates in one market: who asked, the answer's `market` block, the first trending
    videos. get: (path, query params) -> the service's response (httpx.get on the URL, or a TestClient's get)."""
    user = f"demo-new-{uuid.uuid4().hex[:8]}"
    response = get("/v1/candidates", {"user": user, "k": k, "region": region, "language": language})
    response.raise_for_status()
    body = response.json()
    trending = [r["video_id"] for r in body["results"] if r["source"] == "trending"]
    return {"user": user, "market": body["market"], "trending": trending[:5], "results": len(body["results"])}


def index_demo(settings: Settings, first_video_id: str, url: str, *, timeout_s: float = 300) -> dict[str, Any]:
    """The index part of the demo (module docstring) against the index service at `url` (`index_service`);
    returns what the report prints."""
    from connectors.redis_video_store import RedisVideoStore
    from fyp.bench.upload import Clip, UploadPipeline, make_clip
    from fyp.uploads.client import HttpUploads, upload_file
    from fyp.uploads.follow import wait_for_video

    store = RedisVideoStore.from_settings(settings)
    result: dict[str, Any] = {"first": first_video_id}
    wait_for(lambda: _similar(url, first_video_id) is not None, timeout_s, f"{first_video_id} searchable")
    with tempfile.TemporaryDirectory(prefix="fyp-demo-index-") as tmp, \
            UploadPipeline(settings, keep_job=True) as pipeline:
        source = make_clip(Path(tmp) / "second.mp4", Clip(4, 640, 360))
        done = upload_file(source, {"author_id": "demo", "caption": f"{DEMO_CAPTION}, second take",
                                    "hashtags": ["demo"], "region": "US", "language": "en"},
                           HttpUploads(pipeline.api or ""))
        second = done["video_id"]
        video = wait_for_video(store.read, second, timeout_s=timeout_s, interval_s=0.05)
    result["second"] = second
    if not video or video["status"] != "ready":
        result["second_status"] = video["status"] if video else "timeout"
        return result
    ready_ms = int(video["updated_at"])  # the orchestration's processing time when it turned ready
    wait_for(lambda: _similar(url, second) is not None, 60, f"{second} searchable")
    result["approval_to_searchable_s"] = round(time.time() - ready_ms / 1000, 2)
    result["similar_to_second"] = _similar(url, second)
    result["cold_start"] = cold_start(lambda path, params: httpx.get(f"{url}{path}", params=params, timeout=10))
    result["first_in_similar_of_second"] = first_video_id in (result["similar_to_second"] or [])
    started = time.monotonic()
    result["takedown"] = takedown_and_probe(settings, first_video_id)
    wait_for(lambda: _similar(url, first_video_id) is None, 60, f"{first_video_id} removed from the index")
    result["takedown_to_removed_s"] = round(time.monotonic() - started, 2)
    result["first_in_similar_after_takedown"] = first_video_id in (_similar(url, second) or [])
    return result


def takedown_and_probe(settings: Settings, video_id: str) -> dict[str, Any]:
    """File a takedown of `video_id` exactly as `fyp takedown` does (fyp.uploads.wiring.takedown_service), then
    read back every key that was published under the video's prefix: how many there were and how many can
    still be read (0 when the takedown worked)."""
    from fyp.media.keys import video_root
    from fyp.media.publish import S3ObjectStore, make_s3_client
    from fyp.uploads.takedowns import TakedownRequest
    from fyp.uploads.wiring import takedown_service

    media = S3ObjectStore(make_s3_client(settings), settings.media_bucket)
    published = [obj.key for obj in media.list_objects(video_root(video_id))]
    filed = takedown_service(settings).file(
        TakedownRequest(video_id=video_id, reason="copyright: demo notice", notice_id=f"DEMO-{uuid.uuid4().hex[:6]}",
                        claimant="fyp demo"), filed_by="demo")
    readable = [key for key in published if media.get_bytes(key) is not None]
    return {"notice_id": filed["notice_id"], "objects_moved": filed["objects_moved"],
            "published_keys": len(published), "still_readable": len(readable), "example_key": published[0]
            if published else None}
