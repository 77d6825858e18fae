"""Approval -> searchable: how long after a video's `ready` status a running index service finds it.

Needs the live path: the video_embeddings job and an index service (`fyp serve index`). For each of `videos`
synthetic videos, one at a time: write the video's Redis hash as the upload orchestration does (status
`ready`, a caption and hashtags), emit its VideoStatusChanged(ready) record and wait for the broker's ack, then
poll `/v1/similar/{id}` until it answers 200. Then the removal: hash `removed`, a `removed` status record, poll
until 404. Transcoding and moderation are not part of it: the clock starts at the approval event.

The latency includes the job's batching wait (`--max-wait-ms`, 200 ms by default), the sentence model, the
Kafka hops and the index's poll interval (100 ms), plus this poller's own interval (`poll_s`, 20 ms).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from fyp.bench.stats import latency_summary
from udfs.video_record import encode_video

__all__ = ["ApprovalLatency", "measure_approval_latency"]


@dataclass(frozen=True, kw_only=True)
class ApprovalLatency:
    """Seconds per video from the acknowledged status record to the index's answer; misses: never seen."""

    videos: int
    searchable_s: list[float]
    removed_s: list[float]
    misses: int
    load: tuple[float, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, Any]:
        """p50/p95/p99/max in ms of both measurements (`fyp.bench.stats.latency_summary`)."""
        return {"videos": self.videos, "misses": self.misses,
                "searchable": latency_summary([s * 1000 for s in self.searchable_s]),
                "removed": latency_summary([s * 1000 for s in self.removed_s]), "load": self.load}


def _wait(check: Callable[[], bool], timeout_s: float, poll_s: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(poll_s)
    return None


def measure_approval_latency(settings: Any, url: str, *, videos: int = 20, timeout_s: float = 30.0,
                             poll_s: float = 0.02, progress: Callable[[str], None] = lambda _: None
                             ) -> ApprovalLatency:
    """Run the measurement against the index service at `url` (see the module docstring)."""
    import os

    from connectors.kafka_emitter import KafkaEmitter
    from connectors.redis_video_store import RedisVideoStore

    store = RedisVideoStore.from_settings(settings)
    emitter = KafkaEmitter(settings)
    client = httpx.Client(base_url=url.rstrip("/"), timeout=5)
    client.get("/healthz").raise_for_status()
    run = uuid.uuid4().hex[:8]
    load = os.getloadavg()
    searchable, removed, misses = [], [], 0

    def status(video_id: str, value: str, seq: int) -> None:
        now = int(time.time() * 1000)
        store.write(video_id, encode_video({"video_id": video_id, "status": value, "seq": seq, "author_id": "bench",
                                            "caption": f"benchmark clip {video_id}", "hashtags": ["bench", run],
                                            "updated_at": now}))
        emitter.emit("VideoStatusChanged", {"event_id": str(uuid.uuid4()), "event_time": now, "video_id": video_id,
                                            "author_id": "bench", "status": value, "reason": None})

    def present(video_id: str) -> bool:
        return client.get(f"/v1/similar/{video_id}", params={"k": 1}).status_code == 200

    for i in range(videos):
        video_id = f"bench-approval-{run}-{i}"
        status(video_id, "ready", 1)
        took = _wait(lambda v=video_id: present(v), timeout_s, poll_s)
        if took is None:
            misses += 1
            progress(f"{video_id}: not searchable within {timeout_s:.0f} s")
        else:
            searchable.append(took)
        status(video_id, "removed", 2)
        gone = _wait(lambda v=video_id: not present(v), timeout_s, poll_s)
        if gone is not None:
            removed.append(gone)
        progress(f"{i + 1}/{videos}: searchable {took if took is not None else float('nan'):.3f} s, "
                 f"removed {gone if gone is not None else float('nan'):.3f} s")
    emitter.close()
    return ApprovalLatency(videos=videos, searchable_s=searchable, removed_s=removed, misses=misses,
                           load=tuple(round(x, 2) for x in load))
