"""The catalogue the index holds, read from where uploads keep it, and the item tower's input for one video.

Every searchable video has a Redis hash `fyp:video:v1:{id}` in status `ready` (written by the upload
orchestration job; a `ready` hash has no TTL, so the hashes are the whole catalogue). `video_meta` is the one
way a hash becomes the item tower's input: the embedding job (`jobs/video_embeddings.py`) and the re-embedding
(`fyp.index.reembed`) both call it, so a video gets the same input on approval and on a re-embed. Of it, a
trained two-tower model reads the fields training has too (video id, author, sound, hashtags:
`fyp.embeddings.inputs.item_inputs`); the content-projection fallback also reads caption, OCR text and media.

>>> video_meta({"video_id": "v1", "status": "ready", "author_id": "a1", "hashtags": '["cats"]',
...             "ocr_text": "hello"}).hashtags
('cats',)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.redis_video_store import VIDEO_KEY_PREFIX, video_key

__all__ = ["ready_videos", "video_meta"]


def video_meta(fields: Mapping[str, str]) -> Any:
    """The `fyp.embeddings.VideoMeta` of a video hash (its OCR text is kept in the hash since moderation)."""
    from fyp.embeddings.meta import VideoMeta

    return VideoMeta.from_video_hash(fields, ocr_text=fields.get("ocr_text", "") or "")


def ready_videos(client: Any, *, batch: int = 256, videos: str = "*") -> Iterator[list[dict[str, str]]]:
    """The hashes of every `ready` video, `batch` at a time (`client`: a redis.Redis or RedisCluster); `videos`:
    a Redis glob over video ids (default all).

    One SCAN over the hash keys, then pipelined HGETALLs; a video that changes status meanwhile is read as it
    is when its batch is read.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    keys: list[str] = []
    for key in client.scan_iter(match=f"{VIDEO_KEY_PREFIX}{videos}", count=1000):
        keys.append(_text(key)[len(VIDEO_KEY_PREFIX):])
        if len(keys) >= batch:
            yield _ready(client, keys)
            keys = []
    if keys:
        yield _ready(client, keys)


def _ready(client: Any, video_ids: list[str]) -> list[dict[str, str]]:
    pipe = client.pipeline(transaction=False)
    for video_id in video_ids:
        pipe.hgetall(video_key(video_id))
    out = []
    for raw in pipe.execute():
        fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
        if fields.get("status") == "ready" and fields.get("video_id"):
            out.append(fields)
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
