"""Video metadata and upload duplicate claims in Redis: written by the upload orchestration job, read by the CLI.

Layout (docs/UPLOADS.md, "Video metadata in Redis"):

    fyp:video:v1:{video_id}          hash, codec `udfs.video_record`; replaced whole on each change
    fyp:upload:sha256:v1:{sha256}    string: the video_id that first uploaded these exact bytes

Writes are careful: a snapshot carries the state's `seq` and a Lua script refuses to replace a newer one, so a
job replaying from a checkpoint never moves a video back. TTLs by status: `ready` has none (the hash is the
catalogue entry and lives as long as the video); in-progress statuses get `in_progress_ttl` (default 7 days:
a safety net if the job is gone, since its timers end every stage within 3 x 10 min); rejected, failed and
removed get `final_ttl` (default 30 days). A content claim lasts `content_ttl` (default 365 days): the window
in which identical bytes count as a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from fyp.config import Settings

__all__ = [
    "AUTHOR_VIDEOS_KEY",
    "CONTENT_KEY_PREFIX",
    "FRESH_VIDEOS_KEY",
    "VIDEO_KEY_PREFIX",
    "RedisVideoStore",
    "video_key",
]

VIDEO_KEY_PREFIX = "fyp:video:v1:"
CONTENT_KEY_PREFIX = "fyp:upload:sha256:v1:"
# Written by jobs/video_embeddings.py as videos become searchable or are removed; read by candidate generation.
AUTHOR_VIDEOS_KEY = "fyp:author_videos:v1:{author_id}"  # zset: video_id -> approval time (epoch ms), newest 200
FRESH_VIDEOS_KEY = "fyp:fresh_videos:v1"  # zset: video_id -> approval time, the last `fresh_window` only
_FINAL = frozenset({"rejected", "failed", "removed"})

# KEYS[1] hash; ARGV[1] seq, ARGV[2] ttl seconds (0: none), ARGV[3..] field, value, ...
_WRITE = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq'))
if current and current > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
# KEYS[1] claim; ARGV[1] video_id, ARGV[2] ttl seconds. Returns the owner: ARGV[1] if the claim is (now) ours.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def video_key(video_id: str) -> str:
    """The hash key of a video.

    >>> video_key("v1")
    'fyp:video:v1:v1'
    """
    return f"{VIDEO_KEY_PREFIX}{video_id}"


def _seconds(value: timedelta, name: str) -> int:
    seconds = int(value.total_seconds())
    if seconds <= 0:
        raise ValueError(f"{name} must be a positive timedelta, got {value!r}")
    return seconds


class RedisVideoStore:
    """Read and write `fyp:video:v1:*` hashes and the sha256 claims. `client`: a `redis.Redis`."""

    def __init__(
        self, client: Any, *, in_progress_ttl: timedelta = timedelta(days=7),
        final_ttl: timedelta = timedelta(days=30), content_ttl: timedelta = timedelta(days=365),
    ) -> None:
        self._redis = client
        self._in_progress_ttl_s = _seconds(in_progress_ttl, "in_progress_ttl")
        self._final_ttl_s = _seconds(final_ttl, "final_ttl")
        self._content_ttl_s = _seconds(content_ttl, "content_ttl")
        self._write = client.register_script(_WRITE)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> RedisVideoStore:

        client = settings.redis_client(socket_timeout=10, decode_responses=True)
        return cls(client, **options)

    def ttl_for(self, status: str) -> int:
        """Seconds a hash in `status` lives (0: no expiry)."""
        if status == "ready":
            return 0
        return self._final_ttl_s if status in _FINAL else self._in_progress_ttl_s

    def write(self, video_id: str, fields: Mapping[str, str]) -> bool:
        """Replace the video's hash with `fields` (which must hold `status` and `seq`) unless Redis holds a
        higher seq; True if written."""
        flat = [item for pair in fields.items() for item in pair]
        args = [int(fields["seq"]), self.ttl_for(fields["status"]), *flat]
        return bool(self._write(keys=[video_key(video_id)], args=args))

    def read(self, video_id: str) -> dict[str, str] | None:
        """The video's hash as strings, or None if Redis has none."""
        raw = self._redis.hgetall(video_key(video_id))
        if not raw:
            return None
        return {_text(k): _text(v) for k, v in raw.items()}

    def read_many(self, video_ids: list[str]) -> dict[str, dict[str, str] | None]:
        """Several hashes in one pipelined round trip: video_id -> hash (None where Redis has none)."""
        pipe = self._redis.pipeline(transaction=False)
        for video_id in video_ids:
            pipe.hgetall(video_key(video_id))
        found = pipe.execute() if video_ids else []
        return {v: ({_text(k): _text(x) for k, x in raw.items()} or None) for v, raw in zip(video_ids, found,
                                                                                          strict=True)}

    def record_searchable(self, entries: list[tuple[str, str, int, bool]], *, fresh_window: timedelta =
                          timedelta(hours=48), author_ttl: timedelta = timedelta(days=30)) -> None:
        """Keep the per-author and fresh-video sets in step with the index, in one pipeline.

        entries: (video_id, author_id, approval time ms, searchable). Scores are the event's own time, so a
        replay writes the same values (no increments); removed videos leave both sets.
        """
        if not entries:
            return
        pipe = self._redis.pipeline(transaction=False)
        newest = 0
        for video_id, author_id, at_ms, searchable in entries:
            author_key = AUTHOR_VIDEOS_KEY.format(author_id=author_id)
            if searchable:
                pipe.zadd(FRESH_VIDEOS_KEY, {video_id: at_ms})
                if author_id:
                    pipe.zadd(author_key, {video_id: at_ms})
                    pipe.zremrangebyrank(author_key, 0, -201)
                    pipe.expire(author_key, _seconds(author_ttl, "author_ttl"))
            else:
                pipe.zrem(FRESH_VIDEOS_KEY, video_id)
                if author_id:
                    pipe.zrem(author_key, video_id)
            newest = max(newest, at_ms)
        pipe.zremrangebyscore(FRESH_VIDEOS_KEY, "-inf", newest - int(fresh_window.total_seconds() * 1000))
        pipe.execute()

    def claim_content(self, sha256: str, video_id: str) -> str | None:
        """Claim these bytes for `video_id`; None if the claim is ours, else the video that holds it."""
        owner = _text(self._claim(keys=[f"{CONTENT_KEY_PREFIX}{sha256}"], args=[video_id, self._content_ttl_s]))
        return None if owner == video_id else owner

    def release_content(self, sha256: str, video_id: str) -> None:
        """Give up `video_id`'s claim on these bytes (no-op if another video holds it)."""
        self._release(keys=[f"{CONTENT_KEY_PREFIX}{sha256}"], args=[video_id])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
