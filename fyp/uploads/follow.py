"""Follow a video after its upload: poll its Redis hash to a final status, and ask the index service about it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from udfs.video_record import decode_video

__all__ = ["FINAL_STATUSES", "index_status", "wait_for_video"]

FINAL_STATUSES = frozenset({"ready", "rejected", "failed", "removed"})


def wait_for_video(
    read: Callable[[str], dict[str, str] | None], video_id: str, *, timeout_s: float, interval_s: float = 0.5,
    on_status: Callable[[str], None] = lambda _: None,
) -> dict[str, Any] | None:
    """Poll `read(video_id)` (e.g. `RedisVideoStore.read`) until the status is final; the decoded hash
    (`udfs.video_record.decode_video`), or None on timeout (seconds)."""
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


def index_status(video_id: str, url: str, *, timeout_s: float = 2.0) -> dict[str, str]:
    """Whether the candidate index service at `url` holds the video: `{"state": "indexed" | "not_indexed" |
    "unknown", "url", "detail"?}`. Asks `GET /v1/similar/{id}?k=1` (the service has no membership call; k=1
    keeps it to one lookup). `unknown` when the service is not running or not ready: never an error here."""
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
