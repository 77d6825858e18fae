"""After a retrain: re-embed the whole catalogue with the new item tower and move running index services to the
new model without downtime (`fyp index reembed`, docs/INDEX.md "Changing the model").

1. Each service is asked to stage the new model (`POST /v1/model/stage`): from then on its feed keeps the new
   model's vectors aside, in a second set, while the live index goes on serving the old model.
2. Every `ready` video hash (`fyp.index.catalogue`) is encoded with the new model, a batch at a time, and sent
   to fyp.video-embeddings.v1 as a `VideoEmbedding` tagged with the new model (keyed by video id, with the
   producers' murmur2 partitioner, so a video's records keep their order with the embedding job's). The
   compacted topic then holds the new model's vectors: a service started later rebuilds from them.
3. Each service is asked to swap (`POST /v1/model/swap`) once its feed has read past the last of those records:
   it builds an index of the staged vectors off to the side and swaps index and model in one step. Queries
   never wait for the build; from the swap on, the old model's vectors and user embeddings are refused.

Videos approved while this runs: the embedding job embeds them with the model it loaded (it follows
$FYP_HOME/models/two-tower/LATEST, `jobs/video_embeddings.py`); the new model's are staged like these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from fyp.index.catalogue import ready_videos, video_meta

__all__ = ["ReembedReport", "reembed"]


@dataclass
class ReembedReport:
    """What a re-embedding did. Times in seconds; `swaps` maps each service URL to its swap report (sizes,
    build_s, swap_ms: how long its lock was held, snapshot) or to why it was skipped."""

    model: str
    videos: int = 0
    encode_s: float = 0.0
    produce_s: float = 0.0
    total_s: float = 0.0
    offsets: dict[int, int] = field(default_factory=dict)
    previous: dict[str, str | None] = field(default_factory=dict)
    swaps: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Offsets:
    """Next offset per partition after the records the producer has acknowledged; errors are kept."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}
        self.errors: list[str] = []

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            self.errors.append(str(error))
            return
        partition, offset = message.partition(), message.offset()
        self.next[partition] = max(self.next.get(partition, 0), offset + 1)


def _post(http: httpx.Client, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"{url.rstrip('/')}{path}", json=body)
    if response.status_code != 200:
        detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
        raise RuntimeError(f"{url}{path}: {response.status_code} {detail}")
    return response.json()


def reembed(
    settings: Any,
    encoder: Any,
    urls: Sequence[str],
    *,
    batch: int = 256,
    videos: str = "*",
    swap_timeout_s: float = 600.0,
    progress: Callable[[int], None] | None = None,
    producer: Any = None,
) -> ReembedReport:
    """Re-embed the catalogue of `settings`' Redis with `encoder` (an `ItemEncoder`: `.name`, `.encode`) and
    move the index services at `urls` (none: only the topic) to its model. `videos`: a Redis glob over the
    video ids re-embedded (default all; tests re-embed their own). `progress(n)` after each batch."""
    from confluent_kafka import Producer

    from schemas.registry import default_registry
    from schemas.topics import VIDEO_EMBEDDINGS
    from udfs.video_embedding import Planned, embedding_record

    started = time.monotonic()
    model = encoder.name
    report = ReembedReport(model=model)
    registry = default_registry()
    with httpx.Client(timeout=swap_timeout_s + 30) as http:
        targets = []
        for url in urls:
            serving = http.get(f"{url.rstrip('/')}/v1/model")
            serving.raise_for_status()
            report.previous[url] = serving.json()["model"]
            if report.previous[url] == model:
                report.swaps[url] = {"skipped": f"already serves {model}"}
                continue
            _post(http, url, "/v1/model/stage", {"model": model})
            targets.append(url)

        producer = producer or Producer(settings.kafka_producer_config())
        delivered = _Offsets()
        client = settings.redis_client(socket_timeout=30)
        now_ms = int(time.time() * 1000)
        for hashes in ready_videos(client, batch=batch, videos=videos):
            if not hashes:
                continue
            t0 = time.monotonic()
            vectors = encoder.encode([video_meta(h) for h in hashes])
            t1 = time.monotonic()
            for fields, vector in zip(hashes, vectors, strict=True):
                item = Planned(video_id=fields["video_id"], author_id=fields.get("author_id", ""),
                               action="upsert", event_time_ms=now_ms, fields=fields)
                record = embedding_record(item, model=model, vector=[float(x) for x in vector])
                payload = registry.encode("VideoEmbedding", record)
                producer.produce(VIDEO_EMBEDDINGS.name, key=item.video_id.encode(), value=payload,
                                 on_delivery=delivered)
                producer.poll(0)
            report.encode_s += t1 - t0
            report.produce_s += time.monotonic() - t1
            report.videos += len(hashes)
            if progress is not None:
                progress(len(hashes))
        t0 = time.monotonic()
        if producer.flush(60) != 0 or delivered.errors:
            raise RuntimeError(f"Kafka did not take every re-embedded vector: {delivered.errors[:3]}")
        report.produce_s += time.monotonic() - t0
        report.offsets = dict(sorted(delivered.next.items()))

        for url in targets:
            report.swaps[url] = _post(http, url, "/v1/model/swap", {
                "model": model, "after_offsets": report.offsets, "timeout_s": swap_timeout_s})
    report.encode_s, report.produce_s = round(report.encode_s, 3), round(report.produce_s, 3)
    report.total_s = round(time.monotonic() - started, 3)
    return report
